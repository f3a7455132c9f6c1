"""FastRNNEncoder: RNNEncoder (src/blocks.py; the baselines' (Bi)LSTM) over the padded batch, without
packing. It is an RNNEncoder whose forward is `reset_state_lstm`: the same parameters and
state_dict keys.

Packing needs the lengths on the host, so a packed LSTM makes every GPU training step wait for the
device and cannot be recorded in a CUDA graph (train/cuda_graphs.py); on a CPU, torch runs a packed
LSTM step by step itself, while an unpacked one is a single oneDNN call, about twice as fast at the
baselines' 50 hidden units. `reset_state_lstm` runs the LSTM over the padded batch, as one oneDNN
(CPU) or cuDNN (CUDA) call, with one more input feature: 1 on padded steps, 0 on real ones,
weighted -RESET on the input and forget gates and 0 on the others. On a padded step both gates are
sigmoid(-RESET) = 0 exactly, so c = f c' + i g = 0 and h = o tanh(0) = 0: the state is zero there,
whatever came before. So
- the backward direction, which reads a row's padding first, starts the row's real words from the
  zero state, as the packed LSTM does;
- the forward direction reads the real words first, so padding cannot reach them;
- no gradient crosses a padded step (the gates' derivatives are 0, and so are f and i).
The cell, as nn.LSTM's: i, f, o = sigmoid(W_i* x + b_i* + W_h* h + b_h*), g = tanh(...),
c' = f c + i g, h' = o tanh(c').
"""
import torch
from torch import _VF

from ..blocks import RNNEncoder
from .gru import kernel_over_padding

RESET = 1e4   # subtracted from a padded step's input- and forget-gate pre-activations: sigmoid is 0


class FastRNNEncoder(RNNEncoder):
    """RNNEncoder's forward through reset_state_lstm: one oneDNN (CPU) or cuDNN (CUDA) call, no
    lengths read on the host."""

    @staticmethod
    def applies(encoder):
        """Whether FastRNNEncoder computes encoder's function: one layer, no projections."""
        return encoder.lstm.num_layers == 1 and not encoder.lstm.proj_size

    def forward(self, inputs, lengths):
        return reset_state_lstm(self.lstm, inputs, lengths.clamp(min=1))


def reset_state_lstm(lstm, inputs, lengths):
    """(states (B, T, D H), last (B, D H)) of the batch-first, one-layer (bi)LSTM `lstm` (D
    directions, H hidden units) over inputs (B, T, I) whose row b is real for its first lengths[b]
    >= 1 positions: what the packed LSTM gives. states is zero past each row's length; last is the
    forward state at the last real word [; the backward state at the first word]. Any device."""
    if lstm.num_layers != 1 or lstm.proj_size:
        raise ValueError("reset_state_lstm: one layer without projections only")
    batch, steps, _ = inputs.shape
    hidden, directions = lstm.hidden_size, 2 if lstm.bidirectional else 1
    real = (torch.arange(steps, device=inputs.device) < lengths[:, None]).unsqueeze(-1).to(inputs.dtype)
    reset = inputs.new_zeros(4 * hidden, 1)               # gate rows i, f, g, o: -RESET on i and f
    reset[:2 * hidden] = -RESET
    zeros = inputs.new_zeros(directions, batch, hidden)
    # inputs zeroed on padding, so RESET outweighs them
    states = kernel_over_padding(_VF.lstm, lstm, 0, inputs * real, 1 - real, (zeros, zeros), reset) * real
    last_word = (lengths - 1).view(batch, 1, 1).expand(batch, 1, hidden)
    last = states[..., :hidden].gather(1, last_word).squeeze(1)      # forward state at the last real word
    if directions == 2:
        last = torch.cat([last, states[:, 0, hidden:]], dim=-1)       # backward state at the first word
    return states, last
