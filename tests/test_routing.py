"""Dynamic routing (Sabour et al. 2017; the CapsNet-DR rows) against a case computed by hand."""
import math

import torch

from src.layers import CapsuleHead, DynamicRouting


def squash(v):
    n2 = sum(x * x for x in v)
    return [x * n2 / (1 + n2) / math.sqrt(n2 + 1e-9) for x in v]


def by_hand(p, W, u, scale, iterations):
    """Plain-Python routing-by-agreement over input capsules i and output capsules j."""
    pred = [[[sum(p[i][d] * W[j][d][e] for d in range(2)) for e in range(2)] for j in range(2)] for i in range(2)]
    b = [[0.0, 0.0], [0.0, 0.0]]
    for it in range(iterations):
        c = [[math.exp(b[i][j]) / sum(math.exp(x) for x in b[i]) for j in range(2)] for i in range(2)]
        v = [squash([scale * sum(c[i][j] * u[i] * pred[i][j][e] for i in range(2)) for e in range(2)])
             for j in range(2)]
        if it < iterations - 1:
            b = [[b[i][j] + sum(pred[i][j][e] * v[j][e] for e in range(2)) for j in range(2)] for i in range(2)]
    return v


def test_dynamic_routing_matches_three_iterations_computed_by_hand():
    p = [[0.5, -0.2], [0.1, 0.8]]                    # 2 input capsules of size 2
    W = [[[1.0, 0.5], [-0.3, 0.9]], [[0.2, -1.0], [0.7, 0.4]]]   # one 2x2 matrix per output capsule
    u = [0.6, 0.4]                                    # aspect-aware weights
    routing = DynamicRouting(capsule_size=2, num_classes=2, iterations=3, scale_init=2.0, dropout=0.0)
    with torch.no_grad():
        routing.weight.copy_(torch.tensor(W))
    out = routing(torch.tensor([p]), torch.tensor([u]))
    expected = torch.tensor([by_hand(p, W, u, 2.0, 3)])
    assert torch.allclose(out, expected, atol=1e-6)
    one_pass = torch.tensor([by_hand(p, W, u, 2.0, 1)])
    assert not torch.allclose(out, one_pass, atol=1e-4)  # the iterations change the routing


def test_dynamic_routing_ignores_padding_positions():
    torch.manual_seed(0)
    head = CapsuleHead(6, 6, 4, 3, 4.0, 0.0, routing="dynamic", iterations=3).eval()
    states, aspect = torch.randn(1, 3, 6), torch.randn(1, 6)
    mask = torch.tensor([[True, True, True]])
    padded = torch.cat([states, torch.randn(1, 2, 6)], dim=1)
    padded_mask = torch.tensor([[True, True, True, False, False]])
    with torch.no_grad():
        assert torch.allclose(head(states, mask, aspect), head(padded, padded_mask, aspect), atol=1e-6)
