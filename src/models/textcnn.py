"""TextCNN (Kim 2014, "Convolutional Neural Networks for Sentence Classification"), the MAMS
paper's aspect-blind CNN baseline: it reads the sentence only, for both tasks.

  c_i^(k) = ReLU(w^(k) . x_{i:i+k-1} + b^(k))        filter widths k = 3, 4, 5, 100 maps each
  c^(k)   = max_i c_i^(k)                            max-over-time pooling
  z       = [c^(3) ; c^(4) ; c^(5)]                  (300 features)
  scores  = W dropout(z) + b                         dropout 0.5 on the penultimate layer

Kim's l2 constraint (s = 3, "rescale w to ||w||_2 = s whenever ||w||_2 > s after a gradient step",
per class row of the output layer) is applied as a re-parameterisation: the output layer always
uses renorm(W, max_norm) per class row, so its effective weights never exceed the bound
(`max_norm: null` turns it off). A sentence shorter than a filter is zero-padded to its width,
as Kim's code pads; windows past the sentence never enter the max.

Deviations: embeddings are GloVe 6B 50d (the MAMS setting here) instead of word2vec 300d, and
fine-tuned (Kim's CNN-non-static); Adam with batch 64 (MAMS shared) instead of Adadelta, batch 50.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import Dropout

from common.schema import spec
from data_process.fields import InputSpec

from ..blocks import WindowConv, WordEmbedding
from ..losses import LossConfig
from ..masking import masked_max, sequence_mask
from .base import ABSAModel, DataInfo, register


@register("textcnn")
class TextCNN(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # no host synchronisation or data-dependent shape in a step

    @dataclass(frozen=True)
    class Config:
        filter_widths: tuple[int, ...] = spec()
        num_filters: int = spec(min=1)
        dropout: float = spec(min=0.0, max=1.0)
        max_norm: Optional[float] = spec(above=0.0)
        freeze_embeddings: bool
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence",))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        d = self.embedding.embedding_dim
        self.convs = nn.ModuleList(WindowConv(d, cfg.num_filters, width) for width in cfg.filter_widths)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.num_filters * len(cfg.filter_widths), info.num_classes)

    def forward(self, batch):
        ids, lengths = batch["sentence"], batch["sentence_len"]
        words = self.embedding(ids) * sequence_mask(lengths, ids.size(1)).unsqueeze(-1)
        features = []
        for conv in self.convs:
            maps, windows = conv(words, lengths)
            features.append(masked_max(F.relu(maps), windows))
        weight = self.output.weight
        if self.cfg.max_norm is not None:
            weight = torch.renorm(weight, p=2, dim=0, maxnorm=self.cfg.max_norm)
        return F.linear(self.dropout(torch.cat(features, dim=-1)), weight, self.output.bias)
