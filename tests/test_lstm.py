"""src/lstm.py: the baselines' (Bi)LSTM over the padded batch with the state reset on padded steps
(RNNEncoder's CUDA path, checked here on the CPU's kernel in float64; tests/test_cuda_graphs.py checks
it on cuDNN) gives what RNNEncoder's packed LSTM gives: states, final states and every gradient."""
import pytest
import torch

from src.blocks import RNNEncoder
from src.lstm import reset_state_lstm


def packed_and_reset(encoder, inputs, lengths, weights):
    """[(states, last, gradients of the weights and the inputs)] of the packed path, then the reset one."""
    results = []
    for run in (lambda: encoder(inputs, lengths), lambda: reset_state_lstm(encoder.lstm, inputs, lengths.clamp(min=1))):
        for tensor in [*encoder.parameters(), inputs]:
            tensor.grad = None
        states, last = run()
        ((states * weights).sum() + (last * last).sum()).backward()
        results.append([states.detach(), last.detach(), inputs.grad.clone(),
                        *[p.grad.clone() for p in encoder.parameters()]])
    return results


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("steps, lengths", [
    (6, [6, 3, 1, 4]),
    (5, [5, 0, 2, 5]),       # an empty row reads one (padding) step, as the packed LSTM does
    (1, [1, 1, 0]),
])
def test_reset_state_lstm_matches_the_packed_lstm_with_all_gradients(steps, lengths, bidirectional):
    torch.manual_seed(0)
    encoder = RNNEncoder(5, 4, bidirectional=bidirectional).double().train()
    lengths = torch.tensor(lengths)
    inputs = torch.randn(len(lengths), steps, 5, dtype=torch.float64)
    inputs[torch.arange(steps)[None, :] >= lengths[:, None]] = 3.0    # padding that is not zero
    inputs.requires_grad_()
    weights = torch.randn(len(lengths), steps, encoder.output_size, dtype=torch.float64)
    packed, reset = packed_and_reset(encoder, inputs, lengths, weights)
    for got, expected in zip(reset, packed):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert not reset[0][torch.arange(steps)[None, :] >= lengths.clamp(min=1)[:, None]].any()   # zero on padding


def test_what_sits_past_a_rows_length_changes_nothing():
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    lengths = torch.tensor([2, 5, 3])
    inputs = torch.randn(3, 5, 3)
    noisy = inputs.clone()
    noisy[torch.arange(5)[None, :] >= lengths[:, None]] = 1e3 * torch.randn(1)
    for a, b in zip(reset_state_lstm(lstm, inputs, lengths), reset_state_lstm(lstm, noisy, lengths)):
        assert torch.equal(a, b)


def test_only_one_layer_is_supported():
    with pytest.raises(ValueError, match="one layer"):
        reset_state_lstm(torch.nn.LSTM(3, 4, num_layers=2, batch_first=True), torch.randn(2, 3, 3),
                         torch.tensor([3, 1]))
