"""--mode compare (train/experiments/compare.py) and the claims table (train/experiments/claims.py), on
fabricated run folders (metrics.json with the grid's config, predictions.jsonl) whose answer is known,
and the crossed bootstrap against a direct computation."""
import csv
import json

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import f1_score

import main
from common.errors import UserError, run_command
from common.labels import LABELS
from conftest import write_finished_run
from train.experiments import compare
from train.experiments.claims import holm
from train.experiments.compare import (
    Settings,
    compare_cell,
    crossed_bootstrap,
    instance_codes,
    instance_draws,
    load_settings,
    seed_draws,
)
from train.experiments.grid import make_plan
from train.experiments.jobs import grid_job

A, B = "capsnet", "gcae"


def tiny_plan(tmp_path, datasets=("mams-atsa",), seeds=2, models=(A, B)):
    overrides = [f"paths.runs={tmp_path / 'runs'}", f"paths.processed={tmp_path / 'processed'}"]
    return make_plan(list(models), list(datasets), seeds, None, overrides, published=None), overrides


def joint_table(gold, pred_a, pred_b):
    return compare.joint_table(instance_codes(gold, pred_a, pred_b))


def write_run(cell, gold, predicted, keys=None):
    """A fabricated finished run: metrics.json (the grid's config), predictions.jsonl and an empty zip as
    checkpoint.pt (what makes a run folder finished)."""
    keys = keys or [(i // 2, f"sentence {i // 2}", f"aspect {i}") for i in range(len(gold))]
    correct = float(np.mean(np.asarray(gold) == np.asarray(predicted)))
    metrics = {"model": cell.model, "dataset": cell.dataset, "seed": cell.seed, "device": "cpu",
               "test": {"accuracy": round(100 * correct, 2), "macro_f1": 0.0, "strict_accuracy": 0.0},
               "config": dict(cell.cfg.to_dict(), seed=cell.seed)}
    lines = [json.dumps({"sentence_id": s, "text": t, "aspect": a, "gold": LABELS[g], "predicted": LABELS[p],
                         "scores": {name: 1.0 / 3 for name in LABELS}})
             for (s, t, a), g, p in zip(keys, gold, predicted)]
    write_finished_run(cell.folder, metrics, "\n".join(lines) + "\n")


def cell_of(plan, model, dataset, seed):
    return next(c for c in plan.cells if (c.model, c.dataset, c.seed) == (model, dataset, seed))


def noisy(rng, gold, accuracy):
    """Predictions right on about `accuracy` of the instances, a wrong label elsewhere."""
    wrong = rng.random(len(gold)) > accuracy
    return np.where(wrong, (gold + 1 + rng.integers(0, 2, len(gold))) % 3, gold)


def fill(plan, dataset, predictions_of, seeds):
    """predictions_of(model, seed) -> (gold, predicted); writes those runs."""
    for model in (A, B):
        for seed in seeds:
            write_run(cell_of(plan, model, dataset, seed), *predictions_of(model, seed))


# ---------------------------------------------------------------- the tests themselves

def test_mcnemar_equals_the_binomial_test_and_the_hand_computed_p_value():
    # 7 instances only A gets right, 2 only B, 5 both, 1 neither
    gold = np.zeros(15, dtype=np.int64)
    pred_a = np.array([0] * 7 + [1] * 2 + [0] * 5 + [2])
    pred_b = np.array([1] * 7 + [0] * 2 + [0] * 5 + [2])
    result = compare.mcnemar(gold, pred_a, pred_b)
    assert (result["a_only"], result["b_only"]) == (7, 2)
    assert result["p_value"] == pytest.approx(stats.binomtest(7, 9, 0.5).pvalue)
    assert result["p_value"] == pytest.approx(2 * (36 + 9 + 1) / 2 ** 9)     # 2 P(X >= 7), X ~ Bin(9, 1/2)
    assert compare.mcnemar(gold, pred_a, pred_a)["p_value"] == 1.0                  # no discordant pair


def test_macro_f1_of_a_joint_table_equals_scikit_learn():
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 3, 500)
    pred_a, pred_b = noisy(rng, gold, 0.7), rng.integers(0, 2, 500)      # B never predicts "neutral"
    conf_a, conf_b = compare.confusions(joint_table(gold, pred_a, pred_b))
    for conf, pred in ((conf_a, pred_a), (conf_b, pred_b)):
        assert compare.macro_f1(conf) == pytest.approx(100 * f1_score(gold, pred, labels=[0, 1, 2], average="macro"))
        assert compare.accuracy(conf) == pytest.approx(100 * np.mean(gold == pred))


def test_the_crossed_bootstrap_equals_a_direct_computation_on_a_hand_made_table():
    # 3 seeds x 12 instances; replicate r draws seeds picks[r] and ONE instance resample idx[r], and scores
    # every drawn seed on that resample: computed here instance by instance with scikit-learn
    gold = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 1])
    pred_a = np.array([[0, 1, 2, 0, 1, 0, 0, 0, 1, 2, 1, 1],
                       [0, 1, 1, 0, 1, 2, 0, 2, 1, 2, 2, 1],
                       [0, 2, 2, 0, 1, 2, 1, 0, 1, 2, 2, 0]])
    pred_b = np.array([[0, 0, 2, 1, 1, 0, 0, 0, 2, 2, 1, 1],
                       [1, 1, 1, 0, 0, 2, 0, 2, 1, 0, 2, 1],
                       [0, 2, 0, 0, 1, 2, 1, 1, 1, 2, 0, 0]])
    codes = np.stack([instance_codes(gold, a, b) for a, b in zip(pred_a, pred_b)])
    resamples, seed = 60, 4
    acc, f1 = crossed_bootstrap(codes, [compare.accuracy_difference, compare.macro_f1_difference], resamples, seed)
    idx, picks = instance_draws(12, 0, resamples, seed), seed_draws(3, resamples, seed)

    def f1_of(y, p):
        return 100 * f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0)
    direct_acc = [np.mean([100 * (np.mean(pred_a[j][i] == gold[i]) - np.mean(pred_b[j][i] == gold[i]))
                           for j in picks[r]]) for r, i in enumerate(idx)]
    direct_f1 = [np.mean([f1_of(gold[i], pred_a[j][i]) - f1_of(gold[i], pred_b[j][i]) for j in picks[r]])
                 for r, i in enumerate(idx)]
    assert acc == pytest.approx(direct_acc, abs=1e-9)
    assert f1 == pytest.approx(direct_f1, abs=1e-9)
    assert len(set(map(tuple, picks))) > 1 and len(set(map(tuple, idx))) == resamples   # both factors vary


