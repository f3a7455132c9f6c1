"""Capsule building blocks shared by CapsNet and CapsNet-BERT (paper Section 3, Eqs. 3-6)."""
import math

import torch
import torch.nn as nn

from common.labels import LABELS

from .explain import Traceable, Weights
from .masking import masked_softmax


def squash(s, dim=-1, eps=1e-9):
    """squash(s) = |s|^2 / (1 + |s|^2) * s / |s|: same direction, length in [0, 1)."""
    norm2 = (s * s).sum(dim=dim, keepdim=True)
    return s * (norm2 / (1.0 + norm2)) / torch.sqrt(norm2 + eps)


def lengths_to_probabilities(lengths):
    """Capsule lengths normalised to sum to one (for display; the ranking is the lengths')."""
    return lengths / lengths.sum(-1, keepdim=True).clamp(min=1e-9)


class BilinearAttention(nn.Module):
    """u_i = softmax_i(p_i W c) over the real (non-padding) positions (Eq. 4, aspect-aware normalisation)."""

    def __init__(self, key_size, query_size):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(key_size, query_size))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, keys, query, mask):
        # keys (B, T, dk), query (B, dq), mask (B, T) bool -> (B, T). W c first: one (dk,) vector
        # per sentence instead of a (dk x dq) product per token; the same numbers, far less work.
        scores = torch.bmm(keys, self.query_vector(query).unsqueeze(-1)).squeeze(-1)
        return masked_softmax(scores, mask, dim=1)

    def query_vector(self, query):
        """W c: (B, dq) -> (B, dk), what each key is dotted with."""
        return query @ self.weight.t()


def standardise_guide(matrix, size):
    """Bring a (C, d) sentiment matrix to (C, size) and to Xavier scale, as the authors' code does
    (zero mean, std sqrt(2 / (C + size))). When d != size, the rows are first mapped through a fixed
    random Gaussian projection (drawn from the seeded torch generator): it keeps the rows' angles
    and relative distances approximately (Johnson-Lindenstrauss), which is what the guides encode."""
    matrix = torch.as_tensor(matrix, dtype=torch.float32)
    c, d = matrix.shape
    if d != size:
        matrix = matrix @ (torch.randn(d, size) / math.sqrt(size))
    matrix = (matrix - matrix.mean()) / (matrix.std() + 1e-12)
    return matrix * math.sqrt(2.0 / (c + size))


class CapsuleGuidedRouting(Traceable, nn.Module):
    """Category capsules v_j = squash(s * sum_i w_ij u_i p_i), w_ij = softmax_j(p_i W_r z_j),
    z_j = squash(G_j) (Eqs. 5-6). Returns (B, C, d) capsules; their lengths are the class scores."""

    def __init__(self, capsule_size, num_classes, scale_init, dropout, sentiment=None):
        super().__init__()
        self.guide = nn.Parameter(torch.empty(num_classes, capsule_size))
        self.weight = nn.Parameter(torch.empty(capsule_size, capsule_size))
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.weight)
        if sentiment is None:
            nn.init.xavier_uniform_(self.guide)
        else:
            with torch.no_grad():
                self.guide.copy_(standardise_guide(sentiment, capsule_size))

    def forward(self, primary, norm_weights):
        # primary (B, T, d), norm_weights (B, T) with zeros on padding
        guide_keys = self.weight @ squash(self.guide).t()             # W_r z_j, z_j = squash(G_j): (d, C)
        routing = torch.softmax(primary @ guide_keys, dim=-1)          # w_ij (B, T, C), Eq. 5
        self.keep("routing", routing)
        routing = routing * norm_weights.unsqueeze(-1) * self.scale    # s u_i w_ij
        capsules = routing.transpose(1, 2) @ primary                   # (B, C, d), Eq. 6
        return squash(self.dropout(capsules))


