"""BiLSTM+Attn, the MAMS paper's Table 3 baseline (no paper of its own): a BiLSTM over the
sentence, attention over its states queried by the aspect vector, the attended summary -> linear.

  h_i = [h_i(forward) ; h_i(backward)] = BiLSTM(w_1 .. w_N)_i            (2H)
  e_i = h_i^T W_a v_a                         bilinear score with the aspect vector v_a
  alpha = softmax(e) over the real positions,  r = sum_i alpha_i h_i
  scores = W dropout(r) + b
v_a: src.blocks.AspectVector (ATSA the mean of the term's word vectors, ACSA a learned category
embedding).

Choices the MAMS paper leaves open: the bilinear score (query = aspect vector, keys = states);
H = word-vector size per direction (the MAMS shared setting, 50 here); dropout (0.5) on the word
vectors and on r; PyTorch's default initialisation; Adam (MAMS shared).
"""

import torch.nn as nn
from torch.nn import Dropout

from data_process.fields import InputSpec

from ..blocks import AspectVector, RecurrentConfig, RNNEncoder, WordEmbedding
from ..explain import Weights
from ..masking import attend, sequence_mask
from .base import ABSAModel, DataInfo, register


@register("bilstm-attn")
class BiLSTMAttn(ABSAModel):
    tasks = ("atsa", "acsa")
    cuda_graph_safe = True   # with train.kernels: fast, no lengths go to the host (src/kernels/lstm.py)

    Config = RecurrentConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence",) + AspectVector.fields(task))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        self.aspect = AspectVector(self.embedding, info.task, info.num_categories)
        self.encoder = RNNEncoder(self.embedding.embedding_dim, cfg.hidden_size, bidirectional=True)
        self.W_a = nn.Linear(self.aspect.dim, self.encoder.output_size, bias=False)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(self.encoder.output_size, info.num_classes)

    def forward(self, batch):
        ids, lengths = batch["sentence"], batch["sentence_len"]
        states, _ = self.encoder(self.dropout(self.embedding(ids)), lengths)   # (B, N, 2H)
        query = self.W_a(self.aspect(batch))                                    # W_a v_a (B, 2H)
        scores = (states * query.unsqueeze(1)).sum(-1)
        r, alpha = attend(states, scores, sequence_mask(lengths, ids.size(1)))
        self.keep("alpha", alpha)
        return self.output(self.dropout(r))

    def explanation(self, trace, batch):
        return [Weights.single("alpha: attention over the sentence", "sentence", trace[""]["alpha"], "alpha")]