def test_seeds_share_one_instance_resample_so_identical_seeds_do_not_narrow_the_interval():
    # five copies of one seed carry no more information about the test set than the seed alone: the
    # crossed draw gives exactly the one-seed replicates (independent draws per seed would shrink the
    # interval by about sqrt(5))
    rng = np.random.default_rng(9)
    gold = rng.integers(0, 3, 300)
    codes = instance_codes(gold, noisy(rng, gold, 0.75), noisy(rng, gold, 0.7))[None]
    one, = crossed_bootstrap(codes, [compare.accuracy_difference], 4000, seed=2)
    five, = crossed_bootstrap(np.repeat(codes, 5, axis=0), [compare.accuracy_difference], 4000, seed=2)
    assert np.array_equal(one, five)
    assert np.std(one) > 1.0                                   # the test set's noise is still there


def test_one_seed_bootstrap_interval_matches_scipy_paired_percentile_bootstrap():
    rng = np.random.default_rng(5)
    gold = rng.integers(0, 3, 400)
    pred_a, pred_b = noisy(rng, gold, 0.8), noisy(rng, gold, 0.7)
    replicates, = crossed_bootstrap(instance_codes(gold, pred_a, pred_b)[None], [compare.accuracy_difference],
                                    20000, seed=0)
    ours, _ = compare.percentile_test(replicates)
    right_a, right_b = 100.0 * (pred_a == gold), 100.0 * (pred_b == gold)
    scipy_ci = stats.bootstrap((right_a, right_b), lambda x, y: np.mean(x - y), paired=True, vectorized=False,
                               n_resamples=5000, method="percentile", random_state=1).confidence_interval
    assert ours == pytest.approx([scipy_ci.low, scipy_ci.high], abs=0.5)   # two Monte Carlo estimates


