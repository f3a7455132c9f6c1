"""Model registry: name -> class. Adding a model is one file (an ABSAModel subclass with
`@register("name")`, base.py) plus its import line here, and its YAML in configs/models/."""
from common.errors import UserError

from . import (  # noqa: F401 (they register)
    aen,
    aoa_lstm,
    at_lstm,
    atae_lstm,
    bert,
    bilstm_attn,
    capsnet,
    capsnet_bert,
    gcae,
    ian,
    lstm,
    memnet,
    td_lstm,
    textcnn,
)
from .base import MODELS, ABSAModel, DataInfo, register

__all__ = ["ABSAModel", "DataInfo", "MODELS", "build_model", "get_model_class", "register"]


def get_model_class(name):
    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r} (registered: {', '.join(sorted(MODELS))})") from None


def build_model(name, cfg, info):
    """A registered model built from its Config and a DataInfo."""
    cls = get_model_class(name)
    if info.task not in cls.tasks:
        raise UserError(f"model {name!r} does not support the {info.task.upper()} task "
                        f"(it supports: {', '.join(t.upper() for t in cls.tasks)})")
    return cls(cfg, info)
