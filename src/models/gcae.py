"""GCAE (Xue and Li 2018, "Aspect Based Sentiment Analysis with Gated Convolutional Networks"):
convolutions with Gated Tanh-ReLU Units (GTRU), the aspect controlling the ReLU gate.

For each filter width k (3, 4, 5; 100 maps each) and window i:
  s_i = tanh(X_{i:i+k} * W_s + b_s)                  sentiment features
  a_i = relu(X_{i:i+k} * W_a + V_a v_a + b_a)        aspect features (the gate)
  c_i = s_i * a_i
  z = [max_i c^(3) ; max_i c^(4) ; max_i c^(5)],  scores = W dropout(z) + b
Aspect vector v_a:
  ACSA: the learned category embedding (src.blocks.AspectVector);
  ATSA: the paper's extension, "a small convolutional layer on aspect terms": a convolution of
        width 3 (zero padding 1, 100 maps, ReLU) over the term's word vectors, max-pooled.
Windows past the sentence never enter the max; a sentence shorter than a filter is zero-padded to
its width.

Hyper-parameters: widths 3, 4, 5 with 100 maps (the paper); dropout 0.2 on z (the authors'
released code; the paper does not state one); the aspect convolution's width 3 with padding 1 and
100 maps as in the authors' code. Word vectors fine-tuned (the authors' code trains them).
Deviations: Adam with the MAMS shared lr and batch 64 instead of the paper's Adagrad; GloVe 6B 50d
instead of 300-d GloVe; PyTorch's default initialisation.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import Dropout

from common.schema import spec
from data_process.fields import InputSpec

from ..blocks import AspectVector, WindowConv, WordEmbedding
from ..losses import LossConfig
from ..masking import masked_max, sequence_mask
from .base import ABSAModel, DataInfo, register


@register("gcae")
class GCAE(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # no host synchronisation or data-dependent shape in a step

    @dataclass(frozen=True)
    class Config:
        filter_widths: tuple[int, ...] = spec()
        num_filters: int = spec(min=1)
        aspect_filter_width: int = spec(min=1)
        dropout: float = spec(min=0.0, max=1.0)
        freeze_embeddings: bool
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence",) + AspectVector.fields(task))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        d, maps = self.embedding.embedding_dim, cfg.num_filters
        if info.task == "atsa":
            self.aspect_conv = WindowConv(d, maps, cfg.aspect_filter_width, padding=(cfg.aspect_filter_width - 1) // 2)
            aspect_size = maps
        else:
            self.aspect = AspectVector(self.embedding, info.task, info.num_categories)
            aspect_size = self.aspect.dim
        self.sentiment_convs = nn.ModuleList(WindowConv(d, maps, k) for k in cfg.filter_widths)
        self.aspect_convs = nn.ModuleList(WindowConv(d, maps, k) for k in cfg.filter_widths)
        self.V_a = nn.Linear(aspect_size, maps)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(maps * len(cfg.filter_widths), info.num_classes)

    def _words(self, ids, lengths):
        return self.embedding(ids) * sequence_mask(lengths, ids.size(1)).unsqueeze(-1)

    def aspect_vector(self, batch):
        if self.task == "acsa":
            return self.aspect(batch)
        maps, windows = self.aspect_conv(self._words(batch["aspect"], batch["aspect_len"]), batch["aspect_len"])
        return masked_max(torch.relu(maps), windows)

    def forward(self, batch):
        lengths = batch["sentence_len"]
        words = self._words(batch["sentence"], lengths)
        gate_bias = self.V_a(self.aspect_vector(batch)).unsqueeze(1)            # V_a v_a, (B, 1, maps)
        features = []
        for sentiment_conv, aspect_conv in zip(self.sentiment_convs, self.aspect_convs):
            s, windows = sentiment_conv(words, lengths)
            a, _ = aspect_conv(words, lengths)
            features.append(masked_max(torch.tanh(s) * torch.relu(a + gate_bias), windows))
        return self.output(self.dropout(torch.cat(features, dim=-1)))