def test_one_model_interval_of_one_seed_is_the_binomial_interval_of_its_accuracy():
    rng = np.random.default_rng(8)
    gold = rng.integers(0, 3, 1000)
    pred = noisy(rng, gold, 0.7)
    p = np.mean(pred == gold)
    low, high = compare.accuracy_interval(instance_codes(gold, pred, pred)[None], Settings(0, 20000, 0.05))
    half = 100 * 1.96 * np.sqrt(p * (1 - p) / 1000)
    assert (low, high) == pytest.approx((100 * p - half, 100 * p + half), abs=0.3)


def test_the_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 300)
    codes = np.stack([instance_codes(gold, noisy(rng, gold, 0.75), noisy(rng, gold, 0.72)) for _ in range(2)])
    runs = [crossed_bootstrap(codes, [compare.accuracy_difference], 3000, seed=s)[0] for s in (7, 7, 8)]
    assert np.array_equal(runs[0], runs[1])
    assert compare.percentile_test(runs[0]) == compare.percentile_test(runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_identical_predictions_give_difference_zero_and_p_value_one(tmp_path):
    plan, _ = tiny_plan(tmp_path)
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 3, 120)
    same = {seed: noisy(rng, gold, 0.7) for seed in (0, 1)}
    fill(plan, "mams-atsa", lambda model, seed: (gold, same[seed]), (0, 1))
    result = compare_cell(plan, A, B, "mams-atsa", load_settings())
    assert result["seeds"] == [0, 1]
    assert result["difference"] == 0.0 and result["ci95"] == [0.0, 0.0] and result["p_value"] == 1.0
    assert result["macro_f1_difference"] == 0.0 and result["macro_f1_p_value"] == 1.0
    assert [t["p_value"] for t in result["mcnemar"]] == [1.0, 1.0]


def test_a_model_right_wherever_its_rival_is_wrong_gives_p_below_one_in_a_thousand(tmp_path):
    plan, _ = tiny_plan(tmp_path, seeds=3)
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 3, 200)
    rival = {seed: noisy(rng, gold, 0.6) for seed in range(3)}
    fill(plan, "mams-atsa", lambda model, seed: (gold, gold if model == A else rival[seed]), range(3))
    result = compare_cell(plan, A, B, "mams-atsa", load_settings())
    assert result["accuracy_a"] == 100.0
    assert result["difference"] == pytest.approx(100.0 - np.mean([np.mean(r == gold) * 100 for r in rival.values()]))
    assert result["p_value"] < 0.001 and result["ci95"][0] > 0
    assert result["macro_f1_p_value"] < 0.001 and result["macro_f1_difference"] > 0
    assert all(t["p_value"] < 0.001 and t["b_only"] == 0 for t in result["mcnemar"])
    reverse = compare_cell(plan, B, A, "mams-atsa", load_settings())
    assert reverse["difference"] == pytest.approx(-result["difference"]) and reverse["ci95"][1] < 0


def test_only_common_seeds_are_compared_and_none_in_common_is_an_error(tmp_path):
    plan, _ = tiny_plan(tmp_path, seeds=3)
    gold = np.array([0, 1, 2, 0])
    write_run(cell_of(plan, A, "mams-atsa", 0), gold, gold)
    write_run(cell_of(plan, B, "mams-atsa", 1), gold, gold)
    with pytest.raises(UserError, match=r"mams-atsa: capsnet and gcae have no finished seed in common .*"
                                        r"\(capsnet: 0; gcae: 1\)"):
        compare_cell(plan, A, B, "mams-atsa", load_settings())
    write_run(cell_of(plan, A, "mams-atsa", 1), gold, gold)
    assert compare_cell(plan, A, B, "mams-atsa", load_settings())["seeds"] == [1]


