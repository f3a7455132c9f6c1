"""Self-contained checkpoints, the Python API (train/inference/api.py), --mode explain and TensorBoard events.

Two tiny runs (CapsNet and AT-LSTM on 40 MAMS-ATSA instances, two optimiser steps) are trained once
per module through `python main.py`; every output goes to tmp folders. The per-model weight checks
use untrained models on a small batch (no training needed to check that weights are distributions).
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import compose_cfg, json_lines, ok, run_main

TINY = ["--set", "data.limit=40", "--set", "train.max_steps=2", "--set", "train.epochs=1",
        "--set", "train.log_every=1", "--device", "cpu"]
SENTENCE = "The food was great but the service slow."
OTHER = "The decor is not special at all but their food is amazing."


def no_data_env():
    env = dict(os.environ)
    env.pop("ABSA_DATA_ROOT", None)
    return env


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    """{model: run folder} of two tiny runs, and the processed-data folder they share."""
    tmp = tmp_path_factory.mktemp("api")
    env = dict(os.environ, ABSA_DATA_ROOT=str(shared_data))
    paths = ["--set", f"paths.processed={tmp / 'processed'}", "--set", f"paths.runs={tmp / 'runs'}"]
    folders = {}
    for model in ("capsnet", "at-lstm"):
        ok(run_main("--mode", "train", "--model", model, "--dataset", "mams-atsa", *TINY, *paths, env=env))
        folders[model] = tmp / "runs" / "mams-atsa" / model / "seed0"
    return {"folders": folders, "processed": tmp / "processed", "paths": paths, "env": env}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["capsnet", "at-lstm"])
def test_predict_from_a_lone_checkpoint_matches_the_api(runs, model, tmp_path):
    from train.inference.api import SentimentClassifier
    lone = tmp_path / "empty"
    lone.mkdir()
    shutil.copy(runs["folders"][model] / "checkpoint.pt", lone / "model.pt")
    away = runs["processed"].with_name("processed-away")
    runs["processed"].rename(away)   # no processed data, no raw data root, an empty working folder
    try:
        result = ok(run_main("--mode", "predict", "--checkpoint", "model.pt", "--device", "cpu", "--text", SENTENCE,
                             "--aspect", "food", "--aspect", "service", cwd=lone, env=no_data_env()))
        clf = SentimentClassifier.load(lone / "model.pt", device="cpu")
        api = clf.predict([(SENTENCE, ["food", "service"]), {"text": OTHER, "aspects": ["decor"]}], batch_size=2)
    finally:
        away.rename(runs["processed"])
    cli = json_lines(result.stdout)
    assert [r["aspect"] for r in cli] == ["food", "service"]
    assert [r["label"] for r in cli] == [r["label"] for r in api[:2]]
    assert [r["scores"] for r in cli] == [r["scores"] for r in api[:2]]
    assert api[2]["aspect"] == "decor" and set(api[2]) == {"text", "aspect", "label", "scores"}
    assert sorted(p.name for p in lone.iterdir()) == ["model.pt"]   # nothing written beside it


def predict_error_line(checkpoint):
    """--mode predict with `checkpoint` and no data: exit 2 and exactly one "error:" line, returned."""
    result = run_main("--mode", "predict", "--checkpoint", str(checkpoint), "--text", SENTENCE,
                      "--aspect", "food", env=no_data_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


@pytest.mark.slow
def test_old_format_checkpoint_fails_with_one_error_line(runs, tmp_path):
    state = torch.load(runs["folders"]["capsnet"] / "checkpoint.pt", weights_only=True)
    for key in ("encoder", "data_info"):
        state.pop(key)
    state["format"] = 1
    torch.save(state, tmp_path / "old.pt")
    line = predict_error_line(tmp_path / "old.pt")
    assert "checkpoint format 1, this version reads format 2" in line and "re-train" in line


@pytest.mark.slow
def test_a_checkpoint_whose_stored_config_lacks_a_setting_fails_with_one_line(runs, tmp_path):
    state = torch.load(runs["folders"]["capsnet"] / "checkpoint.pt", weights_only=True)
    for section, key in (("train", "cuda_graph_limit"), ("model", "capsule_size")):
        changed = {**state, "config": {**state["config"], section: dict(state["config"][section])}}
        changed["config"][section].pop(key)
        torch.save(changed, tmp_path / f"{key}.pt")
        line = predict_error_line(tmp_path / f"{key}.pt")
        assert f"missing key {section}.{key}" in line and "re-train" in line


@pytest.mark.slow
def test_test_mode_still_checks_against_the_processed_data(runs):
    result = ok(run_main("--mode", "test", "--model", "capsnet", "--dataset", "mams-atsa", "--set", "data.limit=40",
                         *runs["paths"], "--device", "cpu", env=runs["env"]))
    metrics = json.loads((runs["folders"]["capsnet"] / "metrics.json").read_text())
    assert json_lines(result.stdout)[-1]["accuracy"] == metrics["test"]["accuracy"]


@pytest.mark.slow
def test_capsnet_explain_weights_and_png(runs, tmp_path):
    from train.inference.api import SentimentClassifier
    clf = SentimentClassifier.load(runs["folders"]["capsnet"] / "checkpoint.pt", device="cpu")
    record = clf.explain(SENTENCE, "service")
    assert record["label"] == clf.predict([(SENTENCE, "service")])[0]["label"]
    assert set(record["capsule_lengths"]) == {"positive", "negative", "neutral"}
    u_map, routing_map = record["weights"]
    assert u_map["words"] == ["the", "food", "was", "great", "but", "the", "<aspect>", "slow", "."]
    assert sum(u_map["rows"]["u"]) == pytest.approx(1.0, abs=1e-4)
    # the aspect marker's weight is reported apart from the words', with what it means
    assert u_map["marker"] == {"word": "<aspect>", "position": 6,
                               "rows": {"u": u_map["rows"]["u"][6]}}
    assert u_map["note"].startswith("<aspect> stands where the aspect term was") and \
        f"u {u_map['rows']['u'][6]:.2f}" in u_map["note"]
    routing = np.array([routing_map["rows"][label] for label in ("positive", "negative", "neutral")])
    assert routing.shape == (3, len(u_map["words"]))
    np.testing.assert_allclose(routing.sum(0), 1.0, atol=1e-4)   # each word's w_ij over the capsules
    # a batch of two lengths: u is a distribution over each row's real words and zero on padding
    _, _, batch, _, weights = clf.explain_batch([(SENTENCE, ["service"]), (OTHER, ["decor"])])
    u, lengths = weights[0].values[..., 0], batch["context_len"]
    assert int(lengths.min()) < u.size(1)
    for row, n in enumerate(lengths.tolist()):
        assert float(u[row, :n].sum()) == pytest.approx(1.0, abs=1e-5)
        assert float(u[row, n:].abs().sum()) == 0.0
    torch.testing.assert_close(weights[1].values.sum(-1), torch.ones_like(u))
    # the command line: JSON on stdout and the heat map under the run folder (default) or --out
    result = ok(run_main("--mode", "explain", "--checkpoint", str(runs["folders"]["capsnet"] / "checkpoint.pt"),
                         "--text", SENTENCE, "--aspect", "service", "--device", "cpu", env=no_data_env()))
    (printed,) = json_lines(result.stdout)
    png = runs["folders"]["capsnet"] / "explain" / "the-food-was-great-but-the-service-slow--service.png"
    assert printed["png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert printed["weights"] == record["weights"]
    out = tmp_path / "heat.png"
    ok(run_main("--mode", "explain", "--checkpoint", str(runs["folders"]["at-lstm"] / "checkpoint.pt"),
                "--text", SENTENCE, "--aspect", "food", "--out", str(out), "--device", "cpu", env=no_data_env()))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_at_lstm_explain_attention_sums_to_one(runs):
    from train.inference.api import SentimentClassifier
    clf = SentimentClassifier.load(runs["folders"]["at-lstm"] / "checkpoint.pt", device="cpu")
    (heat,) = clf.explain(SENTENCE, "food")["weights"]
    assert heat["words"] == ["the", "food", "was", "great", "but", "the", "service", "slow", "."]
    assert sum(heat["rows"]["alpha"]) == pytest.approx(1.0, abs=1e-4)
    assert "capsule_lengths" not in clf.explain(SENTENCE, "food")


def event_records(path):
    """The payloads of an event file: a sequence of records (length u64, crc u32, payload, crc u32)."""
    import struct
    data = path.read_bytes()
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        start = offset + 12
        if start + length + 4 > len(data):
            break  # a record still being written
        yield data[start:start + length]
        offset = start + length + 4


def read_scalars(path):
    """{tag: [(step, value), ...]} from one event file, each record's payload an `Event` protocol buffer
    (read without TensorBoard itself)."""
    from tensorboardX.proto.event_pb2 import Event
    scalars = {}
    for record in event_records(path):
        event = Event.FromString(record)
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.mark.slow
def test_tensorboard_event_file_holds_validation_accuracy(runs):
    from train.tensorboard import EVENT_GLOB
    folder = runs["folders"]["capsnet"]
    (events,) = sorted(folder.glob(EVENT_GLOB))
    scalars = read_scalars(events)
    history = json.loads((folder / "metrics.json").read_text())["history"]
    assert [v for _, v in scalars["val/accuracy"]] == pytest.approx([h["val_accuracy"] for h in history])
    assert {"train/loss", "train/lr", "val/loss", "val/macro_f1"} <= set(scalars)


# --- per model, untrained: tracing changes no score; every weight map is a distribution --------------

def tiny_classifier(model_name, task="atsa"):
    """A SentimentClassifier around an untrained model over a small vocabulary."""
    from data_process.encode import Encoder
    from data_process.vocab import SPECIALS, Vocab
    from src.models import DataInfo, build_model, get_model_class
    from train.inference.api import SentimentClassifier
    dataset = "mams-atsa" if task == "atsa" else "mams-acsa"
    cfg = compose_cfg(dataset, model_name)
    words = list(SPECIALS) + "the food was great but service slow . decor is not special at all their amazing".split()
    rng = np.random.default_rng(0)
    categories = cfg.data.categories
    info = DataInfo(task=task, num_categories=len(categories or ()),
                    embeddings=rng.normal(size=(len(words), 50)).astype(np.float32),
                    sentiment=rng.normal(size=(3, 50)).astype(np.float32))
    torch.manual_seed(0)
    model = build_model(model_name, cfg.model, info)
    spec = get_model_class(model_name).inputs(cfg.model, task)
    encoder = Encoder(Vocab(words), task, categories, True, spec.bert)
    return SentimentClassifier(model, encoder, cfg, torch.device("cpu"))


@pytest.mark.parametrize("model_name", ["capsnet-dr", "atae-lstm", "bilstm-attn", "ian", "aoa-lstm", "memnet", "aen"])
def test_attention_and_routing_weights_are_distributions(model_name):
    clf = tiny_classifier(model_name)
    _, _, batch, scores, weights = clf.explain_batch([(OTHER, ["decor", "food"]), (SENTENCE, ["food"])])
    torch.testing.assert_close(scores, clf.model(batch).float())   # tracing changes nothing
    assert weights
    for heat in weights:
        values, lengths = heat.values, batch[heat.field + "_len"]
        for row, n in enumerate(lengths.tolist()):
            assert float(values[row, n:].abs().sum()) == 0.0 or heat.rows == ("positive", "negative", "neutral")
            if heat.rows == ("positive", "negative", "neutral"):   # per word over the capsules
                torch.testing.assert_close(values[row, :n].sum(-1), torch.ones(n))
            else:   # per row over the words
                torch.testing.assert_close(values[row, :n].sum(0), torch.ones(len(heat.rows)))
    record = clf.explain(OTHER, "decor")
    assert all(len(v) == len(h["words"]) for h in record["weights"] for v in h["rows"].values())


def test_acsa_capsnet_explains_over_the_sentence():
    clf = tiny_classifier("capsnet", task="acsa")
    record = clf.explain(SENTENCE, "service")
    assert record["weights"][0]["words"][:3] == ["the", "food", "was"]
    assert sum(record["weights"][0]["rows"]["u"]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("model_name", ["textcnn", "lstm", "td-lstm", "gcae"])
def test_models_with_nothing_to_show_say_so_in_one_line(model_name):
    from common.errors import UserError
    clf = tiny_classifier(model_name)
    with pytest.raises(UserError, match="no attention or routing weights") as err:
        clf.explain(SENTENCE, "food")
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_capsnet_bert_explains_over_the_sentence_word_pieces():
    clf = tiny_classifier("capsnet-bert")
    record = clf.explain(SENTENCE, "service")
    u_map, routing_map = record["weights"]
    assert u_map["field"] == "bert_input_ids"
    assert u_map["words"][:3] == ["the", "food", "was"] and "[CLS]" not in u_map["words"]
    assert sum(u_map["rows"]["u"]) == pytest.approx(1.0, abs=1e-4)
    routing = np.array(list(routing_map["rows"].values()))
    np.testing.assert_allclose(routing.sum(0), 1.0, atol=1e-4)


@pytest.mark.slow
def test_a_missing_bert_backbone_is_one_error_line(tmp_path):
    from train.checkpoint import save_checkpoint
    clf = tiny_classifier("capsnet-bert")
    config = clf.cfg.to_dict()
    config["model"]["backbone"] = str(tmp_path / "no-such-backbone")
    encoder = dict(clf.encoder.state(), bert={"path": config["model"]["backbone"], "max_length": 64})
    data_info = {"task": "atsa", "num_classes": 3, "num_categories": 0, "embeddings_shape": [len(encoder["words"]), 50],
                 "sentiment_shape": [3, 50]}
    save_checkpoint(tmp_path / "bert.pt", clf.model, config, {}, {"encoder": encoder, "data_info": data_info})
    line = predict_error_line(tmp_path / "bert.pt")
    assert "cannot load its backbone" in line and "no-such-backbone" in line


def test_predict_batches_by_length_but_answers_in_request_order():
    clf = tiny_classifier("capsnet")
    items = [("the food was great but service slow .", ["food", "service"]), ("decor is not special at all", ["decor"]),
             ("their food is amazing", ["food"]), ("the decor was great but the food at all slow .", ["food", "decor"])]
    together = clf.predict(items, batch_size=2)   # sorted by length, in batches of two
    one_by_one = [r for text, aspects in items for a in aspects for r in clf.predict([(text, [a])])]
    assert [(r["text"], r["aspect"]) for r in together] == [(t, a) for t, aspects in items for a in aspects]
    for a, b in zip(together, one_by_one):
        assert a["label"] == b["label"]
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
