"""Collect the run folders' metrics.json into one table: mean and standard deviation over seeds."""
import statistics
from collections import defaultdict
from pathlib import Path

from common.errors import UserError
from common.io import write_text

from ..run_folder import read_metrics


def collect(runs_root):
    """{(dataset, run name): [metrics.json dicts]} for every runs/<dataset>/<run>/seed*/metrics.json."""
    groups = defaultdict(list)
    for path in sorted(Path(runs_root).glob("*/*/seed*/metrics.json")):
        metrics = read_metrics(path)   # a damaged file is one error line naming it
        groups[(metrics["dataset"], metrics.get("run_name", metrics["model"]))].append(metrics)
    return groups


def _mean_std(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


def markdown_table(groups):
    lines = ["| dataset | model | seeds | device | test accuracy | test macro-F1 | wall s (mean) |",
             "|---|---|---|---|---|---|---|"]
    for (dataset, name), runs in sorted(groups.items()):
        seeds = ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))
        devices = ",".join(sorted({str(r.get("device", "?")) for r in runs}))
        wall = statistics.fmean(r.get("timing", {}).get("wall_seconds", 0.0) for r in runs)
        lines.append(f"| {dataset} | {name} | {seeds} | {devices} | {_mean_std([r['test']['accuracy'] for r in runs])} "
                     f"| {_mean_std([r['test']['macro_f1'] for r in runs])} | {wall:.0f} |")
    return "\n".join(lines) + "\n"


def report(runs_root, out_file=None):
    """The table of the runs under runs_root (written to out_file); a folder without a finished run
    is a UserError saying so (nothing is written)."""
    groups = collect(runs_root)
    if not groups:
        raise UserError(f"{runs_root}: no runs to report (no <dataset>/<model>/seed<N>/metrics.json under it); "
                        f"train one with --mode train, or point paths.runs at the folder that holds them")
    table = markdown_table(groups)
    if out_file:
        write_text(out_file, table)
    return table
