"""LSTM baseline of the MAMS paper's Table 3 (as in Tang et al. 2016a and Wang et al. 2016): one
LSTM over the sentence, its last real hidden state -> linear -> softmax. Aspect-blind: it reads
the sentence only, for both tasks.

  h_1..h_N = LSTM(w_1..w_N);   scores = W dropout(h_N) + b

Choices the baseline papers leave open: hidden size = word-vector size (the MAMS shared setting,
here 50); dropout (rate from the config, 0.5 as Wang et al.) on the word vectors and on h_N;
PyTorch's default initialisation; Adam (MAMS shared).
"""

import torch.nn as nn
from torch.nn import Dropout

from data_process.fields import InputSpec

from ..blocks import RecurrentConfig, RNNEncoder, WordEmbedding
from .base import ABSAModel, DataInfo, register


@register("lstm")
class LSTM(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # with train.kernels: fast, no lengths go to the host (src/kernels/lstm.py)

    Config = RecurrentConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence",))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        self.encoder = RNNEncoder(self.embedding.embedding_dim, cfg.hidden_size)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(self.encoder.output_size, info.num_classes)

    def forward(self, batch):
        words = self.dropout(self.embedding(batch["sentence"]))
        _, last = self.encoder(words, batch["sentence_len"])
        return self.output(self.dropout(last))
