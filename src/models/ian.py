"""IAN (Ma et al. 2017, "Interactive Attention Networks for Aspect-Level Sentiment
Classification"). ATSA only (it models the target's words).

  h^c = LSTM_c(context words),  h^t = LSTM_t(target words)     two LSTMs, separate parameters
  c_avg = mean_i h^c_i,  t_avg = mean_i h^t_i                   over the real positions
  alpha_i = softmax_i(tanh(h^c_i W_a t_avg^T + b_a)),   c_r = sum_i alpha_i h^c_i
  beta_i  = softmax_i(tanh(h^t_i W_b c_avg^T + b_b)),   t_r = sum_i beta_i h^t_i
  d = [t_r ; c_r],   scores = tanh(W_l dropout(d) + b_l)   -> softmax
The context is the whole sentence (`sentence`), the target its term (`aspect`).

The output layer is IAN's Eq. x = tanh(W_l d + b_l): the class scores lie in (-1, 1), so the
softmax can give at most e / (e + 2/e) ~ 0.79 to one class; the argmax (and accuracy) is
unaffected, the cross-entropy cannot fall below ~0.24.
Hidden size = word-vector size (Ma et al.: embeddings and hidden states both 300; 50 here).
Deviations: dropout (0.5, the rate of the MAMS setting's recurrent baselines) on the word vectors
and on d; Adam (MAMS shared) instead of the paper's SGD; no L2 term (see at_lstm.py on coupled L2
under Adam); PyTorch's default initialisation instead of the paper's uniform one.
"""

import torch
import torch.nn as nn
from torch.nn import Dropout

from data_process.fields import InputSpec

from ..blocks import RecurrentConfig, RNNEncoder, WordEmbedding
from ..explain import Weights
from ..masking import attend, masked_mean, sequence_mask
from .base import ABSAModel, DataInfo, register


@register("ian")
class IAN(ABSAModel):
    tasks = ("atsa",)
    cuda_graph_safe = True   # with train.kernels: fast, no lengths go to the host (src/kernels/lstm.py)

    Config = RecurrentConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence", "aspect"))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, cfg.freeze_embeddings)
        d, h = self.embedding.embedding_dim, cfg.hidden_size
        self.context_lstm = RNNEncoder(d, h)
        self.target_lstm = RNNEncoder(d, h)
        self.W_a = nn.Bilinear(h, h, 1)     # h^c_i W_a t_avg^T + b_a
        self.W_b = nn.Bilinear(h, h, 1)     # h^t_i W_b c_avg^T + b_b
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(2 * h, info.num_classes)

    @staticmethod
    def _attend(states, mask, summary, bilinear):
        scores = torch.tanh(bilinear(states, summary.unsqueeze(1).expand_as(states).contiguous())).squeeze(-1)
        return attend(states, scores, mask)

    def forward(self, batch):
        context, target = batch["sentence"], batch["aspect"]
        h_c, _ = self.context_lstm(self.dropout(self.embedding(context)), batch["sentence_len"])
        h_t, _ = self.target_lstm(self.dropout(self.embedding(target)), batch["aspect_len"])
        mask_c = sequence_mask(batch["sentence_len"], context.size(1))
        mask_t = sequence_mask(batch["aspect_len"], target.size(1))
        c_avg, t_avg = masked_mean(h_c, mask_c), masked_mean(h_t, mask_t)
        c_r, alpha = self._attend(h_c, mask_c, t_avg, self.W_a)
        t_r, beta = self._attend(h_t, mask_t, c_avg, self.W_b)
        self.keep("alpha", alpha)
        self.keep("beta", beta)
        return torch.tanh(self.output(self.dropout(torch.cat([t_r, c_r], dim=-1))))

    def explanation(self, trace, batch):
        kept = trace[""]
        return [Weights.single("alpha: context attention (queried by the target)", "sentence", kept["alpha"], "alpha"),
                Weights.single("beta: target attention (queried by the context)", "aspect", kept["beta"], "beta")]
