"""CapsNet (paper Section 3): word vectors + aspect -> BiGRU encoder -> capsule head -> class capsules.

ATSA: the aspect vector is the mean of the term's word vectors (Eq. 1); the words read are, by
default, the context (the sentence with the term replaced by an <aspect> marker, the authors' code's
input), which tells the encoder where the term is; `model.atsa_input: sentence` reads the plain
sentence. ACSA: a learned category embedding (the paper; the authors' code looked categories up in
the word table by mistake).
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from common.schema import spec
from data_process.fields import InputSpec

from .. import kernels
from ..blocks import run_packed
from ..layers import CapsuleHead, capsule_explanation, lengths_to_probabilities, masked_mean
from ..losses import LossConfig
from .base import ABSAModel, register


@register("capsnet", "capsnet-dr")
class CapsNet(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # its fast BiGRU on CUDA needs no lengths on the host (src/kernels/gru.py)

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
        vectors = torch.as_tensor(info.embeddings, dtype=torch.float32)
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=cfg.freeze_embeddings, padding_idx=0)
        word_size = vectors.size(1)
        if self.task == "acsa":
            self.category_embedding = nn.Embedding(info.num_categories, word_size)  # Eq. 1, ACSA
            nn.init.uniform_(self.category_embedding.weight, -0.25, 0.25)
        # Not the paper's design: widen word vectors before the encoder (null keeps the paper's).
        self.projection = nn.Linear(word_size, cfg.embed_projection) if cfg.embed_projection else None
        width = cfg.embed_projection or word_size
        self.dropout = nn.Dropout(cfg.dropout)
        # Eq. 2: BiGRU over [E_i ; a], hidden size = word width, plus the word-vector residual.
        self.encoder = nn.GRU(2 * width, width, num_layers=cfg.num_layers, bidirectional=True, batch_first=True)
        self.head = CapsuleHead(2 * width, width, cfg.capsule_size, info.num_classes, cfg.routing_scale,
                                cfg.dropout, info.sentiment, cfg.routing, cfg.routing_iterations)

    def _words(self, ids):
        vectors = self.embedding(ids)
        return self.projection(vectors) if self.projection is not None else vectors

    def aspect_vector(self, batch):
        if self.task == "acsa":
            vectors = self.category_embedding(batch["category"])
            return self.projection(vectors) if self.projection is not None else vectors
        ids = batch["aspect"]
        return masked_mean(self._words(ids), ids != 0)  # mean of the term's words

    def encode(self, batch):
        """Eqs. 1-2: (encoder states (B, T, 2w), mask (B, T), aspect vector (B, w)) for the head."""
        ids, lengths = batch[self.words_field], batch[self.words_field + "_len"]
        words = self.dropout(self._words(ids))                    # (B, T, w)
        aspect = self.dropout(self.aspect_vector(batch))          # (B, w)
        states = self.bigru(words, lengths, aspect)
        states = self.dropout(states + words.repeat(1, 1, 2))     # residual to both directions
        return states, ids != 0, aspect

    def bigru(self, words, lengths, aspect):
        """Eq. 2: the BiGRU's states (B, T, 2w) over [E_i ; a], zeros past each row's length."""
        lengths = lengths.clamp(min=1)
        if kernels.enabled("gru"):
            return kernels.bidirectional_gru(self.encoder, words, lengths, constant=aspect)
        inputs = torch.cat([words, aspect.unsqueeze(1).expand(-1, words.size(1), -1)], dim=-1)
        return run_packed(self.encoder, inputs, lengths)[0]

    def forward(self, batch):
        return self.head(*self.encode(batch))

    probabilities = staticmethod(lengths_to_probabilities)
    score_kind = "capsule lengths"

    def explanation(self, trace, batch):
        return capsule_explanation(trace, "head", self.words_field)
