"""AEN-GloVe (Song et al. 2019, "Attentional Encoder Network for Targeted Sentiment
Classification"). ATSA only (it models the target's words).

Attention (Eqs. 1-5), with MLP scores, h heads:
  f_s(k_i, q_j) = tanh([k_i ; q_j] . W_att)
  Attention(k, q) = softmax(f_s(k, q)) k            softmax over the (real) keys
  MHA(k, q) = [o^1 ; .. ; o^h] W^mh,   o^h = Attention^h(k, q)
Point-wise convolution transform (Eq. 8), two 1x1 convolutions with a ReLU between:
  PCT(h) = ReLU(h * W^1_pc + b^1_pc) * W^2_pc + b^2_pc
Attentional encoder, target-specific attention, output (Eqs. 6-12):
  c^intra = MHA(e^c, e^c),  t^inter = MHA(e^c, e^t)      e^c: sentence (context) vectors, e^t: the term's
  h^c = PCT(c^intra),  h^t = PCT(t^inter)
  h^tsc = MHA(h^c, h^t)                                    keys h^c, queries h^t
  o = [avg(h^c) ; avg(h^t) ; avg(h^tsc)],  scores = W^o o + b^o
  average pooling over the real positions (n context words; m target words for h^t and h^tsc)
Label-smoothing regularisation (epsilon 0.2) is the loss config's `label_smoothing` (cross-entropy
against (1 - eps) one-hot + eps / C); the L2 term (1e-5) is the trainer's weight_decay.

As in the authors' code (ABSA-PyTorch, whose author is AEN's first author): each head projects
keys and queries with its own linear maps to head_size = hidden_size // num_heads, W_att is one
vector shared by the heads, dropout follows each MHA's output projection and each PCT; word
vectors are frozen (the paper: "word embeddings ... do not get updated"); weight matrices get
Glorot initialisation (the paper). The 1x1 convolutions are written as per-position linear maps
(the same operation).

Deviations: keys are masked to the real words (the authors' code attends to padding too);
h^tsc is averaged over its m target positions (the authors' code divides its sum by the context
length). head_size comes from hidden_size (300 // 8 = 37, what the authors' code gets from their
300-d vectors), not from the 50-d word vectors here (50 // 8 = 6 would be an artefact of the
smaller vectors). GloVe 6B 50d instead of 300-d GloVe.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import Dropout

from common.schema import spec
from data_process.fields import InputSpec

from ..blocks import WordEmbedding
from ..explain import Traceable, Weights
from ..losses import LossConfig
from ..masking import masked_mean, masked_softmax, sequence_mask
from .base import ABSAModel, DataInfo, register


class MLPMultiHeadAttention(Traceable, nn.Module):
    """MHA(k, q) with the score f_s(k_i, q_j) = tanh([k_i ; q_j] . W_att) per head (Eqs. 1-5).
    keys (B, n, in), queries (B, m, in), key_mask (B, n) -> (B, m, out)."""

    def __init__(self, in_size, out_size, heads, head_size, dropout):
        super().__init__()
        self.heads, self.head_size = heads, head_size
        self.key = nn.Linear(in_size, heads * head_size)
        self.query = nn.Linear(in_size, heads * head_size)
        self.w_att = nn.Parameter(torch.empty(2 * head_size))
        self.output = nn.Linear(heads * head_size, out_size)   # W^mh
        self.dropout = Dropout(dropout)

    def _split(self, x):
        return x.view(x.size(0), x.size(1), self.heads, self.head_size).transpose(1, 2)   # (B, h, len, s)

    def forward(self, keys, queries, key_mask):
        k, q = self._split(self.key(keys)), self._split(self.query(queries))
        # [k_i ; q_j] . W_att = k_i . W_att[:s] + q_j . W_att[s:]
        scores = torch.tanh((k @ self.w_att[:self.head_size]).unsqueeze(2)
                            + (q @ self.w_att[self.head_size:]).unsqueeze(3))             # (B, h, m, n)
        weights = masked_softmax(scores, key_mask[:, None, None, :], dim=-1)
        self.keep("weights", weights)                                                      # (B, h, m, n)
        heads = (weights @ k).transpose(1, 2).reshape(queries.size(0), queries.size(1), -1)
        return self.dropout(self.output(heads))


class PointwiseConvTransform(nn.Module):
    """PCT(h) = ReLU(h W1 + b1) W2 + b2, kernel-size-1 convolutions (Eq. 8), then dropout."""

    def __init__(self, size, dropout):
        super().__init__()
        self.conv1, self.conv2 = nn.Linear(size, size), nn.Linear(size, size)
        self.dropout = Dropout(dropout)

    def forward(self, h):
        return self.dropout(self.conv2(torch.relu(self.conv1(h))))


@register("aen")
class AEN(ABSAModel):
    tasks = ("atsa",)
    cuda_graph_safe = True   # no host synchronisation or data-dependent shape in a step

    @dataclass(frozen=True)
    class Config:
        hidden_size: int = spec(min=1)
        num_heads: int = spec(min=1)
        dropout: float = spec(min=0.0, max=1.0)
        freeze_embeddings: bool
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence", "aspect"))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        d, hid, heads = self.embedding.embedding_dim, cfg.hidden_size, cfg.num_heads
        head_size = max(hid // heads, 1)
        self.intra = MLPMultiHeadAttention(d, hid, heads, head_size, cfg.dropout)
        self.inter = MLPMultiHeadAttention(d, hid, heads, head_size, cfg.dropout)
        self.pct_context = PointwiseConvTransform(hid, cfg.dropout)
        self.pct_target = PointwiseConvTransform(hid, cfg.dropout)
        self.target_specific = MLPMultiHeadAttention(hid, hid, heads, head_size, cfg.dropout)
        self.output = nn.Linear(3 * hid, info.num_classes)
        self._glorot()

    def _glorot(self):
        """Glorot (Xavier uniform) initialisation of the weight matrices (not the word vectors);
        W_att uniform(-1/sqrt(head_size), +) as in the authors' code."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
            elif isinstance(module, MLPMultiHeadAttention):
                bound = module.head_size ** -0.5
                nn.init.uniform_(module.w_att, -bound, bound)

    def forward(self, batch):
        context, target = batch["sentence"], batch["aspect"]
        mask_c = sequence_mask(batch["sentence_len"], context.size(1))
        mask_t = sequence_mask(batch["aspect_len"], target.size(1))
        e_c, e_t = self.embedding(context), self.embedding(target)
        h_c = self.pct_context(self.intra(e_c, e_c, mask_c))             # (B, n, hid)
        h_t = self.pct_target(self.inter(e_c, e_t, mask_c))              # (B, m, hid)
        h_tsc = self.target_specific(h_c, h_t, mask_c)                   # (B, m, hid)
        pooled = torch.cat([masked_mean(h_c, mask_c), masked_mean(h_t, mask_t), masked_mean(h_tsc, mask_t)], -1)
        return self.output(pooled)

    def explanation(self, trace, batch):
        """Each MHA's weights over the context words, averaged over its heads and its real queries."""
        mask_c = sequence_mask(batch["sentence_len"], batch["sentence"].size(1))
        mask_t = sequence_mask(batch["aspect_len"], batch["aspect"].size(1))
        rows = {"intra (context on context)": ("intra", mask_c), "inter (target on context)": ("inter", mask_t),
                "target-specific": ("target_specific", mask_t)}
        values = torch.stack([masked_mean(trace[name]["weights"].mean(1), queries)
                              for name, queries in rows.values()], dim=-1)
        return [Weights("attention over the context words (mean over heads and queries)", "sentence", values,
                        tuple(rows))]
