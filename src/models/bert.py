"""BERT sentence-pair baseline (Table 3): the backbone over the pair (its tokenizer's template, BERT's
"[CLS] sentence [SEP] aspect [SEP]") -> the first token's state -> dropout -> linear, cross-entropy."""
from dataclasses import dataclass

import torch.nn as nn
from torch.nn import Dropout

from common.schema import spec

from ..backbone import bert_inputs, encode_pairs, load_backbone
from ..losses import LossConfig
from .base import ABSAModel, register


@register("bert")
class BertPair(ABSAModel):
    tasks = ("atsa", "acsa")

    @dataclass(frozen=True)
    class Config:
        backbone: str             # a local Hugging Face encoder folder, "default" (the packaged MiniLM) or "mpnet"
        max_length: int = spec(min=8)
        dropout: float = spec(min=0.0, max=1.0)
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return bert_inputs(cfg, ("bert_input_ids", "bert_token_type_ids"))

    def input_fields(self):
        return self.fields

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.bert = load_backbone(cfg.backbone)
        self.fields = self.inputs(cfg, info.task).fields   # read once: it depends on the backbone folder
        self.dropout = Dropout(cfg.dropout)
        self.classifier = nn.Linear(self.bert.config.hidden_size, info.num_classes)

    def forward(self, batch):
        states = encode_pairs(self.bert, batch)
        return self.classifier(self.dropout(states[:, 0])).float()
