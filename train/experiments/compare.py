"""--mode compare: is the difference between two rows of Table 3 real? (docs/STATISTICS.md)

Two models are compared cell by cell (dataset by dataset) over the grid's finished runs, the same
runs and config matching as --mode reproduce / table (grid.make_plan, grid.finished_run: run folders,
then published runs), from the test predictions every run keeps, on the seeds both models have:

- per seed, an exact McNemar test: the two-sided binomial test (scipy.stats.binomtest) of the
  instances only A gets right against those only B gets right;
- across seeds, a crossed paired bootstrap: every seed is scored on the same test instances, so a
  replicate resamples the seeds and, once, the test instances, and scores every drawn seed of A and
  of B on that one resample; the percentile interval of the mean difference and its two-sided
  percentile p-value, for accuracy and for macro-F1.

A seed is used only when both models have it and each prediction file agrees with its run's
metrics.json (train/experiments/run_checks.py); every seed left out is named with the reason, in
each result's "left_out" and on stderr.

Settings (bootstrap seed, number of resamples, alpha) come from configs/compare.yaml.
"""
import json
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from common.errors import UserError
from common.labels import LABELS

from ..config import CONFIG_ROOT, read_yaml
from .grid import make_plan, split_names
from .run_checks import NO_RUN, left_out_lines, left_out_seeds, usable_runs
from .runs import PUBLISHED_ROOT

SETTINGS_FILE = CONFIG_ROOT / "compare.yaml"
K = len(LABELS)
MCNEMAR = "exact McNemar (two-sided binomial test on the discordant pairs)"
BOOTSTRAP = ("crossed paired bootstrap (seeds, and one test-instance resample per replicate shared by every "
             "drawn seed), two-sided percentile p-value")
CHUNK = 2000   # replicates drawn at once (a block has its own generator: bounds memory, not the result)


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

def instance_codes(gold, pred_a, pred_b):
    """Each instance's (gold, A's prediction, B's prediction) triple as one number in [0, K**3)."""
    return (gold * K + pred_a) * K + pred_b


def joint_table(codes):
    """Counts of the K**3 (gold, A's prediction, B's prediction) triples: all a paired test of one seed needs."""
    return np.bincount(codes, minlength=K ** 3)


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


