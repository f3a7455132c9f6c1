"""The model contract every registered model follows.

A model file defines one `ABSAModel` subclass with
  - `tasks`: the tasks it supports, a subset of ("atsa", "acsa");
  - `Config`: a frozen dataclass of its hyper-parameters (the `model:` section of its YAML in
    configs/models/; values live in the YAML, not in code; checks via common.schema.spec);
  - `inputs(cfg, task) -> InputSpec`: the fields it reads (data_process/fields.py; the first is its
    main sequence) and, for BERT models, how to build the BERT fields;
  - `__init__(cfg, info)`: build from its Config and a DataInfo;
  - `forward(batch) -> (B, num_classes)` scores (logits, or capsule lengths); the largest wins.
`loss` and `probabilities` default to cross-entropy on logits and their softmax; capsule models
override both. The trainer, data layer and predict only ever talk to this interface.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from data_process.fields import InputSpec

from ..losses import make_loss


@dataclass
class DataInfo:
    """What a model needs to know about the data it is built for."""
    task: str
    num_classes: int = 3
    num_categories: int = 0
    embeddings: Optional[np.ndarray] = None   # (vocab, d) word vectors, row 0 = PAD = zeros
    sentiment: Optional[np.ndarray] = None    # (3, d) sentiment-lexicon matrix (guide capsules)


class ABSAModel(nn.Module):
    tasks = ("atsa", "acsa")
    Config = None

    @classmethod
    def inputs(cls, cfg, task) -> InputSpec:
        raise NotImplementedError

    def __init__(self, cfg, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.task = info.task
        self.loss = make_loss(cfg.loss)

    def input_fields(self):
        return self.inputs(self.cfg, self.task).fields

    @staticmethod
    def probabilities(scores):
        return torch.softmax(scores, dim=-1)
