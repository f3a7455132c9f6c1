"""src/lstm.py: the baselines' (Bi)LSTM over the padded batch with the state reset on padded steps
(RNNEncoder, on every device) gives what nn.LSTM gives over the packed batch: states, final states and
every gradient, in float64 (torch's own kernel) and in float32 (oneDNN's, which serves the unpacked
batch on a CPU); tests/test_cuda_graphs.py checks it on cuDNN."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from src.blocks import RNNEncoder
from src.lstm import reset_state_lstm


def packed_reference(lstm, inputs, lengths):
    """nn.LSTM over the packed batch (lengths clamped to 1): the definition RNNEncoder must match.
    (states zero on padding, [forward final state ; backward final state])."""
    packed = pack_padded_sequence(inputs, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
    outputs, (final, _) = lstm(packed)
    states = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.size(1))[0]
    return states, final.transpose(0, 1).reshape(inputs.size(0), -1)


def outputs_and_gradients(run, encoder, inputs, weights):
    for tensor in [*encoder.parameters(), inputs]:
        tensor.grad = None
    states, last = run()
    ((states * weights).sum() + (last * last).sum()).backward()
    return [states.detach(), last.detach(), inputs.grad.clone(), *[p.grad.clone() for p in encoder.parameters()]]


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("steps, lengths", [
    (6, [6, 3, 1, 4]),
    (5, [5, 0, 2, 5]),       # an empty row reads one (padding) step, as the packed LSTM does
    (1, [1, 1, 0]),
])
def test_the_encoder_matches_the_packed_lstm_with_all_gradients(steps, lengths, bidirectional, dtype, tolerance):
    torch.manual_seed(0)
    encoder = RNNEncoder(5, 4, bidirectional=bidirectional).to(dtype).train()
    lengths = torch.tensor(lengths)
    inputs = torch.randn(len(lengths), steps, 5, dtype=dtype)
    inputs[torch.arange(steps)[None, :] >= lengths[:, None]] = 3.0    # padding that is not zero
    inputs.requires_grad_()
    weights = torch.randn(len(lengths), steps, encoder.output_size, dtype=dtype)
    expected = outputs_and_gradients(lambda: packed_reference(encoder.lstm, inputs, lengths), encoder, inputs, weights)
    got = outputs_and_gradients(lambda: encoder(inputs, lengths), encoder, inputs, weights)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
    assert not got[0][torch.arange(steps)[None, :] >= lengths.clamp(min=1)[:, None]].any()   # zero on padding


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
