"""Model registry: name -> class. Adding a model is one file plus one line here.

Every model class provides:
  - `tasks`: the tasks it supports ("atsa", "acsa")
  - `input_fields(task)` (a method of the built model): the processed fields it reads from a batch
  - `from_config(model_cfg, info)`: build it from its config section and a DataInfo
  - `forward(batch) -> (B, 3)` class scores (capsule lengths or logits); the largest wins
  - `loss(scores, labels)` and `probabilities(scores)`
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from src.errors import UserError

from .bert import BertPair
from .capsnet import CapsNet
from .capsnet_bert import CapsNetBert

MODELS = {
    "capsnet": CapsNet,
    "capsnet-bert": CapsNetBert,
    "bert": BertPair,
}


@dataclass
class DataInfo:
    """What a model needs to know about the data it is built for."""
    task: str
    num_classes: int = 3
    num_categories: int = 0
    embeddings: Optional[np.ndarray] = None   # (vocab, d) word vectors
    sentiment: Optional[np.ndarray] = None    # (3, d) sentiment-lexicon matrix


def get_model_class(name):
    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r} (registered: {', '.join(sorted(MODELS))})") from None


def build_model(model_cfg, info):
    cls = get_model_class(model_cfg["name"])
    if info.task not in cls.tasks:
        raise UserError(f"model {model_cfg['name']!r} does not support the {info.task.upper()} task")
    return cls.from_config(model_cfg, info)
