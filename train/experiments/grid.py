"""The Table 3 grid (--mode reproduce): which runs it holds, which of them are finished, and a local
pool of `python main.py --mode train` processes that trains the rest.

A run (model x dataset x seed) is finished when it has a finished run of the grid's config in either
of its homes (train/experiments/runs.py): its run folder runs/<dataset>/<run name>/seed<N>/ (a
checkpoint, predictions and a readable metrics.json: train/run_folder.py), or its published file
results/predictions/<dataset>/<run name>/seed<N>.parquet, committed with the tables. A run folder
counts before a published file. "The grid's config" means the config stored with the run equals
the config the grid composes for it (paths and train.num_threads aside: they are not settings of the
experiment, although a different thread count can change a CPU run's numbers slightly).
A training replaces its run folder only when it completes, so a run killed midway leaves the
previous state (no folder, or the earlier run) and is trained again; a run whose config changed is
trained again too (with --overwrite: the grid's decision, reported in its summary line); a damaged
run folder is trained again; a finished or published run is never recomputed.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from common.errors import UserError
from common.io import write_json
from data_process.stats import PAPER_DATASETS
from src.models import MODELS

from ..config import CONFIG_ROOT, available, comparable, compose, read_yaml
from ..run_folder import run_dir
from .runs import PUBLISHED_ROOT, from_folder, from_published, published_file

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN = REPO_ROOT / "main.py"

# Table 3 of the paper: its rows (our model names) and columns (our dataset names), in its order.
PAPER_FILE = CONFIG_ROOT / "paper_table3.yaml"
# The most seeds per cell and runs at once: more is a typo (an extra digit or two), not a grid any
# machine finishes (the plan of every run is built in memory).
MAX_SEEDS, MAX_JOBS = 100, 256


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a model on a dataset with one seed, and its composed config."""
    model: str
    dataset: str
    seed: int
    cfg: object = field(compare=False, repr=False)   # the RunConfig (shared by the seeds)
    published: object = field(default=None, compare=False, repr=False)  # root of published runs; None: not read
    use_folders: bool = field(default=True, compare=False, repr=False)  # False: run folders are not read

    @property
    def label(self):
        return f"{self.model} / {self.dataset} / seed {self.seed}"

    @property
    def folder(self):
        return run_dir(self.cfg, self.seed)

    @property
    def published_file(self):
        return None if self.published is None else published_file(self.published, self.dataset, self.cfg.name,
                                                                      self.seed)

    @property
    def logs(self):
        """(stdout log, stderr log) of its training process: <runs>/grid_logs/<dataset>/<run name>/seed<N>.*"""
        base = Path(self.cfg.paths.runs) / "grid_logs" / self.dataset / self.cfg.name / f"seed{self.seed}"
        return base.with_suffix(".log"), base.with_suffix(".err")

    def expected_config(self):
        return comparable(dict(self.cfg.to_dict(), seed=self.seed))

    @cached_property
    def prep_key(self):
        """Runs with the same key share the preprocessed arrays (and BERT inputs)."""
        from ..run import model_inputs
        return (self.dataset, str(Path(self.cfg.paths.processed).resolve()), repr(model_inputs(self.cfg).bert))


@dataclass
class Plan:
    """The grid: every requested model and dataset name, the runs, the pairs the paper marks "-",
    and one note per grid model or dataset that is not registered / has no config yet."""
    models: list
    datasets: list
    seeds: int
    cells: list
    not_applicable: set
    notes: list


def load_paper(path=PAPER_FILE):
    """({dataset: column title}, {model: (row name, {dataset: accuracy or None})}) of Table 3."""
    tree = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    columns = dict(tree["columns"])
    models = {name: (row[0], dict(zip(columns, row[1:]))) for name, row in tree["models"].items()}
    return columns, models


def model_known(name):
    return name in MODELS and (CONFIG_ROOT / "models" / f"{name}.yaml").is_file()


def dataset_known(name):
    return (CONFIG_ROOT / "datasets" / f"{name}.yaml").is_file()


def dataset_task(name):
    return (read_yaml(CONFIG_ROOT / "datasets" / f"{name}.yaml").get("data") or {}).get("task")


