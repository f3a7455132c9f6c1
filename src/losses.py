"""Losses, selected by name in a model's config."""
import torch
import torch.nn.functional as F


def margin_loss(lengths, labels, positive=0.9, negative=0.1, weight=0.6):
    """Eq. 7: sum_k T_k max(0, m+ - |v_k|)^2 + lambda (1 - T_k) max(0, |v_k| - m-)^2, batch mean."""
    target = F.one_hot(labels, lengths.size(-1)).to(lengths.dtype)
    present = target * torch.clamp(positive - lengths, min=0) ** 2
    absent = weight * (1 - target) * torch.clamp(lengths - negative, min=0) ** 2
    return (present + absent).sum(dim=-1).mean()


def cross_entropy(logits, labels):
    return F.cross_entropy(logits, labels)


def make_loss(spec):
    """spec: {'name': 'margin', ...margin params} or {'name': 'cross_entropy'}."""
    spec = dict(spec or {"name": "cross_entropy"})
    name = spec.pop("name")
    if name == "margin":
        return lambda scores, labels: margin_loss(scores, labels, **spec)
    if name == "cross_entropy":
        return cross_entropy
    raise ValueError(f"unknown loss {name!r}")
