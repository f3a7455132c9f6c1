"""One short real run per registered model and task: train on a slice of real MAMS, write the run
folder (metrics.json, predictions.jsonl), and predict with the saved checkpoint through the API."""
import json

import pytest

from conftest import DATASET_OF, model_tasks
from train.config import compose
from train.inference.api import SentimentClassifier
from train.run import train_job

pytestmark = pytest.mark.slow   # a real training per model and task
CELLS = model_tasks()
LIMIT = 48


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    return tmp_path_factory.mktemp("processed")  # shared by the runs: each dataset is preprocessed once


@pytest.mark.parametrize("name,task", CELLS)
def test_model_trains_on_a_slice_of_real_mams_and_predicts_from_its_checkpoint(name, task, shared_data, processed,
                                                                               tmp_path, tiny_bert, monkeypatch):
    monkeypatch.setenv("ABSA_DATA_ROOT", str(shared_data))
    overrides = [f"paths.processed={processed}", f"paths.runs={tmp_path / 'runs'}", f"data.limit={LIMIT}",
                 "train.epochs=1", "train.max_steps=2", "train.batch_size=16", "train.tensorboard=false"]
    if hasattr(compose(name, DATASET_OF[task]).model, "backbone"):  # BERT models: the tiny test backbone
        overrides.append(f"model.backbone={tiny_bert}")
    cfg = compose(name, DATASET_OF[task], None, overrides)
    summary = train_job(cfg, seed=0, device_name="cpu")
    folder = tmp_path / "runs" / DATASET_OF[task] / name / "seed0"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == summary["accuracy"] and 0.0 <= summary["accuracy"] <= 100.0
    assert len((folder / "predictions.jsonl").read_text().splitlines()) == LIMIT
    # "food" is a term of the text (ATSA) and a MAMS category (ACSA)
    [record] = SentimentClassifier.load(folder / "checkpoint.pt").predict([("The food was great.", ["food"])])
    assert record["label"] in ("positive", "negative", "neutral")
    assert sum(record["scores"].values()) == pytest.approx(1.0, abs=1e-3)
