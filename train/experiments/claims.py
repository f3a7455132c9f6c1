"""The paper's claims about Table 3, tested on our runs (written with the table: results/claims.{md,csv}),
the mark on Table 3 cells whose best row is not significantly better than the runner-up, and the
per-seed forest plot results/table3_seeds.png with its numbers in results/table3_seeds.csv
(docs/STATISTICS.md).

Per column the claims are: CapsNet beats the best word-vector baseline (the rows above it in Table 3),
CapsNet-BERT beats BERT, CapsNet beats CapsNet-DR, CapsNet-BERT beats CapsNet-BERT-DR. Each is tested
with compare.compare_cell (crossed paired bootstrap); Holm's correction runs over the claims of one
column that could be tested.
"""
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from common.io import atomic_path, write_text

from .compare import accuracy_interval, compare_cell, load_settings, seed_codes
from .table import MISSING, NOT_APPLICABLE, PAPER_FILE, collect, load_paper

BEST_BASELINE = "best word-vector baseline"
CLAIMS = (("capsnet", BEST_BASELINE), ("capsnet-bert", "bert"), ("capsnet", "capsnet-dr"),
          ("capsnet-bert", "capsnet-bert-dr"))


def word_vector_baselines():
    """The rows above CapsNet in Table 3 (word vectors, no BERT)."""
    rows = list(load_paper()[1])
    return rows[:rows.index("capsnet")]


def holm(p_values):
    """Holm's step-down adjusted p-values, in the given order: with p_(1) <= ... <= p_(m),
    adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j))."""
    m, adjusted, running = len(p_values), [None] * len(p_values), 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass
class Claim:
    dataset: str
    a: str
    b: str                     # our B (the best baseline found, for that claim); None when there is none
    claim_b: str               # as the paper states it (a model or BEST_BASELINE)
    paper_difference: float = None
    paper_b: str = None        # the paper's B (its best baseline on the column)
    result: dict = None        # compare_cell's output
    reason: str = ""           # why it was not tested
    holm_p: float = None
    verdict: str = ""
    sentence: str = ""


@dataclass
class Report:
    claims: list
    marks: dict = field(default_factory=dict)   # (model, dataset) -> footnote text for table3.md
    intervals: list = field(default_factory=list)   # the seeds plot's numbers (seed_intervals)


def _name(paper_models, model):
    return paper_models.get(model, (model,))[0] if model else MISSING


def best_row(cells, models):
    """The model of `models` with the highest mean test accuracy among `cells` (CellResults with runs)."""
    ranked = [(c.stat("accuracy").mean, c.model) for c in cells if c.model in models and c.status == "ok"]
    return max(ranked)[1] if ranked else None


def tested_pair(plan, a, b, dataset, settings, cache):
    """(compare_cell's result, '') or (None, why not); `cache` keeps the pairs already tested."""
    if a is None or b is None:
        return None, "no runs"
    if (a, b, dataset) not in cache:
        try:
            cache[(a, b, dataset)] = compare_cell(plan, a, b, dataset, settings), ""
        except UserError as err:
            cache[(a, b, dataset)] = None, str(err)
    return cache[(a, b, dataset)]


def column_claims(plan, dataset, cells, paper_models, settings, cache):
    """The claims on one column, tested and Holm-corrected."""
    paper = {m: row[1].get(dataset) for m, row in paper_models.items()}
    baselines = word_vector_baselines()
    claims = []
    for a, claim_b in CLAIMS:
        if claim_b == BEST_BASELINE:
            b = best_row(cells, baselines)
            scored = [(paper[m], m) for m in baselines if paper.get(m) is not None]
            paper_b = max(scored)[1] if scored else None
        else:
            b = paper_b = claim_b
        paper_difference = (paper[a] - paper[paper_b] if paper.get(a) is not None and paper_b
                            and paper.get(paper_b) is not None else None)
        claim = Claim(dataset, a, b, claim_b, paper_difference, paper_b)
        claim.result, claim.reason = tested_pair(plan, a, b, dataset, settings, cache)
        claims.append(claim)
    tested = [c for c in claims if c.result is not None]
    for claim, adjusted in zip(tested, holm([c.result["p_value"] for c in tested])):
        claim.holm_p = adjusted
    for claim in claims:
        claim.verdict, claim.sentence = verdict(claim, paper_models, settings.alpha)
    return claims


