"""BERT sentence-pair baseline (Table 3): "[CLS] sentence [SEP] aspect [SEP]" -> [CLS] state ->
dropout -> linear, cross-entropy."""
from dataclasses import dataclass

import torch.nn as nn
from torch.nn import Dropout

from common.schema import spec

from ..backbone import bert_inputs, encode_pairs, load_bert
from ..losses import LossConfig
from .base import ABSAModel


class BertPair(ABSAModel):
    tasks = ("atsa", "acsa")

    @dataclass(frozen=True)
    class Config:
        bert_path: str            # a local Hugging Face BERT folder; "default" = the packaged MiniLM
        max_length: int = spec(min=8)
        dropout: float = spec(min=0.0, max=1.0)
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return bert_inputs(cfg, ("bert_input_ids", "bert_token_type_ids"))

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.bert = load_bert(cfg.bert_path)
        self.dropout = Dropout(cfg.dropout)
        self.classifier = nn.Linear(self.bert.config.hidden_size, info.num_classes)

    def forward(self, batch):
        states = encode_pairs(self.bert, batch)
        return self.classifier(self.dropout(states[:, 0])).float()