def _names(given, default, known, kind):
    """The requested names (all of them: unknown ones of the default grid stay, with a note) and the notes."""
    if given is None:
        missing = "no registry entry or configs/models/{}.yaml" if kind == "model" else "no configs/datasets/{}.yaml"
        return list(default), [f"skipping {kind} {n}: not registered yet ({missing.format(n)})"
                               for n in default if not known(n)]
    unknown = [n for n in given if not known(n)]
    if unknown:
        choices = sorted(MODELS) if kind == "model" else available("datasets")
        raise UserError(f"unknown {kind}{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                        f"(available: {', '.join(n for n in choices if known(n))})")
    return list(dict.fromkeys(given)), []


def make_plan(models=None, datasets=None, seeds=5, experiment=None, overrides=(), published=PUBLISHED_ROOT,
              use_folders=True):
    """The grid model x dataset x seed (seeds 0..seeds-1); None = the paper's Table 3 rows / columns.
    Explicitly named unknown models or datasets are a UserError; unknown ones of the default grid are
    left out with a note. Runs are ordered seed first, so every cell gets its first seed early.
    `published`: the root of the published runs (None: none are read); `use_folders`: whether run
    folders are read (False for the published tables, which come from the published runs alone)."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise UserError(f"--seeds {seeds}: out of range (takes 1..{MAX_SEEDS})")
    models, model_notes = _names(models, list(load_paper()[1]), model_known, "model")
    datasets, dataset_notes = _names(datasets, PAPER_DATASETS, dataset_known, "dataset")
    pairs, not_applicable, refused = [], set(), {}
    for dataset in filter(dataset_known, datasets):
        task = dataset_task(dataset)
        for model in filter(model_known, models):
            if task not in MODELS[model].tasks:
                not_applicable.add((model, dataset))
                continue
            try:
                pairs.append((model, dataset, compose(model, dataset, experiment, overrides)))
            except UserError as err:
                refused.setdefault(model, err)
    if refused:
        _refuse_models(refused, {m for m, _, _ in pairs})
    cells = [Cell(m, d, s, cfg, published, use_folders) for s in range(seeds) for m, d, cfg in pairs]
    return Plan(models, datasets, seeds, cells, not_applicable, model_notes + dataset_notes)


def _refuse_models(refused, composed):
    """The error for models whose settings do not take the config or --set given ({model: UserError}):
    it names the model, and where other models took them (an experiment for some models only, as
    configs/experiments/mpnet.yaml for the BERT family), the --models that do."""
    model, err = next(iter(refused.items()))
    composed = set(composed) - set(refused)   # a model refused on one dataset only is no model "it is for"
    if not composed:
        raise UserError(f"{model}: {err}")
    others = f" ({len(refused) - 1} more models likewise)" if len(refused) > 1 else ""
    raise UserError(f"{model}: {err}{others}; these settings are for other models: name them with "
                    f"--models {','.join(sorted(composed))}")


def cell_status(cell):
    """(state, FinishedRun or None). state: 'finished' (a run folder or a published file holds the
    cell's config), 'changed' (they hold another config), 'incomplete' (a folder that is not a
    finished run, before any published file of another config; or a damaged published file) or 'new'."""
    folder = from_folder(cell.folder) if cell.use_folders else None
    if folder is not None and ran_as_planned(folder.metrics, cell):
        return "finished", folder
    published, damaged = None, False
    if cell.published_file is not None:
        try:
            published = _published(cell.published_file)
        except UserError:
            damaged = True
    if published is not None and ran_as_planned(published.metrics, cell):
        return "finished", published
    if folder is not None:
        return "changed", None
    if cell.use_folders and cell.folder.exists():   # a run of the user's that did not finish
        return "incomplete", None
    if published is not None:
        return "changed", None
    return ("incomplete" if damaged else "new"), None


_PUBLISHED_CACHE = {}


def _published(path):
    """from_published, read once per file version (a grid asks for the same file many times)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _PUBLISHED_CACHE:
        try:
            _PUBLISHED_CACHE[key] = from_published(path)
        except UserError as err:
            _PUBLISHED_CACHE[key] = err
    value = _PUBLISHED_CACHE[key]
    if isinstance(value, UserError):
        raise value
    return value


def run_state(cell):
    """The cell's state (see cell_status)."""
    return cell_status(cell)[0]


def finished_run(cell):
    """The cell's FinishedRun when it is finished (run folder first, then published), else None."""
    return cell_status(cell)[1]


def finished_metrics(cell):
    """The cell's metrics.json when it is a finished run of this grid, else None."""
    run = finished_run(cell)
    return None if run is None else run.metrics


def ran_as_planned(metrics, cell):
    """Whether a run's metrics.json holds the cell's config (the IGNORED_KEYS left out)."""
    return comparable(metrics.get("config", {})) == cell.expected_config()


# ---------------------------------------------------------------------------- running the runs

def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def uses_cpu(device):
    if device == "cpu":
        return True
    import torch
    return device == "auto" and not torch.cuda.is_available()


def train_command(cell, device, experiment=None, overrides=(), threads=None, overwrite=False):
    """The command that trains one run: python main.py --mode train ... (--set train.num_threads=K
    when `threads` is given and the user did not set it; --overwrite when the grid replaces a
    finished run of another config, `overwrite`)."""
    command = [sys.executable, str(MAIN), "--mode", "train", "--model", cell.model, "--dataset", cell.dataset,
               "--seed", str(cell.seed), "--device", device] + (["--overwrite"] if overwrite else [])
    if experiment:
        command += ["--config", str(experiment)]
    for item in overrides:
        command += ["--set", item]
    if threads and not any(item.startswith("train.num_threads=") for item in overrides):
        command += ["--set", f"train.num_threads={threads}"]
    return command


def last_line(path):
    """The last non-empty line of a text file ('' if none)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


@dataclass
class Outcome:
    cell: Cell
    ok: bool
    seconds: float
    error: str = ""


# Runs the command given after it with PR_SET_PDEATHSIG = SIGTERM (it survives exec), so a training
# process stops when the process that started it dies, even by SIGKILL; no preexec_fn (unsafe with threads).
_PDEATHSIG_EXEC = ("import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


def dies_with_parent(command):
    """`command` wrapped so that it gets SIGTERM when its parent dies (Linux; unchanged elsewhere)."""
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-c", _PDEATHSIG_EXEC, *command]


def start(cell, command):
    """Start one training process; its stdout and stderr go to the cell's log files."""
    out_log, err_log = cell.logs
    out_log.parent.mkdir(parents=True, exist_ok=True)
    with open(out_log, "w", encoding="utf-8") as out, open(err_log, "w", encoding="utf-8") as err:
        return subprocess.Popen(dies_with_parent(command), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))


