"""--mode compare: is the difference between two rows of Table 3 real? (docs/STATISTICS.md)

Two models are compared cell by cell (dataset by dataset) over the grid's finished runs, the same run
folders and config matching as --mode reproduce / table (grid.make_plan, grid.finished_metrics), from
the test predictions every run keeps (predictions.jsonl), on the seeds both models have:

- per seed, an exact McNemar test: the two-sided binomial test (scipy.stats.binomtest) of the
  instances only A gets right against those only B gets right;
- across seeds, a hierarchical paired bootstrap: resample the seeds, then, within each drawn seed,
  the test instances (the same draw for A and B); the percentile interval of the mean difference and
  its two-sided percentile p-value, for accuracy and for macro-F1.

A seed is used only when both models have it and each prediction file agrees with its run's
metrics.json (train/experiments/run_checks.py); every seed left out is named with the reason, in
each result's "left_out" and on stderr.

Settings (bootstrap seed, number of resamples, alpha) come from configs/compare.yaml.
"""
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from common.errors import UserError
from common.labels import LABEL_INDEX, LABELS

from ..config import CONFIG_ROOT, read_yaml
from ..predictions import read_predictions
from .grid import make_plan, split_names
from .run_checks import left_out_lines, left_out_seeds, usable_runs

SETTINGS_FILE = CONFIG_ROOT / "compare.yaml"
K = len(LABELS)
MCNEMAR = "exact McNemar (two-sided binomial test on the discordant pairs)"
BOOTSTRAP = "hierarchical paired bootstrap (seeds, then test instances), two-sided percentile p-value"
CHUNK = 2000   # resamples drawn at once (bounds the memory of the draw, not its result)


@dataclass(frozen=True)
class Settings:
    seed: int
    n_resamples: int
    alpha: float


def load_settings(path=SETTINGS_FILE):
    """configs/compare.yaml as Settings; a missing or bad value is a UserError naming the file."""
    tree = read_yaml(path) or {}
    try:
        settings = Settings(int(tree["seed"]), int(tree["n_resamples"]), float(tree["alpha"]))
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: needs integer seed and n_resamples and a number alpha ({err!r})") from None
    if settings.n_resamples < 1 or not 0 < settings.alpha < 1:
        raise UserError(f"{path}: n_resamples must be >= 1 and alpha in (0, 1)")
    return settings


# ---------------------------------------------------------------- one run's test predictions

@dataclass
class RunPredictions:
    path: Path
    keys: tuple          # (sentence_id, text, aspect) per test instance, in test order
    gold: np.ndarray     # label indices
    predicted: np.ndarray


def read_run(cell):
    """The test predictions of a finished run (its predictions.jsonl)."""
    path = cell.folder / "predictions.jsonl"
    try:
        records = read_predictions(path)
    except FileNotFoundError:
        raise UserError(f"{path}: finished run without predictions.jsonl") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: unreadable predictions ({err})") from None
    try:
        keys = tuple((r["sentence_id"], r["text"], r["aspect"]) for r in records)
        gold = np.array([LABEL_INDEX[r["gold"]] for r in records], dtype=np.int64)
        predicted = np.array([LABEL_INDEX[r["predicted"]] for r in records], dtype=np.int64)
    except (KeyError, TypeError) as err:
        raise UserError(f"{path}: a record lacks a field or has an unknown label ({err!r})") from None
    if not records:
        raise UserError(f"{path}: no predictions")
    return RunPredictions(path, keys, gold, predicted)


def check_same_instances(reference, other):
    """Paired tests need both runs' predictions over the same test instances, in the same order."""
    if reference.keys == other.keys and np.array_equal(reference.gold, other.gold):
        return
    first = next((i for i, (x, y) in enumerate(zip(reference.keys, other.keys)) if x != y),
                 min(len(reference.keys), len(other.keys)))
    if reference.keys == other.keys:
        first = int(np.flatnonzero(reference.gold != other.gold)[0])
    raise UserError(f"{other.path}: predictions over other test instances than {reference.path} "
                    f"({len(other.keys)} vs {len(reference.keys)} instances; first difference at instance {first})")


# ---------------------------------------------------------------- the statistics

