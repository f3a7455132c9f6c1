"""Nothing a user does loses a finished run, and no mistake ends in a traceback: run folders are
replaced only by a finished training, under a lock (train/run_folder.py); own-data folders have a
stable identity (train/config.py dataset_identity); options, config values and the files a user or a
crash can damage are checked before work (main.py, common/io.py, train/config.py); the Python API
raises UserError (train/inference/api.py); explain writes all its heat maps or none.

Tiny own data (a JSONL folder) and a tiny GloVe-format vectors file, CapsNet for one epoch; the
error cases go through main.main() as `python main.py` runs it (common.errors.run_command), and
assert exit status 2, one `error:` line naming the file or option, and nothing written or lost.
"""
import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import main as entry
from common.errors import UserError, run_command
from conftest import REPO_ROOT, checkout_copy, git_status
from data_process.lexicon import lexicon_words
from train import run as run_module
from train.config import compose
from train.experiments.grid import Cell, Plan, run_state
from train.experiments.table import render_table
from train.inference.api import SentimentClassifier
from train.run import train_job
from train.run_folder import lock_path, run_dir, run_lock

TEXTS = [("The pasta was great but the waiter was rude.", [("pasta", "positive"), ("waiter", "negative")]),
         ("Decent wine list, slow kitchen.", [("wine list", "neutral"), ("kitchen", "negative")]),
         ("The pizza was awful and the staff slow.", [("pizza", "negative"), ("staff", "negative")]),
         ("Lovely decor, the food was fine.", [("decor", "positive"), ("food", "neutral")]),
         ("Great service and cheap prices.", [("service", "positive"), ("prices", "positive")]),
         ("The soup was cold.", [("soup", "negative")])]
TINY = ["train.epochs=1", "train.tensorboard=false", "train.batch_size=4"]


def jsonl_line(text, aspects):
    items = []
    for term, polarity in aspects:
        start = text.index(term)
        items.append({"term": term, "from": start, "to": start + len(term), "polarity": polarity})
    return json.dumps({"text": text, "aspects": items})


def write_folder(folder, texts=TEXTS):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("\n".join(jsonl_line(t, a) for t, a in texts) + "\n")
    (folder / "test.jsonl").write_text("\n".join(jsonl_line(t, a) for t, a in texts[:2]) + "\n")
    return folder


def write_vectors(path, words, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    lines = [w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=dim)) for w in sorted(set(words))]
    Path(path).write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("reliability"))


def make_env(root):
    """{root, data (own-data folder), vectors, overrides (tmp paths, tiny vectors, one epoch)} under root."""
    data = write_folder(root / "a" / "reviews")
    words = {w for t, _ in TEXTS for w in re.findall(r"\w+|[^\w\s]", t.lower())}
    words |= {w for group in lexicon_words().values() for w in group}
    vectors = write_vectors(root / "vectors.txt", words)
    overrides = [f"paths.runs={root / 'runs'}", f"paths.processed={root / 'processed'}",
                 f"data.embeddings={vectors}", *TINY]
    return {"root": root, "data": data, "vectors": vectors, "overrides": overrides}


def cfg_of(env, dataset=None, extra=()):
    return compose("capsnet", str(dataset or env["data"]), None, [*env["overrides"], *extra])


@pytest.fixture(scope="module")
def trained(env):
    """A finished run of the own-data folder (seed 0) and its folder."""
    cfg = cfg_of(env)
    train_job(cfg, 0, "cpu")
    return cfg, run_dir(cfg, 0)


