"""Capsule building blocks (src/layers.py) and the margin loss (src/losses.py)."""
import math

import pytest
import torch

from common.errors import UserError
from common.schema import build
from src.layers import BilinearAttention, squash, standardise_guide
from src.losses import LossConfig, make_loss, margin_loss
from src.masking import masked_softmax

# --- squash -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e-3, 0.1, 1.0, 10.0, 100.0])
def test_squash_keeps_direction_and_gives_length_below_one(scale):
    torch.manual_seed(0)
    s = torch.randn(200, 16) * scale
    v = squash(s)
    lengths = v.norm(dim=-1)
    assert torch.all(lengths < 1.0)
    assert torch.all(lengths >= 0.0)
    cosine = torch.nn.functional.cosine_similarity(v, s, dim=-1)
    assert torch.allclose(cosine, torch.ones_like(cosine), atol=1e-5)


def test_squash_length_follows_formula_norm2_over_one_plus_norm2():
    s = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 2.0]])  # norms 5, 1, 2
    expected = torch.tensor([25 / 26, 1 / 2, 4 / 5])
    assert torch.allclose(squash(s).norm(dim=-1), expected, atol=1e-6)


@pytest.mark.parametrize("scale", [1e3, 1e5, 1e6])
def test_squash_of_large_vectors_keeps_direction_and_length_below_one_in_float64(scale):
    torch.manual_seed(1)
    s = torch.randn(200, 16, dtype=torch.float64) * scale
    v = squash(s)
    assert torch.isfinite(v).all()
    assert torch.all(v.norm(dim=-1) < 1.0)
    cosine = torch.nn.functional.cosine_similarity(v, s, dim=-1)
    assert torch.allclose(cosine, torch.ones_like(cosine), atol=1e-9)


@pytest.mark.parametrize("scale", [1e3, 1e6, 1e9])
def test_squash_of_large_float32_vectors_stays_finite_with_length_one_up_to_rounding(scale):
    # float32 cannot hold 1 - 1/(1 + |s|^2) for |s| >~ 1e3: the length rounds to 1 (within one ulp)
    torch.manual_seed(2)
    s = torch.randn(200, 16) * scale
    v = squash(s)
    assert torch.isfinite(v).all()
    lengths = v.norm(dim=-1)
    assert torch.all(lengths <= 1.0 + 2 * torch.finfo(torch.float32).eps)
    assert torch.all(lengths > 0.999)
    cosine = torch.nn.functional.cosine_similarity(v, s, dim=-1)
    assert torch.allclose(cosine, torch.ones_like(cosine), atol=1e-5)


def test_squash_of_zero_vector_is_finite_zero_with_finite_gradient():
    s = torch.zeros(2, 8, requires_grad=True)
    v = squash(s)
    assert torch.isfinite(v).all()
    assert torch.equal(v.detach(), torch.zeros(2, 8))
    v.sum().backward()
    assert torch.isfinite(s.grad).all()


# --- masked softmax / bilinear attention -----------------------------------------------------

def _mask():
    return torch.tensor([[True, True, True, False, False],
                         [True, False, False, False, False],
                         [True, True, True, True, True]])


def test_masked_softmax_gives_exact_zero_on_masked_positions_and_sums_to_one():
    torch.manual_seed(0)
    scores = torch.randn(3, 5) * 10
    scores[0, 3] = 1e4  # a huge score on a masked position must not leak
    mask = _mask()
    weights = masked_softmax(scores, mask)
    assert torch.all(weights[~mask] == 0.0)
    assert torch.all(weights[mask] > 0.0)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(3), atol=1e-6)
    # on the real positions it is the ordinary softmax of those scores
    assert torch.allclose(weights[0, :3], torch.softmax(scores[0, :3], dim=0), atol=1e-6)


def test_masked_softmax_along_dim_zero_respects_mask():
    scores = torch.randn(5, 3)
    mask = _mask().t()
    weights = masked_softmax(scores, mask, dim=0)
    assert torch.all(weights[~mask] == 0.0)
    assert torch.allclose(weights.sum(dim=0), torch.ones(3), atol=1e-6)


def test_bilinear_attention_gives_zero_weight_to_padding_and_sums_to_one():
    torch.manual_seed(0)
    attention = BilinearAttention(key_size=6, query_size=4)
    keys = torch.randn(3, 5, 6)
    keys[0, 3:] = 1e3  # large padded keys must still get zero weight
    query = torch.randn(3, 4)
    mask = _mask()
    weights = attention(keys, query, mask)
    assert weights.shape == (3, 5)
    assert torch.all(weights[~mask] == 0.0)
    assert torch.allclose(weights.sum(dim=1), torch.ones(3), atol=1e-6)


