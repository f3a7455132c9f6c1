"""Pretrained folders (train/inference/pretrained.py): a run exported with --mode export loads back with
identical predictions; damaged folders are one error; the models shipped in pretrained/ answer when the
user has trained none, say so, and reproduce their recorded test accuracy."""
import json
import os
import subprocess
import sys

import pytest
import yaml
from test_reliability import TEXTS, env, trained  # noqa: F401  (fixtures)

from common.errors import UserError
from conftest import REPO_ROOT, find_raw_data, json_lines, ok
from train.inference.api import SentimentClassifier
from train.inference.pretrained import FILES, SHIPPED, load_pretrained

SENTENCE = "The decor is not special at all but their food is amazing."
SHIPPED_MODELS = sorted(p for p in SHIPPED.iterdir() if (p / "config.json").is_file()) if SHIPPED.is_dir() else []


def card_metadata(folder):
    """The YAML block at the top of a model card."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_an_exported_run_loads_back_with_identical_predictions_and_a_model_card(trained, tmp_path):  # noqa: F811
    cfg, folder = trained
    out = tmp_path / "exported"
    result = subprocess.run([sys.executable, "main.py", "--mode", "export", "--checkpoint",
                             str(folder / "checkpoint.pt"), "--out", str(out)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert "exported" in ok(result).stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    items = [(text, [term for term, _ in aspects]) for text, aspects in TEXTS]
    before = SentimentClassifier.load(folder / "checkpoint.pt").predict(items)
    after = SentimentClassifier.from_pretrained(out).predict(items)
    assert after == before
    metrics = json.loads((folder / "metrics.json").read_text())
    [entry] = card_metadata(out)["model-index"]
    values = {m["type"]: m["value"] for m in entry["results"][0]["metrics"]}
    assert values == {"accuracy": metrics["test"]["accuracy"], "f1": metrics["test"]["macro_f1"]}


def test_export_refuses_a_folder_that_holds_other_files(trained, tmp_path):  # noqa: F811
    _, folder = trained
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"mine: exists and is not a pretrained model folder"):
        SentimentClassifier.load(folder / "checkpoint.pt").save_pretrained(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_folder_holding_a_pretrained_model_is_replaced_only_when_asked(trained, tmp_path):  # noqa: F811
    _, folder = trained
    clf = SentimentClassifier.load(folder / "checkpoint.pt")
    out = clf.save_pretrained(tmp_path / "model")
    (out / "config.json").write_text((out / "config.json").read_text().replace('"seed": 0', '"seed": 7'))
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    other = {p.name: p.read_bytes() for p in out.iterdir()}     # stands for another model's folder
    with pytest.raises(UserError, match=r"model: holds a pretrained model already; --overwrite"):
        clf.save_pretrained(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == other
    result = subprocess.run([sys.executable, "main.py", "--mode", "export", "--checkpoint",
                             str(folder / "checkpoint.pt"), "--out", str(out)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("--overwrite (overwrite=True) replaces it, "
                                                           "or name a new folder")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == other
    clf.save_pretrained(out, overwrite=True)
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]    # no staging folder left behind


def test_a_damaged_pretrained_folder_is_one_error_naming_the_file(trained, tmp_path):  # noqa: F811
    _, folder = trained
    out = SentimentClassifier.load(folder / "checkpoint.pt").save_pretrained(tmp_path / "model")
    (out / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes()[:100])
    with pytest.raises(UserError, match=rf"{out / 'model.safetensors'}: not readable weights"):
        load_pretrained(out)
    (out / "config.json").write_text("{\"format\": 1")
    with pytest.raises(UserError, match=rf"{out / 'config.json'}: the pretrained model config is not valid JSON"):
        load_pretrained(out)
    with pytest.raises(UserError, match=rf"{tmp_path / 'nowhere'}: pretrained model folder not found"):
        SentimentClassifier.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("file,edit,fragment", [
    ("encoder.json", lambda e: e.update(words=5), '"words" is not a list of strings'),
    ("encoder.json", lambda e: e.update(task="xyz"), '"task" is \'xyz\', not "atsa" or "acsa"'),
    ("encoder.json", lambda e: e.update(words=e["words"][:3]), '"words" holds 3 words, but the weights have'),
    ("encoder.json", lambda e: e.update(words=e["words"][:-1] + e["words"][:1]), '"words" holds a word twice'),
    ("encoder.json", lambda e: e.update(task="acsa", categories=["food"]), '"task" is acsa, but the model was trained'),
    ("encoder.json", lambda e: e.update(lowercase="yes"), '"lowercase" is not true or false'),
    ("config.json", lambda c: c.pop("data_info"), "its data_info (the shapes of the stored arrays) is missing"),
    ("config.json", lambda c: c["data_info"].update(embeddings_shape=[-1, 8]), "its data_info"),
])
def test_a_hand_edited_encoder_or_data_shape_is_one_error_naming_the_file(trained, tmp_path, file, edit,  # noqa: F811
                                                                          fragment):
    out = SentimentClassifier.load(trained[1] / "checkpoint.pt").save_pretrained(tmp_path / "model")
    stored = json.loads((out / file).read_text())
    edit(stored)
    (out / file).write_text(json.dumps(stored))
    with pytest.raises(UserError) as error:
        SentimentClassifier.from_pretrained(out)
    assert str(error.value).startswith(f"{out / file}: ") and fragment in str(error.value)
    assert "damaged" in str(error.value)


def test_a_named_checkpoint_that_is_missing_gets_no_hint_to_name_one(tmp_path):
    with pytest.raises(UserError) as error:
        SentimentClassifier.load(tmp_path / "nope.pt")
    assert str(error.value) == f"{tmp_path / 'nope.pt'}: checkpoint not found"


# ---------------------------------------------------------------- the shipped models

def test_the_project_ships_capsnet_for_both_mams_tasks_with_cards():
    assert [p.name for p in SHIPPED_MODELS] == ["capsnet-mams-acsa", "capsnet-mams-atsa"]
    for folder in SHIPPED_MODELS:
        assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
        [entry] = card_metadata(folder)["model-index"]
        assert entry["name"] == folder.name
        assert sum(p.stat().st_size for p in folder.iterdir()) < 6 * 2**20


@pytest.mark.parametrize("file", ["model.safetensors", "config.json"])
def test_a_file_of_a_pretrained_folder_named_as_the_checkpoint_is_told_to_name_the_folder(file):
    folder = SHIPPED / "capsnet-mams-atsa"
    with pytest.raises(UserError, match=rf"{folder / file}: a file of the pretrained model folder {folder}; "
                                        r"name the folder itself"):
        SentimentClassifier.load(folder / file)


def test_predict_without_a_trained_run_answers_from_the_shipped_model_and_says_so(tmp_path):
    result = subprocess.run([sys.executable, "main.py", "--mode", "predict", "--text", SENTENCE, "--aspect", "decor",
                             "--aspect", "food", "--set", f"paths.runs={tmp_path / 'runs'}"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    records = json_lines(ok(result).stdout)
    assert [(r["aspect"], r["label"]) for r in records] == [("decor", "negative"), ("food", "positive")]
    assert "answering with the shipped model pretrained/capsnet-mams-atsa" in result.stderr
    assert not (tmp_path / "runs").exists()                 # nothing was trained or written


@pytest.mark.slow
@pytest.mark.parametrize("name", ["capsnet-mams-atsa", "capsnet-mams-acsa"])
def test_a_shipped_model_reproduces_its_recorded_test_accuracy(name, tmp_path):
    root = find_raw_data()
    if root is None:
        pytest.skip("no raw data: set ABSA_DATA_ROOT, or put it under data/raw or ../shared/data")
    folder = SHIPPED / name
    recorded = json.loads((folder / "config.json").read_text())["test"]
    dataset = name.split("-", 1)[1]
    result = subprocess.run([sys.executable, "main.py", "--mode", "test", "--dataset", dataset, "--checkpoint",
                             str(folder), "--set", f"paths.processed={tmp_path / 'processed'}",
                             "--set", f"paths.runs={tmp_path / 'runs'}"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=900, env={**os.environ, "ABSA_DATA_ROOT": str(root)})
    measured = json_lines(ok(result).stdout)[-1]
    assert (measured["accuracy"], measured["macro_f1"]) == (recorded["accuracy"], recorded["macro_f1"])
