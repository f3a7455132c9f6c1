"""AT-LSTM (Wang et al. 2016, "Attention-based LSTM for Aspect-level Sentiment Classification").

  H = [h_1 .. h_N] = LSTM(w_1 .. w_N)                       (d x N)
  M = tanh([W_h H ; W_v v_a (x) e_N])                       ((d + d_a) x N)
  alpha = softmax(w^T M)                                    over the real positions
  r = H alpha^T
  h* = tanh(W_p r + W_x h_N)                                h_N: the last real state
  scores = W_s dropout(h*) + b_s
v_a is the aspect vector (src.blocks.AspectVector): ATSA the mean of the term's word vectors,
ACSA a learned category embedding; d_a = word-vector size. W_h, W_v, w, W_p, W_x have no bias,
as in the paper's equations.

`aspect_attention` chooses how M is formed:
  paper: exactly the equation above. Then w^T M_i = w_h^T tanh(W_h h_i) + w_v^T tanh(W_v v_a): the
         aspect adds the same constant to every position's score, softmax drops it, and alpha
         (hence the whole model) ignores the aspect. Kept for the record, not as the default.
  joint: M = tanh(W_M [H ; v_a (x) e_N]) with a full (d + d_a) x (d + d_a) matrix W_M; the paper's
         block-diagonal [W_h, 0; 0, W_v] is its special case. The aspect now shapes alpha. The
         MAMS paper's AT-LSTM must have been aspect-aware (77.6 vs the aspect-blind LSTM's 52.5 on
         MAMS-ATSA, Table 3), so `joint` is the default in configs/models/at-lstm.yaml.

Hidden size = word-vector size (Wang et al.: word vectors, aspect embeddings and hidden states
all 300; 50 here). Deviations: dropout (0.5, Wang et al.'s rate; where it applies is unstated) on
the LSTM inputs and on h*; Adam with batch 64 (MAMS shared) instead of AdaGrad 0.01; no
L2 term (0.001 in the paper: under Adam a coupled L2 term moves every parameter, including the
rows of words never seen in training, by about lr per step toward zero, erasing their GloVe
vectors within a few thousand steps); PyTorch's default initialisation instead of the paper's
small uniform one.

ATAE-LSTM (atae_lstm.py) is this model with the aspect vector also appended to every input word:
it overrides `encoder_input_size` and `encoder_inputs` only.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import Dropout

from common.schema import spec
from data_process.fields import InputSpec

from ..blocks import AspectVector, RNNEncoder, WordEmbedding
from ..explain import Weights
from ..losses import LossConfig
from ..masking import attend, sequence_mask
from .base import ABSAModel, DataInfo, register


@register("at-lstm")
class ATLSTM(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # with train.kernels: fast, no lengths go to the host (src/kernels/lstm.py)

    @dataclass(frozen=True)
    class Config:
        hidden_size: int = spec(min=1)
        dropout: float = spec(min=0.0, max=1.0)
        aspect_attention: str = spec(choices=("joint", "paper"))
        freeze_embeddings: bool
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence",) + AspectVector.fields(task))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        self.aspect = AspectVector(self.embedding, info.task, info.num_categories)
        d, d_a = cfg.hidden_size, self.aspect.dim
        self.encoder = RNNEncoder(self.encoder_input_size(self.embedding.embedding_dim, d_a), d)
        if cfg.aspect_attention == "joint":
            self.W_m = nn.Linear(d + d_a, d + d_a, bias=False)
        else:
            self.W_h = nn.Linear(d, d, bias=False)
            self.W_v = nn.Linear(d_a, d_a, bias=False)
        self.w = nn.Linear(d + d_a, 1, bias=False)
        self.W_p = nn.Linear(d, d, bias=False)
        self.W_x = nn.Linear(d, d, bias=False)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(d, info.num_classes)

    def encoder_input_size(self, word_size, aspect_size):
        return word_size

    def encoder_inputs(self, words, aspect):
        """What the LSTM reads at each position (AT-LSTM: the word vector)."""
        return words

    def forward(self, batch):
        ids, lengths = batch["sentence"], batch["sentence_len"]
        aspect = self.aspect(batch)                                          # (B, d_a)
        inputs = self.dropout(self.encoder_inputs(self.embedding(ids), aspect))
        states, last = self.encoder(inputs, lengths)                         # H (B, N, d), h_N (B, d)
        tiled = aspect.unsqueeze(1).expand(-1, ids.size(1), -1)              # v_a (x) e_N
        if self.cfg.aspect_attention == "joint":
            m = torch.tanh(self.W_m(torch.cat([states, tiled], dim=-1)))
        else:
            m = torch.cat([torch.tanh(self.W_h(states)), torch.tanh(self.W_v(tiled))], dim=-1)
        r, alpha = attend(states, self.w(m).squeeze(-1), sequence_mask(lengths, ids.size(1)))
        self.keep("alpha", alpha)
        h_star = torch.tanh(self.W_p(r) + self.W_x(last))
        return self.output(self.dropout(h_star))

    def explanation(self, trace, batch):
        return [Weights.single("alpha: attention over the sentence", "sentence", trace[""]["alpha"], "alpha")]