def outcome_of(cell, returncode, seconds):
    """Success = exit 0 and a finished run folder; otherwise the one-line error (the last stderr
    line). `returncode` may also be a message: why the run could not finish (e.g. a lost Ray worker)."""
    if returncode == 0 and finished_metrics(cell) is not None:
        return Outcome(cell, True, seconds)
    if returncode == 0:
        error = "exited 0 but left no metrics.json matching the grid's config"
    elif isinstance(returncode, str):
        error = returncode
    else:
        error = last_line(cell.logs[1]) or f"exit code {returncode}"
    return Outcome(cell, False, seconds, error)


def stop(processes, grace=10.0):
    """Terminate the running training processes and wait for them (kill after `grace` seconds)."""
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LocalLauncher:
    """Each run a child process of this one (--backend local)."""

    def __init__(self, command_for):
        self.command_for = command_for

    def start(self, cell):
        return start(cell, self.command_for(cell))

    def poll(self, proc):
        """The exit status, or None while it runs."""
        return proc.poll()

    def stop(self, procs):
        stop(procs)


def run_pool(cells, jobs, launcher, progress, poll=0.2, outcomes=None):
    """Train `cells` with at most `jobs` runs at once through `launcher` (start / poll / stop);
    returns their Outcomes (appended to `outcomes` as they come, when given).

    The first run of each preprocessing key runs alone (of its key), so that parallel runs never
    preprocess the same data twice at once. On KeyboardInterrupt (or any exception) the running
    runs are stopped before it propagates: their run folders stay as they were, so a rerun trains
    them again."""
    pending, running, prepared = list(cells), {}, set()
    outcomes = [] if outcomes is None else outcomes
    try:
        while pending or running:
            while pending and len(running) < jobs:
                busy = {key for _, key, _ in running.values()}
                cell = next((c for c in pending if c.prep_key in prepared or c.prep_key not in busy), None)
                if cell is None:
                    break
                pending.remove(cell)
                running[launcher.start(cell)] = (cell, cell.prep_key, time.monotonic())
                progress.started(cell)
            for handle in list(running):
                returncode = launcher.poll(handle)
                if returncode is None:
                    continue
                cell, key, began = running.pop(handle)
                prepared.add(key)
                outcomes.append(outcome_of(cell, returncode, time.monotonic() - began))
                progress.finished(outcomes[-1])
            if running and hasattr(progress, "tick"):
                progress.tick()
            time.sleep(poll if running else 0)
    finally:
        launcher.stop(list(running))
    return outcomes


