"""FastBiGRU: BiGRU (src/blocks.py; CapsNet's encoder, Eq. 2) over the padded batch, without packing.

`bidirectional_gru(gru, inputs, lengths, constant)` returns what the batch-first bidirectional
nn.GRU `gru` gives over the packed batch: both directions' states, (B, T, 2H), zeros past each row's
length, so padding never changes a result. `constant` (B, C), if given, is appended to every step's
input (CapsNet's aspect vector, Eq. 2: the GRU reads [E_i ; a]). FastBiGRU is a BiGRU whose forward
is bidirectional_gru: the same parameters and state_dict keys.

On CUDA (`held_state_gru`) each layer is one bidirectional cuDNN GRU over the padded batch, with one
more input feature that holds the state through padded steps: no packing, so no lengths read back
to the host, and fixed shapes, which CUDA graphs need (train/cuda_graphs.py). On a CPU
(`stepwise_gru`) `BiGRULayer` runs each layer: a hand-written forward and backward pass over the
padded batch. At 50 hidden units a GRU step is a few tiny operations, and the packed CPU GRU spends
most of its time on per-operation and autograd overhead; BiGRULayer
- computes the input projections of every step and both directions up front, as one matrix product
  (the constant part once per sentence, not once per word);
- runs the two directions together, one batched product per step (the backward direction reads the
  time-reversed inputs);
- keeps a padded step's state unchanged: its update gate is sigmoid(+inf) = 1 exactly, so
  h_t = h_{t-1}, and in the backward pass its gate gradients come out as exactly zero;
- runs the backward recurrence by hand, then gets each weight gradient as one product over all steps.
The cell, as nn.GRU's: r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h
+ b_hz), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
"""
import warnings

import torch
import torch.nn as nn
from torch import _VF

from ..blocks import BiGRU


class FastBiGRU(BiGRU):
    """BiGRU's forward through bidirectional_gru (the hand-written passes on a CPU, one cuDNN GRU per
    layer holding its state through padding on CUDA)."""

    @staticmethod
    def applies(gru):
        """Whether FastBiGRU computes gru's function: no dropout between layers."""
        return not gru.dropout

    def forward(self, inputs, lengths, constant=None):
        return bidirectional_gru(self, inputs, lengths, constant)


def bidirectional_gru(gru: nn.GRU, inputs, lengths, constant=None):
    """States (B, T, 2H) of the batch-first bidirectional `gru` over inputs (B, T, I) (with the
    constant (B, C) appended to every step) whose row b is real for its first lengths[b] positions
    (at least one position is read); zeros at the other positions. What sits past a row's length
    changes nothing, as long as it is finite (CapsNet's padding is the zero PAD vector)."""
    if gru.dropout:
        raise ValueError("bidirectional_gru: an nn.GRU with dropout between its layers is not supported")
    lengths = lengths.clamp(min=1)
    run = stepwise_gru if inputs.device.type == "cpu" else held_state_gru
    return run(gru, inputs, lengths, constant)


def stepwise_gru(gru, inputs, lengths, constant=None):
    """bidirectional_gru through BiGRULayer, the hand-written passes (any device; lengths >= 1)."""
    steps = inputs.size(1)
    real = torch.arange(steps, device=lengths.device)[:, None] < lengths[None, :]   # (T, B)
    padded = ~torch.stack([real, real.flip(0)], dim=1).unsqueeze(-1)        # (T, 2, B, 1): reading order
    x = inputs.transpose(0, 1).contiguous()                                  # (T, B, I)
    for layer in range(gru.num_layers):
        weights = [torch.stack([getattr(gru, f"{name}_l{layer}{suffix}") for suffix in ("", "_reverse")])
                   for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        args = (x, constant if layer == 0 else None, padded, *weights)
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args):
            x = BiGRULayer.apply(*args)
        else:                                                                # inference: keep nothing
            x = layer_forward(*args, for_backward=False)[0]
    return (x * real.unsqueeze(-1).to(x.dtype)).transpose(0, 1)


HOLD = 1e4   # added to a padded step's update-gate pre-activation: sigmoid(HOLD) is exactly 1


