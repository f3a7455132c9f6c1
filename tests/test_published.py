"""Published runs (train/experiments/runs.py, publish.py): a run's predictions and metrics in one Parquet
file under results/predictions/, read by the grid, the tables and compare where no run folder exists;
--mode publish as the one step that writes the committed results; the committed tables recomputed from
the committed predictions alone."""
import json

import numpy as np
import pytest

from common.errors import UserError
from common.labels import LABELS
from conftest import REPO_ROOT, write_finished_run
from train.experiments import grid
from train.experiments.claims import write_claims
from train.experiments.compare import compare_cell, load_settings
from train.experiments.grid import make_plan, reproduce, run_state
from train.experiments.publish import publish_job, published_plan
from train.experiments.results_page import headline_table, with_headline
from train.experiments.runs import (
    PUBLISHED_ROOT,
    from_folder,
    from_published,
    published_file,
    read_published,
    write_published,
)
from train.experiments.table import render_table

MAX_PUBLISHED_BYTES = 20 * 2**20


def overrides(tmp_path):
    return [f"paths.runs={tmp_path / 'runs'}", f"paths.processed={tmp_path / 'processed'}"]


def plan_of(tmp_path, models=("capsnet", "gcae"), seeds=2, published="pub", use_folders=True):
    root = None if published is None else tmp_path / published
    return make_plan(list(models), ["mams-atsa"], seeds, None, overrides(tmp_path), published=root,
                     use_folders=use_folders)


def cell_of(plan, model, seed):
    return next(c for c in plan.cells if (c.model, c.seed) == (model, seed))


def fake_run(cell, gold, predicted, config=None, commit="abc1234def"):
    """A finished run folder with real-looking predictions (scores) and metrics (confusion matrix)."""
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (gold, predicted), 1)
    metrics = {"model": cell.model, "run_name": cell.cfg.name, "dataset": cell.dataset, "seed": cell.seed,
               "device": "cpu", "commit": commit, "dirty": False, "history": [{"epoch": 1, "loss": 0.5}],
               "test": {"accuracy": round(100 * float(np.mean(gold == predicted)), 2), "macro_f1": 50.0,
                        "strict_accuracy": 10.0, "confusion": confusion.tolist(), "labels": list(LABELS)},
               "config": config or dict(cell.cfg.to_dict(), seed=cell.seed)}
    rng = np.random.default_rng(cell.seed)
    lines = []
    for i, (g, p) in enumerate(zip(gold, predicted)):
        scores = rng.dirichlet(np.ones(3))
        lines.append(json.dumps({"sentence_id": i // 2, "text": f"sentence {i // 2}", "aspect": f"aspect {i}",
                                 "gold": LABELS[g], "predicted": LABELS[p],
                                 "scores": {n: round(float(s), 6) for n, s in zip(LABELS, scores)}}))
    write_finished_run(cell.folder, metrics, "\n".join(lines) + "\n")
    return metrics


def noisy(rng, gold, accuracy):
    wrong = rng.random(len(gold)) > accuracy
    return np.where(wrong, (gold + 1 + rng.integers(0, 2, len(gold))) % 3, gold)