def joint_table(gold, pred_a, pred_b):
    """Counts of the K**3 (gold, A's prediction, B's prediction) triples: all a paired test needs."""
    return np.bincount((gold * K + pred_a) * K + pred_b, minlength=K ** 3)


def confusions(tables):
    """(..., K**3) joint tables -> A's and B's (..., K, K) confusion matrices (gold x predicted)."""
    cube = tables.reshape(*tables.shape[:-1], K, K, K)
    return cube.sum(-1), cube.sum(-2)


def accuracy(confusion):
    """Accuracy (%) of (..., K, K) confusion matrices."""
    return 100.0 * np.trace(confusion, axis1=-2, axis2=-1) / confusion.sum((-2, -1))


def macro_f1(confusion):
    """Macro-F1 (%), as train/metrics.py: F1 = 2 tp / (2 tp + fp + fn) per class, 0 for a class with
    neither gold nor predicted instances (it still counts in the mean)."""
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    denominator = confusion.sum(-2) + confusion.sum(-1)          # predicted + support = 2 tp + fp + fn
    f1 = np.divide(2.0 * hits, denominator, out=np.zeros(hits.shape), where=denominator > 0)
    return 100.0 * f1.mean(-1)


def accuracy_difference(tables):
    conf_a, conf_b = confusions(tables)
    return accuracy(conf_a) - accuracy(conf_b)


def macro_f1_difference(tables):
    conf_a, conf_b = confusions(tables)
    return macro_f1(conf_a) - macro_f1(conf_b)


def mcnemar(gold, pred_a, pred_b):
    """Exact McNemar test: under H0 (A and B equally accurate) an instance only one of them gets right
    is A's with probability 1/2, so a_only ~ Binomial(a_only + b_only, 1/2)."""
    right_a, right_b = pred_a == gold, pred_b == gold
    a_only, b_only = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p_value = stats.binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p_value), "test": MCNEMAR}


def hierarchical_bootstrap(tables, statistics, n_resamples, seed):
    """Replicates of mean_j statistic(T*_j) over seeds, one array per statistic (each (n_resamples,)).

    `tables` is (k seeds, K**3): each seed's joint table over the same n test instances. A replicate
    draws k seeds with replacement, then for each drawn seed s the table T*_j of n instances drawn
    with replacement from s's instances; that table is a Multinomial(n, T_s / n) draw, so the
    instances themselves are never materialised."""
    tables = np.asarray(tables, dtype=np.int64)
    k, n = len(tables), int(tables[0].sum())
    pvals = tables / n
    rng = np.random.default_rng(seed)
    out = [[] for _ in statistics]
    for start in range(0, n_resamples, CHUNK):
        size = min(CHUNK, n_resamples - start)
        picks = rng.integers(k, size=(size, k))
        draws = rng.multinomial(n, pvals[picks])                  # (size, k, K**3)
        for values, statistic in zip(out, statistics):
            values.append(statistic(draws).mean(-1))
    return [np.concatenate(values) for values in out]


def percentile_test(replicates):
    """(95% percentile interval, two-sided p-value) of a bootstrap distribution of a difference.

    p = 2 min(#{θ* <= 0} + 1, #{θ* >= 0} + 1) / (R + 1), capped at 1: the smallest level at which the
    percentile interval excludes 0 (the +1 keeps it above 0 for a finite number of resamples R)."""
    low, high = np.percentile(replicates, [2.5, 97.5])
    below, above = int((replicates <= 0).sum()), int((replicates >= 0).sum())
    p_value = min(1.0, 2.0 * (min(below, above) + 1) / (len(replicates) + 1))
    return [float(low), float(high)], p_value


def accuracy_interval(tables, settings):
    """95% hierarchical-bootstrap interval of one model's mean accuracy (%), from its (k, K**3) tables.

    As hierarchical_bootstrap with A's accuracy as the statistic; for one model only right / wrong
    matters, so a drawn seed's resampled number right is a Binomial(n, accuracy of that seed) draw."""
    confusion = confusions(np.asarray(tables, dtype=np.int64))[0]
    n = int(confusion[0].sum())
    rates = np.trace(confusion, axis1=-2, axis2=-1) / n
    rng = np.random.default_rng(settings.seed)
    picks = rng.integers(len(rates), size=(settings.n_resamples, len(rates)))
    replicates = 100.0 * rng.binomial(n, rates[picks]).mean(-1) / n
    return [float(v) for v in np.percentile(replicates, [2.5, 97.5])]