def test_predictions_over_different_test_instances_are_an_error(tmp_path):
    plan, _ = tiny_plan(tmp_path, seeds=1)
    gold = np.array([0, 1, 2, 0])
    write_run(cell_of(plan, A, "mams-atsa", 0), gold, gold)
    write_run(cell_of(plan, B, "mams-atsa", 0), gold[:3], gold[:3])
    with pytest.raises(UserError, match=r"predictions over other test instances than .* \(3 vs 4 instances"):
        compare_cell(plan, A, B, "mams-atsa", load_settings())
    write_run(cell_of(plan, B, "mams-atsa", 0), np.array([0, 1, 2, 1]), gold)     # same keys, other gold
    with pytest.raises(UserError, match="first difference at instance 3"):
        compare_cell(plan, A, B, "mams-atsa", load_settings())


def test_compare_needs_two_different_models():
    with pytest.raises(UserError, match="two different models"):
        compare.compare_job("capsnet", None, 5, None, [])
    with pytest.raises(UserError, match="two different models"):
        compare.compare_job("capsnet,capsnet", None, 5, None, [])


def test_settings_file_is_checked(tmp_path):
    bad = tmp_path / "compare.yaml"
    bad.write_text("seed: 0\nn_resamples: 0\nalpha: 0.05\n")
    with pytest.raises(UserError, match="compare.yaml: n_resamples must be >= 1"):
        load_settings(bad)
    assert load_settings() == Settings(0, 10000, 0.05)


# ---------------------------------------------------------------- the command line (main.main, in-process)

def test_cli_prints_a_table_a_person_reads_then_one_json_line_per_dataset(tmp_path, capsys):
    datasets = ("mams-atsa", "mams-acsa")
    plan, overrides = tiny_plan(tmp_path, datasets=datasets, seeds=1)
    rng = np.random.default_rng(4)
    for dataset in datasets:
        gold = rng.integers(0, 3, 80)
        pred = {A: noisy(rng, gold, 0.8), B: noisy(rng, gold, 0.6)}
        fill(plan, dataset, lambda model, seed: (gold, pred[model]), (0,))
    sets = [part for item in overrides for part in ("--set", item)]
    assert main.main(["--mode", "compare", "--models", f"{A},{B}", "--published", "none", "--datasets",
                      ",".join(datasets), "--seeds", "1", *sets]) == 0
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.strip().splitlines() if line.startswith("{")]
    assert [line["dataset"] for line in lines] == list(datasets)
    blocks = out.split("\n{")                       # each dataset's table comes right before its JSON line
    assert blocks[0].startswith(f"mams-atsa: A = {A}, B = {B}; seeds 0; 80 test instances")
    first = lines[0]
    assert f"  {A}" in blocks[0] and f"{first['accuracy_a']:.2f}" in blocks[0]
    assert f"{first['difference']:+.2f}" in blocks[0] and "McNemar" in blocks[0]
    assert "  verdict: " in blocks[0] and ("is better than" in blocks[0] or "no significant difference" in blocks[0])
    for line in lines:
        assert {"a", "b", "seeds", "accuracy_a", "accuracy_b", "difference", "ci95", "p_value", "test",
                "macro_f1_difference", "macro_f1_ci95", "macro_f1_p_value", "mcnemar"} <= set(line)
        assert (line["a"], line["b"], line["seeds"]) == (A, B, [0])
        assert line["difference"] == pytest.approx(line["accuracy_a"] - line["accuracy_b"])


def test_cli_error_is_one_line_with_exit_status_2_and_no_output(tmp_path, capsys):
    plan, overrides = tiny_plan(tmp_path, seeds=1)
    gold = np.array([0, 1, 2, 0])
    fill(plan, "mams-atsa", lambda model, seed: (gold, gold), (0,))
    sets = [part for item in overrides for part in ("--set", item)]
    with pytest.raises(SystemExit) as exited:          # restaurant-atsa has no runs
        run_command(lambda: main.main(["--mode", "compare", "--models", f"{A},{B}", "--published", "none", "--datasets",
                                       "mams-atsa,restaurant-atsa", "--seeds", "1", *sets]))
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert err.splitlines() == ["error: restaurant-atsa: capsnet and gcae have no finished seed in common among "
                                "seeds 0..0 (capsnet: none; gcae: none)"]