def test_a_published_file_holds_the_runs_predictions_scores_and_metrics_without_its_history(tmp_path):
    plan = plan_of(tmp_path)
    gold = np.array([0, 1, 2, 2, 1, 0, 0])
    metrics = fake_run(cell_of(plan, "capsnet", 0), gold, np.array([0, 1, 1, 2, 1, 0, 2]))
    run = from_folder(cell_of(plan, "capsnet", 0).folder)
    target = published_file(tmp_path / "pub", "mams-atsa", "capsnet", 0)
    write_published(target, run.metrics, run.predictions)
    stored, predictions = read_published(target)
    assert stored == {k: v for k, v in metrics.items() if k != "history"}
    assert predictions.keys == run.predictions.keys == tuple((i // 2, f"aspect {i}") for i in range(7))
    assert np.array_equal(predictions.gold, gold) and np.array_equal(predictions.predicted, run.predictions.predicted)
    assert np.allclose(predictions.scores, run.predictions.scores, atol=1e-7)


def test_the_grid_counts_a_published_run_as_finished_and_does_not_train_it_again(tmp_path):
    plan = plan_of(tmp_path, models=("capsnet",), seeds=1)
    cell = plan.cells[0]
    gold = np.array([0, 1, 2, 1])
    fake_run(cell, gold, gold)
    write_published(cell.published_file, *(lambda r: (r.metrics, r.predictions))(from_folder(cell.folder)))
    for path in sorted(cell.folder.iterdir()):
        path.unlink()
    cell.folder.rmdir()                       # a new machine: the run folder is gone, the published file is not
    fresh = plan_of(tmp_path, models=("capsnet",), seeds=1).cells[0]
    assert run_state(fresh) == "finished" and grid.finished_run(fresh).source == "published"
    started = []
    assert reproduce(plan_of(tmp_path, models=("capsnet",), seeds=1), command_for=started.append,
                     out=lambda *_: None) == []
    assert started == []
    assert run_state(plan_of(tmp_path, models=("capsnet",), seeds=1, published=None).cells[0]) == "new"


def test_a_run_folder_counts_before_its_published_file_and_another_config_is_changed(tmp_path):
    plan = plan_of(tmp_path, models=("capsnet",), seeds=1)
    cell = plan.cells[0]
    gold = np.array([0, 1, 2, 1])
    other = dict(cell.cfg.to_dict(), seed=0)
    other["train"] = dict(other["train"], lr=1.0)
    fake_run(cell, gold, gold, config=other)
    write_published(cell.published_file, *(lambda r: (r.metrics, r.predictions))(from_folder(cell.folder)))
    assert run_state(cell) == "changed"       # both homes hold another config
    fake_run(cell, gold, np.array([0, 1, 2, 2]))
    assert run_state(cell) == "finished" and grid.finished_run(cell).source == "run folder"


def test_a_damaged_published_file_is_incomplete_for_the_grid_and_one_error_naming_it_elsewhere(tmp_path):
    plan = plan_of(tmp_path, models=("capsnet",), seeds=1)
    cell = plan.cells[0]
    cell.published_file.parent.mkdir(parents=True)
    cell.published_file.write_bytes(b"PAR1 not really")
    assert run_state(cell) == "incomplete"
    with pytest.raises(UserError, match=rf"{cell.published_file}: not a readable published run"):
        from_published(cell.published_file)


def test_predictions_that_disagree_with_their_runs_metrics_are_left_out_with_the_file_named(tmp_path):
    plan = plan_of(tmp_path, published=None)
    gold = np.array([0, 1, 2, 1, 0, 2])
    for model in ("capsnet", "gcae"):
        for seed in (0, 1):
            fake_run(cell_of(plan, model, seed), gold, gold)
    folder = cell_of(plan, "gcae", 1).folder
    lines = (folder / "predictions.jsonl").read_text().splitlines()
    (folder / "predictions.jsonl").write_text("\n".join(lines[:-1]) + "\n")       # one instance short
    result = compare_cell(plan_of(tmp_path, published=None), "capsnet", "gcae", "mams-atsa", load_settings())
    assert result["seeds"] == [0]
    assert result["left_out"] == [{"seed": 1, "model": "gcae", "why": (
        f"{folder / 'predictions.jsonl'}: the predictions disagree with the run's metrics (5 instances, 5 right; "
        f"its metrics say 6 and 6)")}]


def test_publish_copies_new_runs_skips_identical_ones_and_refuses_to_replace_another_result(tmp_path, capsys):
    plan = plan_of(tmp_path)
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 60)
    for model, accuracy in (("capsnet", 0.8), ("gcae", 0.6)):
        for seed in (0, 1):
            fake_run(cell_of(plan, model, seed), gold, noisy(rng, gold, accuracy))
    out = {"published": tmp_path / "pub", "results_dir": tmp_path / "results", "page": tmp_path / "docs" / "R.md",
           "readme": None}
    assert publish_job("capsnet,gcae", "mams-atsa", 2, None, overrides(tmp_path), **out) == 0
    assert "published 4 run(s)" in capsys.readouterr().out
    written = sorted(p.relative_to(tmp_path / "pub").as_posix() for p in (tmp_path / "pub").rglob("*.parquet"))
    assert written == ["mams-atsa/capsnet/seed0.parquet", "mams-atsa/capsnet/seed1.parquet",
                       "mams-atsa/gcae/seed0.parquet", "mams-atsa/gcae/seed1.parquet"]
    for name in ("table3.md", "table3.csv", "claims.md", "claims.csv", "table3_seeds.csv", "table3_seeds.png"):
        assert (tmp_path / "results" / name).is_file(), name
    assert (tmp_path / "docs" / "img" / "table3_seeds.png").is_file()
    assert "| CapsNet |" in (tmp_path / "docs" / "R.md").read_text()

    assert publish_job("capsnet,gcae", "mams-atsa", 2, None, overrides(tmp_path), **out) == 0
    again = capsys.readouterr().out
    assert "published 0 run(s)" in again and "4 already published" in again

    target = tmp_path / "pub" / "mams-atsa" / "gcae" / "seed1.parquet"
    before = target.read_bytes()
    fake_run(cell_of(plan, "gcae", 1), gold, gold)           # a rerun with another result
    with pytest.raises(UserError, match=rf"{target}: already published and holds another result .* nothing was "
                                        r"written. --force replaces published runs"):
        publish_job("capsnet,gcae", "mams-atsa", 2, None, overrides(tmp_path), **out)
    assert target.read_bytes() == before
    assert publish_job("capsnet,gcae", "mams-atsa", 2, None, overrides(tmp_path), force=True, **out) == 0
    assert read_published(target)[0]["test"]["accuracy"] == 100.0


def test_publish_takes_the_default_settings_only(tmp_path):
    with pytest.raises(UserError, match=r"--set train.epochs=1: publish takes the default settings only"):
        publish_job(None, "mams-atsa", 1, None, ["train.epochs=1"], published=tmp_path / "pub",
                    results_dir=tmp_path / "r", page=tmp_path / "R.md", readme=None)
    assert not (tmp_path / "pub").exists()


def test_a_published_run_pairs_with_a_users_run_folder_in_compare(tmp_path):
    plan = plan_of(tmp_path)
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 3, 80)
    fake_run(cell_of(plan, "capsnet", 0), gold, noisy(rng, gold, 0.9))
    run = from_folder(cell_of(plan, "capsnet", 0).folder)
    write_published(cell_of(plan, "capsnet", 0).published_file, run.metrics, run.predictions)
    for path in sorted(run.path.iterdir()):
        path.unlink()
    fake_run(cell_of(plan, "gcae", 0), gold, noisy(rng, gold, 0.5))
    result = compare_cell(plan_of(tmp_path), "capsnet", "gcae", "mams-atsa", load_settings())
    assert result["seeds"] == [0] and result["difference"] > 0


