"""AOA-LSTM (Huang, Ou and Carley 2018, "Aspect Level Sentiment Classification with
Attention-over-Attention Neural Networks"). ATSA only (it models the target's words).

  h_s = BiLSTM_s(sentence) (n x 2H),  h_t = BiLSTM_t(target) (m x 2H)    separate parameters
  I = h_s h_t^T                                      (n x m) pair-wise interactions
  alpha_ij = exp(I_ij) / sum_i exp(I_ij)             target-to-sentence: softmax over sentence words
  beta_ij  = exp(I_ij) / sum_j exp(I_ij)             sentence-to-target: softmax over target words
  beta_bar_j = (1/n) sum_i beta_ij                   target-level attention
  gamma = alpha beta_bar^T                           (n) sentence-level attention
  r = h_s^T gamma,   scores = W_l dropout(r) + b_l
Every softmax and mean runs over real positions only (n, m: the real lengths).

Deviations: H = word-vector size per direction (the MAMS shared rule, 50 here), not the paper's
own setting for 300-d vectors; dropout (0.5, the MAMS setting's rate) on the word vectors and on
r; Adam with the MAMS shared lr and batch 64; no L2 term (see at_lstm.py on coupled L2 under
Adam); PyTorch's default initialisation.
"""

import torch
import torch.nn as nn
from torch.nn import Dropout

from data_process.fields import InputSpec

from ..blocks import RecurrentConfig, RNNEncoder, WordEmbedding
from ..explain import Weights
from ..masking import masked_mean, masked_softmax, sequence_mask
from .base import ABSAModel, DataInfo, register


@register("aoa-lstm")
class AOALSTM(ABSAModel):
    tasks = ("atsa",)
    cuda_graph_safe = True   # with train.kernels: fast, no lengths go to the host (src/kernels/lstm.py)

    Config = RecurrentConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence", "aspect"))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        d = self.embedding.embedding_dim
        self.sentence_lstm = RNNEncoder(d, cfg.hidden_size, bidirectional=True)
        self.target_lstm = RNNEncoder(d, cfg.hidden_size, bidirectional=True)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(self.sentence_lstm.output_size, info.num_classes)

    def forward(self, batch):
        sentence, target = batch["sentence"], batch["aspect"]
        h_s, _ = self.sentence_lstm(self.dropout(self.embedding(sentence)), batch["sentence_len"])
        h_t, _ = self.target_lstm(self.dropout(self.embedding(target)), batch["aspect_len"])
        mask_s = sequence_mask(batch["sentence_len"], sentence.size(1))          # (B, n)
        mask_t = sequence_mask(batch["aspect_len"], target.size(1))              # (B, m)
        interactions = torch.bmm(h_s, h_t.transpose(1, 2))                       # I (B, n, m)
        alpha = masked_softmax(interactions, mask_s.unsqueeze(2), dim=1)         # over sentence words
        beta = masked_softmax(interactions, mask_t.unsqueeze(1), dim=2)          # over target words
        beta_bar = masked_mean(beta, mask_s)                                     # (B, m), zero on pad
        gamma = torch.bmm(alpha, beta_bar.unsqueeze(2))                          # (B, n, 1)
        self.keep("gamma", gamma.squeeze(2))
        self.keep("beta_bar", beta_bar)
        r = torch.bmm(h_s.transpose(1, 2), gamma).squeeze(2)                     # (B, 2H)
        return self.output(self.dropout(r))

    def explanation(self, trace, batch):
        kept = trace[""]
        return [Weights.single("gamma: sentence-level attention", "sentence", kept["gamma"], "gamma"),
                Weights.single("beta_bar: target-level attention", "aspect", kept["beta_bar"], "beta_bar")]