def run_local(cells, jobs, command_for, progress, poll=0.2, outcomes=None):
    """run_pool with each run a child process."""
    return run_pool(cells, jobs, LocalLauncher(command_for), progress, poll, outcomes)


EPOCH_LINE = re.compile(r"^epoch (\d+):", re.M)   # what a training prints after each epoch (train/trainer.py)


def last_epoch(log):
    """The last finished epoch a training's stdout log reports (None when none yet, or no log)."""
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = EPOCH_LINE.findall(text)
    return int(found[-1]) if found else None


class Progress:
    """One status line over the grid: done / running (with each running run's epoch) / failed / left
    and the estimated time left. On a terminal the line is redrawn in place; elsewhere it is printed
    whenever it changes.

    The time left is estimated per kind of run: a pending run is expected to take what finished runs
    of the same model and dataset took (else the same model on other datasets, else any run), and a
    running run the time its epochs so far project to its last epoch. One slow run of one kind does
    not inflate the estimate for the others."""

    def __init__(self, total, jobs, done=0, stream=None, clock=time.monotonic, pending=None, refresh=5.0):
        self.total, self.jobs, self.clock = total, jobs, clock
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done, self.failed = done, 0   # done: finished runs, those of earlier invocations included
        self.running = {}        # cell -> start time
        self.epochs = {}         # cell -> last finished epoch read from its log
        self.durations = []
        self.by_kind = {}        # (model, dataset) -> [seconds]
        self.pending = None if pending is None else list(pending)
        self.refresh, self.last_read = refresh, None

    @staticmethod
    def kind(cell):
        return getattr(cell, "model", getattr(cell, "label", "?")), getattr(cell, "dataset", "")

    @property
    def left(self):
        return self.total - self.done - self.failed - len(self.running)

    def expected(self, cell):
        """The seconds a run of this kind is expected to take, from the finished runs (None: none yet)."""
        model, dataset = self.kind(cell)
        for durations in (self.by_kind.get((model, dataset)),
                          [d for (m, _), ds in self.by_kind.items() if m == model for d in ds],
                          self.durations):
            if durations:
                return sum(durations) / len(durations)
        return None

    def remaining(self, cell, now):
        elapsed = now - self.running[cell]
        epoch, epochs = self.epochs.get(cell), _epochs(cell)
        if epoch and epochs and epoch <= epochs:
            return elapsed * (epochs - epoch) / epoch
        expected = self.expected(cell)
        return None if expected is None else max(0.0, expected - elapsed)

    def eta(self):
        if not self.durations:
            return None
        now = self.clock()
        if self.pending is None:   # no list of runs: each left run takes the mean
            work = self.left * (sum(self.durations) / len(self.durations))
        else:
            work = sum(self.expected(c) for c in self.pending if c not in self.running)
        work += sum(self.remaining(c, now) or 0.0 for c in self.running)
        return work / max(1, min(self.jobs, self.left + len(self.running)))

    def line(self):
        eta = self.eta()
        left = "time left unknown" if eta is None else f"about {format_seconds(eta)} left"
        running = []
        for cell in self.running:
            epoch, epochs = self.epochs.get(cell), _epochs(cell)
            if epoch is not None and epochs:
                running.append(f"{getattr(cell, 'label', cell)} epoch {epoch}/{epochs}")
        return (f"grid: {self.done}/{self.total} done, {len(self.running)} running, {self.failed} failed, "
                f"{self.left} left, {left}" + (f" ({'; '.join(running)})" if running else ""))

    def _write(self, message=None):
        if self.tty:
            self.stream.write("\r\033[K" + (message + "\n" if message else "") + self.line())
        else:
            self.stream.write((message + "\n" if message else "") + self.line() + "\n")
        self.stream.flush()

    def started(self, cell):
        self.running[cell] = self.clock()
        self._write()

    def tick(self):
        """Read the running runs' logs (at most every `refresh` seconds); redraw when an epoch finished."""
        now = self.clock()
        if self.last_read is not None and now - self.last_read < self.refresh:
            return
        self.last_read = now
        changed = False
        for cell in self.running:
            epoch = last_epoch(cell.logs[0]) if hasattr(cell, "logs") else None
            if epoch != self.epochs.get(cell):
                self.epochs[cell], changed = epoch, True
        if changed:
            self._write()

    def finished(self, outcome):
        self.running.pop(outcome.cell, None)
        self.epochs.pop(outcome.cell, None)
        if self.pending is not None and outcome.cell in self.pending:
            self.pending.remove(outcome.cell)
        self.durations.append(outcome.seconds)
        self.by_kind.setdefault(self.kind(outcome.cell), []).append(outcome.seconds)
        if outcome.ok:
            self.done += 1
            message = f"done   {outcome.cell.label} ({format_seconds(outcome.seconds)})"
        else:
            self.failed += 1
            message = f"FAILED {outcome.cell.label}: {outcome.error} (log: {outcome.cell.logs[1]})"
        self._write(message)

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _epochs(cell):
    cfg = getattr(cell, "cfg", None)
    return getattr(getattr(cfg, "train", None), "epochs", None)