def verdict(claim, paper_models, alpha):
    """(short verdict, one sentence)."""
    a, b = _name(paper_models, claim.a), _name(paper_models, claim.b)
    if claim.result is None:
        if claim.b is None:
            return "no runs", "No runs: no word-vector baseline has a finished run on this column."
        if claim.reason == "no runs" or "no finished seed in common" in claim.reason:
            return "no runs", f"No runs: {a} and {b} have no finished seed in common on this column."
        return "not tested", f"Not tested: {claim.reason}."
    diff, p = claim.result["difference"], claim.holm_p
    if p < alpha and diff > 0:
        return "holds here", f"Holds here: {a} is better than {b} by {diff:+.2f} points (Holm p = {p:.3g})."
    if p < alpha:
        return "reversed here", f"Reversed here: {b} is better than {a} by {-diff:.2f} points (Holm p = {p:.3g})."
    return "not significant here", f"Not significant here: {a} - {b} = {diff:+.2f} points (Holm p = {p:.3g})."


def best_marks(plan, results, paper_models, columns, settings, cache):
    """{(best model, dataset): footnote} for the columns whose best row is not significantly better
    than the runner-up (or could not be tested against it)."""
    marks = {}
    for dataset in plan.datasets:
        ranked = sorted(((c.stat("accuracy").mean, c.model) for c in results
                         if c.dataset == dataset and c.status == "ok"), reverse=True)
        if len(ranked) < 2:
            continue
        (_, best), (_, second) = ranked[:2]
        result, reason = tested_pair(plan, best, second, dataset, settings, cache)
        if result is not None and result["p_value"] < settings.alpha:
            continue
        why = (f"{result['difference']:+.2f} points, p = {result['p_value']:.3g}" if result is not None
               else f"not tested: {reason}")
        marks[(best, dataset)] = (f"{columns.get(dataset, dataset)}: {_name(paper_models, best)} is not "
                                  f"significantly better than the runner-up {_name(paper_models, second)} ({why})")
    return marks


def _fmt(value, spec):
    return MISSING if value is None else format(value, spec)


def _ci(result, key="ci95"):
    return MISSING if result is None else f"[{result[key][0]:+.2f}, {result[key][1]:+.2f}]"


def render_markdown(claims, columns, paper_models, settings):
    lines = ["# The paper's claims about Table 3, tested on our runs", "",
             f"- test: crossed paired bootstrap over seeds and test instances ({settings.n_resamples} "
             f"resamples, seed {settings.seed}); differences in accuracy points, A - B; see docs/STATISTICS.md",
             f"- Holm's correction over the tested claims of one column; a claim holds at Holm p < {settings.alpha}",
             f"- {MISSING} = no value (no runs, or the paper has none)", "",
             "| column | claim (A > B) | paper diff | our diff | 95% CI | p | Holm p | seeds | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in claims:
        b = _name(paper_models, c.b)
        if c.claim_b == BEST_BASELINE:
            b = f"best word-vector baseline (ours: {b}; paper: {_name(paper_models, c.paper_b)})"
        r = c.result
        lines.append(f"| {columns.get(c.dataset, c.dataset)} | {_name(paper_models, c.a)} > {b} | "
                     f"{_fmt(c.paper_difference, '+.2f')} | {_fmt(r and r['difference'], '+.2f')} | {_ci(r)} | "
                     f"{_fmt(r and r['p_value'], '.3g')} | {_fmt(c.holm_p, '.3g')} | "
                     f"{' '.join(map(str, r['seeds'])) if r else MISSING} | {c.sentence} |")
    return "\n".join(lines) + "\n"


def render_csv(claims, columns, paper_models):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["dataset", "column", "a", "b", "claim_b", "paper_b", "paper_difference", "difference",
                     "ci95_low", "ci95_high", "p_value", "holm_p_value", "macro_f1_difference",
                     "macro_f1_p_value", "seeds", "verdict", "sentence"])
    for c in claims:
        r = c.result or {}

        def num(value, digits=4):
            return "" if value is None else f"{value:.{digits}f}"
        writer.writerow([c.dataset, columns.get(c.dataset, c.dataset), c.a, c.b or "", c.claim_b, c.paper_b or "",
                         num(c.paper_difference, 3), num(r.get("difference")),
                         num(r["ci95"][0] if r else None), num(r["ci95"][1] if r else None),
                         num(r.get("p_value"), 6), num(c.holm_p, 6), num(r.get("macro_f1_difference")),
                         num(r.get("macro_f1_p_value"), 6), " ".join(map(str, r.get("seeds", []))),
                         c.verdict, c.sentence])
    return buffer.getvalue()


@dataclass
class SeedInterval:
    """One row of the seeds plot: a cell's per-seed accuracies, their mean and its 95% interval."""
    model: str
    dataset: str
    status: str               # 'ok', 'missing' or 'n/a'
    paper: float = None
    seeds: tuple = ()
    accuracies: tuple = ()
    mean: float = None
    low: float = None         # None when the runs have no usable predictions
    high: float = None


