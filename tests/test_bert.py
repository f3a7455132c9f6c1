"""CapsNet-BERT and the BERT baseline, with a tiny randomly initialised BERT saved to a temporary
folder (nothing is downloaded)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.errors import UserError
from common.schema import build as build_config, to_dict
from data_process.bert_inputs import aspect_words, build_pairs, load_tokenizer, resolve_bert_path
from data_process.xml_reader import Instance
from src.dataset import ABSADataset
from src.models import DataInfo, build_model, get_model_class
from train.config import compose


def pairs(folder, texts, aspects, max_length=32):
    instances = [Instance(sentence_id=k, text=text, aspect=aspect, start=-1, end=-1, label=0)
                 for k, (text, aspect) in enumerate(zip(texts, aspects))]
    return build_pairs(load_tokenizer(folder), instances, "atsa", max_length)


def test_pair_inputs_have_segment_zero_for_sentence_and_one_for_aspect(tiny_bert):
    # a second, longer pair so that the first row has padding (arrays are trimmed to their longest row)
    arrays, truncated = pairs(tiny_bert, ["the food is great", "the decor is not special at all but their food"],
                              ["food", "decor"])
    tok = load_tokenizer(tiny_bert)
    n = int(arrays["bert_len"][0])
    assert n < arrays["bert_input_ids"].shape[1]
    ids = arrays["bert_input_ids"][0, :n].tolist()
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    sentence = tok("the food is great", add_special_tokens=False)["input_ids"]
    assert ids[1:1 + len(sentence)] == sentence and ids[1 + len(sentence)] == tok.sep_token_id
    types = arrays["bert_token_type_ids"][0]
    assert types[:len(sentence) + 2].tolist() == [0] * (len(sentence) + 2)
    assert types[len(sentence) + 2:n].tolist() == [1] * (n - len(sentence) - 2)
    assert types[n:].sum() == 0 and truncated == 0


def test_truncation_cuts_the_sentence_and_keeps_the_whole_aspect(tiny_bert):
    long_text = " ".join(["the food is great"] * 20)
    arrays, truncated = pairs(tiny_bert, [long_text], ["decor service"], max_length=16)
    tok = load_tokenizer(tiny_bert)
    aspect_ids = tok("decor service", add_special_tokens=False)["input_ids"]
    row = arrays["bert_input_ids"][0].tolist()
    assert truncated == 1 and arrays["bert_len"][0] == 16
    assert row[16 - 1 - len(aspect_ids):15] == aspect_ids and row[15] == tok.sep_token_id


def test_sentence_mask_covers_only_sentence_pieces_not_cls_sep_aspect_or_padding(tiny_bert):
    arrays, _ = pairs(tiny_bert, ["the food is great", "service was slow but staff friendly"],
                      ["food", "staff"], max_length=24)
    tok = load_tokenizer(tiny_bert)
    special = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    for k in range(2):
        sentence_mask, aspect_mask = arrays["bert_sentence_mask"][k], arrays["bert_aspect_mask"][k]
        ids, types = arrays["bert_input_ids"][k], arrays["bert_token_type_ids"][k]
        assert not (sentence_mask & aspect_mask).any()
        assert all(ids[i] not in special for i in np.flatnonzero(sentence_mask))
        assert (types[sentence_mask == 1] == 0).all() and (types[aspect_mask == 1] == 1).all()
        assert sentence_mask[int(arrays["bert_len"][k]):].sum() == 0


def test_acsa_category_is_written_as_words():
    assert aspect_words("anecdotes/miscellaneous", "acsa") == "anecdotes miscellaneous"
    assert aspect_words("peanut butter roll", "atsa") == "peanut butter roll"


def _batch(folder, fields, extra_pad=0):
    arrays, _ = pairs(folder, ["the decor is not special at all but their food is amazing",
                               "service was slow", "great prices"], ["decor", "service", "prices"], max_length=40)
    arrays["label"] = np.array([1, 1, 0])
    batch = ABSADataset(arrays, fields).collate([0, 1, 2])
    if extra_pad:
        for name in [f for f in batch if f.startswith("bert_") and f != "bert_len"]:
            batch[name] = torch.cat([batch[name], torch.zeros(3, extra_pad, dtype=batch[name].dtype)], dim=1)
    return batch


def _model(name, folder, dropout=0.1):
    cfg = to_dict(compose(name, "mams-atsa").model)  # the model's YAML for keys not set here
    cfg.update({"bert_path": str(folder), "max_length": 40, "dropout": dropout})
    if name == "capsnet-bert":
        cfg.update(capsule_size=16, routing_scale=5.0, routing="guided",
                   loss={"name": "margin", "positive": 0.9, "negative": 0.1, "weight": 0.6})
    else:
        cfg.update(loss={"name": "cross_entropy"})
    cfg = build_config(get_model_class(name).Config, cfg, prefix="model")
    torch.manual_seed(0)
    return build_model(name, cfg, DataInfo(task="atsa", sentiment=np.random.default_rng(0).normal(size=(3, 8))))


@pytest.mark.parametrize("name", ["capsnet-bert", "bert"])
def test_extra_padding_does_not_change_eval_outputs(tiny_bert, name):
    model = _model(name, tiny_bert).eval()
    fields = model.input_fields()
    with torch.no_grad():
        plain = model(_batch(tiny_bert, fields))
        padded = model(_batch(tiny_bert, fields, extra_pad=7))
    assert torch.allclose(plain, padded, atol=1e-5)


@pytest.mark.parametrize("name", ["capsnet-bert", "bert"])
def test_one_optimiser_step_lowers_the_loss_on_a_fixed_batch(tiny_bert, name):
    model = _model(name, tiny_bert, dropout=0.0)
    model.bert.config.hidden_dropout_prob = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    batch = _batch(tiny_bert, model.input_fields())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = model.loss(model(batch), batch["label"])
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    after = model.loss(model(batch), batch["label"])
    assert after.item() < before.item()


def test_hidden_size_is_read_from_the_backbone(tiny_bert):
    model = _model("capsnet-bert", tiny_bert)
    assert model.head.primary.in_features == 32
    assert _model("bert", tiny_bert).classifier.in_features == 32


def test_missing_or_non_bert_backbone_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="BERT folder not found"):
        resolve_bert_path(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(UserError, match="not a BERT-architecture model"):
        resolve_bert_path(tmp_path)


def test_default_backbone_is_the_packaged_minilm_bert():
    folder = resolve_bert_path("default")
    assert json.loads((folder / "config.json").read_text())["hidden_size"] == 384


def _run(args, env, cwd):
    return subprocess.run([sys.executable, "main.py", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("name,dataset,aspects", [("capsnet-bert", "mams-atsa", ["decor", "food"]),
                                                    ("bert", "mams-acsa", ["ambience", "food"])])
def test_bert_models_train_test_and_predict_end_to_end_on_real_mams(tiny_bert, shared_data, repo_root, tmp_path,
                                                                    name, dataset, aspects):
    env = dict(os.environ, ABSA_DATA_ROOT=str(shared_data))
    common = ["--model", name, "--dataset", dataset, "--device", "cpu", "--set", f"model.bert_path={tiny_bert}",
              "--set", f"paths.processed={tmp_path / 'processed'}", "--set", f"paths.runs={tmp_path / 'runs'}"]
    train = _run(["--mode", "train", *common, "--set", "data.limit=64", "--set", "train.max_steps=3",
                  "--set", "train.epochs=1"], env, repo_root)
    assert train.returncode == 0, train.stderr
    run = tmp_path / "runs" / dataset / name / "seed0"
    written = {p.name for p in run.iterdir()}
    assert {"checkpoint.pt", "metrics.json", "curves.png", "confusion.png", "train.log"} <= written
    assert list((tmp_path / "processed" / dataset / "bert").glob("*/summary.yaml"))
    test = _run(["--mode", "test", *common, "--set", "data.limit=64"], env, repo_root)
    assert test.returncode == 0, test.stderr
    result = json.loads(test.stdout.strip().splitlines()[-1])
    assert 0 <= result["accuracy"] <= 100 and 0 <= result["macro_f1"] <= 100
    args = ["--mode", "predict", *common, "--text", "The decor is not special at all but their food is amazing."]
    for aspect in aspects:
        args += ["--aspect", aspect]
    predicted = _run(args, env, repo_root)
    assert predicted.returncode == 0, predicted.stderr
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert [r["aspect"] for r in lines] == aspects
    labels = {"positive", "negative", "neutral"}
    assert all(r["label"] in labels and set(r["scores"]) == labels for r in lines)