# ---------------------------------------------------------------- the committed results

COMMITTED = ("table3.md", "table3.csv", "table3.tex", "claims.md", "claims.csv", "table3_seeds.csv")


def test_the_committed_tables_and_claims_are_recomputed_from_the_committed_predictions_alone(tmp_path):
    plan = published_plan()
    report = write_claims(plan, tmp_path)
    render_table(plan, tmp_path, marks=report.marks)
    for name in COMMITTED:
        assert (tmp_path / name).read_text(encoding="utf-8") == \
            (REPO_ROOT / "results" / name).read_text(encoding="utf-8"), \
            f"results/{name} differs from a render of results/predictions/: run python main.py --mode publish"


def test_the_readmes_headline_table_is_the_one_the_published_runs_give():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert with_headline(readme, headline_table(published_plan(), REPO_ROOT / "results")) == readme, \
        "README.md's headline table is stale: run python main.py --mode publish"


def test_every_published_file_is_a_readable_run_of_its_path_and_all_of_them_stay_under_20_mb():
    files = sorted(PUBLISHED_ROOT.rglob("*.parquet"))
    assert files, "no published runs"
    for path in files:
        run = from_published(path)          # raises when the file is damaged or names another run
        assert run.metrics["config"] and run.metrics.get("commit"), path
    assert sum(p.stat().st_size for p in files) < MAX_PUBLISHED_BYTES


def test_an_experiment_that_names_its_runs_apart_is_published_beside_table_3_and_fills_its_page_table(
        tmp_path, capsys):
    from train.experiments.results_page import MPNET_EXPERIMENT
    plan = make_plan(["bert"], ["mams-atsa"], 1, str(MPNET_EXPERIMENT), overrides(tmp_path),
                     published=tmp_path / "pub")
    gold = np.random.default_rng(1).integers(0, 3, 60)
    fake_run(plan.cells[0], gold, gold)                      # a bert-mpnet run that gets everything right
    out = {"published": tmp_path / "pub", "results_dir": tmp_path / "results", "page": tmp_path / "R.md",
           "readme": None}
    assert publish_job("bert", "mams-atsa", 1, str(MPNET_EXPERIMENT), overrides(tmp_path), **out) == 0
    assert "published 1 run(s)" in capsys.readouterr().out
    assert (tmp_path / "pub" / "mams-atsa" / "bert-mpnet" / "seed0.parquet").is_file()
    assert not (tmp_path / "pub" / "mams-atsa" / "bert").exists()   # Table 3's BERT cell is untouched
    page = (tmp_path / "R.md").read_text()
    section = page.split("## A bert-base-sized backbone")[1].split("\n## ")[0]
    assert "| BERT (MPNet) | 100.00 / 50.00 (1) | 82.22 |" in section     # accuracy / macro-F1 (seeds)
    assert "- seeds: bert / mams-atsa: 0" in section and "- device(s): cpu" in section
    assert "- commit(s): abc1234" in section and "No MPNet run is published yet" not in section



