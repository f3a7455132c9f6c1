"""Runs that outlast a sitting (train/resume.py): a training stopped after an epoch goes on from there
when it is started again, and ends with exactly the numbers of a training that was never stopped (CPU);
a resume state of other settings or other data files is not used; the state is gone once the run folder
is complete."""
import json

import pytest
import torch
from test_reliability import TEXTS, write_folder, write_vectors

from common.errors import UserError
from data_process.raw_data import sha256_of
from train import run as run_module
from train.config import compose
from train.resume import resume_file, write_resume
from train.run import train_job
from train.run_folder import run_dir

EPOCHS = ["train.epochs=4", "train.tensorboard=false", "train.batch_size=4"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = write_folder(root / "reviews", TEXTS * 3)
    words = {w.strip(".,").lower() for text, _ in TEXTS for w in text.split()} | {".", ","}
    vectors = write_vectors(root / "vectors.txt", words)
    return root, data, vectors


def config(setup, runs, extra=()):
    root, data, vectors = setup
    return compose("capsnet", str(data), None, [f"paths.runs={root / runs}", f"paths.processed={root / 'processed'}",
                                                 f"data.embeddings={vectors}", *EPOCHS, *extra])


def outcome(folder):
    """What a run's result is: its metrics (timing aside) and its predictions file."""
    metrics = json.loads((folder / "metrics.json").read_text())
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in metrics["history"]]
    return ({k: metrics[k] for k in ("best_epoch", "best_step", "val", "test")}, history,
            (folder / "predictions.jsonl").read_text())


class Stop(KeyboardInterrupt):
    """What Ctrl-C raises, here right after the state of `epoch` is written."""


def train_until_stopped(cfg, epoch, monkeypatch):
    """Train `cfg` (seed 0) and stop it as Ctrl-C would, right after the state of `epoch` is written."""
    original = run_module.write_resume

    def write(path, state):
        original(path, state)
        if state["epoch"] == epoch:
            raise Stop
    with monkeypatch.context() as patch:
        patch.setattr(run_module, "write_resume", write)
        with pytest.raises(Stop):
            train_job(cfg, 0, "cpu")


def test_a_training_stopped_after_an_epoch_resumes_and_ends_as_if_never_stopped(setup, monkeypatch):
    whole = config(setup, "whole")
    train_job(whole, 0, "cpu")
    assert not resume_file(run_dir(whole, 0)).exists()          # removed once the run folder is complete

    stopped = config(setup, "stopped")
    folder = run_dir(stopped, 0)
    train_until_stopped(stopped, 2, monkeypatch)
    assert resume_file(folder).is_file() and not folder.exists()   # the state of epoch 2, no run folder yet
    train_job(stopped, 0, "cpu")
    assert outcome(folder) == outcome(run_dir(whole, 0))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["timing"]["resumed_after_epochs"] == [2]
    whole_cpu = json.loads((run_dir(whole, 0) / "metrics.json").read_text())["timing"]["cpu_seconds"]
    assert whole_cpu > 0 and metrics["timing"]["cpu_seconds"] > 0   # both parts of the resumed run counted
    assert "resumed after epoch 2" in (folder / "train.log").read_text()
    assert not resume_file(folder).exists()


def test_a_resume_state_of_other_settings_is_not_used(setup, monkeypatch):
    first = config(setup, "other")
    folder = run_dir(first, 0)
    train_until_stopped(first, 1, monkeypatch)
    assert resume_file(folder).is_file()
    changed = config(setup, "other", ["train.lr=0.002"])
    train_job(changed, 0, "cpu")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert "resumed_after_epochs" not in metrics["timing"] and metrics["config"]["train"]["lr"] == 0.002
    assert "resumed after" not in (folder / "train.log").read_text()


def test_a_state_saved_before_cpu_time_was_kept_resumes_without_a_cpu_time(setup, monkeypatch):
    cfg = config(setup, "older")
    folder = run_dir(cfg, 0)
    train_until_stopped(cfg, 1, monkeypatch)
    state = torch.load(resume_file(folder), map_location="cpu", weights_only=False)
    del state["loop"]["cpu_seconds"]     # as written by a version that did not keep it
    write_resume(resume_file(folder), state)
    train_job(cfg, 0, "cpu")
    timing = json.loads((folder / "metrics.json").read_text())["timing"]
    assert timing["resumed_after_epochs"] == [1] and "cpu_seconds" not in timing   # not a part-count


def test_a_run_or_resume_state_of_other_data_files_is_not_taken_for_this_run(setup, monkeypatch, tmp_path):
    import shutil
    root, data, vectors = setup
    own = shutil.copytree(data, tmp_path / "reviews")
    cfg = compose("capsnet", str(own), None, [f"paths.runs={tmp_path / 'runs'}", f"paths.processed={tmp_path / 'p'}",
                                              f"data.embeddings={vectors}", *EPOCHS])
    folder = run_dir(cfg, 0)
    train_until_stopped(cfg, 1, monkeypatch)
    train_file = next(own.glob("train.*"))
    train_file.write_text(train_file.read_text() + train_file.read_text().splitlines()[0] + "\n")   # one more line
    train_job(cfg, 0, "cpu")
    log = (folder / "train.log").read_text()
    assert "a stopped training on other data files; starting from the first epoch" in log
    assert "resumed after" not in log
    train_file.write_text(train_file.read_text() + train_file.read_text().splitlines()[1] + "\n")
    with pytest.raises(UserError, match=r"holds a finished run on other data \(its train file changed since\); "
                                        r"--overwrite replaces it"):
        train_job(cfg, 0, "cpu")
    train_job(cfg, 0, "cpu", overwrite=True)
    assert json.loads((folder / "metrics.json").read_text())["data_files"]["train"] == sha256_of(train_file)


def test_sigterm_stops_a_training_cleanly_and_says_the_same_command_resumes_it(setup):
    # a `kill` or a scheduler's preemption: the staging folder is removed, the resume state kept, and
    # the command ends with one line and status 143 instead of dying silently
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO_ROOT
    root, data, vectors = setup
    runs = root / "sigterm"
    command = [sys.executable, str(REPO_ROOT / "main.py"), "--mode", "train", "--model", "capsnet",
               "--dataset", str(data), "--device", "cpu", "--set", f"paths.runs={runs}",
               "--set", f"paths.processed={root / 'processed'}", "--set", f"data.embeddings={vectors}",
               "--set", "train.epochs=10000", "--set", "train.tensorboard=false", "--set", "train.batch_size=4"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(runs.rglob(".seed0.resume.pt")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "terminated" and "Traceback" not in err
    assert "stopped after epoch " in out and "the same command resumes from there" in out
    assert [p.name for p in runs.rglob(".seed0.*")] == [".seed0.resume.pt"]   # no staging folder left
    assert not list(runs.rglob("metrics.json")) and os.path.getsize(next(runs.rglob(".seed0.resume.pt"))) > 0