def seed_intervals(plan, results, settings):
    """[SeedInterval] for every model x dataset of the plan, in the plan's order."""
    by_pair = {(c.model, c.dataset): c for c in results}
    rows = []
    for dataset in plan.datasets:
        for model in plan.models:
            cell = by_pair[(model, dataset)]
            paper = cell.paper if cell.status != "n/a" else None
            if cell.status != "ok":
                rows.append(SeedInterval(model, dataset, cell.status, paper))
                continue
            low = high = None
            try:
                low, high = accuracy_interval(seed_codes(plan, model, model, dataset)[1], settings)
            except UserError:            # runs without usable predictions: the mean alone
                pass
            rows.append(SeedInterval(model, dataset, "ok", paper, tuple(cell.seeds),
                                     tuple(cell.stat("accuracy").values), cell.stat("accuracy").mean, low, high))
    return rows


def render_intervals_csv(intervals):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "dataset", "status", "seeds", "accuracies", "mean", "ci95_low", "ci95_high", "paper"])
    for r in intervals:
        def num(value, digits=2):
            return "" if value is None else f"{value:.{digits}f}"
        writer.writerow([r.model, r.dataset, r.status, " ".join(map(str, r.seeds)),
                         " ".join(f"{a:.2f}" for a in r.accuracies), num(r.mean, 4), num(r.low, 4), num(r.high, 4),
                         num(r.paper, 3)])
    return buffer.getvalue()


def render_forest(plan, intervals, paper_models, columns, path):
    """One panel per column: each row's seeds (dots), their mean (square) with its 95% crossed-bootstrap
    interval, and the paper's number (cross)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_pair = {(r.model, r.dataset): r for r in intervals}
    n = len(plan.datasets)
    ncols = min(3, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 0.32 * len(plan.models) * nrows + 2.0),
                             squeeze=False)
    names = [_name(paper_models, m) for m in plan.models]
    for ax, dataset in zip(axes.flat, plan.datasets):
        for y, model in enumerate(plan.models):
            row = by_pair[(model, dataset)]
            if row.paper is not None:
                ax.plot(row.paper, y, "x", color="tab:red", ms=5, label="paper")
            if row.status != "ok":
                ax.text(0.02, y, NOT_APPLICABLE if row.status == "n/a" else "no runs", va="center", fontsize=7,
                        color="gray", transform=ax.get_yaxis_transform())
                continue
            ax.plot(row.accuracies, [y] * len(row.accuracies), "o", color="tab:blue", ms=3, alpha=0.7, zorder=3,
                    label="seeds")
            if row.low is not None:
                ax.errorbar(row.mean, y, xerr=[[row.mean - row.low], [row.high - row.mean]], fmt="s", color="black",
                            ms=4, capsize=2, label="mean, 95% CI")
            else:
                ax.plot(row.mean, y, "s", color="black", ms=4, label="mean, 95% CI")
        ax.set_yticks(range(len(plan.models)))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set(title=columns.get(dataset, dataset), xlabel="test accuracy (%)")
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=8)
    fig.suptitle("Table 3 per seed: each seed, the mean and its 95% CI\n(crossed bootstrap: seeds and test "
                 "instances)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.93))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def evaluate_claims(plan, paper_file=PAPER_FILE):
    """The Report of `plan`'s runs: every column's claims, the best-cell marks and the seeds plot's numbers."""
    settings = load_settings()
    columns, paper_models = load_paper(paper_file)
    results = collect(plan, paper_models)
    claims, cache = [], {}
    for dataset in plan.datasets:
        cells = [c for c in results if c.dataset == dataset]
        claims += column_claims(plan, dataset, cells, paper_models, settings, cache)
    return Report(claims, best_marks(plan, results, paper_models, columns, settings, cache),
                  seed_intervals(plan, results, settings))


def claims_markdown(report, paper_file=PAPER_FILE):
    columns, paper_models = load_paper(paper_file)
    return render_markdown(report.claims, columns, paper_models, load_settings())


def write_claims(plan, out_dir="results", paper_file=PAPER_FILE):
    """Write claims.md / claims.csv / table3_seeds.{png,csv} under out_dir; returns the Report (its
    marks go into table3.md)."""
    report = evaluate_claims(plan, paper_file)
    columns, paper_models = load_paper(paper_file)
    out_dir = Path(out_dir)
    write_text(out_dir / "claims.md", render_markdown(report.claims, columns, paper_models, load_settings()))
    write_text(out_dir / "claims.csv", render_csv(report.claims, columns, paper_models))
    write_text(out_dir / "table3_seeds.csv", render_intervals_csv(report.intervals))
    render_forest(plan, report.intervals, paper_models, columns, out_dir / "table3_seeds.png")
    return report
