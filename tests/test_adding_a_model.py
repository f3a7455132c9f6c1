"""Adding a model is what the README's "Adding a model" paragraph says: a module with an ABSAModel
subclass under `@register("name")` (imported, as the registry's one import line does), and a YAML in
configs/models/. Here a throwaway model, written to a tmp module with a YAML in a copy of configs/,
trains through the real loop (train_job), leaves a checkpoint, and predicts from it."""
import importlib.util
import json
import shutil
import sys
import textwrap

import pytest

from conftest import sentence_xml, term

MODEL_MODULE = '''
from dataclasses import dataclass

import torch.nn as nn

from common.schema import spec
from data_process.fields import InputSpec
from src.blocks import WordEmbedding
from torch.nn import Dropout
from src.losses import LossConfig
from src.masking import sequence_mask
from src.models import ABSAModel, DataInfo, register


@register("mean-of-words")
class MeanOfWords(ABSAModel):
    """scores = W dropout(mean of the sentence's word vectors) + b (aspect-blind)."""
    tasks = ("atsa", "acsa")

    @dataclass(frozen=True)
    class Config:
        dropout: float = spec(min=0.0, max=1.0)
        loss: LossConfig

    @classmethod
    def inputs(cls, cfg, task):
        return InputSpec(fields=("sentence",))

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        self.embedding = WordEmbedding(info.embeddings, freeze=False)
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(self.embedding.embedding_dim, info.num_classes)

    def forward(self, batch):
        words = self.embedding(batch["sentence"])
        mask = sequence_mask(batch["sentence_len"], words.size(1)).unsqueeze(-1)
        mean = (words * mask).sum(1) / batch["sentence_len"].clamp(min=1).unsqueeze(-1)
        return self.output(self.dropout(mean))
'''

MODEL_YAML = """\
model:
  dropout: 0.1
  loss: {name: cross_entropy}
train:
  epochs: 1
  batch_size: 4
"""

TEXTS = ["The food was great but the service slow.", "The decor is not special at all.",
         "Prices are fair for the menu they offer.", "The staff was friendly and the food amazing."]


@pytest.fixture
def added_model(tmp_path, monkeypatch):
    """The throwaway model registered from its own module, its YAML in a copy of configs/."""
    import train.config
    from src.models import MODELS
    configs = tmp_path / "configs"
    shutil.copytree(train.config.CONFIG_ROOT, configs)
    (configs / "models" / "mean-of-words.yaml").write_text(MODEL_YAML)
    monkeypatch.setattr(train.config, "CONFIG_ROOT", configs)
    path = tmp_path / "mean_of_words.py"
    path.write_text(textwrap.dedent(MODEL_MODULE))
    spec = importlib.util.spec_from_file_location("mean_of_words", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)   # what the registry's import line does
        yield MODELS["mean-of-words"]
    finally:
        MODELS.pop("mean-of-words", None)
        sys.modules.pop("mean_of_words", None)


@pytest.mark.slow
def test_a_model_added_as_the_readme_says_trains_checkpoints_and_predicts(added_model, xml_writer, tmp_path):
    from src.models import get_model_class
    from train.config import compose
    from train.inference.api import SentimentClassifier
    from train.run import train_job
    assert get_model_class("mean-of-words") is added_model
    sentences = [sentence_xml(text, terms=[term(text, word, polarity)])
                 for text, word, polarity in zip(TEXTS * 3, ["food", "decor", "menu", "staff"] * 3,
                                                 ["positive", "negative", "neutral", "positive"] * 3)]
    xml_writer("mine/train.xml", sentences)
    xml_writer("mine/test.xml", sentences[:4])
    cfg = compose("mean-of-words", str(tmp_path / "mine"), None,
                  [f"paths.processed={tmp_path / 'processed'}", f"paths.runs={tmp_path / 'runs'}",
                   "train.max_steps=1", "train.tensorboard=false"])
    assert cfg.model.dropout == 0.1 and cfg.train.batch_size == 4   # its YAML, composed like any model's
    summary = train_job(cfg, seed=0, device_name="cpu")
    [folder] = (tmp_path / "runs").glob("*/mean-of-words/seed0")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == summary["accuracy"] and 0.0 <= summary["accuracy"] <= 100.0
    clf = SentimentClassifier.load(folder / "checkpoint.pt")
    assert type(clf.model) is added_model
    [record] = clf.predict([("The food was great.", ["food"])])
    assert record["label"] in ("positive", "negative", "neutral")
    assert sum(record["scores"].values()) == pytest.approx(1.0, abs=1e-3)   # scores are rounded
    assert not added_model.explains()   # it keeps no attention weights, so --mode explain refuses it
