"""--mode reproduce / --mode table: the grid (train/experiments/grid.py), the table (train/experiments/table.py), strict
accuracy and predictions.jsonl (train/metrics.py, train/predictions.py).

Two tests train for real (CapsNet on 40 MAMS-ATSA instances, a couple of steps per run): the resume
test through `python main.py --mode reproduce`, and the Ray test (only where ray is installed). The
others run fake commands or read fabricated run folders.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.errors import UserError
from conftest import REPO_ROOT, compose_cfg, run_main, write_finished_run
from train.experiments import grid
from train.experiments.grid import Cell, Plan, Progress, load_paper, make_plan, reproduce, run_state
from train.experiments.table import render_table
from train.metrics import strict_accuracy

TINY = ["--set", "data.limit=40", "--set", "train.epochs=1", "--set", "train.max_steps=2"]


def write_metrics(cell, accuracy=70.0, macro_f1=60.0, strict=50.0, config=None, device="cpu"):
    """A fabricated finished run folder for `cell`: its metrics.json, an empty zip as checkpoint.pt
    and an empty predictions.jsonl (what makes a folder count as a finished run)."""
    metrics = {"model": cell.model, "run_name": cell.cfg.name, "dataset": cell.dataset, "seed": cell.seed,
               "device": device, "test": {"accuracy": accuracy, "macro_f1": macro_f1, "strict_accuracy": strict},
               "config": config if config is not None else dict(cell.cfg.to_dict(), seed=cell.seed)}
    return write_finished_run(cell.folder, metrics) / "metrics.json"


def tiny_plan(tmp_path, models=("capsnet",), datasets=("mams-atsa",), seeds=2):
    overrides = [f"paths.runs={tmp_path / 'runs'}", f"paths.processed={tmp_path / 'processed'}"]
    return make_plan(list(models), list(datasets), seeds, None, overrides, published=None)   # run folders only


# ---------------------------------------------------------------- strict accuracy

def test_strict_accuracy_counts_a_sentence_right_only_when_all_its_aspects_are():
    # sentence 0: both right; sentence 1: one of three wrong; sentence 7: its one aspect right
    ids = [0, 0, 1, 1, 1, 7]
    gold = ["positive", "negative", "neutral", "neutral", "positive", "negative"]
    pred = ["positive", "negative", "neutral", "positive", "positive", "negative"]
    assert strict_accuracy(ids, gold, pred) == pytest.approx(66.67)
    assert strict_accuracy([3, 3], [0, 1], [0, 1]) == 100.0
    assert strict_accuracy([], [], []) is None


# ---------------------------------------------------------------- grid expansion

class _Both:
    tasks = ("atsa", "acsa")


class _AtsaOnly:
    tasks = ("atsa",)


def test_default_grid_skips_dash_cells_and_notes_what_is_not_registered(monkeypatch):
    monkeypatch.setattr(grid, "load_paper", lambda: ({}, dict.fromkeys(("capsnet", "td-lstm", "not-yet-model"))))
    monkeypatch.setattr(grid, "PAPER_DATASETS", ("mams-atsa", "mams-acsa", "not-yet-data"))
    monkeypatch.setattr(grid, "MODELS", {"capsnet": _Both, "td-lstm": _AtsaOnly})
    monkeypatch.setattr(grid, "model_known", lambda name: name in ("capsnet", "td-lstm"))
    monkeypatch.setattr(grid, "compose", lambda model, dataset, experiment, overrides: SimpleNamespace(
        model=model, dataset=dataset, overrides=list(overrides)))
    plan = make_plan(seeds=2, overrides=["train.epochs=1"])
    assert [(c.model, c.dataset, c.seed) for c in plan.cells] == [
        ("capsnet", "mams-atsa", 0), ("td-lstm", "mams-atsa", 0), ("capsnet", "mams-acsa", 0),
        ("capsnet", "mams-atsa", 1), ("td-lstm", "mams-atsa", 1), ("capsnet", "mams-acsa", 1)]
    assert plan.not_applicable == {("td-lstm", "mams-acsa")}
    assert plan.cells[0].cfg.overrides == ["train.epochs=1"]
    assert len(plan.notes) == 2
    assert "not-yet-model" in plan.notes[0] and "not-yet-data" in plan.notes[1]
    assert plan.models == ["capsnet", "td-lstm", "not-yet-model"]   # kept: the table shows them as missing


def test_an_experiment_for_some_models_over_the_default_grid_names_the_model_and_the_models_it_is_for():
    # configs/experiments/mpnet.yaml sets model.backbone, a key of the BERT family only
    mpnet = str(REPO_ROOT / "configs" / "experiments" / "mpnet.yaml")
    with pytest.raises(UserError) as err:
        make_plan(None, ["mams-atsa"], 1, mpnet, published=None)
    message = str(err.value)
    assert message.startswith("textcnn: ") and "unknown key model.backbone" in message
    assert message.endswith("name them with --models bert,capsnet-bert,capsnet-bert-dr")
    plan = make_plan(["bert", "capsnet-bert"], ["mams-atsa"], 1, mpnet, published=None)
    assert [c.cfg.model.backbone for c in plan.cells] == ["mpnet", "mpnet"]
    with pytest.raises(UserError, match=r"^textcnn: .*unknown key model\.backbone") as err:
        make_plan(["textcnn"], ["mams-atsa"], 1, mpnet, published=None)
    assert "--models" not in str(err.value)


def test_a_setting_refused_on_one_dataset_for_every_model_is_not_blamed_on_the_models(monkeypatch):
    def compose(model, dataset, experiment, overrides):
        if dataset == "mams-acsa":
            raise UserError("configs/datasets/mams-acsa.yaml: data.max_words=0 is below its minimum 1")
        return SimpleNamespace(model=model, dataset=dataset)
    monkeypatch.setattr(grid, "compose", compose)
    with pytest.raises(UserError) as err:
        make_plan(["capsnet", "gcae"], ["mams-atsa", "mams-acsa"], 1, None, published=None)
    assert str(err.value) == "capsnet: configs/datasets/mams-acsa.yaml: data.max_words=0 is below its minimum 1"


def test_unknown_names_given_explicitly_are_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown model no-such-model"):
        tiny_plan(tmp_path, models=("capsnet", "no-such-model"))
    with pytest.raises(UserError, match="unknown datasets nope1, nope2"):
        tiny_plan(tmp_path, datasets=("nope1", "nope2"))
    result = run_main("--mode", "reproduce", "--models", "no-such-model", "--datasets", "mams-atsa")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: unknown model no-such-model")


def test_a_run_is_finished_only_with_metrics_json_and_the_same_config(tmp_path):
    cell = tiny_plan(tmp_path, seeds=1).cells[0]
    assert run_state(cell) == "new"
    cell.folder.mkdir(parents=True)
    (cell.folder / "checkpoint.pt").write_bytes(b"half")
    assert run_state(cell) == "incomplete"            # damaged: no metrics.json
    config = dict(cell.cfg.to_dict(), seed=0)
    write_metrics(cell, config=config)
    assert run_state(cell) == "finished"
    moved = json.loads(json.dumps(config))            # other paths and thread count: same run
    moved["paths"]["runs"] = "/elsewhere"
    moved["train"]["num_threads"] = 7
    write_metrics(cell, config=moved)
    assert run_state(cell) == "finished"
    changed = json.loads(json.dumps(config))
    changed["train"]["lr"] = 0.1
    write_metrics(cell, config=changed)
    assert run_state(cell) == "changed"
    write_metrics(cell, config=dict(config, seed=1))
    assert run_state(cell) == "changed"
    for section in ("train", "model"):                # a config lacking a setting: another run
        lacking = json.loads(json.dumps(config))
        del lacking[section][next(iter(lacking[section]))]
        write_metrics(cell, config=lacking)
        assert run_state(cell) == "changed"


def test_train_command_passes_options_and_splits_threads(tmp_path):
    cell = tiny_plan(tmp_path, seeds=1).cells[0]
    command = grid.train_command(cell, "cpu", None, ["train.epochs=1"], threads=3)
    assert command[1:] == [str(REPO_ROOT / "main.py"), "--mode", "train", "--model", "capsnet", "--dataset",
                           "mams-atsa", "--seed", "0", "--device", "cpu", "--set", "train.epochs=1",
                           "--set", "train.num_threads=3"]
    assert grid.train_command(cell, "cuda", None, ["train.num_threads=2"], threads=None)[-2:] == \
        ["--set", "train.num_threads=2"]


class _Named:
    def __init__(self, label):
        self.label, self.logs = label, (f"{label}.log", f"{label}.err")


def test_progress_line_and_time_left():
    now = [0.0]
    lines = []
    progress = Progress(total=5, jobs=2, done=1, stream=SimpleNamespace(write=lines.append, flush=lambda: None),
                        clock=lambda: now[0])
    a, b = _Named("a"), _Named("b")
    progress.started(a)
    progress.started(b)
    assert progress.line() == "grid: 1/5 done, 2 running, 0 failed, 2 left, time left unknown"
    now[0] = 100.0
    progress.finished(grid.Outcome(a, True, 100.0))
    progress.finished(grid.Outcome(b, False, 100.0, "error: boom"))
    assert "FAILED b: error: boom" in "".join(lines)
    assert progress.line() == "grid: 2/5 done, 0 running, 1 failed, 2 left, about 1 min 40 s left"


class _Run:
    """A stand-in grid cell: model, dataset, label, logs and cfg.train.epochs (hashable by identity)."""

    def __init__(self, model, dataset, log="missing.log", epochs=20):
        self.model, self.dataset, self.label = model, dataset, f"{model} / {dataset}"
        self.logs = (str(log), str(log) + ".err")
        self.cfg = SimpleNamespace(train=SimpleNamespace(epochs=epochs))


def test_time_left_comes_from_each_kind_of_run_not_from_one_slow_run():
    now = [0.0]
    pending = [_Run("aen", "mams-atsa")] + [_Run("lstm", "mams-atsa") for _ in range(4)] + [_Run("lstm", "mams-acsa")]
    progress = Progress(total=6, jobs=1, stream=SimpleNamespace(write=lambda _: None, flush=lambda: None),
                        clock=lambda: now[0], pending=pending)
    for run, seconds in ((pending[0], 900.0), (pending[1], 30.0)):
        progress.started(run)
        now[0] += seconds
        progress.finished(grid.Outcome(run, True, seconds))
    # left: three LSTM runs on MAMS-ATSA (30 s each) and one on MAMS-ACSA (the same model elsewhere: 30 s)
    assert progress.eta() == pytest.approx(4 * 30.0)


def test_a_running_runs_epoch_is_shown_and_projects_its_time_left(tmp_path):
    now = [0.0]
    log = tmp_path / "seed0.log"
    run = _Run("capsnet", "mams-atsa", log)
    lines = []
    progress = Progress(total=1, jobs=1, stream=SimpleNamespace(write=lines.append, flush=lambda: None),
                        clock=lambda: now[0], pending=[run], refresh=0.0)
    progress.started(run)
    progress.durations.append(1.0)               # any finished run, so that an estimate is given
    log.write_text("epoch 1: train loss 0.9  val acc 60.1\nepoch 2: train loss 0.8  val acc 63.0\n")
    now[0] = 50.0
    progress.tick()
    assert "(capsnet / mams-atsa epoch 2/20)" in lines[-1]
    assert progress.eta() == pytest.approx(50.0 * 18 / 2)     # 25 s an epoch, 18 epochs to go


# ---------------------------------------------------------------- the local runner, with fake commands

def _fake_command(cell, code):
    return [sys.executable, "-c", code, str(cell.folder), json.dumps(dict(cell.cfg.to_dict(), seed=cell.seed))]


FAKE_OK = ("import json, pathlib, sys, zipfile; d = pathlib.Path(sys.argv[1]); d.mkdir(parents=True, exist_ok=True); "
           "zipfile.ZipFile(d / 'checkpoint.pt', 'w').close(); (d / 'predictions.jsonl').write_text(''); "
           "(d / 'metrics.json').write_text(json.dumps({'model': 'm', 'dataset': 'd', 'seed': 0, 'test': {}, "
           "'config': json.loads(sys.argv[2])})); print('trained')")
FAKE_FAIL = ("import sys; print('Traceback ...', file=sys.stderr); print('error: boom in the run', file=sys.stderr); "
             "sys.exit(2)")


def test_a_failing_run_does_not_stop_the_others_and_is_recorded(tmp_path):
    plan = tiny_plan(tmp_path, seeds=3)
    lines = []
    outcomes = reproduce(plan, jobs=2, out=lines.append,
                         command_for=lambda c: _fake_command(c, FAKE_FAIL if c.seed == 1 else FAKE_OK))
    by_seed = {o.cell.seed: o for o in outcomes}
    assert sorted(by_seed) == [0, 1, 2]
    assert by_seed[0].ok and by_seed[2].ok and not by_seed[1].ok
    assert by_seed[1].error == "error: boom in the run"
    assert "1 failed" in lines[-1] and "grid_logs" in lines[-1]
    status = json.loads((tmp_path / "runs" / "grid_logs" / "status.json").read_text())
    failed = [r for r in status["runs"] if r["state"] == "failed"]
    assert [(r["seed"], r["error"]) for r in failed] == [(1, "error: boom in the run")]
    assert Path(failed[0]["stderr"]).read_text().endswith("error: boom in the run\n")
    assert plan.cells[0].logs[0].read_text() == "trained\n"
    # the rerun trains only the failed one
    outcomes = reproduce(plan, jobs=2, out=lines.append, command_for=lambda c: _fake_command(c, FAKE_OK))
    assert [o.cell.seed for o in outcomes] == [1] and outcomes[0].ok


def test_an_interrupted_grid_stops_its_runs_and_keeps_nothing_half_done(tmp_path):
    plan = tiny_plan(tmp_path, seeds=2)
    pids = tmp_path / "pids"
    pids.mkdir()
    slow = (f"import os, pathlib, time; pathlib.Path({str(pids)!r}, str(os.getpid())).touch(); time.sleep(60)")

    def interrupt_once_a_run_started():  # Ctrl-C as soon as a training process runs (however loaded the machine)
        deadline = time.monotonic() + 60
        while not any(pids.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    # Ctrl-C raises KeyboardInterrupt even where pytest was started with SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Thread(target=interrupt_once_a_run_started, daemon=True)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            reproduce(plan, jobs=2, out=lambda line: None, command_for=lambda c: [sys.executable, "-c", slow])
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 60  # the 60 s sleeps were cut short
    assert len(list(pids.iterdir())) >= 1
    for pid in pids.iterdir():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid.name), 0)
    assert not any(c.folder.joinpath("metrics.json").exists() for c in plan.cells)
    status = json.loads((tmp_path / "runs" / "grid_logs" / "status.json").read_text())
    assert {r["state"] for r in status["runs"]} == {"not run"}


def _gone_or_zombie(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_training_process_stops_when_the_grid_process_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time; from train.experiments.grid import dies_with_parent; "
        "p = subprocess.Popen(dies_with_parent([sys.executable, '-c', 'import time; time.sleep(120)'])); "
        "print(p.pid, flush=True); time.sleep(120)")], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(0.5)                       # the child has exec'd its command
    assert not _gone_or_zombie(child)
    parent.kill()                         # SIGKILL: no cleanup code runs in the grid process
    parent.wait()
    deadline = time.monotonic() + 10
    while not _gone_or_zombie(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone_or_zombie(child)


# ---------------------------------------------------------------- the table, from fabricated run folders

def test_table_from_fabricated_runs(tmp_path):
    caps = {d: compose_cfg(d, "capsnet", tmp_path / "processed", tmp_path / "runs") for d in ("mams-atsa", "mams-acsa")}
    dr = compose_cfg("mams-atsa", "capsnet-dr", tmp_path / "processed", tmp_path / "runs")
    cells = [Cell("capsnet", "mams-atsa", s, caps["mams-atsa"]) for s in range(3)] + \
            [Cell("capsnet", "mams-acsa", s, caps["mams-acsa"]) for s in range(3)] + \
            [Cell("capsnet-dr", "mams-atsa", s, dr) for s in range(3)]
    plan = Plan(models=["capsnet", "capsnet-dr", "td-lstm"], datasets=["mams-atsa", "mams-acsa"], seeds=3,
                cells=cells, not_applicable={("capsnet-dr", "mams-acsa")}, notes=[])
    for seed, (acc, f1, strict) in enumerate([(70.0, 60.0, 50.0), (72.0, 62.0, 55.0), (74.0, 64.0, 60.0)]):
        write_metrics(cells[seed], acc, f1, strict)
    write_metrics(cells[3], 65.5, 61.25, 40.0)                        # mams-acsa: one seed only
    stale = dict(dr.to_dict(), seed=0)
    stale["train"] = dict(stale["train"], lr=1.0)
    write_metrics(cells[6], 99.0, 99.0, 99.0, config=stale)          # another config: not counted
    out = tmp_path / "results"
    markdown, results = render_table(plan, out)

    assert "glove-6b-50d" in markdown and "cpu" in markdown and "commit(s) the runs trained at:" in markdown
    assert "the paper reports no such number" in markdown
    assert "left out: 1 run(s) whose metrics.json holds another config" in markdown
    assert [c.stale for c in results if (c.model, c.dataset) == ("capsnet-dr", "mams-atsa")] == [1]
    detail = {tuple(line.split(" | ")[:2]): line for line in markdown.splitlines() if line.startswith("| ")}
    row = detail[("| CapsNet", "ATSA MAMS")]
    assert "| 3 | 72.00 ± 2.00 | 62.00 ± 2.00 | 55.00 ± 5.00 | 79.776 | -7.78 |" in row
    assert "| 1 | 65.50 | 61.25 | 40.00 | 73.986 | -8.49 |" in detail[("| CapsNet", "ACSA MAMS")]
    assert "| 0 | — | — | — | 79.434 | — |" in detail[("| CapsNet-DR", "ATSA MAMS")]
    assert detail[("| CapsNet-DR", "ACSA MAMS")].count(" - ") >= 6
    assert "| 0 | — | — | — | 74.596 | — |" in detail[("| TD-LSTM", "ATSA MAMS")]   # not registered: missing
    assert detail[("| TD-LSTM", "ACSA MAMS")].count(" - ") >= 6                   # "-" in the paper
    assert "| CapsNet | 72.00 ± 2.00 (79.776) | 65.50 (73.986) |" in markdown
    assert "| TD-LSTM | — (74.596) | - |" in markdown

    rows = {(r["model"], r["dataset"]): r for r in csv.DictReader((out / "table3.csv").read_text().splitlines())}
    r = rows[("capsnet", "mams-atsa")]
    assert (r["status"], r["n_seeds"], r["seeds"], r["accuracy_mean"], r["accuracy_std"], r["strict_accuracy_mean"],
            r["paper_accuracy"], r["diff"]) == ("ok", "3", "0 1 2", "72.00", "2.00", "55.00", "79.776", "-7.78")
    assert rows[("capsnet", "mams-acsa")]["accuracy_std"] == ""
    missing = rows[("capsnet-dr", "mams-atsa")]
    assert (missing["status"], missing["accuracy_mean"], missing["n_seeds"]) == ("missing", "", "0")
    assert rows[("capsnet-dr", "mams-acsa")]["status"] == "n/a"
    assert rows[("td-lstm", "mams-acsa")]["status"] == "n/a"

    tex = (out / "table3.tex").read_text()
    assert "72.00 $\\pm$ 2.00" in tex and "\\begin{tabular}" in tex and "---" in tex
    assert (out / "table3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Table 3 as docs/paper.md (the paper's notes) gives it, copied by hand: configs/paper_table3.yaml must agree.
PAPER_TABLE3 = """
| TextCNN | 52.694 | 51.736 | 75.928 | 48.856 | 48.814 | 81.418 |
| LSTM | 52.486 | 50.134 | 75.552 | 48.546 | 48.346 | 82.076 |
| TD-LSTM | 74.596 | 73.582 | 75.630 | - | - | - |
| AT-LSTM | 77.558 | 73.028 | 76.200 | 66.436 | 65.128 | 83.100 |
| ATAE-LSTM | 77.054 | 71.708 | 77.200 | 70.634 | 66.814 | 84.000 |
| BiLSTM+Attn | 76.166 | 70.720 | 77.356 | 66.304 | 66.262 | 80.514 |
| IAN | 76.602 | 71.168 | 78.600 | - | - | - |
| AOA-LSTM | 77.260 | 72.290 | 81.200 | - | - | - |
| AEN | 66.722 | 61.706 | 80.980 | - | - | - |
| MemNet | 64.568 | 62.694 | 80.950 | 63.288 | 62.818 | 77.862 |
| GCAE | 77.588 | 73.246 | 77.280 | 72.098 | 66.968 | 79.350 |
| CapsNet | 79.776 | 73.860 | 80.786 | 73.986 | 67.128 | 83.554 |
| BERT | 82.218 | 79.440 | 84.460 | 78.292 | 75.316 | 90.442 |
| CapsNet-BERT | 83.391 | 80.910 | 85.934 | 79.461 | 76.366 | 91.375 |
| CapsNet-DR | 79.434 | 71.398 | 77.768 | 69.036 | 65.638 | 81.904 |
| CapsNet-BERT-DR | 82.970 | 80.092 | 84.646 | 79.132 | 75.634 | 90.736 |
"""


def test_paper_table3_yaml_holds_the_papers_numbers_in_its_order():
    rows = {}
    for line in PAPER_TABLE3.strip().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = [None if c == "-" else float(c) for c in cells[1:]]
    columns, models = load_paper()
    assert list(columns) == list(grid.PAPER_DATASETS)
    assert [row for row, _ in models.values()] == list(rows)
    assert {row: [values[d] for d in columns] for row, values in models.values()} == rows


# ---------------------------------------------------------------- a tiny real grid: resume and predictions

@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """One processed-data folder for the real runs of this module (MAMS-ATSA is preprocessed once)."""
    return tmp_path_factory.mktemp("processed")


@pytest.mark.slow
def test_tiny_real_grid_resumes_without_recomputing(shared_data, processed, tmp_path):
    env = dict(os.environ, ABSA_DATA_ROOT=str(shared_data))
    args = ["--mode", "reproduce", "--models", "capsnet", "--datasets", "mams-atsa", "--seeds", "2", "--jobs", "2",
            "--device", "cpu", "--results", str(tmp_path / "results"), *TINY,
            "--set", f"paths.runs={tmp_path / 'runs'}", "--set", f"paths.processed={processed}"]
    first = run_main(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 trained, 0 already finished, 0 failed" in first.stdout
    seed0, seed1 = (tmp_path / "runs" / "mams-atsa" / "capsnet" / f"seed{s}" for s in (0, 1))
    metrics = json.loads((seed0 / "metrics.json").read_text())
    assert metrics["config"]["train"]["num_threads"] == max(1, grid.cpu_count() // 2)   # CPUs shared by 2 jobs
    assert 0.0 <= metrics["test"]["strict_accuracy"] <= 100.0
    predictions = [json.loads(line) for line in (seed0 / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 40
    assert set(predictions[0]) == {"sentence_id", "text", "aspect", "gold", "predicted", "scores"}
    assert set(predictions[0]["scores"]) == {"positive", "negative", "neutral"}
    assert sum(predictions[0]["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert predictions[0]["aspect"] in predictions[0]["text"].lower()
    right = sum(p["gold"] == p["predicted"] for p in predictions)
    assert metrics["test"]["accuracy"] == pytest.approx(100.0 * right / 40, abs=0.01)
    assert (tmp_path / "results" / "table3.md").is_file()

    # seed 1 is killed midway (no metrics.json); seed 0 is finished and must not be recomputed
    mtime = (seed0 / "metrics.json").stat().st_mtime_ns
    (seed1 / "metrics.json").unlink()
    second = run_main(*args, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 finished, 0 with a changed config, 1 incomplete, 0 new: 1 to train" in second.stdout
    assert "1 trained, 1 already finished, 0 failed" in second.stdout
    assert (seed0 / "metrics.json").stat().st_mtime_ns == mtime
    assert (seed1 / "metrics.json").is_file()

    table = run_main("--mode", "table", *args[2:], env=env)
    assert table.returncode == 0, table.stderr
    assert "trained" not in table.stdout and "1 of 1 cells have results" in table.stdout
    assert "| CapsNet | ATSA MAMS | 2 |" in (tmp_path / "results" / "table3.md").read_text()


@pytest.mark.slow
def test_ray_backend_trains_in_ray_tasks_into_the_same_run_folders(shared_data, processed, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray is not installed (optional: pip install -r requirements-ray.txt)")
    monkeypatch.setenv("ABSA_DATA_ROOT", str(shared_data))
    overrides = [item for item in TINY if item != "--set"] + [f"paths.runs={tmp_path / 'runs'}",
                                                              f"paths.processed={processed}"]
    plan = make_plan(["capsnet"], ["mams-atsa"], 2, None, overrides)
    lines = []

    def command_for(cell):   # seed 0: the real training command; seed 1 fails
        if cell.seed == 0:
            return grid.train_command(cell, "cpu", None, overrides, threads=1)
        return _fake_command(cell, FAKE_FAIL)
    outcomes = reproduce(plan, jobs=2, device="cpu", overrides=overrides, backend="ray", out=lines.append,
                         command_for=command_for)
    by_seed = {o.cell.seed: o for o in outcomes}
    assert by_seed[0].ok, by_seed[0].error
    assert not by_seed[1].ok and by_seed[1].error == "error: boom in the run"
    assert run_state(plan.cells[0]) == "finished"
    assert (plan.cells[0].folder / "predictions.jsonl").is_file()
    assert "1 trained, 0 already finished, 1 failed" in lines[-1]
