"""src/dropout.Dropout: nn.Dropout's outputs, gradients and random stream, with a faster CPU mask."""
import pytest
import torch
import torch.nn as nn

from src.dropout import Dropout, dropout_mask


def bernoulli_reads_uniforms():
    """Whether this torch's CPU bernoulli_ keeps an element when the generator's next float64
    uniform is below p (its own kernel; on Intel CPUs it may use MKL's stream instead)."""
    drawn = torch.empty(1000).bernoulli_(0.3, generator=torch.Generator().manual_seed(11))
    uniforms = torch.rand(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    return torch.equal(drawn, (uniforms < 0.3).float())


def both_ways(x, p, scale=1.7):
    """(output, input gradient, next uniforms) of nn.Dropout(p) and of Dropout(p) from seed 3."""
    results = []
    for module in (nn.Dropout(p), Dropout(p)):
        x = x.detach().requires_grad_()
        torch.manual_seed(3)
        y = module(x)
        grad, = torch.autograd.grad((y * scale).sum(), x)
        results.append((y, grad, torch.rand(4)))
    return results


def test_mask_is_the_generators_float64_uniforms_below_keep_scaled_by_one_over_keep():
    like = torch.zeros(5, 6, 7)
    torch.manual_seed(0)
    mask = dropout_mask(like, 0.7)
    torch.manual_seed(0)
    uniforms = torch.rand(5, 6, 7, dtype=torch.float64)
    assert torch.equal(mask, torch.where(uniforms < 0.7, torch.tensor(1.0) / 0.7, torch.tensor(0.0)))
    assert mask.dtype == like.dtype


def test_mask_fills_a_transposed_input_in_memory_order():
    like = torch.zeros(7, 5).t()                      # (5, 7), column-major in memory
    torch.manual_seed(0)
    mask = dropout_mask(like, 0.5)
    torch.manual_seed(0)
    expected = (torch.rand(7, 5, dtype=torch.float64) < 0.5).float().t() * 2
    assert torch.equal(mask, expected)


@pytest.mark.skipif(not bernoulli_reads_uniforms(),
                    reason="this torch's CPU bernoulli_ draws from MKL's stream, not the generator's uniforms")
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.75])
@pytest.mark.parametrize("transposed", [False, True])
def test_outputs_gradients_and_random_stream_equal_nn_dropout(p, transposed):
    x = torch.randn(16, 9, 12)
    if transposed:
        x = x.transpose(0, 2)
    (y_ref, g_ref, next_ref), (y, g, next_) = both_ways(x, p)
    assert torch.equal(y, y_ref)
    assert torch.equal(g, g_ref)
    assert torch.equal(next_, next_ref)               # the generator is left where nn.Dropout leaves it


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_zero_and_one_draw_nothing_as_nn_dropout(p):
    (y_ref, g_ref, next_ref), (y, g, next_) = both_ways(torch.randn(4, 5), p)
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref) and torch.equal(next_, next_ref)


def test_evaluation_mode_is_the_identity_and_draws_nothing():
    module = Dropout(0.5).eval()
    x = torch.randn(3, 4)
    torch.manual_seed(1)
    assert module(x) is x
    after = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(after, torch.rand(3))


def test_training_drops_about_p_and_scales_the_rest():
    x = torch.ones(200_000)
    torch.manual_seed(0)
    y = Dropout(0.3)(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    assert torch.allclose(y[kept], torch.tensor(1 / 0.7))