def instance_draws(n, start, size, seed):
    """The test-instance draws of replicates start .. start+size-1: a (size, n) array of indices drawn
    with replacement from n instances, one row per replicate. Replicates come in blocks of CHUNK, each
    block from its own generator (seed, 0, block), so a replicate's draw depends on nothing else."""
    assert start % CHUNK == 0 and size <= CHUNK
    return np.random.default_rng([seed, 0, start // CHUNK]).integers(n, size=(size, n))


@lru_cache(maxsize=8)
def instance_weights(n, start, size, seed):
    """How often each instance is drawn in those replicates, (size, n) float64 (read-only: it is shared
    by every comparison over a test set of n instances)."""
    draws = instance_draws(n, start, size, seed)
    weights = np.bincount((draws + n * np.arange(size)[:, None]).ravel(), minlength=size * n)
    weights = weights.reshape(size, n).astype(np.float64)
    weights.flags.writeable = False
    return weights


def seed_draws(k, n_resamples, seed):
    """The seeds each replicate draws: (n_resamples, k) indices, with replacement."""
    return np.random.default_rng([seed, 1]).integers(k, size=(n_resamples, k))


def crossed_bootstrap(codes, statistics, n_resamples, seed):
    """Replicates of mean_j statistic(T*_j) over the drawn seeds, one array per statistic (each (n_resamples,)).

    `codes` is (k seeds, n instances): each seed's (gold, A, B) triple per instance (instance_codes),
    over the same test instances. Seeds and test instances are crossed (every seed is scored on every
    instance), so a replicate draws both factors once: k seeds with replacement (seed_draws) and one
    resample of the n instances (instance_draws), and every drawn seed is scored on that one resample;
    T*_j is drawn seed j's K**3 table of (gold, A, B) counts over it. This is the pigeonhole bootstrap
    of Owen (2007) for a seeds x instances design (docs/STATISTICS.md)."""
    codes = np.asarray(codes, dtype=np.int64)
    k, n = codes.shape
    onehots = np.eye(K ** 3)[codes.T].reshape(n, k * K ** 3)          # instance x (seed, triple)
    picks = seed_draws(k, n_resamples, seed)
    out = [[] for _ in statistics]
    for start in range(0, n_resamples, CHUNK):
        size = min(CHUNK, n_resamples - start)
        weights = instance_weights(n, start, size, seed)               # (size, n)
        tables = np.rint(weights @ onehots).astype(np.int64).reshape(size, k, K ** 3)   # one matrix product
        chosen = picks[start:start + size]
        for values, statistic in zip(out, statistics):
            per_seed = statistic(tables)                               # (size, k)
            values.append(np.take_along_axis(per_seed, chosen, axis=1).mean(-1))
    return [np.concatenate(values) for values in out]


def percentile_test(replicates):
    """(95% percentile interval, two-sided p-value) of a bootstrap distribution of a difference.

    p = 2 min(#{θ* <= 0} + 1, #{θ* >= 0} + 1) / (R + 1), capped at 1: the smallest level at which the
    percentile interval excludes 0 (the +1 keeps it above 0 for a finite number of resamples R)."""
    low, high = np.percentile(replicates, [2.5, 97.5])
    below, above = int((replicates <= 0).sum()), int((replicates >= 0).sum())
    p_value = min(1.0, 2.0 * (min(below, above) + 1) / (len(replicates) + 1))
    return [float(low), float(high)], p_value


def accuracy_a(tables):
    return accuracy(confusions(tables)[0])


def accuracy_interval(codes, settings):
    """95% interval of one model's mean accuracy (%) over its seeds, from the same crossed bootstrap
    (seeds and one instance resample per replicate); `codes` as for crossed_bootstrap, with A = B."""
    [replicates] = crossed_bootstrap(codes, [accuracy_a], settings.n_resamples, settings.seed)
    return [float(v) for v in np.percentile(replicates, [2.5, 97.5])]


# ---------------------------------------------------------------- runs of the grid

def finished_runs(plan, model, dataset):
    """{seed: RunPredictions} of the plan's finished runs of `model` on `dataset` (run folders first,
    then published runs) whose predictions agree with their metrics (run_checks: the others are left
    out, with the reason)."""
    return usable_runs(plan, model, dataset)[0]


def seed_codes(plan, a, b, dataset, plan_b=None, labels=None):
    """(common seeds, (k, n) instance codes, per-seed McNemar results) of A and B on `dataset`; B's
    runs come from `plan_b` when given (one model under two settings), else from `plan`; `labels`:
    the names A and B are shown by in the error that no seed is in common."""
    plan_b = plan_b or plan
    for model, where in ((a, plan), (b, plan_b)):
        if (model, dataset) in where.not_applicable:
            raise UserError(f"{dataset}: {model} does not do this dataset's task (\"-\" in Table 3)")
    runs_a, runs_b = finished_runs(plan, a, dataset), finished_runs(plan_b, b, dataset)
    seeds = sorted(set(runs_a) & set(runs_b))
    if not seeds:
        label_a, label_b = labels or (a, b)

        def listed(runs):
            return ", ".join(map(str, sorted(runs))) or "none"
        # the runs that are there but not usable, with the reason (a seed never trained goes without saying)
        damaged = [f"; seed {entry['seed']} left out ({entry['model']}: {entry['why']})"
                   for entry in left_out_seeds(plan, a, b, dataset, plan_b, labels)
                   if not entry["why"].startswith(NO_RUN)]
        raise UserError(f"{dataset}: {label_a} and {label_b} have no finished seed in common among seeds "
                        f"0..{plan.seeds - 1} ({label_a}: {listed(runs_a)}; {label_b}: {listed(runs_b)})"
                        + "".join(damaged))
    reference, codes, tests = None, [], []
    for seed in seeds:
        pred_a = runs_a[seed]
        pred_b = pred_a if a == b and plan_b is plan else runs_b[seed]
        reference = reference or pred_a
        check_same_instances(reference, pred_a)
        check_same_instances(reference, pred_b)
        codes.append(instance_codes(reference.gold, pred_a.predicted, pred_b.predicted))
        tests.append({"seed": seed, **mcnemar(reference.gold, pred_a.predicted, pred_b.predicted)})
    return seeds, np.stack(codes), tests


def compare_cell(plan, a, b, dataset, settings, plan_b=None, labels=None):
    """The comparison of A and B on one dataset, as a JSON-ready dict (differences in points, A - B).
    `plan_b`: where B's runs come from (default `plan`); `labels`: the names A and B are shown by."""
    plan_b = plan_b or plan
    seeds, codes, tests = seed_codes(plan, a, b, dataset, plan_b, labels)
    tables = np.stack([joint_table(c) for c in codes])
    conf_a, conf_b = confusions(tables)
    acc, f1 = crossed_bootstrap(codes, [accuracy_difference, macro_f1_difference], settings.n_resamples,
                                settings.seed)
    (ci, p_value), (f1_ci, f1_p_value) = percentile_test(acc), percentile_test(f1)
    return {
        "dataset": dataset, "a": (labels or (a, b))[0], "b": (labels or (a, b))[1],
        "seeds": seeds, "n_instances": int(codes.shape[1]),
        "accuracy_a": float(accuracy(conf_a).mean()), "accuracy_b": float(accuracy(conf_b).mean()),
        "difference": float(accuracy_difference(tables).mean()), "ci95": ci, "p_value": p_value,
        "test": BOOTSTRAP,
        "macro_f1_a": float(macro_f1(conf_a).mean()), "macro_f1_b": float(macro_f1(conf_b).mean()),
        "macro_f1_difference": float(macro_f1_difference(tables).mean()), "macro_f1_ci95": f1_ci,
        "macro_f1_p_value": f1_p_value,
        "mcnemar": tests, "n_resamples": settings.n_resamples, "bootstrap_seed": settings.seed,
        "left_out": left_out_seeds(plan, a, b, dataset, plan_b, labels),
    }


def verdict_words(result, alpha):
    """The bootstrap's answer in one sentence."""
    a, b, diff, p = result["a"], result["b"], result["difference"], result["p_value"]
    if p < alpha:
        better, worse = (a, b) if diff > 0 else (b, a)
        return (f"{better} is better than {worse} by {abs(diff):.2f} points of accuracy "
                f"(p = {p:.3g} < {alpha}, crossed bootstrap over seeds and test instances).")
    return (f"no significant difference in accuracy: {a} - {b} = {diff:+.2f} points, p = {p:.3g} >= {alpha}; "
            f"a real difference this small may need more seeds or a larger test set to show.")


def human_table(result, alpha):
    """The comparison of one dataset as a few lines a person reads (the JSON line follows it)."""
    a, b = result["a"], result["b"]
    width = max(len(a), len(b), len("A - B"), len("95% CI"))

    def ci(key):
        low, high = result[key]
        return f"[{low:+.2f}, {high:+.2f}]"
    rows = [("", "accuracy", "macro-F1"),
            (a, f"{result['accuracy_a']:.2f}", f"{result['macro_f1_a']:.2f}"),
            (b, f"{result['accuracy_b']:.2f}", f"{result['macro_f1_b']:.2f}"),
            ("A - B", f"{result['difference']:+.2f}", f"{result['macro_f1_difference']:+.2f}"),
            ("95% CI", ci("ci95"), ci("macro_f1_ci95")),
            ("p", f"{result['p_value']:.3g}", f"{result['macro_f1_p_value']:.3g}")]
    lines = [f"{result['dataset']}: A = {a}, B = {b}; seeds {' '.join(map(str, result['seeds']))}; "
             f"{result['n_instances']} test instances; means over the seeds"]
    lines += [f"  {name:<{width}}  {x:>16}  {y:>16}" for name, x, y in rows]
    mcnemar = "; ".join(f"seed {t['seed']}: {t['a_only']} vs {t['b_only']}, p = {t['p_value']:.3g}"
                        for t in result["mcnemar"])
    lines.append(f"  McNemar (instances only A / only B gets right): {mcnemar}")
    lines.append(f"  verdict: {verdict_words(result, alpha)}")
    return "\n".join(lines)


def compare_job(models, datasets, seeds, experiment, overrides, settings_file=SETTINGS_FILE, published=PUBLISHED_ROOT,
                variants=()):
    """--mode compare: per dataset, a small table a person reads, then one JSON line (the lines that
    start with "{" are for scripts). Every cell is computed before anything is printed, so an error
    leaves no partial output. With `variants` (--variant KEY=VALUE), one model is compared with itself:
    A = its runs with those settings too (their own run_name among them), B = its runs without."""
    names = split_names(models, "--models")
    settings = load_settings(settings_file)
    if variants:
        if names is None or len(names) != 1:
            raise UserError(f"--models {models}: compare with --variant takes one model")
        for item in variants:
            key, sep, _ = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"--variant {item!r}: expected KEY=VALUE, e.g. --variant train.amp_bf16_cpu=true")
        if not any(item.startswith("run_name=") for item in variants):
            raise UserError("--variant: name the variant's runs apart too (--variant run_name=NAME), as they "
                            "were trained")
        dataset_names = split_names(datasets, "--datasets")
        plan_a = make_plan(names, dataset_names, seeds, experiment, [*overrides, *variants], published=None)
        plan_b = make_plan(names, dataset_names, seeds, experiment, overrides, published=published)
        if plan_a.cells and all(a.cfg.replace(run_name=None).to_dict() == b.cfg.replace(run_name=None).to_dict()
                                for a, b in zip(plan_a.cells, plan_b.cells)):
            raise UserError(f"--variant {' '.join(variants)}: changes no setting of {names[0]} but its run "
                            f"name (A and B would train the same thing)")
        labels = (f"{names[0]} with {', '.join(v for v in variants if not v.startswith('run_name='))}", names[0])
        results = [compare_cell(plan_a, names[0], names[0], dataset, settings, plan_b, labels)
                   for dataset in plan_a.datasets]
        return print_results(results, settings)
    if names is None or len(names) != 2 or names[0] == names[1]:
        raise UserError("compare needs --models A,B: two different models" if models is None else
                        f"--models {models}: compare needs two different models, A,B")
    plan = make_plan(names, split_names(datasets, "--datasets"), seeds, experiment, overrides, published=published)
    results = [compare_cell(plan, names[0], names[1], dataset, settings) for dataset in plan.datasets]
    return print_results(results, settings)


def print_results(results, settings):
    """The left-out seeds on stderr, then per dataset the table a person reads and its JSON line."""
    for line in (line for result in results for line in left_out_lines(result)):
        print(line, file=sys.stderr)
    for result in results:
        print(human_table(result, settings.alpha))
        print(json.dumps(result))
    return 0
