"""What a model can show about one prediction (--mode explain): the weights it computed per word.

Modules that compute attention or routing weights are `Traceable`: inside `ABSAModel.tracing()` they
keep detached copies of those weights (`keep(name, tensor)`); outside it `keep` does nothing, so
tracing never changes a score. A model turns what its modules kept into a list of `Weights`
(`ABSAModel.explanation`), each one heat map over the positions of one batch field.
"""
from dataclasses import dataclass
from typing import Optional

import torch


class Traceable:
    """Mixin for nn.Modules that can keep intermediate weights for explanations."""

    _trace = None   # a dict while the owning model traces, else None

    def keep(self, name, value):
        if self._trace is not None:
            self._trace[name] = value.detach()


@dataclass
class Weights:
    """One heat map: `values` (B, T, R) over the T positions of the batch field `field`, one row per
    name in `rows`. Shown on the positions where the (B, T) batch field `show` is nonzero, or (None)
    on the field's first `<field>_len` positions."""
    name: str
    field: str
    values: torch.Tensor
    rows: tuple
    show: Optional[str] = None

    @classmethod
    def single(cls, name, field, values, row, show=None):
        """A one-row heat map from (B, T) values."""
        return cls(name, field, values.unsqueeze(-1), (row,), show)