def test_the_backbone_table_tests_capsnet_bert_against_bert_where_both_have_a_seed(tmp_path):
    from train.experiments.results_page import MPNET_EXPERIMENT
    plan = make_plan(["bert", "capsnet-bert"], ["mams-atsa"], 1, str(MPNET_EXPERIMENT), overrides(tmp_path),
                     published=tmp_path / "pub")
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 3, 400)
    fake_run(cell_of(plan, "bert", 0), gold, noisy(rng, gold, 0.70))
    fake_run(cell_of(plan, "capsnet-bert", 0), gold, noisy(rng, gold, 0.85))
    for model, seconds in (("bert", 1800.0), ("capsnet-bert", 2400.0)):   # the time each run kept
        path = cell_of(plan, model, 0).folder / "metrics.json"
        path.write_text(json.dumps(dict(json.loads(path.read_text()), timing={"wall_seconds": seconds},
                                        torch_threads=2)))
    from train.experiments.results_page import HEADLINE_END, HEADLINE_START
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{HEADLINE_START}\n{HEADLINE_END}\n")
    out = {"published": tmp_path / "pub", "results_dir": tmp_path / "results", "page": tmp_path / "R.md",
           "readme": readme}
    assert publish_job("bert,capsnet-bert", "mams-atsa", 1, str(MPNET_EXPERIMENT), overrides(tmp_path), **out) == 0
    result = compare_cell(plan, "capsnet-bert", "bert", "mams-atsa", load_settings())
    assert result["difference"] > 5 and result["p_value"] < 0.05
    section = (tmp_path / "R.md").read_text().split("## A bert-base-sized backbone")[1].split("\n## ")[0]
    low, high = result["ci95"]
    assert (f"- CapsNet-BERT - BERT on MPNet, MAMS-ATSA: {result['difference']:+.2f} points of accuracy, "
            f"95% CI [{low:+.2f}, {high:+.2f}], p = {result['p_value']:.3g} (crossed paired bootstrap; seed 0; "
            f"with one seed the interval covers the test set's sampling only") in section
    assert "on MPNet, MAMS-ACSA" not in section                # no MAMS-ACSA run: no line
    assert ("- training time a run (training and validation, timing.wall_seconds): "
            "bert / mams-atsa: 30 min (cpu, 2 threads); capsnet-bert / mams-atsa: 40 min (cpu, 2 threads)") in section
    accuracy = {m: json.loads((cell_of(plan, m, 0).folder / "metrics.json").read_text())["test"]["accuracy"]
                for m in ("bert", "capsnet-bert")}
    headline = readme.read_text()                              # and the README says both in its headline block
    assert (f"- With a bert-base-sized backbone (MPNet; its table is in docs/RESULTS.md), test accuracy: "
            f"MAMS-ATSA: BERT {accuracy['bert']:.2f} (1), CapsNet-BERT {accuracy['capsnet-bert']:.2f} (1).") in headline
    assert f"- CapsNet-BERT - BERT on MPNet, MAMS-ATSA: {result['difference']:+.2f} points" in headline

def test_an_experiment_whose_runs_would_share_the_default_names_is_not_published(tmp_path):
    experiment = tmp_path / "wide.yaml"
    experiment.write_text("model:\n  capsule_size: 64\n")
    with pytest.raises(UserError, match=r"wide.yaml: publish takes the default settings, or an experiment whose "
                                        r"run_name names its runs apart per model"):
        publish_job("capsnet", "mams-atsa", 1, str(experiment), overrides(tmp_path), published=tmp_path / "pub",
                    results_dir=tmp_path / "r", page=tmp_path / "R.md", readme=None)
    assert not (tmp_path / "pub").exists()
