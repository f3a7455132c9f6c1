"""CapsNet (the MAMS paper, Section 3), Eqs. 1-7 in reading order:

  Eq. 1     word vectors E_i and the aspect vector a           WordEmbedding, AspectVector (src/blocks.py)
  Eq. 2     H = BiGRU over [E_i ; a], plus [E_i ; E_i]         BiGRU (src/blocks.py)
  Eq. 3     primary capsules p_i and the aspect capsule c      CapsuleHead (src/layers.py)
  Eq. 4     aspect-aware normalisation weights u_i             CapsuleHead
  Eqs. 5-6  capsule-guided routing to the sentiment capsules   CapsuleGuidedRouting (src/layers.py);
            v_j, whose lengths are the class scores            DynamicRouting for CapsNet-DR
  Eq. 7     the margin loss on the lengths                     src/losses.py, from `model.loss`

ATSA: the aspect vector is the mean of the term's word vectors; the words read are, by default, the
context (the sentence with the term replaced by an <aspect> marker, the authors' code's input),
which tells the encoder where the term is; `model.atsa_input: sentence` reads the plain sentence.
ACSA: a learned category embedding (the paper; the authors' code looked categories up in the word
table by mistake). The residual adds E_i to each direction's states, [E_i ; E_i]; the authors' code
adds the two copies interleaved (docs/MODELS.md).
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from common.schema import spec
from data_process.fields import InputSpec

from ..blocks import AspectVector, BiGRU, WordEmbedding
from ..layers import CapsuleHead, capsule_explanation, lengths_to_probabilities
from ..losses import LossConfig
from .base import ABSAModel, register


@register("capsnet", "capsnet-dr")
class CapsNet(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # with train.kernels: fast, no lengths go to the host (src/kernels/gru.py)

    @dataclass(frozen=True)
    class Config:
        capsule_size: int = spec(min=1)
        num_layers: int = spec(min=1)            # BiGRU layers
        dropout: float = spec(min=0.0, max=1.0)
        freeze_embeddings: bool
        embed_projection: Optional[int] = spec(min=1)   # null = paper design; else widen the vectors first
        atsa_input: str = spec(choices=("context", "sentence"))
        routing_scale: float = spec(above=0.0)   # initial s of Eq. 6
        routing: str = spec(choices=("guided", "dynamic"))   # Eqs. 5-6, or Sabour et al.'s (the -DR rows)
        routing_iterations: int = spec(min=1)    # dynamic routing only
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        # ATSA reads the context (the term replaced by the <aspect> marker, as the authors' code does)
        # or the plain sentence; ACSA always reads the sentence.
        if task == "atsa":
            return InputSpec(fields=(cfg.atsa_input, "aspect"))
        return InputSpec(fields=("sentence", "category"))

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.words_field = self.input_fields()[0]
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)              # Eq. 1
        self.aspect = AspectVector(self.embedding, info.task, info.num_categories)         # Eq. 1
        # Not the paper's design: widen the word and aspect vectors first (null keeps the paper's).
        word_size = self.embedding.embedding_dim
        self.projection = nn.Linear(word_size, cfg.embed_projection) if cfg.embed_projection else nn.Identity()
        width = cfg.embed_projection or word_size
        self.dropout = nn.Dropout(cfg.dropout)
        self.encoder = BiGRU(2 * width, width, cfg.num_layers)                             # Eq. 2
        self.head = CapsuleHead(2 * width, width, cfg.capsule_size, info.num_classes, cfg.routing_scale,
                                cfg.dropout, info.sentiment, cfg.routing, cfg.routing_iterations)   # Eqs. 3-6

    def encode(self, batch):
        """Eqs. 1-2: (encoder states H (B, T, 2w), mask of the real words (B, T), aspect vector a (B, w))."""
        ids, lengths = batch[self.words_field], batch[self.words_field + "_len"]
        words = self.dropout(self.projection(self.embedding(ids)))        # E_i (B, T, w), Eq. 1
        aspect = self.dropout(self.projection(self.aspect(batch)))        # a (B, w), Eq. 1
        states = self.encoder(words, lengths, aspect)                      # BiGRU over [E_i ; a] (B, T, 2w), Eq. 2
        states = self.dropout(states + torch.cat([words, words], dim=-1))  # the residual [E_i ; E_i], Eq. 2
        return states, ids != 0, aspect

    def forward(self, batch):
        return self.head(*self.encode(batch))           # Eqs. 3-6: (B, C) sentiment capsule lengths

    probabilities = staticmethod(lengths_to_probabilities)
    score_kind = "capsule lengths"

    def explanation(self, trace, batch):
        return capsule_explanation(trace, "head", self.words_field)