def held_state_gru(gru, inputs, lengths, constant=None):
    """bidirectional_gru as one bidirectional nn.GRU kernel (cuDNN on CUDA) per layer over the padded
    batch (any device; lengths >= 1). Every step's input gets one more feature, 1 on padded steps
    and 0 on real ones, weighted HOLD on the update gate and 0 on the others: a padded step has
    z = 1, so it keeps the state it was given (as BiGRULayer's +inf does). The backward direction
    reads a row's padding first, so it starts the row's real steps from the zero state, as the
    packed GRU does; no gradient crosses a padded step's gates (z(1 - z) = 0, 1 - z = 0). The
    inputs are zeroed on padded steps, so the padding's own values cannot outweigh HOLD."""
    positions = torch.arange(inputs.size(1), device=inputs.device)
    real = (positions < lengths[:, None]).unsqueeze(-1).to(inputs.dtype)     # (B, T, 1)
    padded = 1 - real
    x = inputs * real
    if constant is not None:
        x = torch.cat([x, constant.unsqueeze(1).expand(-1, x.size(1), -1)], dim=-1)
    hidden = gru.hidden_size
    hold = inputs.new_zeros(3 * hidden, 1)                   # gate rows r, z, n: HOLD on z only
    hold[hidden:2 * hidden] = HOLD
    start = inputs.new_zeros(2, inputs.size(0), hidden)
    for layer in range(gru.num_layers):
        x = kernel_over_padding(_VF.gru, gru, layer, x, padded, start, hold)
    return x * real


def kernel_over_padding(kernel, rnn, layer, x, padded, state, column):
    """Outputs (B, T, D H) of one layer of the batch-first `rnn` (D directions) as one call of its
    kernel (_VF.gru or _VF.lstm: cuDNN, oneDNN or torch's own) over x (B, T, I), every step's input
    widened by the feature `padded` (B, T, 1), weighted by `column` (G H, 1: one weight per gate row)
    in each direction; `state` is the start state. held_state_gru and lstm.py's reset_state_lstm
    pin gates on padded steps this way. The widened weights are not the module's flat cuDNN buffer:
    cuDNN copies them in at each call (a few small copies), and its warning that it does so is
    silenced."""
    weights = []
    for suffix in ("", "_reverse")[:2 if rnn.bidirectional else 1]:
        w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{name}_l{layer}{suffix}")
                                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        weights += [torch.cat([w_ih, column], dim=1), w_hh, b_ih, b_hh]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        return kernel(torch.cat([x, padded], dim=-1), state, weights, True, 1, 0.0, rnn.training,
                      rnn.bidirectional, True)[0]


def layer_forward(x, constant, padded, w_ih, w_hh, b_ih, b_hh, for_backward):
    """BiGRULayer's forward pass: (output (T, B, 2H), the per-step values the backward pass reads:
    W_h h with b_hn added to its n part, gates r and z, n, h, each (T, 2, B, .)). Without
    `for_backward`, only h is kept for every step (one step's buffers are reused) and the values
    returned are None."""
    steps, batch, width = x.shape
    hidden = w_hh.size(2)
    w_in = w_ih.view(6 * hidden, -1)
    # Input projections, all steps and both directions: (T, B, 2, 3H), then in reading order. The r
    # and z parts of b_h join b_i here; b_hn stays apart, inside r * (W_hn h + b_hn).
    bias = torch.cat([b_ih[:, :2 * hidden] + b_hh[:, :2 * hidden], b_ih[:, 2 * hidden:]], dim=1)
    projected = torch.addmm(bias.view(-1), x.view(steps * batch, width), w_in[:, :width].t())
    projected = projected.view(steps, batch, 2, 3 * hidden)
    if constant is not None:
        projected += constant.mm(w_in[:, width:].t()).view(batch, 2, 3 * hidden)
    gi = torch.stack([projected[:, :, 0], projected[:, :, 1].flip(0)], dim=1)   # (T, 2, B, 3H)
    gi[..., hidden:2 * hidden].masked_fill_(padded, float("inf"))           # z = 1 on padded steps
    kept = steps if for_backward else 1                      # without: one step's buffers, reused
    gh = x.new_empty(kept, 2, batch, 3 * hidden)             # W_h h, + b_hn in the n part
    gates = x.new_empty(kept, 2, batch, 2 * hidden)          # r, z
    new = x.new_empty(kept, 2, batch, hidden)                # n
    states = x.new_empty(steps, 2, batch, hidden)            # h
    w_hh_t, b_hn = w_hh.transpose(1, 2), b_hh[:, None, 2 * hidden:]
    h = x.new_zeros(2, batch, hidden)
    for t, (gi_rz, gi_n, state) in enumerate(zip(gi[..., :2 * hidden].unbind(0), gi[..., 2 * hidden:].unbind(0),
                                                 states.unbind(0))):
        k = t if for_backward else 0
        gh_t, gates_t, new_t = gh[k], gates[k], new[k]
        torch.bmm(h, w_hh_t, out=gh_t)
        gh_t[..., 2 * hidden:] += b_hn
        torch.add(gi_rz, gh_t[..., :2 * hidden], out=gates_t).sigmoid_()
        torch.addcmul(gi_n, gates_t[..., :hidden], gh_t[..., 2 * hidden:], out=new_t).tanh_()
        h = torch.lerp(new_t, h, gates_t[..., hidden:], out=state)
    output = torch.cat([states[:, 0], states[:, 1].flip(0)], dim=-1)
    return output, ((gh, gates, new, states) if for_backward else None)


