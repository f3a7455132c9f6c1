"""CapsNet-BERT (paper Section 3, last paragraph): BERT over "[CLS] sentence [SEP] aspect [SEP]"
replaces the embedding and encoding layers; the sentence's token states feed the primary capsules,
the mean of the aspect's token states is the aspect vector a. The capsule layers and margin loss
are the same modules CapsNet uses (src/layers.py, src/losses.py)."""
from dataclasses import dataclass

import torch.nn as nn

from common.schema import spec

from ..backbone import bert_inputs, encode_pairs, load_bert
from ..layers import CapsuleHead, lengths_to_probabilities, masked_mean
from ..losses import LossConfig
from .base import ABSAModel


class CapsNetBert(ABSAModel):
    tasks = ("atsa", "acsa")

    @dataclass(frozen=True)
    class Config:
        bert_path: str            # a local Hugging Face BERT folder; "default" = the packaged MiniLM
        max_length: int = spec(min=8)
        capsule_size: int = spec(min=1)
        dropout: float = spec(min=0.0, max=1.0)
        routing_scale: float = spec(above=0.0)
        routing: str = spec(choices=("guided", "dynamic"))   # Eqs. 5-6, or Sabour et al.'s (the -DR rows)
        routing_iterations: int = spec(min=1)    # dynamic routing only
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return bert_inputs(cfg, ("bert_input_ids", "bert_token_type_ids", "bert_sentence_mask", "bert_aspect_mask"))

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.bert = load_bert(cfg.bert_path)
        hidden = self.bert.config.hidden_size
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = CapsuleHead(hidden, hidden, cfg.capsule_size, info.num_classes, cfg.routing_scale,
                                cfg.dropout, info.sentiment, cfg.routing, cfg.routing_iterations)

    def forward(self, batch):
        states = self.dropout(encode_pairs(self.bert, batch)).float()
        aspect = masked_mean(states, batch["bert_aspect_mask"])
        return self.head(states, batch["bert_sentence_mask"].bool(), aspect)

    probabilities = staticmethod(lengths_to_probabilities)
