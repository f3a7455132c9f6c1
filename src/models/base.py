"""The model contract every registered model follows, and the registry.

A model file defines one `ABSAModel` subclass, registered under its config names with
`@register("name", ...)` (one name per configs/models/<name>.yaml that builds it), with
  - `tasks`: the tasks it supports, a subset of ("atsa", "acsa");
  - `Config`: a frozen dataclass of its hyper-parameters (the `model:` section of its YAML in
    configs/models/; values live in the YAML, not in code; checks via common.schema.spec);
  - `inputs(cfg, task) -> InputSpec`: the fields it reads (data_process/fields.py; the first is its
    main sequence) and, for BERT models, how to build the BERT fields;
  - `__init__(cfg, info)`: build from its Config and a DataInfo;
  - `forward(batch) -> (B, num_classes)` scores (logits, or capsule lengths); the largest wins.
`cuda_graph_safe = True` lets the trainer replay its training steps from CUDA graphs (it must then
never read a device value on the host, e.g. lengths for packing). `loss` is built from the
config's `model.loss` section (src/losses.py: margin or cross-entropy); `probabilities` defaults to
the softmax of the scores, and capsule models override it (lengths normalised). Optionally,
`explanation(trace, batch) -> [Weights]` turns the weights its Traceable modules kept during
`explain(batch)` (src/explain.py) into heat maps; models without attention or routing keep the
default (nothing to show). The trainer, data layer and predict only ever talk to this interface.
"""
import contextlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from data_process.fields import InputSpec

from ..explain import Traceable
from ..losses import make_loss

MODELS = {}   # config name -> model class, filled by @register as the model modules are imported


def register(*names):
    """Class decorator: `build_model(name, ...)` builds this class for each of `names`."""
    def add(cls):
        for name in names:
            if MODELS.setdefault(name, cls) is not cls:
                raise ValueError(f"model name {name!r} is registered twice ({MODELS[name].__name__}, {cls.__name__})")
        return cls
    return add


@dataclass
class DataInfo:
    """What a model needs to know about the data it is built for."""
    task: str
    num_classes: int = 3
    num_categories: int = 0
    embeddings: Optional[np.ndarray] = None   # (vocab, d) word vectors, row 0 = PAD = zeros
    sentiment: Optional[np.ndarray] = None    # (3, d) sentiment-lexicon matrix (guide capsules)


class ABSAModel(Traceable, nn.Module):
    tasks = ("atsa", "acsa")
    Config = None
    score_kind = "logits"   # what forward's scores are ("capsule lengths" for capsule models)
    cuda_graph_safe = False  # a training step has no host synchronisation and no data-dependent
                             # shape, so CUDA graphs may record it (train/cuda_graphs.py)

    @classmethod
    def inputs(cls, cfg, task) -> InputSpec:
        raise NotImplementedError

    def __init__(self, cfg, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.task = info.task
        self.loss = make_loss(cfg.loss)

    def parameter_groups(self, lr):
        """The optimiser's parameter groups at the base learning rate `lr` (one group by default)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def input_fields(self):
        return self.inputs(self.cfg, self.task).fields

    @staticmethod
    def probabilities(scores):
        return torch.softmax(scores, dim=-1)

    @contextlib.contextmanager
    def tracing(self):
        """Within: every Traceable module (the model itself included) keeps what it computes;
        yields {module name ("" = the model): {name: tensor}}."""
        trace = {}
        modules = [(name, m) for name, m in self.named_modules() if isinstance(m, Traceable)]
        for name, module in modules:
            module._trace = trace.setdefault(name, {})
        try:
            yield trace
        finally:
            for _, module in modules:
                module._trace = None

    @classmethod
    def explains(cls):
        """Whether the model has weights to show (it overrides `explanation`)."""
        return cls.explanation is not ABSAModel.explanation

    @torch.no_grad()
    def explain(self, batch):
        """(scores (B, C), [Weights]) for a batch; the scores are forward's."""
        with self.tracing() as trace:
            scores = self(batch)
        return scores, self.explanation(trace, batch)

    def explanation(self, trace, batch):
        """The heat maps (a list of src.explain.Weights) from what the modules kept; none by default."""
        return []
