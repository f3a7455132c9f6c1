"""TD-LSTM (Tang et al. 2016a, "Effective LSTMs for Target-Dependent Sentiment Classification").
ATSA only (there is no target position in ACSA).

  h_L = LSTM_L(w_1 .. w_r)        left context and the target, in order   (`left` field)
  h_R = LSTM_R(w_n .. w_l)        right context and the target, read backwards (`right`, stored
                                  reversed by the data layer)
  scores = W dropout([h_L ; h_R]) + b       (h_L, h_R: the last real states; two separate LSTMs)

Hidden size = word-vector size (the MAMS shared setting; 50 here).
Deviations: dropout (the paper mentions none; the config's rate, 0.5 as the MAMS setting's other
recurrent baselines) on the word vectors and on [h_L ; h_R]; PyTorch's default initialisation
instead of uniform(-0.003, 0.003); Adam (MAMS shared) instead of SGD; GloVe 6B 50d.
"""

import torch
import torch.nn as nn
from torch.nn import Dropout

from data_process.fields import InputSpec

from ..blocks import RecurrentConfig, RNNEncoder, WordEmbedding
from .base import ABSAModel, DataInfo, register


@register("td-lstm")
class TDLSTM(ABSAModel):
    tasks = ("atsa",)
    cuda_graph_safe = True   # with train.kernels: fast, no lengths go to the host (src/kernels/lstm.py)

    Config = RecurrentConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("left", "right"))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        d = self.embedding.embedding_dim
        self.left_lstm = RNNEncoder(d, cfg.hidden_size)
        self.right_lstm = RNNEncoder(d, cfg.hidden_size)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(2 * cfg.hidden_size, info.num_classes)

    def forward(self, batch):
        _, h_left = self.left_lstm(self.dropout(self.embedding(batch["left"])), batch["left_len"])
        _, h_right = self.right_lstm(self.dropout(self.embedding(batch["right"])), batch["right_len"])
        return self.output(self.dropout(torch.cat([h_left, h_right], dim=-1)))