def snapshot(folder):
    """{relative path: sha256} of every file under folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def leftovers(folder):
    """Staging folders, moved-aside runs and lock files beside a run folder (none when its parent is gone)."""
    if not Path(folder).parent.is_dir():
        return []
    return sorted(p.name for p in Path(folder).parent.iterdir() if p.name.startswith("."))


def cli(capsys, *argv):
    """main.main(argv) run as `python main.py` runs it: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        run_command(lambda: entry.main([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def assert_error(result, *fragments):
    """Exit status 2 and exactly one `error:` line holding every fragment (no traceback)."""
    status, out, err = result
    assert status == 2, f"exit {status}\nstdout: {out}\nstderr: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------- run folders: staging, lock, finished

def test_a_finished_run_records_its_code_version_and_leaves_no_staging_or_lock(trained):
    cfg, folder = trained
    metrics = json.loads((folder / "metrics.json").read_text())
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert metrics["commit"] == (git.stdout.strip() if git.returncode == 0 else None)
    assert isinstance(metrics["dirty"], bool)
    assert {"checkpoint.pt", "predictions.jsonl", "metrics.json", "curves.png", "confusion.png",
            "train.log"} <= set(os.listdir(folder))
    assert leftovers(folder) == []


def test_a_training_that_fails_before_it_starts_leaves_no_empty_run_folders(env, capsys, tmp_path):
    runs = tmp_path / "runs"
    sets = [a for o in [*env["overrides"], f"paths.runs={runs}", "data.embeddings=/nonexistent/vectors.txt",
                        f"paths.processed={tmp_path / 'p'}"] for a in ("--set", o)]
    assert_error(cli(capsys, "--mode", "train", "--dataset", env["data"], *sets), "/nonexistent/vectors.txt")
    assert not runs.exists()


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_or_crashing_retraining_leaves_the_previous_run_intact(env, trained, monkeypatch, failure):
    cfg, folder = trained
    before = snapshot(folder)

    def fit_then_fail(model, train_loader, val_loader, tcfg, device, on_best, log, writer, resume, on_epoch):
        on_best(1, {"step": 1})                          # the first epoch's checkpoint is written
        raise failure("stopped midway")

    monkeypatch.setattr(run_module, "fit", fit_then_fail)
    changed = cfg_of(env, extra=["train.lr=0.01"])     # a re-run of the grid cell with a changed config
    with pytest.raises(failure):
        train_job(changed, 0, "cpu", overwrite=True)
    assert snapshot(folder) == before
    assert leftovers(folder) == []
    # the grid still sees the old run: finished for its own config, changed for the new one
    assert run_state(Cell("capsnet", cfg.data.name, 0, cfg)) == "finished"
    assert run_state(Cell("capsnet", cfg.data.name, 0, changed)) == "changed"


def test_a_second_training_of_a_locked_run_folder_gets_one_error_line_naming_folder_and_pid(env, trained, capsys):
    cfg, folder = trained
    before = snapshot(folder)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from train.run_folder import run_lock\n"
        "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(120)"), str(folder)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = cli(capsys, "--mode", "train", "--dataset", env["data"], "--device", "cpu", "--overwrite",
                     *[a for o in env["overrides"] for a in ("--set", o)])
        assert_error(result, str(folder), f"pid {holder.pid}", "another training")
        assert snapshot(folder) == before
    finally:
        holder.send_signal(signal.SIGKILL)                 # killed: its lock file stays behind, stale
        holder.wait()
    assert lock_path(folder).read_text().strip() == str(holder.pid)
    with run_lock(folder):                                 # a stale lock is taken over
        assert lock_path(folder).read_text().strip() == str(os.getpid())
    assert not lock_path(folder).exists()


def test_a_killed_trainings_staging_folder_is_cleaned_and_a_moved_aside_run_put_back(tmp_path):
    folder = tmp_path / "runs" / "d" / "m" / "seed0"
    (folder.parent / ".seed0.staging-999999").mkdir(parents=True)
    (folder.parent / ".seed0.staging-999999" / "checkpoint.pt").write_bytes(b"half")
    old = folder.parent / ".seed0.old-999999"      # killed between the two renames of a publish
    old.mkdir()
    (old / "metrics.json").write_text("{}")
    with run_lock(folder):
        pass
    assert (folder / "metrics.json").read_text() == "{}"
    assert leftovers(folder) == []


def test_test_and_predict_refuse_a_run_folder_that_is_not_finished(env, trained, capsys, tmp_path):
    cfg, folder = trained
    broken = cfg_of(env, extra=[f"paths.runs={tmp_path / 'runs'}"])
    half = run_dir(broken, 0)
    half.mkdir(parents=True)
    (half / "checkpoint.pt").write_bytes((folder / "checkpoint.pt").read_bytes())   # no metrics, no predictions
    sets = [a for o in [*env["overrides"], f"paths.runs={tmp_path / 'runs'}"] for a in ("--set", o)]
    for mode, request in (("test", ()), ("predict", ("--text", "The soup was cold.", "--aspect", "soup"))):
        result = cli(capsys, "--mode", mode, "--dataset", env["data"], *request, *sets)
        assert_error(result, str(half), "not a finished run", "no predictions.jsonl")


# ---------------------------------------------------------------- own data: a stable identity

def test_two_own_data_folders_with_one_base_name_keep_their_own_runs(env, trained, capsys, monkeypatch):
    cfg_a, folder_a = trained
    other = write_folder(env["root"] / "b" / "reviews", TEXTS[2:] + TEXTS[:2])
    cfg_b = cfg_of(env, other)
    assert cfg_a.data.name.startswith("user-reviews-") and cfg_b.data.name.startswith("user-reviews-")
    assert cfg_a.data.name != cfg_b.data.name and run_dir(cfg_a, 0) != run_dir(cfg_b, 0)
    before = snapshot(folder_a)
    train_job(cfg_b, 0, "cpu")
    assert snapshot(folder_a) == before
    # every spelling of a folder finds its own run
    monkeypatch.chdir(env["root"])
    for spelling in ("a/reviews", "./a/reviews/", str(env["data"])):
        assert cfg_of(env, spelling).data.name == cfg_a.data.name
        status, out, err = cli(capsys, "--mode", "predict", "--dataset", spelling, "--text", "The soup was cold.",
                               "--aspect", "soup", *[a for o in env["overrides"] for a in ("--set", o)])
        assert status == 0, err
        assert json.loads(out.splitlines()[-1])["aspect"] == "soup"


def readme_commands():
    """The bash block of README.md's section "Your own data"."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Your own data"):]
    start = section.index("```bash\n") + len("```bash\n")
    return section[start:section.index("\n```", start)]


@pytest.mark.slow
def test_the_readmes_own_data_example_works_as_written(tmp_path):
    clone = checkout_copy(tmp_path / "clone")           # run where a new user runs it: in the checkout
    script = readme_commands().replace("python main.py", f"{sys.executable} main.py")
    fresh = {k: v for k, v in os.environ.items() if k != "ABSA_DATA_ROOT"}   # a new user's shell
    result = subprocess.run(["bash", "-e", "-c", script], cwd=clone, capture_output=True, text=True,
                            timeout=600, env=fresh)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["aspect"] == "pasta" and record["label"] in ("positive", "negative", "neutral")
    [run] = (clone / "runs").glob("user-my_reviews-*/capsnet/seed0/metrics.json")
    assert json.loads(run.read_text())["dataset"] == run.parts[-4]
    assert git_status(clone) == []                      # the example's folder is where git ignores it


def test_mode_stats_writes_the_users_table2_and_leaves_the_committed_one_alone(env, capsys, tmp_path):
    committed = REPO_ROOT / "results" / "table2.md"
    before = committed.read_bytes()
    sets = [a for o in env["overrides"] for a in ("--set", o)] + ["--set", f"paths.runs={tmp_path / 'runs'}"]
    status, out, err = cli(capsys, "--mode", "stats", "--dataset", env["data"], *sets)
    written = tmp_path / "runs" / "results" / "table2.md"
    assert status == 0 and "| user-reviews-" in out and f"written to {written}" in err
    assert written.read_text() == out
    status, out, _ = cli(capsys, "--mode", "stats", "--dataset", env["data"], *sets, "--results", tmp_path / "mine")
    assert status == 0 and (tmp_path / "mine" / "table2.md").read_text() == out
    assert committed.read_bytes() == before


# ---------------------------------------------------------------- damaged files

@pytest.mark.parametrize("content", ['{"model": "capsnet", "dataset": "d", "se', "[1, 2]"])
def test_a_damaged_metrics_json_is_named_by_report_and_left_out_by_table(env, trained, capsys, tmp_path, content):
    cfg, folder = trained
    runs = tmp_path / "runs"
    copy = run_dir(cfg_of(env, extra=[f"paths.runs={runs}"]), 0)
    copy.mkdir(parents=True)
    for name in os.listdir(folder):
        (copy / name).write_bytes((folder / name).read_bytes())
    (copy / "metrics.json").write_text(content)
    sets = [a for o in [*env["overrides"], f"paths.runs={runs}"] for a in ("--set", o)]
    assert_error(cli(capsys, "--mode", "report", *sets), "no runs to report (1 damaged run folder(s) left out: ",
                 str(copy / "metrics.json"), "metrics file")   # the only run: nothing to report
    assert not (runs / "summary.md").exists()
    cell = Cell("capsnet", cfg.data.name, 0, cfg_of(env, extra=[f"paths.runs={runs}"]))
    assert run_state(cell) == "incomplete"                 # reproduce trains it again
    plan = Plan(models=["capsnet"], datasets=[cfg.data.name], seeds=1, cells=[cell], not_applicable=set(), notes=[])
    markdown, [result] = render_table(plan, tmp_path / "results")
    assert (result.status, result.damaged, result.stale) == ("missing", 1, 0)   # not "another config"
    assert "left out: 1 damaged run folder(s)" in markdown


def test_a_metrics_json_whose_test_accuracy_is_not_a_number_is_damaged(trained, tmp_path):
    from train.run_folder import read_metrics
    metrics = json.loads((trained[1] / "metrics.json").read_text())
    metrics["test"]["accuracy"] = float("nan")
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))                   # json writes the non-standard NaN token
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}: test accuracy is nan, not a finite number"):
        read_metrics(path)


@pytest.mark.parametrize("content", ["train: 5\n", "train:\n"])
def test_a_config_section_that_is_not_a_mapping_is_blamed_on_its_file_not_a_later_set(env, capsys, tmp_path,
                                                                                      content):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(content)
    assert_error(cli(capsys, "--mode", "train", "--dataset", env["data"], "--config", experiment,
                     "--set", "train.num_threads=1"), f"{experiment}: section train is not a mapping")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_config_files_in_the_encodings_editors_write_are_read(env, tmp_path, encoding):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("# café\ntrain:\n  lr: 0.002\n", encoding=encoding)
    assert compose("capsnet", str(env["data"]), str(experiment), env["overrides"]).train.lr == 0.002


def test_a_config_file_that_is_not_text_is_one_error_line(env, capsys, tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_bytes("train:\n  lr: 0.002 # caf\xe9\n".encode("latin-1"))
    assert_error(cli(capsys, "--mode", "train", "--dataset", env["data"], "--config", experiment),
                 str(experiment), "not UTF-8 text")


def test_a_damaged_or_misfitting_checkpoint_is_one_error_line(env, trained, capsys, tmp_path):
    import torch
    cfg, folder = trained
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((folder / "checkpoint.pt").read_bytes()[:1000])
    state = torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)
    name = next(k for k, v in state["model_state"].items() if v.dim() == 2)
    state["model_state"][name] = torch.zeros(3, 3)
    misfit = tmp_path / "misfit.pt"
    torch.save(state, misfit)
    assert_error(cli(capsys, "--mode", "predict", "--checkpoint", truncated, "--text", "x y", "--aspect", "x"),
                 str(truncated), "not a PyTorch checkpoint file")
    assert_error(cli(capsys, "--mode", "predict", "--checkpoint", misfit, "--text", "x y", "--aspect", "x"),
                 str(misfit), "weights do not fit")


def test_a_vectors_file_that_covers_no_lexicon_word_is_one_error_line(env, capsys, tmp_path):
    vectors = write_vectors(tmp_path / "foreign.txt", ["pasta", "waiter", "kitchen"])
    sets = [a for o in [*env["overrides"], f"data.embeddings={vectors}", f"paths.runs={tmp_path / 'runs'}",
                        f"paths.processed={tmp_path / 'processed'}"] for a in ("--set", o)]
    assert_error(cli(capsys, "--mode", "train", "--dataset", env["data"], *sets), str(vectors), "sentiment lexicon")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))


def test_own_data_too_small_to_hold_out_validation_is_one_error_line(env, capsys, tmp_path):
    small = write_folder(tmp_path / "small", TEXTS[:1])
    assert_error(cli(capsys, "--mode", "train", "--dataset", small), str(small / "train.jsonl"),
                 "at least 2", "val file")


# ---------------------------------------------------------------- out-of-range options and values

@pytest.mark.parametrize("argv,fragment", [
    (["--seed", "-1"], "--seed -1: out of range"),
    (["--seed", str(2**32)], f"--seed {2**32}: out of range"),
    (["--mode", "reproduce", "--seeds", "100000"], "--seeds 100000: out of range (takes 1..100)"),
    (["--mode", "reproduce", "--jobs", "0"], "--jobs 0: out of range"),
    (["--mode", "reproduce", "--jobs", "5000"], "--jobs 5000: out of range"),
    (["--seed", "abc"], "argument --seed: invalid int value"),
    (["--set", "train.epochs=0"], "train.epochs"),
    (["--set", "train.batch_size=6400000"], "train.batch_size"),
    (["--set", "data.max_words=40000"], "data.max_words"),
    (["--set", "paths.runs="], "--set paths.runs=: paths.runs is empty (it takes a folder)"),
    (["--set", "paths.processed="], "paths.processed is empty"),
    (["--set", "run_name=123"], "run_name is not a string (YAML read it as int 123); quote the value"),
    (["--set", "run_name='  '"], "run_name is blank"),
])
def test_out_of_range_options_are_one_error_line_before_any_work(env, capsys, argv, fragment, tmp_path):
    sets = ["--set", f"paths.runs={tmp_path / 'runs'}", "--set", f"paths.processed={tmp_path / 'p'}"]
    dataset = [] if "reproduce" in argv else ["--dataset", env["data"]]    # the grid takes --datasets
    assert_error(cli(capsys, *dataset, *sets, *argv), fragment)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "p").exists()


def test_a_runs_or_published_folder_that_does_not_exist_is_refused_not_read_as_empty(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    assert_error(cli(capsys, "--mode", "publish", "--set", f"paths.runs={missing}"),
                 f"paths.runs={missing}: no such folder")
    for argv in (["--mode", "compare", "--models", "capsnet,capsnet-dr"], ["--mode", "table", "--models", "capsnet"],
                 ["--mode", "results"]):
        assert_error(cli(capsys, *argv, "--published", missing), f"--published {missing}: no such folder")
    assert not missing.exists()
    a_file = tmp_path / "runs.txt"
    a_file.write_text("")
    assert_error(cli(capsys, "--mode", "results", "--published", a_file), f"--published {a_file}: a file, not a folder")


@pytest.mark.parametrize("argv,fragment", [
    (["--mode", "serve", "--allow-host", " "], "--allow-host '': takes a host name"),
    (["--mode", "results", "--model", "bert"], "--model: --mode results renders the whole page"),
    (["--mode", "results", "--datasets", "mams-acsa"], "--datasets: --mode results renders the whole page"),
    (["--mode", "reproduce", "--dataset", "mams-acsa"], "--dataset: --mode reproduce takes --datasets NAMES"),
    (["--mode", "table", "--dataset", "mams-acsa"], "--dataset: --mode table takes --datasets NAMES"),
    (["--mode", "compare", "--model", "capsnet"], "--model: --mode compare takes --models NAMES"),
    (["--mode", "train", "--datasets", "mams-acsa"], "--datasets: --mode train takes one --dataset NAME"),
    (["--mode", "predict", "--models", "capsnet"], "--models: --mode predict takes one --model NAME"),
    (["--mode", "publish", "--variant", "train.epochs=3"], "--variant: --mode publish does not use it (it is for "
                                                           "--mode compare)"),
    (["--mode", "table", "--variant", "train.epochs=3"], "--variant: --mode table does not use it"),
    (["--mode", "publish", "--published", "none"], "--published: --mode publish does not use it"),
    (["--mode", "publish", "--results", "x"], "--results: --mode publish does not use it"),
    (["--mode", "compare", "--out", "x"], "--out: --mode compare does not use it"),
    (["--mode", "train", "--checkpoint", "x.pt"], "--checkpoint: --mode train does not use it"),
    (["--mode", "predict", "--port", "9000"], "--port: --mode predict does not use it (it is for --mode serve)"),
    (["--mode", "compare", "--jobs", "4"], "--jobs: --mode compare does not use it (it is for --mode reproduce, "
                                           "table)"),
    (["--mode", "train", "--seeds", "3"], "--seeds: --mode train does not use it"),
])
def test_an_option_of_another_kind_of_mode_is_refused_not_ignored(capsys, argv, fragment, tmp_path):
    result = cli(capsys, *argv, "--set", f"paths.runs={tmp_path / 'runs'}")
    assert_error(result, fragment)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_an_unwritable_results_or_runs_folder_is_refused_before_any_training(capsys, tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    target = blocker if where == "file" else blocker / "sub"
    for option in (["--results", target], ["--set", f"paths.runs={target}"]):
        result = cli(capsys, "--mode", "reproduce", "--models", "capsnet", "--datasets", "mams-atsa", *option)
        assert_error(result, str(target), "not a folder")
        assert "grid:" not in result[1]                        # nothing was started
    assert blocker.read_text() == ""


# ---------------------------------------------------------------- the Python API: UserError only

@pytest.fixture(scope="module")
def clf(trained):
    return SentimentClassifier.load(trained[1] / "checkpoint.pt", device="cpu")


@pytest.mark.parametrize("call,fragment", [
    (lambda c: c.predict([("The soup was cold.", ["soup"])], batch_size=0), "batch_size=0"),
    (lambda c: c.predict([("The soup was cold.", ["soup"])], batch_size=-3), "batch_size=-3"),
    (lambda c: c.predict([("The soup was cold.", ["soup"])], batch_size=2.5), "batch_size=2.5"),
    (lambda c: c.predict([("The soup was cold.", ["soup"])], batch_size=True), "batch_size=True"),
    (lambda c: c.predict([(42, ["soup"])]), "item 0"),
    (lambda c: c.predict([("The soup was cold.", [])]), "no aspects"),
    (lambda c: c.predict([("The soup was cold.", [""])]), "empty aspect"),
    (lambda c: c.predict(None), "items"),
    (lambda c: c.predict(7), "items"),
    (lambda c: c.explain("The soup was cold.", ["soup"]), "item 0"),
    (lambda c: SentimentClassifier.load(c.checkpoint, device="gpu"), "device='gpu'"),
    (lambda c: SentimentClassifier.load(None), "checkpoint=None"),
])
def test_api_mistakes_raise_user_error_naming_the_argument(clf, call, fragment):
    with pytest.raises(UserError) as err:
        call(clf)
    assert fragment in str(err.value)


def test_an_overlong_text_is_refused_before_the_model_or_the_tokenizer_runs(clf, monkeypatch):
    assert clf.max_words == 512                          # data.max_words of configs/default.yaml
    monkeypatch.setattr(clf.encoder, "encode", lambda *a: pytest.fail("tokenised an overlong text"))
    text = "the soup was cold " * 100_000 + "soup"
    with pytest.raises(UserError, match=r"item 0: the text has 400001 words, more than this model takes "
                                        r"\(data.max_words=512\)"):
        clf.predict([(text, ["soup"])])
    monkeypatch.undo()
    small = SentimentClassifier(clf.model, clf.encoder, clf.cfg.replace(
        data=dataclasses.replace(clf.cfg.data, max_words=12)), clf.device)
    with pytest.raises(UserError, match=r"item 0: the text has 16 tokens.*data.max_words=12"):
        small.predict([("soup, " * 8, ["soup"])])      # 8 words, but a comma is a token of its own
    [record] = small.predict([("soup " * 11 + "cold", ["soup"])])   # the limit itself is taken
    assert record["aspect"] == "soup"


def test_cli_predict_refuses_an_overlong_text_in_one_error_line(trained, capsys, tmp_path):
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps({"text": "The soup was cold.", "aspects": ["soup"]}) + "\n"
                        + json.dumps({"text": "cold soup " * 300, "aspects": ["soup"]}) + "\n")
    assert_error(cli(capsys, "--mode", "predict", "--checkpoint", trained[1] / "checkpoint.pt", "--input", requests),
                 f"{requests}:2", "data.max_words=512")



def test_cli_predict_answers_with_the_callers_max_words_not_the_checkpoints(trained, capsys):
    checkpoint = trained[1] / "checkpoint.pt"
    text = "The soup was cold and the bread was stale ."        # 10 tokens
    status, out, _ = cli(capsys, "--mode", "predict", "--checkpoint", checkpoint, "--text", text, "--aspect", "soup")
    assert status == 0 and json.loads(out)["aspect"] == "soup"
    assert_error(cli(capsys, "--mode", "predict", "--checkpoint", checkpoint, "--text", text, "--aspect", "soup",
                     "--set", "data.max_words=6"), "--text", "data.max_words=6")


def test_cli_predict_refuses_a_training_setting_it_cannot_apply_and_takes_the_checkpoints_own(trained, capsys):
    checkpoint = trained[1] / "checkpoint.pt"
    request = ("--mode", "predict", "--checkpoint", checkpoint, "--text", "The soup was cold.", "--aspect", "soup")
    assert_error(cli(capsys, *request, "--set", "train.epochs=7"),
                 "--set train.epochs", f"{checkpoint} was trained with train.epochs=1",
                 "answer with the checkpoint's own settings")
    assert_error(cli(capsys, *request, "--set", "model.routing_iterations=9"), "--set model.routing_iterations")
    status, out, _ = cli(capsys, *request, "--set", "train.epochs=1")       # the checkpoint's own value
    assert status == 0 and json.loads(out)["aspect"] == "soup"


def test_predict_time_kernels_choice_swaps_the_implementation_and_keeps_the_answers(trained):
    from train.inference.evaluate import answer_settings
    from train.kernels import substituted
    folder = trained[1]
    request = [("The soup was cold but the staff were friendly.", ["soup", "staff"])]
    fast = SentimentClassifier.load(folder / "checkpoint.pt")
    assert substituted(fast.model)                                          # the default: fast
    reference = answer_settings(SentimentClassifier.load(folder / "checkpoint.pt"),
                                compose("capsnet", "mams-atsa", None, ["train.kernels=reference"]),
                                ["train.kernels=reference"])
    assert reference.cfg.train.kernels == "reference" and not substituted(reference.model)
    for a, b in zip(fast.predict(request), reference.predict(request)):
        assert a["label"] == b["label"] and a["scores"] == pytest.approx(b["scores"], abs=1e-5)

# ---------------------------------------------------------------- explain: all or nothing

def test_explain_with_several_requests_and_one_png_writes_distinct_files(trained, capsys, tmp_path):
    out = tmp_path / "maps" / "heat.png"
    requests = tmp_path / "in.jsonl"
    requests.write_text("\n".join(json.dumps({"text": t, "aspects": a}) for t, a in [
        ("The soup was cold.", ["soup"]), ("The soup was hot and the pasta cold.", ["soup", "pasta"])]) + "\n")
    status, stdout, err = cli(capsys, "--mode", "explain", "--checkpoint", trained[1] / "checkpoint.pt",
                              "--input", requests, "--out", out)
    assert status == 0, err
    pngs = [json.loads(line)["png"] for line in stdout.splitlines() if line.startswith("{")]
    assert [Path(p).name for p in pngs] == ["heat-1--soup.png", "heat-2--soup.png", "heat-3--pasta.png"]
    assert sorted(os.listdir(out.parent)) == sorted(Path(p).name for p in pngs)
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_explain_to_a_png_named_in_capitals_writes_that_file(trained, capsys, tmp_path):
    out = tmp_path / "Heat.PNG"
    status, stdout, err = cli(capsys, "--mode", "explain", "--checkpoint", trained[1] / "checkpoint.pt",
                              "--text", "The soup was cold.", "--aspect", "soup", "--out", out)
    assert status == 0, err
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"              # a file, not a folder of that name


@pytest.mark.parametrize("out,fragment", [("", "--out '': takes a .png file or a folder"),
                                          ("maps/heat.jpg", "explain writes PNG heat maps; name a .png file"),
                                          ("maps/heat.SVG", "explain writes PNG heat maps")])
def test_explain_refuses_an_empty_out_or_another_image_format_instead_of_making_a_folder(trained, capsys, tmp_path,
                                                                                       monkeypatch, out, fragment):
    monkeypatch.chdir(tmp_path)                               # '' would be the current folder
    assert_error(cli(capsys, "--mode", "explain", "--checkpoint", trained[1] / "checkpoint.pt",
                     "--text", "The soup was cold.", "--aspect", "soup", "--out", out), fragment)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("case", ["bad-request", "out-is-folder", "out-under-file"])
def test_explain_checks_everything_before_writing_any_heat_map(trained, capsys, tmp_path, case):
    requests = tmp_path / "in.jsonl"
    lines = [{"text": "The soup was cold.", "aspects": ["soup"]}, {"text": "The soup was cold.", "aspects": ["soup"]}]
    out = tmp_path / "maps" / "heat.png"
    if case == "bad-request":
        lines.append({"text": "The soup was cold.", "aspects": ["pasta"]})    # not in the text
    elif case == "out-is-folder":
        out.mkdir(parents=True)
    else:
        (tmp_path / "maps").write_text("")
        out = tmp_path / "maps" / "sub" / "heat.png"
    requests.write_text("\n".join(json.dumps(item) for item in lines) + "\n")
    result = cli(capsys, "--mode", "explain", "--checkpoint", trained[1] / "checkpoint.pt", "--input", requests,
                 "--out", out)
    expected = {"bad-request": (f"{requests}:3", "'pasta' not found"),
                "out-is-folder": (f"--out {out}", "is a folder"),
                "out-under-file": ("--out", "not a folder")}[case]
    assert_error(result, *expected)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".png", ".tmp")]
    assert not (trained[1] / "explain").exists()


@pytest.mark.slow
def test_a_retraining_killed_midway_by_sigkill_leaves_the_previous_run_intact(env, trained):
    """The real thing: a training process killed at its first epoch (no cleanup code runs)."""
    cfg, folder = trained
    before = snapshot(folder)
    argv = ["--mode", "train", "--dataset", str(env["data"]), "--device", "cpu", "--overwrite",
            *[a for o in [*env["overrides"], "train.epochs=50"] for a in ("--set", o)]]
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "main.py"), *argv], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:                         # wait for the first epoch (its checkpoint is written)
            if line.startswith("epoch 1:") or time.monotonic() > deadline:
                break
        assert any(p.name.startswith(".seed0.staging-") for p in folder.parent.iterdir())
    finally:
        proc.kill()
        proc.wait()
    assert snapshot(folder) == before
    with run_lock(folder):                               # the next training cleans what the killed one left
        pass
    assert leftovers(folder) == []
