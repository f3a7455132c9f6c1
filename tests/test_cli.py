"""End to end through `python main.py` on a slice of the real MAMS data, on CPU.

One tiny ATSA run and one tiny ACSA run (a few optimiser steps on data.limit=200) are trained once
per module and shared by the tests. Every output goes to tmp folders via --set paths.*.
"""
import json
import math
import os
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO_ROOT, json_lines, ok, run_main

SENTENCE = "The decor is not special at all but their food is amazing."
LABELS = {"positive", "negative", "neutral"}
pytestmark = pytest.mark.slow   # real trainings through main.py
TINY = ["--set", "data.limit=200", "--set", "train.max_steps=5", "--set", "train.epochs=1", "--device", "cpu"]


def assert_one_error_line(result, *fragments):
    assert result.returncode != 0, f"expected failure, got exit 0\nstdout:\n{result.stdout}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{result.stderr}"
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


class Cli:
    """python main.py with the raw data root set and output paths in tmp folders."""

    def __init__(self, shared_data, tmp):
        self.tmp = tmp
        self.processed = tmp / "processed"
        self.runs = tmp / "runs"
        self.env = dict(os.environ, ABSA_DATA_ROOT=str(shared_data))

    def paths(self, processed=None, runs=None):
        return ["--set", f"paths.processed={processed or self.processed}", "--set", f"paths.runs={runs or self.runs}"]

    def __call__(self, *args, extra_env=None, processed=None, runs=None):
        return run_main(*args, *self.paths(processed, runs), env=self.env, extra_env=extra_env)

    def run_dir(self, dataset):
        return self.runs / dataset / "capsnet" / "seed0"


