"""Building blocks shared by the word-vector models (src/models/*.py).

  WordEmbedding   word vectors for id tensors (pre-trained, padding id 0)
  AspectVector    the aspect vector of a batch: ATSA = mean of the term's word vectors,
                  ACSA = a learned category embedding (the MAMS paper's Eq. 1 for both tasks)
  RNNEncoder      LSTM / BiLSTM over the packed batch, so that padding never changes a result
  BiGRU           a bidirectional GRU over the packed batch, optionally reading a constant beside
                  every step's input (CapsNet's encoder, Eq. 2)
  run_packed      a batch-first nn.GRU / nn.LSTM over the packed batch (RNNEncoder, BiGRU)
  RecurrentConfig the hyper-parameters of the plain recurrent baselines (hidden size, dropout, ...)
  WindowConv      a 1-D convolution over word vectors that reports which windows are real

Masks and pooling over real positions are in src/masking.py.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from common.schema import spec

from .losses import LossConfig
from .masking import masked_mean, sequence_mask


@dataclass(frozen=True)
class RecurrentConfig:
    """The `model:` section of lstm, td-lstm, ian, aoa-lstm and bilstm-attn (values in their YAML)."""
    hidden_size: int = spec(min=1)
    dropout: float = spec(min=0.0, max=1.0)
    freeze_embeddings: bool
    loss: LossConfig


class WordEmbedding(nn.Embedding):
    """Pre-trained word vectors (info.embeddings, row 0 = PAD = zeros), padding_idx 0 (its row gets
    no gradient, so it stays zero), fine-tuned unless `freeze`."""

    def __init__(self, vectors, freeze):
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        super().__init__(vectors.size(0), vectors.size(1), padding_idx=0, _weight=vectors.clone(), _freeze=freeze)


class AspectVector(nn.Module):
    """The aspect vector a (B, d) of a batch (MAMS paper, Eq. 1).

    ATSA: the mean of the term's word vectors (`aspect` field; the mean is over its non-zero ids),
    looked up in the model's own word embedding, which is shared, not copied.
    ACSA: a learned embedding of the category (`category` field), nn.Embedding(num_categories, d)
    initialised uniform(-0.25, 0.25).
    """

    def __init__(self, embedding, task, num_categories):
        super().__init__()
        if task not in ("atsa", "acsa"):
            raise ValueError(f"task must be 'atsa' or 'acsa', not {task!r}")
        self.task = task
        self.dim = embedding.embedding_dim
        self.embedding = embedding
        if task == "acsa":
            self.category = nn.Embedding(num_categories, self.dim)
            nn.init.uniform_(self.category.weight, -0.25, 0.25)

    @staticmethod
    def fields(task):
        """The batch field the aspect vector is read from, for a model's InputSpec."""
        return ("aspect",) if task == "atsa" else ("category",)

    def forward(self, batch):
        if self.task == "acsa":
            return self.category(batch["category"])
        ids = batch["aspect"]
        return masked_mean(self.embedding(ids), ids != 0)


def run_packed(rnn, inputs, lengths):
    """(states (B, T, D H), final hidden states (layers * D, B, H)) of `rnn` (a batch-first nn.GRU or
    nn.LSTM with D directions, or its forward) over inputs (B, T, I) packed to each row's
    lengths[b] >= 1 positions: states are zero past a row's length, and nothing there is read. The
    lengths go to the host."""
    packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    outputs, final = rnn(packed)
    states = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.size(1))[0]
    return states, final[0] if isinstance(final, tuple) else final


class RNNEncoder(nn.Module):
    """A (Bi)LSTM over a padded batch (B, T, d) with real lengths (B,), clamped to at least 1: the
    packed nn.LSTM, so padding and the other rows of the batch never change a row's states. Returns
      states (B, T, H): every position's state, zeros on padding;
      last (B, H): the last real state; for a BiLSTM [forward state at the last real word ;
      backward state at the first word], i.e. both directions' final states.
    H = hidden_size, doubled when bidirectional (`output_size`).
    """

    def __init__(self, input_size, hidden_size, bidirectional=False):
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)

    def forward(self, inputs, lengths):
        states, final = run_packed(self.lstm, inputs, lengths.clamp(min=1))
        return states, final.transpose(0, 1).reshape(inputs.size(0), -1)   # [forward ; backward] final states


class BiGRU(nn.GRU):
    """A bidirectional, batch-first nn.GRU (its parameters and state_dict keys) over a padded batch
    (B, T, I) with real lengths (B,), clamped to at least 1: packed, so padding and the other rows of
    the batch never change a row's states. Returns both directions' states (B, T, 2H), zeros past
    each row's length. `constant` (B, C), if given, is appended to every step's input (CapsNet's
    Eq. 2 reads [E_i ; a]); `input_size` counts it."""

    def __init__(self, input_size, hidden_size, num_layers=1):
        super().__init__(input_size, hidden_size, num_layers=num_layers, bidirectional=True, batch_first=True)

    def forward(self, inputs, lengths, constant=None):
        if constant is not None:
            inputs = torch.cat([inputs, constant.unsqueeze(1).expand(-1, inputs.size(1), -1)], dim=-1)
        return run_packed(super().forward, inputs, lengths.clamp(min=1))[0]


class WindowConv(nn.Module):
    """Conv1d of one width over word vectors (B, T, d) -> (B, T', C), with the mask of the windows
    that belong to the sentence.

    With zero padding p on both sides, a sentence of n words has max(n + 2p - width + 1, 1) windows:
    a sentence shorter than the filter is read as if padded with zero vectors up to its width (as
    Kim 2014's code pads), so it still yields one window. The input must have zero vectors on its
    padded positions; windows past the sentence are masked out, so extra pad columns change nothing.
    """

    def __init__(self, in_size, maps, width, padding=0):
        super().__init__()
        self.width, self.padding = width, padding
        self.conv = nn.Conv1d(in_size, maps, width, padding=padding)

    def forward(self, vectors, lengths):
        short = self.width - 2 * self.padding - vectors.size(1)
        if short > 0:  # a batch narrower than the filter: pad with zero vectors
            vectors = F.pad(vectors, (0, 0, 0, short))
        out = self.conv(vectors.transpose(1, 2)).transpose(1, 2)            # (B, T', C)
        windows = (lengths + 2 * self.padding - self.width + 1).clamp(min=1)
        return out, sequence_mask(windows, out.size(1))