def format_seconds(seconds):
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def write_status(path, plan, outcomes):
    """<runs>/grid_logs/status.json: every run's state at the end of the last grid invocation."""
    by_cell = {o.cell: o for o in outcomes}
    runs = []
    for cell in plan.cells:
        outcome = by_cell.get(cell)
        state = ("failed" if not outcome.ok else "trained") if outcome else \
            ("finished" if run_state(cell) == "finished" else "not run")   # also right after an interrupt
        entry = {"model": cell.model, "dataset": cell.dataset, "seed": cell.seed, "state": state,
                 "folder": str(cell.folder)}
        if outcome:
            entry.update(seconds=round(outcome.seconds, 1), log=str(cell.logs[0]), stderr=str(cell.logs[1]))
            if not outcome.ok:
                entry["error"] = outcome.error
        runs.append(entry)
    write_json(path, {"updated": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": runs})


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def reproduce(plan, jobs=1, device="auto", experiment=None, overrides=(), backend="local", address=None,
              out=print, command_for=None):
    """Train the runs of `plan` that are not finished; returns the Outcomes of this invocation.
    `command_for(cell)` replaces the training command (tests)."""
    if not 1 <= jobs <= MAX_JOBS:
        raise UserError(f"--jobs {jobs}: out of range (takes 1..{MAX_JOBS})")
    for note in plan.notes:
        out(note)
    states = {cell: run_state(cell) for cell in plan.cells}
    count = {s: sum(1 for v in states.values() if v == s) for s in ("finished", "changed", "incomplete", "new")}
    todo = [cell for cell in plan.cells if states[cell] != "finished"]
    out(f"grid: {len(plan.cells)} runs ({len(plan.not_applicable)} model/dataset pairs are '-' in the paper); "
        f"{count['finished']} finished, {count['changed']} with a changed config, "
        f"{count['incomplete']} incomplete, {count['new']} new: {len(todo)} to train with {jobs} job(s)")
    if not todo:
        return []
    threads = max(1, cpu_count() // jobs)   # CPU threads per run (on a GPU: its host-side work)
    if command_for is None:
        def command_for(cell):   # a run whose config changed replaces its finished run: --overwrite
            return train_command(cell, device, experiment, overrides, threads, states[cell] == "changed")
    grid_logs = Path(todo[0].cfg.paths.runs) / "grid_logs"
    progress = Progress(len(plan.cells), jobs, done=count["finished"], pending=todo)
    outcomes = []
    main_thread = threading.current_thread() is threading.main_thread()
    # `kill` stops the runs too
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if main_thread else None
    try:
        if backend == "ray":
            from .grid_ray import ray_launcher
            with ray_launcher(lambda cell: dies_with_parent(command_for(cell)), jobs, address, threads or 1,
                              0.0 if uses_cpu(device) else 1.0 / jobs) as launcher:
                run_pool(todo, jobs, launcher, progress, outcomes=outcomes)
        else:
            run_local(todo, jobs, command_for, progress, outcomes=outcomes)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        progress.close()
        write_status(grid_logs / "status.json", plan, outcomes)
    failed = [o for o in outcomes if not o.ok]
    out(f"grid finished: {len(outcomes) - len(failed)} trained, {count['finished']} already finished, "
        f"{len(failed)} failed" + (f" (their logs: {grid_logs}/<dataset>/<model>/seed<N>.err; "
                                    f"list in {grid_logs / 'status.json'})" if failed else ""))
    return outcomes


def split_names(text, option):
    """'a,b, c' -> ['a', 'b', 'c']; None stays None (the paper's grid)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"{option} {text!r}: expected comma-separated names")
    return names