# ---------------------------------------------------------------- the claims table

def test_holm_on_a_hand_computed_family():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, 0.6]) == pytest.approx([0.4, 0.6])
    assert holm([0.7, 0.8]) == pytest.approx([1.0, 1.0])       # capped at 1
    assert holm([]) == []


def test_table_mode_writes_the_claims_the_seed_plot_and_marks_a_best_row_not_better_than_the_runner_up(
        tmp_path, capsys):
    models = ("textcnn", "gcae", "capsnet", "bert", "capsnet-bert")
    plan, overrides = tiny_plan(tmp_path, models=models, seeds=2)
    rng = np.random.default_rng(6)
    gold = rng.integers(0, 3, 300)
    predicted = {(m, s): noisy(rng, gold, accuracy) for m, accuracy in
                 (("textcnn", 0.3), ("gcae", 0.4), ("capsnet", 0.75), ("bert", 0.8)) for s in (0, 1)}
    for seed in (0, 1):                      # CapsNet-BERT: BERT plus one more instance right
        better = predicted[("bert", seed)].copy()
        wrong = np.flatnonzero(better != gold)[0]
        better[wrong] = gold[wrong]
        predicted[("capsnet-bert", seed)] = better
    for (model, seed), pred in predicted.items():
        write_run(cell_of(plan, model, "mams-atsa", seed), gold, pred)
    results = tmp_path / "results"
    assert grid_job("table", ",".join(models), "mams-atsa", 2, 1, "cpu", None, overrides, "local", None,
                    str(results), published=None) == 0
    assert "claims: 1 of 2 tested hold here (2 of the 4 not tested: no runs to compare)" in capsys.readouterr().out
    with open(results / "claims.csv", encoding="utf-8") as f:
        rows = {(r["a"], r["claim_b"]): r for r in csv.DictReader(f)}
    baseline = rows[("capsnet", "best word-vector baseline")]
    assert (baseline["b"], baseline["paper_b"], baseline["verdict"]) == ("gcae", "gcae", "holds here")
    assert float(baseline["paper_difference"]) == pytest.approx(79.776 - 77.588)
    assert rows[("capsnet-bert", "bert")]["verdict"] == "not significant here"
    assert float(rows[("capsnet-bert", "bert")]["difference"]) == pytest.approx(100 / 300, abs=1e-4)
    assert rows[("capsnet", "capsnet-dr")]["verdict"] == "no runs"        # shown, not hidden
    assert rows[("capsnet-bert", "capsnet-bert-dr")]["verdict"] == "no runs"
    # Holm over the two tested claims of the column
    tested = [rows[("capsnet", "best word-vector baseline")], rows[("capsnet-bert", "bert")]]
    assert [float(r["holm_p_value"]) for r in tested] == pytest.approx(holm([float(r["p_value"]) for r in tested]),
                                                                     abs=1e-6)
    claims_md = (results / "claims.md").read_text(encoding="utf-8")
    assert "CapsNet > best word-vector baseline (ours: GCAE; paper: GCAE)" in claims_md
    assert claims_md.count("No runs") == 2
    table = (results / "table3.md").read_text(encoding="utf-8")
    marked = [line for line in table.splitlines() if "†" in line]
    assert len(marked) == 2 and marked[0].startswith("| CapsNet-BERT |")
    assert "CapsNet-BERT is not significantly better than the runner-up BERT" in marked[1]
    assert (results / "table3_seeds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


BF16_VARIANT = ["train.amp_bf16_cpu=true", "run_name=bert-bf16cpu"]


def variant_runs(tmp_path, seeds, instances, rng_seed, accuracy_a):
    """(B's plan: bert; A's plan: bert with BF16_VARIANT; gold; rng): fabricated runs of seeds 0 and 1 of
    both on `instances` test instances, B right 60% of the time, A `accuracy_a`."""
    from test_published import fake_run, noisy, overrides
    base = make_plan(["bert"], ["mams-atsa"], seeds, None, overrides(tmp_path), published=None)
    other = make_plan(["bert"], ["mams-atsa"], seeds, None, overrides(tmp_path) + BF16_VARIANT, published=None)
    rng = np.random.default_rng(rng_seed)
    gold = rng.integers(0, 3, instances)
    for seed in (0, 1):
        fake_run(base.cells[seed], gold, noisy(rng, gold, 0.6))
        fake_run(other.cells[seed], gold, noisy(rng, gold, accuracy_a))
    return base, other, gold, rng


def test_a_variant_compares_one_model_with_itself_under_another_setting(tmp_path, capsys):
    from test_published import overrides

    from train.experiments.compare import compare_job
    variant = BF16_VARIANT
    variant_runs(tmp_path, 2, 200, 3, 0.95)
    assert compare_job("bert", "mams-atsa", 2, None, overrides(tmp_path), published=None, variants=variant) == 0
    out = capsys.readouterr().out
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert (result["a"], result["b"], result["seeds"]) == ("bert with train.amp_bf16_cpu=true", "bert", [0, 1])
    assert result["difference"] > 25 and result["p_value"] < 0.01
    assert "verdict: bert with train.amp_bf16_cpu=true is better than bert" in out
    with pytest.raises(UserError, match=r"--variant: name the variant's runs apart too"):
        compare_job("bert", "mams-atsa", 2, None, overrides(tmp_path), published=None, variants=variant[:1])
    with pytest.raises(UserError, match=r"compare with --variant takes one model"):
        compare_job("bert,capsnet-bert", "mams-atsa", 2, None, overrides(tmp_path), published=None, variants=variant)
    with pytest.raises(UserError, match=r"^--variant 'foo': expected KEY=VALUE"):
        compare_job("bert", "mams-atsa", 2, None, overrides(tmp_path), published=None, variants=["foo", *variant])
    with pytest.raises(UserError, match=r"^--variant run_name=x: changes no setting of bert but its run name"):
        compare_job("bert", "mams-atsa", 2, None, overrides(tmp_path), published=None, variants=["run_name=x"])


def test_a_variants_left_out_seeds_and_no_common_seed_error_name_a_and_b_by_their_labels_and_the_damaged_file(
        tmp_path, capsys):
    from test_published import fake_run, noisy, overrides

    from train.experiments.compare import compare_job
    variant = BF16_VARIANT
    a_label, b_label = "bert with train.amp_bf16_cpu=true", "bert"
    base, other, gold, rng = variant_runs(tmp_path, 3, 50, 5, 0.9)
    predictions = base.cells[0].folder / "predictions.jsonl"             # B's seed 0: damaged predictions
    predictions.write_text('{"sentence_id": 0, "gold": "x"}\n')
    metrics = other.cells[1].folder / "metrics.json"                     # A's seed 1: damaged metrics
    metrics.write_text("[1, 2]")
    left_out = [f"seed 0 left out ({b_label}: {predictions}: a record lacks a field or has an unknown label "
                f"(KeyError('aspect')))",
                f"seed 1 left out ({a_label}: not a finished run ({metrics}: the metrics file holds a JSON list, "
                f"expected an object))"]
    with pytest.raises(UserError) as error:
        compare_job("bert", "mams-atsa", 2, None, overrides(tmp_path), published=None, variants=variant)
    assert str(error.value) == (f"mams-atsa: {a_label} and {b_label} have no finished seed in common among seeds "
                                f"0..1 ({a_label}: 0; {b_label}: 1); " + "; ".join(left_out))
    fake_run(base.cells[2], gold, noisy(rng, gold, 0.6))                 # seed 2 in common: compared
    fake_run(other.cells[2], gold, noisy(rng, gold, 0.9))
    assert compare_job("bert", "mams-atsa", 3, None, overrides(tmp_path), published=None, variants=variant) == 0
    out, err = capsys.readouterr()
    assert json.loads(next(line for line in out.splitlines() if line.startswith("{")))["seeds"] == [2]
    assert err.splitlines() == [f"mams-atsa: {line}" for line in left_out]
