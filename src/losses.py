"""Losses, chosen by a model's `loss` config section (one interface: loss(scores, labels) -> scalar)."""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from common.schema import spec


@dataclass(frozen=True)
class LossConfig:
    """`margin` (Eq. 7, on capsule lengths) or `cross_entropy` (on logits). Margin takes m+, m-
    and lambda; cross-entropy may take label smoothing (AEN's label-smoothing regularisation)."""
    name: str = spec(choices=("margin", "cross_entropy"))
    positive: Optional[float] = None
    negative: Optional[float] = None
    weight: Optional[float] = None
    label_smoothing: float = 0.0

    def __post_init__(self):
        from common.errors import UserError
        if self.name == "margin" and None in (self.positive, self.negative, self.weight):
            raise UserError("model.loss: the margin loss needs positive, negative and weight (Eq. 7)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserError(f"model.loss.label_smoothing={self.label_smoothing} must be in [0, 1)")


def margin_loss(lengths, labels, positive=0.9, negative=0.1, weight=0.6):
    """Eq. 7: sum_k T_k max(0, m+ - |v_k|)^2 + lambda (1 - T_k) max(0, |v_k| - m-)^2, batch mean."""
    target = F.one_hot(labels, lengths.size(-1)).to(lengths.dtype)
    present = target * torch.clamp(positive - lengths, min=0) ** 2
    absent = weight * (1 - target) * torch.clamp(lengths - negative, min=0) ** 2
    return (present + absent).sum(dim=-1).mean()


def make_loss(cfg: LossConfig):
    if cfg.name == "margin":
        return lambda scores, labels: margin_loss(scores, labels, cfg.positive, cfg.negative, cfg.weight)
    if cfg.name != "cross_entropy":
        raise ValueError(f"unknown loss {cfg.name!r}")
    smoothing = cfg.label_smoothing
    return lambda logits, labels: F.cross_entropy(logits, labels, label_smoothing=smoothing)