class DynamicRouting(Traceable, nn.Module):
    """Routing-by-agreement (Sabour et al. 2017) in place of Eqs. 5-6, for the CapsNet-DR ablation.
    Prediction vectors u_j|i = W_j p_i (one matrix per class capsule, shared over positions, since
    sentences vary in length); b_ij = 0; `iterations` times: c_ij = softmax_j(b_ij),
    v_j = squash(s * sum_i c_ij u_i u_j|i), b_ij += u_j|i . v_j. The aspect-aware weights u_i and the
    scale s are kept from CapsNet, so only the routing differs."""

    def __init__(self, capsule_size, num_classes, iterations, scale_init, dropout):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, capsule_size, capsule_size))
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.iterations = iterations
        self.dropout = nn.Dropout(dropout)
        for matrix in self.weight.data:
            nn.init.xavier_uniform_(matrix)

    def forward(self, primary, norm_weights):
        # primary (B, T, d), norm_weights (B, T) with zeros on padding
        predictions = torch.einsum("btd,cde->btce", primary, self.weight)        # u_j|i  (B, T, C, d)
        logits = predictions.new_zeros(predictions.shape[:3])                    # b_ij   (B, T, C)
        weights = norm_weights.unsqueeze(-1) * self.scale
        for _ in range(self.iterations - 1):
            totals = torch.einsum("btc,btce->bce", torch.softmax(logits, dim=-1) * weights, predictions)
            logits = logits + torch.einsum("btce,bce->btc", predictions, squash(totals))  # agreement
        coupling = torch.softmax(logits, dim=-1)                                 # final c_ij
        self.keep("coupling", coupling)
        totals = torch.einsum("btc,btce->bce", coupling * weights, predictions)
        return squash(self.dropout(totals))


def make_routing(kind, capsule_size, num_classes, scale_init, dropout, sentiment=None, iterations=3):
    """'guided' (the paper's capsule-guided routing, Eqs. 5-6) or 'dynamic' (CapsNet-DR)."""
    if kind == "guided":
        return CapsuleGuidedRouting(capsule_size, num_classes, scale_init, dropout, sentiment)
    return DynamicRouting(capsule_size, num_classes, iterations, scale_init, dropout)


class CapsuleHead(Traceable, nn.Module):
    """From encoder states and an aspect vector to class capsule lengths (Eqs. 3-6):
    primary capsules p_i = squash(W_p h_i + b_p), aspect capsule c = squash(W_a a + b_a),
    aspect-aware normalisation u_i (Eq. 4), then the routing (capsule-guided, Eqs. 5-6, by default,
    or dynamic)."""

    def __init__(self, state_size, aspect_size, capsule_size, num_classes, scale_init, dropout, sentiment=None,
                 routing="guided", iterations=3, capsule_dropout=0.0):
        super().__init__()
        self.primary = nn.Linear(state_size, capsule_size)
        self.aspect = nn.Linear(aspect_size, capsule_size)
        # dropout on W_p h_i and W_a a before the squash (the authors' CapsNet-BERT); 0 = none
        self.capsule_dropout = nn.Dropout(capsule_dropout) if capsule_dropout else nn.Identity()
        self.normalise = BilinearAttention(capsule_size, capsule_size)
        self.routing = make_routing(routing, capsule_size, num_classes, scale_init, dropout, sentiment, iterations)

    def forward(self, states, mask, aspect):
        primary = squash(self.capsule_dropout(self.primary(states)))       # p_i (B, T, d), Eq. 3
        aspect_capsule = squash(self.capsule_dropout(self.aspect(aspect)))  # c (B, d), Eq. 3
        norm_weights = self.normalise(primary, aspect_capsule, mask)       # u_i (B, T), Eq. 4
        self.keep("u", norm_weights)
        capsules = self.routing(primary, norm_weights)                     # v_j (B, C, d), Eqs. 5-6
        return capsules.norm(dim=-1)                    # (B, C) class scores = capsule lengths


def capsule_explanation(trace, head, field, show=None):
    """The heat maps of a capsule model (`head`: its CapsuleHead's module name in the trace): u_i
    (Eq. 4) and, per word, the routing weights to each sentiment capsule (Eq. 5 w_ij; for dynamic
    routing the final coupling coefficients c_ij)."""
    routing = trace[f"{head}.routing"]
    if "coupling" in routing:
        name = "c_ij: final coupling coefficient to each sentiment capsule (dynamic routing)"
        values = routing["coupling"]
    else:
        name, values = "w_ij: routing weight to each sentiment capsule (Eq. 5)", routing["routing"]
    return [Weights.single("u_i: normalisation weight (Eq. 4)", field, trace[head]["u"], "u", show),
            Weights(name, field, values, tuple(LABELS), show)]
