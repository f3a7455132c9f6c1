"""src/gru.py: both ways CapsNet runs its BiGRU -- the hand-written forward and backward pass (CPU)
and one unpacked bidirectional nn.GRU kernel per layer with the state held through padding (CUDA,
checked here on the CPU's kernel; tests/test_cuda_graphs.py checks it on cuDNN) -- compute what
nn.GRU computes over a packed batch (outputs and every gradient) and are padding-invariant."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from src.gru import bidirectional_gru, held_state_gru, stepwise_gru

IMPLEMENTATIONS = {"hand-written (CPU)": stepwise_gru, "held state (CUDA)": held_state_gru}


def packed_reference(gru, inputs, lengths, constant=None):
    """nn.GRU over the packed batch: the definition bidirectional_gru must match."""
    if constant is not None:
        inputs = torch.cat([inputs, constant.unsqueeze(1).expand(-1, inputs.size(1), -1)], dim=-1)
    packed = pack_padded_sequence(inputs, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=inputs.size(1))[0]


def outputs_and_gradients(fn, gru, inputs, lengths, constant, weights):
    for tensor in [*gru.parameters(), inputs, constant]:
        if tensor is not None:
            tensor.grad = None
    out = fn(gru, inputs, lengths, constant)
    (out * weights).sum().backward()
    grads = [p.grad for p in gru.parameters()] + [inputs.grad] + ([constant.grad] if constant is not None else [])
    return [out.detach()] + [g.clone() for g in grads]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("steps, lengths, num_layers, with_constant", [
    (6, [6, 3, 1, 4], 2, True),       # CapsNet's shape: 2 layers, aspect appended to every step
    (6, [2, 6, 6, 5], 1, False),
    (5, [5, 0, 2, 5], 3, True),       # an empty row reads one (padding) step, as the packed GRU does
    (1, [1, 1, 1, 0], 2, True),       # one step: W_hh gets no gradient from h_0 = 0
])
def test_outputs_and_all_gradients_match_packed_nn_gru(steps, lengths, num_layers, with_constant, implementation):
    torch.manual_seed(0)
    gru = torch.nn.GRU(7 + (3 if with_constant else 0), 5, num_layers=num_layers, bidirectional=True,
                       batch_first=True).double()
    inputs = torch.randn(4, steps, 7, dtype=torch.float64, requires_grad=True)
    constant = torch.randn(4, 3, dtype=torch.float64, requires_grad=True) if with_constant else None
    lengths = torch.tensor(lengths)
    lengths = lengths.clamp(min=1)      # bidirectional_gru clamps before calling either
    weights = torch.randn(4, steps, 10, dtype=torch.float64)
    expected = outputs_and_gradients(packed_reference, gru, inputs, lengths, constant, weights)
    got = outputs_and_gradients(IMPLEMENTATIONS[implementation], gru, inputs, lengths, constant, weights)
    assert len(got) == len(expected)
    for name, a, b in zip(["outputs"] + [n for n, _ in gru.named_parameters()] + ["inputs", "constant"], got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"{name} differs from the packed nn.GRU")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_positions_past_a_row_length_are_zero_and_padding_changes_nothing(implementation):
    run = IMPLEMENTATIONS[implementation]
    torch.manual_seed(1)
    gru = torch.nn.GRU(8, 6, num_layers=2, bidirectional=True, batch_first=True)
    inputs, constant = torch.randn(3, 9, 6), torch.randn(3, 2)
    lengths = torch.tensor([9, 4, 7])
    out = run(gru, inputs, lengths, constant)
    assert torch.all(out[1, 4:] == 0) and torch.all(out[2, 7:] == 0)
    garbage = inputs.clone()
    garbage[1, 4:] = 1e3                                   # what sits past a row's end is never read
    torch.testing.assert_close(run(gru, garbage, lengths, constant), out, rtol=0, atol=0)
    alone = run(gru, inputs[1:2, :4], lengths[1:2], constant[1:2])
    torch.testing.assert_close(alone, out[1:2, :4], rtol=1e-6, atol=1e-6)


def test_gradcheck_in_double_precision():
    torch.manual_seed(2)
    gru = torch.nn.GRU(5, 3, num_layers=1, bidirectional=True, batch_first=True).double()
    inputs = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    constant = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2])
    assert torch.autograd.gradcheck(lambda x, c: bidirectional_gru(gru, x, lengths, c), (inputs, constant))


def test_reruns_are_bitwise_identical_on_cpu():
    torch.manual_seed(3)
    gru = torch.nn.GRU(10, 5, num_layers=2, bidirectional=True, batch_first=True)
    inputs, lengths = torch.randn(4, 7, 10), torch.tensor([7, 5, 2, 6])
    first, second = bidirectional_gru(gru, inputs, lengths), bidirectional_gru(gru, inputs, lengths)
    assert torch.equal(first, second)


def test_a_gru_with_dropout_between_layers_is_refused():
    gru = torch.nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True, dropout=0.2)
    with pytest.raises(ValueError, match="dropout between its layers"):
        bidirectional_gru(gru, torch.randn(2, 3, 4), torch.tensor([3, 2]))
