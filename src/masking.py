"""Masks and pooling over the real (non-padding) positions of a padded batch, for every model.

A batch holds sentences of different lengths padded to one width; these helpers make sure padding
never changes a result: padded positions get no weight, no mean share and never win a max.
"""
import torch


def sequence_mask(lengths, width):
    """(B, width) bool: True on the first lengths[b] positions of row b."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def masked_softmax(scores, mask, dim=-1):
    """Softmax over `dim` where mask is True; masked positions get exactly zero weight."""
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    return weights.masked_fill(~mask, 0.0)


def masked_mean(vectors, mask):
    """Mean over dim 1 of (B, T, d) vectors where mask (B, T) is nonzero; zeros when none is."""
    mask = mask.unsqueeze(-1).to(vectors.dtype)
    return (vectors * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def masked_max(values, mask):
    """Max over dim 1 of (B, T, C) values where mask (B, T) is True; zeros for a row with none."""
    filled = values.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    best = filled.max(dim=1).values
    return torch.where(mask.any(dim=1, keepdim=True), best, torch.zeros_like(best))


def attend(states, scores, mask):
    """Softmax of scores (B, T) over the real positions, and the weighted sum of states (B, T, H).
    Returns (summary (B, H), weights (B, T)); padded positions get exactly zero weight."""
    weights = masked_softmax(scores, mask, dim=1)
    return torch.bmm(weights.unsqueeze(1), states).squeeze(1), weights