def test_bilinear_attention_scores_are_keys_times_weight_times_query():
    torch.manual_seed(0)
    attention = BilinearAttention(key_size=3, query_size=2)
    keys, query = torch.randn(1, 4, 3), torch.randn(1, 2)
    mask = torch.ones(1, 4, dtype=torch.bool)
    expected = torch.softmax(keys[0] @ attention.weight @ query[0], dim=0)
    assert torch.allclose(attention(keys, query, mask)[0], expected, atol=1e-6)


# --- margin loss -----------------------------------------------------------------------------

def test_margin_loss_when_correct_class_above_upper_margin():
    # present term 0 (0.95 > 0.9); absent: 0.6 * (0 + (0.2 - 0.1)^2) = 0.006
    loss = margin_loss(torch.tensor([[0.95, 0.05, 0.2]]), torch.tensor([0]))
    assert loss.item() == pytest.approx(0.006, abs=1e-7)


def test_margin_loss_when_correct_class_below_upper_margin():
    # present: (0.9 - 0.5)^2 = 0.16; absent: 0.6 * ((0.3 - 0.1)^2 + 0) = 0.024 -> 0.184
    loss = margin_loss(torch.tensor([[0.5, 0.3, 0.05]]), torch.tensor([0]))
    assert loss.item() == pytest.approx(0.184, abs=1e-6)


def test_margin_loss_for_non_first_label():
    # label 2: present (0.9 - 0.7)^2 = 0.04; absent 0.6 * ((0.4-0.1)^2 + (0.2-0.1)^2) = 0.06 -> 0.1
    loss = margin_loss(torch.tensor([[0.4, 0.2, 0.7]]), torch.tensor([2]))
    assert loss.item() == pytest.approx(0.1, abs=1e-6)


def test_margin_loss_is_zero_for_perfect_scores():
    loss = margin_loss(torch.tensor([[0.1, 0.95, 0.0]]), torch.tensor([1]))
    assert loss.item() == 0.0


def test_margin_loss_is_the_batch_mean_of_per_example_losses():
    lengths = torch.tensor([[0.95, 0.05, 0.2], [0.5, 0.3, 0.05]])
    loss = margin_loss(lengths, torch.tensor([0, 0]))
    assert loss.item() == pytest.approx((0.006 + 0.184) / 2, abs=1e-6)


def test_margin_loss_uses_custom_margins_from_make_loss():
    loss_fn = make_loss(LossConfig(name="margin", positive=0.8, negative=0.2, weight=0.5))
    # present (0.8 - 0.5)^2 = 0.09; absent 0.5 * (0.4 - 0.2)^2 = 0.02
    loss = loss_fn(torch.tensor([[0.5, 0.4, 0.1]]), torch.tensor([0]))
    assert loss.item() == pytest.approx(0.11, abs=1e-6)


def test_loss_config_rejects_unknown_loss_name():
    with pytest.raises(UserError, match="model.loss.name='hinge' is not one of margin, cross_entropy"):
        build(LossConfig, {"name": "hinge"}, prefix="model.loss")


# --- standardise_guide -----------------------------------------------------------------------

def test_standardise_guide_same_dimension_has_xavier_std_and_keeps_the_pattern():
    torch.manual_seed(0)
    matrix = torch.randn(3, 50) * 5 + 2
    out = standardise_guide(matrix, 50)
    assert out.shape == (3, 50)
    assert out.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert out.std().item() == pytest.approx(math.sqrt(2.0 / (3 + 50)), rel=1e-5)
    # same dimension: an affine map of the input (no projection)
    standardised = (matrix - matrix.mean()) / matrix.std()
    assert torch.allclose(out / math.sqrt(2.0 / 53), standardised, atol=1e-5)


def test_standardise_guide_different_dimension_projects_to_size_with_xavier_std():
    torch.manual_seed(0)
    matrix = torch.randn(3, 50)
    torch.manual_seed(123)
    out = standardise_guide(matrix.numpy(), 300)
    assert out.shape == (3, 300)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert out.std().item() == pytest.approx(math.sqrt(2.0 / (3 + 300)), rel=1e-5)
    # the projection is drawn from the seeded torch generator: same seed, same guides
    torch.manual_seed(123)
    assert torch.equal(standardise_guide(matrix.numpy(), 300), out)


def test_standardise_guide_projection_roughly_keeps_angles_between_rows():
    torch.manual_seed(0)
    matrix = torch.randn(3, 50)
    matrix = matrix - matrix.mean()
    out = standardise_guide(matrix, 300)
    cos_in = torch.nn.functional.cosine_similarity(matrix.unsqueeze(1), matrix.unsqueeze(0), dim=-1)
    cos_out = torch.nn.functional.cosine_similarity(out.unsqueeze(1), out.unsqueeze(0), dim=-1)
    assert torch.allclose(cos_out, cos_in, atol=0.25)