# ---------------------------------------------------------------- runs of the grid

def finished_runs(plan, model, dataset):
    """{seed: RunPredictions} of the plan's finished runs of `model` on `dataset` whose predictions
    agree with their metrics.json (run_checks: the others are left out, with the reason)."""
    return usable_runs(plan, model, dataset, read_run)[0]


def seed_tables(plan, a, b, dataset):
    """(common seeds, (k, K**3) joint tables, per-seed McNemar results) of A and B on `dataset`."""
    for model in (a, b):
        if (model, dataset) in plan.not_applicable:
            raise UserError(f"{dataset}: {model} does not do this dataset's task (\"-\" in Table 3)")
    runs_a, runs_b = finished_runs(plan, a, dataset), finished_runs(plan, b, dataset)
    seeds = sorted(set(runs_a) & set(runs_b))
    if not seeds:
        def listed(runs):
            return ", ".join(map(str, sorted(runs))) or "none"
        raise UserError(f"{dataset}: {a} and {b} have no finished seed in common among seeds 0..{plan.seeds - 1} "
                        f"({a}: {listed(runs_a)}; {b}: {listed(runs_b)})")
    reference, tables, tests = None, [], []
    for seed in seeds:
        pred_a = runs_a[seed]
        pred_b = pred_a if a == b else runs_b[seed]
        reference = reference or pred_a
        check_same_instances(reference, pred_a)
        check_same_instances(reference, pred_b)
        tables.append(joint_table(reference.gold, pred_a.predicted, pred_b.predicted))
        tests.append({"seed": seed, **mcnemar(reference.gold, pred_a.predicted, pred_b.predicted)})
    return seeds, np.stack(tables), tests


def compare_cell(plan, a, b, dataset, settings):
    """The comparison of A and B on one dataset, as a JSON-ready dict (differences in points, A - B)."""
    seeds, tables, tests = seed_tables(plan, a, b, dataset)
    conf_a, conf_b = confusions(tables)
    acc, f1 = hierarchical_bootstrap(tables, [accuracy_difference, macro_f1_difference],
                                     settings.n_resamples, settings.seed)
    (ci, p_value), (f1_ci, f1_p_value) = percentile_test(acc), percentile_test(f1)
    return {
        "dataset": dataset, "a": a, "b": b, "seeds": seeds, "n_instances": int(tables[0].sum()),
        "accuracy_a": float(accuracy(conf_a).mean()), "accuracy_b": float(accuracy(conf_b).mean()),
        "difference": float(accuracy_difference(tables).mean()), "ci95": ci, "p_value": p_value,
        "test": BOOTSTRAP,
        "macro_f1_a": float(macro_f1(conf_a).mean()), "macro_f1_b": float(macro_f1(conf_b).mean()),
        "macro_f1_difference": float(macro_f1_difference(tables).mean()), "macro_f1_ci95": f1_ci,
        "macro_f1_p_value": f1_p_value,
        "mcnemar": tests, "n_resamples": settings.n_resamples, "bootstrap_seed": settings.seed,
        "left_out": left_out_seeds(plan, a, b, dataset, read_run),
    }


def compare_job(models, datasets, seeds, experiment, overrides, settings_file=SETTINGS_FILE):
    """--mode compare: one JSON line per dataset. Every cell is computed before anything is printed,
    so an error leaves no partial output."""
    names = split_names(models)
    if names is None or len(names) != 2 or names[0] == names[1]:
        raise UserError(f"--models {models}: compare needs two different models, A,B")
    settings = load_settings(settings_file)
    plan = make_plan(names, split_names(datasets), seeds, experiment, overrides)
    results = [compare_cell(plan, names[0], names[1], dataset, settings) for dataset in plan.datasets]
    for line in (line for result in results for line in left_out_lines(result)):
        print(line, file=sys.stderr)
    for result in results:
        print(json.dumps(result))
    return 0