@pytest.fixture(scope="module")
def cli(shared_data, tmp_path_factory):
    return Cli(shared_data, tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def atsa_run(cli):
    preprocess = ok(cli("--mode", "preprocess", "--dataset", "mams-atsa"))
    train = ok(cli("--mode", "train", "--dataset", "mams-atsa", *TINY))
    return preprocess, train


@pytest.fixture(scope="module")
def acsa_run(cli):
    return ok(cli("--mode", "train", "--dataset", "mams-acsa", *TINY))


# --- ATSA ------------------------------------------------------------------------------------

def test_cli_preprocess_writes_processed_arrays_into_the_given_folder(cli, atsa_run):
    preprocess, _ = atsa_run
    out = cli.processed / "mams-atsa"
    assert (out / "summary.yaml").is_file() and (out / "train.npz").is_file()
    assert str(out) in preprocess.stdout
    again = ok(cli("--mode", "preprocess", "--dataset", "mams-atsa"))
    assert again.stdout.strip() == f"{out}: up to date"


def test_cli_train_writes_checkpoint_metrics_plots_and_log(cli, atsa_run):
    _, train = atsa_run
    folder = cli.run_dir("mams-atsa")
    for name in ("checkpoint.pt", "metrics.json", "curves.png", "confusion.png", "train.log"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    for name in ("curves.png", "confusion.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((folder / "metrics.json").read_text())
    batches = math.ceil(200 / metrics["config"]["train"]["batch_size"])
    assert metrics["timing"]["steps"] == min(5, batches)  # data.limit=200, one epoch, max_steps 5
    assert metrics["timing"]["peak_memory_mib"] > 0 and metrics["timing"]["train_tokens_per_second"] > 0
    assert metrics["history"][0]["epoch"] == 1 and len(metrics["history"]) == 1
    assert metrics["config"]["paths"]["runs"] == str(cli.runs)
    assert metrics["device"] == "cpu"
    summary = json.loads(train.stdout.strip().splitlines()[-1])
    assert summary["dataset"] == "mams-atsa" and summary["model"] == "capsnet"
    assert summary["accuracy"] == metrics["test"]["accuracy"]
    assert "200/200/200 instances" in (folder / "train.log").read_text()


def test_cli_test_mode_prints_json_with_accuracy_and_macro_f1(cli, atsa_run):
    result = ok(cli("--mode", "test", "--dataset", "mams-atsa", "--device", "cpu", "--set", "data.limit=200"))
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0.0 <= last["accuracy"] <= 100.0 and 0.0 <= last["macro_f1"] <= 100.0
    assert last["checkpoint"] == str(cli.run_dir("mams-atsa") / "checkpoint.pt")
    assert sum(sum(row) for row in last["confusion"]) == 200
    assert "test on 200 instances" in result.stdout
    # the same checkpoint on the same 200 test instances gives the training run's test numbers
    metrics = json.loads((cli.run_dir("mams-atsa") / "metrics.json").read_text())
    assert (last["accuracy"], last["macro_f1"]) == (metrics["test"]["accuracy"], metrics["test"]["macro_f1"])


def _check_prediction(result, text, aspect):
    assert result["text"] == text and result["aspect"] == aspect
    assert result["label"] in LABELS
    assert set(result["scores"]) == LABELS
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert result["label"] == max(result["scores"], key=result["scores"].get)


def test_cli_predict_prints_one_json_line_per_aspect(cli, atsa_run):
    result = ok(cli("--mode", "predict", "--dataset", "mams-atsa", "--device", "cpu",
                    "--text", SENTENCE, "--aspect", "decor", "--aspect", "food"))
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    _check_prediction(first, SENTENCE, "decor")
    _check_prediction(second, SENTENCE, "food")


def test_cli_predict_reads_jsonl_input_in_order(cli, atsa_run, tmp_path):
    other = "Our WAITER was rude but the pasta was great."
    path = tmp_path / "requests.jsonl"
    path.write_text(json.dumps({"text": SENTENCE, "aspects": ["food"]}) + "\n\n"
                    + json.dumps({"text": other, "aspects": ["waiter", "pasta"]}) + "\n", encoding="utf-8")
    result = ok(cli("--mode", "predict", "--dataset", "mams-atsa", "--device", "cpu", "--input", str(path)))
    results = json_lines(result.stdout)
    assert len(results) == 3 == len(result.stdout.strip().splitlines())
    _check_prediction(results[0], SENTENCE, "food")
    _check_prediction(results[1], other, "WAITER")  # the term as written in the text
    _check_prediction(results[2], other, "pasta")


# --- ACSA ------------------------------------------------------------------------------------

def test_cli_acsa_train_and_test(cli, acsa_run):
    folder = cli.run_dir("mams-acsa")
    for name in ("checkpoint.pt", "metrics.json", "curves.png", "confusion.png", "train.log"):
        assert (folder / name).is_file(), name
    assert json.loads(acsa_run.stdout.strip().splitlines()[-1])["dataset"] == "mams-acsa"
    result = ok(cli("--mode", "test", "--dataset", "mams-acsa", "--device", "cpu", "--set", "data.limit=200"))
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["dataset"] == "mams-acsa"
    assert 0.0 <= last["accuracy"] <= 100.0 and 0.0 <= last["macro_f1"] <= 100.0


def test_cli_acsa_predict_with_category_aspects(cli, acsa_run):
    result = ok(cli("--mode", "predict", "--dataset", "mams-acsa", "--device", "cpu",
                    "--text", SENTENCE, "--aspect", "ambience", "--aspect", "food"))
    results = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(results) == 2
    _check_prediction(results[0], SENTENCE, "ambience")
    _check_prediction(results[1], SENTENCE, "food")


# --- bad inputs: one 'error:' line, no traceback, non-zero exit ------------------------------

def test_cli_predict_aspect_not_in_text_fails_with_one_error_line(cli, atsa_run):
    result = cli("--mode", "predict", "--dataset", "mams-atsa", "--device", "cpu",
                 "--text", SENTENCE, "--aspect", "waiter")
    assert_one_error_line(result, "--text", "aspect 'waiter' not found in the text")
    assert result.stdout == ""


def test_cli_predict_unknown_acsa_category_fails_with_one_error_line(cli, acsa_run):
    result = cli("--mode", "predict", "--dataset", "mams-acsa", "--device", "cpu",
                 "--text", SENTENCE, "--aspect", "decor")
    assert_one_error_line(result, "unknown category 'decor'", "food")


def test_cli_predict_empty_text_fails_with_one_error_line(cli):
    result = cli("--mode", "predict", "--dataset", "mams-atsa", "--device", "cpu", "--text", "   ",
                 "--aspect", "food")
    assert_one_error_line(result, "--text: empty text")


def test_cli_predict_malformed_jsonl_fails_with_one_error_line_naming_file_and_line(cli, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": SENTENCE, "aspects": ["food"]}) + "\n{\"text\": \"oops\"\n",
                    encoding="utf-8")
    result = cli("--mode", "predict", "--dataset", "mams-atsa", "--device", "cpu", "--input", str(path))
    assert_one_error_line(result, f"{path}:2: not valid JSON")


def test_cli_predict_jsonl_with_wrong_shape_fails_with_one_error_line(cli, tmp_path):
    path = tmp_path / "shape.jsonl"
    path.write_text(json.dumps({"text": SENTENCE, "aspects": "food"}) + "\n", encoding="utf-8")
    result = cli("--mode", "predict", "--dataset", "mams-atsa", "--device", "cpu", "--input", str(path))
    assert_one_error_line(result, f"{path}:1: expected")


def test_cli_test_with_missing_checkpoint_fails_with_one_error_line(cli, tmp_path):
    missing = tmp_path / "none" / "checkpoint.pt"
    result = cli("--mode", "test", "--dataset", "mams-atsa", "--device", "cpu", "--checkpoint", str(missing))
    assert_one_error_line(result, str(missing), "checkpoint not found")


def test_cli_test_with_a_file_that_is_not_a_checkpoint_fails_with_one_error_line(cli, tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("not a checkpoint", encoding="utf-8")
    result = cli("--mode", "test", "--dataset", "mams-atsa", "--device", "cpu", "--checkpoint", str(bogus))
    assert_one_error_line(result, str(bogus), "not a PyTorch checkpoint file")


def test_cli_test_names_what_a_wrong_checkpoint_is(cli, tmp_path):
    import torch
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": 99}, foreign)
    for given, fragment in ((foreign, 'it holds no "format" and "model_state"'),
                            ("/dev/null", "not a regular file, so not a checkpoint"),
                            ("", "--checkpoint '': takes a checkpoint file")):
        result = cli("--mode", "test", "--dataset", "mams-atsa", "--device", "cpu", "--checkpoint", str(given))
        assert_one_error_line(result, str(given), fragment)


def test_cli_unknown_set_key_fails_with_one_error_line(cli):
    result = cli("--mode", "train", "--dataset", "mams-atsa", "--set", "train.epoch=1")
    assert_one_error_line(result, "--set train.epoch=1", "unknown key train.epoch", "did you mean train.epochs?")


def test_cli_unknown_dataset_fails_with_one_error_line(cli):
    result = cli("--mode", "train", "--dataset", "mams-xyz")
    assert_one_error_line(result, "unknown dataset 'mams-xyz'", "mams-atsa")


def test_cli_checkpoint_built_for_another_vocabulary_fails_with_one_error_line(cli, atsa_run, shared_data, tmp_path):
    # other raw files (a slice of the training sentences) give another vocabulary in another processed dir
    root = tmp_path / "raw" / "MAMS-ATSA"
    root.mkdir(parents=True)
    tree = ET.parse(shared_data / "MAMS-ATSA" / "train.xml")
    sentences = tree.getroot()
    for sentence in list(sentences)[300:]:
        sentences.remove(sentence)
    tree.write(root / "train.xml", encoding="utf-8", xml_declaration=True)
    for split in ("val", "test"):
        (root / f"{split}.xml").write_bytes((shared_data / "MAMS-ATSA" / f"{split}.xml").read_bytes())
    checkpoint = cli.run_dir("mams-atsa") / "checkpoint.pt"
    result = cli("--mode", "test", "--dataset", "mams-atsa", "--device", "cpu", "--checkpoint", str(checkpoint),
                 processed=tmp_path / "processed", extra_env={"ABSA_DATA_ROOT": str(tmp_path / "raw")})
    assert_one_error_line(result, str(checkpoint), "built for another vocabulary")


def test_cli_without_raw_data_and_offline_fails_with_one_error_line_naming_absa_data_root(cli, tmp_path):
    empty = tmp_path / "empty_root"
    empty.mkdir()
    env = {k: v for k, v in cli.env.items() if k.lower() not in ("no_proxy", "all_proxy")}
    proxy = "http://127.0.0.1:9"  # nothing listens there: the download fails at once
    env.update(ABSA_DATA_ROOT=str(empty), http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    result = run_main("--mode", "preprocess", "--dataset", "mams-atsa", *cli.paths(tmp_path / "p", tmp_path / "r"),
                      env=env, timeout=120)
    line = assert_one_error_line(result, "cannot download", "ABSA_DATA_ROOT", str(empty / "MAMS-ATSA"))
    assert "offline?" in line
    assert not list(empty.rglob("*.xml"))


def test_every_mode_and_option_of_the_command_line_is_in_the_usage_doc():
    import main as entry
    usage = (REPO_ROOT / "docs" / "USAGE.md").read_text(encoding="utf-8")
    missing = [f"mode {mode}" for mode in entry.MODES if f"| `{mode}` |" not in usage]
    for action in entry.build_parser()._actions:
        missing += [option for option in action.option_strings
                    if option.startswith("--") and option != "--help" and f"`{option}" not in usage]
    assert not missing, f"docs/USAGE.md does not describe: {', '.join(missing)}"