class BiGRULayer(torch.autograd.Function):
    """One bidirectional GRU layer, time-major: x (T, B, I) [+ constant (B, C)] -> (T, B, 2H).
    Weights stacked over the two directions: w_ih (2, 3H, I + C), w_hh (2, 3H, H), b_ih, b_hh (2, 3H).
    `padded` (T, 2, B, 1) marks padded steps in each direction's reading order (the backward
    direction's is reversed). Past a row's length the output holds the forward direction's last state
    (bidirectional_gru zeroes it)."""

    @staticmethod
    def forward(ctx, x, constant, padded, w_ih, w_hh, b_ih, b_hh):
        output, forward_values = layer_forward(x, constant, padded, w_ih, w_hh, b_ih, b_hh, for_backward=True)
        ctx.save_for_backward(x, constant, w_ih, w_hh, *forward_values)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        x, constant, w_ih, w_hh, gh, gates, new, states = ctx.saved_tensors
        steps, _, batch, hidden = states.shape
        width = x.size(2)
        grad_states = torch.stack([grad_output[..., :hidden], grad_output[..., hidden:].flip(0)], dim=1)
        reset, update = gates[..., :hidden], gates[..., hidden:]
        state_minus_new = torch.empty_like(new)                       # h_{t-1} - n_t, with h_{-1} = 0
        torch.sub(states[:-1], new[1:], out=state_minus_new[1:])
        torch.neg(new[0], out=state_minus_new[0])
        # The chain rule's factors that depend only on forward values, for all steps at once:
        # dL/d(n's pre-activation) = dL/dh (1 - z)(1 - n^2); dL/d(z's) = dL/dh (h_{t-1} - n) z(1 - z);
        # dL/d(r's) = dL/d(n's) (W_hn h + b_hn) r(1 - r); dL/d(W_hn h + b_hn) = dL/d(n's) r.
        to_new = (1 - update) * (1 - new * new)
        to_update = state_minus_new * update * (1 - update)
        from_new = torch.stack([gh[..., 2 * hidden:] * reset * (1 - reset), reset], dim=-2)   # (T, 2, B, 2, H)
        grad_gh = states.new_empty(steps, 2, batch, 3, hidden)   # dL/d(W_h h + b_h) for r, z, n
        grad_new = states.new_empty(steps, 2, batch, hidden)     # dL/d(n's pre-activation)
        grad_h = grad_states[-1]
        for t in range(steps - 1, -1, -1):
            torch.mul(grad_h, to_new[t], out=grad_new[t])
            torch.mul(grad_new[t].unsqueeze(-2), from_new[t], out=grad_gh[t, :, :, ::2])
            torch.mul(grad_h, to_update[t], out=grad_gh[t, :, :, 1])
            if t:
                grad_h = torch.addcmul(grad_states[t - 1], grad_h, update[t]).baddbmm_(
                    grad_gh[t].view(2, batch, 3 * hidden), w_hh)
        grad_gh = grad_gh.view(steps, 2, batch, 3 * hidden)
        grad_gi = torch.cat([grad_gh[..., :2 * hidden], grad_new], dim=-1)   # dL/d(W_i x + b_i)
        grad_gi = torch.stack([grad_gi[:, 0], grad_gi[:, 1].flip(0)], dim=2)  # (T, B, 2, 3H), time order
        grad_gi = grad_gi.view(steps, batch, 6 * hidden)
        w_in = w_ih.view(6 * hidden, -1)
        flat = grad_gi.view(steps * batch, 6 * hidden)
        grad_x = flat.mm(w_in[:, :width]).view_as(x) if ctx.needs_input_grad[0] else None
        grad_w_in = [flat.t().mm(x.view(steps * batch, width))]
        grad_constant = None
        if constant is not None:                                 # the constant is in every step's input
            per_sentence = grad_gi.sum(0)                        # (B, 6H)
            grad_constant = per_sentence.mm(w_in[:, width:]) if ctx.needs_input_grad[1] else None
            grad_w_in.append(per_sentence.t().mm(constant))
        grad_w_ih = torch.cat(grad_w_in, dim=1).view_as(w_ih)
        # h_{t-1} = 0 at t = 0, so W_hh's gradient sums over t >= 1.
        grad_gh_flat = grad_gh[1:].transpose(0, 1).reshape(2, (steps - 1) * batch, 3 * hidden)
        previous = states[:-1].transpose(0, 1).reshape(2, (steps - 1) * batch, hidden)
        grad_w_hh = torch.bmm(grad_gh_flat.transpose(1, 2), previous)
        return (grad_x, grad_constant, None, grad_w_ih, grad_w_hh, flat.sum(0).view(2, -1), grad_gh.sum((0, 2)))
