"""CapsNet-BERT (paper Section 3, last paragraph): the backbone over the sentence pair (its
tokenizer's template, BERT's "[CLS] sentence [SEP] aspect [SEP]") replaces the embedding and
encoding layers; the sentence's token states feed the primary capsules, the mean of the aspect's
token states is the aspect vector a. The capsule layers and margin loss are the same modules
CapsNet uses (src/layers.py, src/losses.py)."""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch.nn import Dropout

from common.schema import spec

from ..backbone import bert_inputs, encode_pairs, load_backbone
from ..layers import CapsuleHead, capsule_explanation, lengths_to_probabilities
from ..losses import LossConfig
from ..masking import masked_mean
from .base import ABSAModel, register


@register("capsnet-bert", "capsnet-bert-dr")
class CapsNetBert(ABSAModel):
    tasks = ("atsa", "acsa")

    @dataclass(frozen=True)
    class Config:
        backbone: str             # a local Hugging Face encoder folder, "default" (the packaged MiniLM) or "mpnet"
        max_length: int = spec(min=8)
        capsule_size: int = spec(min=1)
        dropout: float = spec(min=0.0, max=1.0)
        routing_scale: float = spec(above=0.0)
        routing: str = spec(choices=("guided", "dynamic"))   # Eqs. 5-6, or Sabour et al.'s (the -DR rows)
        routing_iterations: int = spec(min=1)    # dynamic routing only
        # Where CapsNet-BERT can differ from the authors' code (docs/MODELS.md, docs/RESULTS.md ablation):
        primary_positions: str = spec(choices=("sentence", "segment"))  # sentence pieces / [CLS] sentence [SEP]
        aspect_positions: str = spec(choices=("aspect", "segment"))     # aspect pieces / aspect [SEP]
        dropout_site: str = spec(choices=("states", "capsules"))        # on BERT states / on W h before squash
        guide_init: str = spec(choices=("lexicon", "random"))           # guide capsules from the lexicon / Xavier
        head_lr: Optional[float] = spec(above=0.0)   # learning rate of the capsule head (null = train.lr)
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return bert_inputs(cfg, ("bert_input_ids", "bert_token_type_ids", "bert_sentence_mask", "bert_aspect_mask"))

    def input_fields(self):
        return self.fields

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.bert = load_backbone(cfg.backbone)
        self.fields = self.inputs(cfg, info.task).fields   # read once: it depends on the backbone folder
        hidden = self.bert.config.hidden_size
        on_states = cfg.dropout_site == "states"
        self.dropout = Dropout(cfg.dropout) if on_states else nn.Identity()
        self.head = CapsuleHead(hidden, hidden, cfg.capsule_size, info.num_classes, cfg.routing_scale,
                                cfg.dropout, info.sentiment if cfg.guide_init == "lexicon" else None,
                                cfg.routing, cfg.routing_iterations, capsule_dropout=0.0 if on_states else cfg.dropout)

    def parameter_groups(self, lr):
        """The backbone at train.lr; the randomly initialised capsule head at model.head_lr when set."""
        if self.cfg.head_lr is None:
            return super().parameter_groups(lr)
        backbone = [p for p in self.bert.parameters() if p.requires_grad]
        ids = {id(p) for p in backbone}
        head = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": backbone, "lr": lr}, {"params": head, "lr": self.cfg.head_lr}]

    def masks(self, batch):
        """(primary-capsule positions, aspect positions) as bool (B, T) masks, per model.*_positions:
        the first segment runs up to the aspect's first piece ("[CLS] sentence [SEP]" in BERT's
        template), the second from there to the end ("aspect [SEP]", BERT's token type 1)."""
        ids = batch["bert_input_ids"]
        positions = torch.arange(ids.size(1), device=ids.device)[None, :]
        real = positions < batch["bert_len"][:, None]
        aspect_start = batch["bert_aspect_mask"].int().argmax(dim=1, keepdim=True)
        second = (positions >= aspect_start) & real
        primary = (real & ~second) if self.cfg.primary_positions == "segment" else batch["bert_sentence_mask"].bool()
        aspect = second if self.cfg.aspect_positions == "segment" else batch["bert_aspect_mask"].bool()
        return primary, aspect

    def forward(self, batch):
        states = self.dropout(encode_pairs(self.bert, batch)).float()
        primary_mask, aspect_mask = self.masks(batch)
        aspect = masked_mean(states, aspect_mask)
        return self.head(states, primary_mask, aspect)

    probabilities = staticmethod(lengths_to_probabilities)
    score_kind = "capsule lengths"

    def explanation(self, trace, batch):
        # the primary capsules: the sentence's word pieces (or the whole first segment, per primary_positions)
        return capsule_explanation(trace, "head", "bert_input_ids", show="bert_sentence_mask")
