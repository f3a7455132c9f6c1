"""MemNet (Tang et al. 2016b, "Aspect Level Sentiment Classification with Deep Memory Network").

ATSA. The memory is the context's word vectors with the term's own words left out
(`sentence_aspect_mask` marks them), weighted by location (the paper's model 2):
  m_i = e_i * v_i,   v_i = 1 - l_i / n
l_i the word's token distance to the term (`sentence_distance`), n the sentence length. Each hop
(computational layer) k, starting from v^0 = the aspect vector (mean of the term's word vectors):
  g_i = tanh(W_att [m_i ; v^(k-1)] + b_att)            content attention, one score per word
  alpha = softmax(g) over the memory,   v^k = sum_i alpha_i m_i + W_lin v^(k-1)
W_att, b_att, W_lin are shared by all hops; scores = W_out v^K + b_out.
ACSA. There is no term position: no location weighting, and the memory is the whole sentence;
v^0 is the learned category embedding. The hops are the same.

Hops: 3 (`hops` in configs/models/memnet.yaml). Tang et al. report accuracy rising with the number
of hops up to about 7-9 on SemEval-14; the MAMS paper does not say how many it used, and 3 is the
common setting of public re-implementations (e.g. ABSA-PyTorch) and keeps the model as cheap as
the other baselines. Word vectors fine-tuned (MAMS shared setting); no dropout (the paper uses
none). Deviations: Adam with the MAMS shared lr and batch 64 instead of SGD; PyTorch's default
initialisation; GloVe 6B 50d.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn

from common.schema import spec
from data_process.fields import InputSpec

from ..blocks import AspectVector, WordEmbedding
from ..explain import Weights
from ..losses import LossConfig
from ..masking import attend, sequence_mask
from .base import ABSAModel, DataInfo, register


@register("memnet")
class MemNet(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # no host synchronisation or data-dependent shape in a step

    @dataclass(frozen=True)
    class Config:
        hops: int = spec(min=1)
        freeze_embeddings: bool
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        if task == "atsa":
            return InputSpec(fields=("sentence", "aspect", "sentence_aspect_mask", "sentence_distance"))
        return InputSpec(fields=("sentence", "category"))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        self.aspect = AspectVector(self.embedding, info.task, info.num_categories)
        d = self.embedding.embedding_dim
        self.W_att = nn.Linear(2 * d, 1)      # W_att [m_i ; v] + b_att
        self.W_lin = nn.Linear(d, d)          # the hop's linear transform of v
        self.output = nn.Linear(d, info.num_classes)

    @staticmethod
    def location_weights(distance, lengths):
        """v_i = 1 - l_i / n (model 2): distance (B, T) to the term, lengths n (B,) -> (B, T)."""
        return 1.0 - distance.to(torch.float32) / lengths.to(torch.float32).clamp(min=1).unsqueeze(1)

    def memory(self, batch):
        """The memory (B, T, d) and the mask (B, T) of its real slots."""
        ids, lengths = batch["sentence"], batch["sentence_len"]
        vectors, mask = self.embedding(ids), sequence_mask(lengths, ids.size(1))
        if self.task == "atsa":
            mask = mask & (batch["sentence_aspect_mask"] == 0)
            vectors = vectors * self.location_weights(batch["sentence_distance"], lengths).unsqueeze(-1)
        return vectors, mask

    def forward(self, batch):
        memory, mask = self.memory(batch)
        v = self.aspect(batch)
        for hop in range(self.cfg.hops):
            scores = torch.tanh(self.W_att(torch.cat([memory, v.unsqueeze(1).expand_as(memory)], dim=-1)))
            attended, alpha = attend(memory, scores.squeeze(-1), mask)
            self.keep(f"hop {hop + 1}", alpha)
            v = attended + self.W_lin(v)
        return self.output(v)

    def explanation(self, trace, batch):
        hops = [f"hop {k + 1}" for k in range(self.cfg.hops)]
        values = torch.stack([trace[""][h] for h in hops], dim=-1)
        return [Weights("alpha: attention over the memory, per hop", "sentence", values, tuple(hops))]
