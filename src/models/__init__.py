"""Model registry: name -> class. Adding a model is one file plus one line here (and its YAML in
configs/models/). The contract every class follows is in base.py."""
from common.errors import UserError

from .aen import AEN
from .aoa_lstm import AOALSTM
from .at_lstm import ATLSTM
from .atae_lstm import ATAELSTM
from .base import ABSAModel, DataInfo
from .bert import BertPair
from .bilstm_attn import BiLSTMAttn
from .capsnet import CapsNet
from .capsnet_bert import CapsNetBert
from .gcae import GCAE
from .ian import IAN
from .lstm import LSTM
from .memnet import MemNet
from .td_lstm import TDLSTM
from .textcnn import TextCNN

MODELS = {
    "textcnn": TextCNN,
    "lstm": LSTM,
    "td-lstm": TDLSTM,
    "at-lstm": ATLSTM,
    "atae-lstm": ATAELSTM,
    "bilstm-attn": BiLSTMAttn,
    "ian": IAN,
    "aoa-lstm": AOALSTM,
    "aen": AEN,
    "memnet": MemNet,
    "gcae": GCAE,
    "capsnet": CapsNet,
    "capsnet-dr": CapsNet,            # configs/models/capsnet-dr.yaml: routing: dynamic
    "capsnet-bert": CapsNetBert,
    "capsnet-bert-dr": CapsNetBert,   # configs/models/capsnet-bert-dr.yaml: routing: dynamic
    "bert": BertPair,
}

__all__ = ["ABSAModel", "DataInfo", "MODELS", "build_model", "get_model_class"]


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
