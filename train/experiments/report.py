"""Collect the run folders' metrics.json into one table: mean and standard deviation over seeds.

Only the folders a training writes are read, <runs>/<dataset>/<run name>/seed<N> (run_folder.run_dir),
and runs are grouped by that path: a copy beside them (seed0.bak) is not another seed, and a run
folder moved to another name is reported under its new name. A seed<N> folder that is not a finished
run (run_folder.unfinished_reason), or whose test accuracy or macro-F1 is not a finite number, is
damaged: it is left out and named under the table, as --mode table leaves out damaged run folders.
"""
import re
import statistics
from collections import defaultdict
from pathlib import Path

from common.errors import UserError
from common.io import write_text

from ..run_folder import TABLE_METRICS, finite_number, read_metrics, unfinished_reason

SEED_FOLDER = re.compile(r"seed(0|[1-9][0-9]*)")   # run_dir's seed<N>: no sign, no leading zeros


def _read_run(folder):
    """(metrics.json dict, None) of a finished run folder whose test numbers are finite, else (None, why not)."""
    why = unfinished_reason(folder)
    if why is not None:
        return None, why
    metrics = read_metrics(folder / "metrics.json")
    bad = [key for key in TABLE_METRICS if not finite_number(metrics["test"].get(key))]   # missing ones too
    if bad:
        return None, f"{folder / 'metrics.json'}: test {', '.join(bad)}: not a finite number"
    return metrics, None


def collect(runs_root):
    """({(dataset, run name): {seed: metrics.json dict}}, [damaged run folder (why)]) over the run
    folders runs_root/<dataset>/<run name>/seed<N>; other folders beside them are not read."""
    groups, damaged = defaultdict(dict), []
    for folder in sorted(Path(runs_root).glob("*/*/seed*")):
        match = SEED_FOLDER.fullmatch(folder.name)
        if not match or not folder.is_dir():
            continue
        metrics, why = _read_run(folder)
        if why is None:
            groups[(folder.parent.parent.name, folder.parent.name)][int(match[1])] = metrics
        else:
            damaged.append(f"{folder} ({why})")
    return groups, damaged


def _mean_std(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


def markdown_table(groups):
    lines = ["| dataset | model | seeds | device | test accuracy | test macro-F1 | wall s (mean) |",
             "|---|---|---|---|---|---|---|"]
    for (dataset, name), by_seed in sorted(groups.items()):
        runs = [by_seed[seed] for seed in sorted(by_seed)]
        seeds = ",".join(map(str, sorted(by_seed)))
        devices = ",".join(sorted({str(r.get("device", "?")) for r in runs}))
        wall = statistics.fmean(r.get("timing", {}).get("wall_seconds", 0.0) for r in runs)
        lines.append(f"| {dataset} | {name} | {seeds} | {devices} | {_mean_std([r['test']['accuracy'] for r in runs])} "
                     f"| {_mean_std([r['test']['macro_f1'] for r in runs])} | {wall:.0f} |")
    return "\n".join(lines) + "\n"


def report(runs_root, out_file=None):
    """The table of the finished runs under runs_root (written to out_file), the damaged run folders
    named under it; a folder without a finished run is a UserError saying so (nothing is written)."""
    groups, damaged = collect(runs_root)
    if not groups:
        found = (f"{len(damaged)} damaged run folder(s) left out: {'; '.join(damaged)}" if damaged
                 else "no <dataset>/<model>/seed<N>/metrics.json under it")
        raise UserError(f"{runs_root}: no runs to report ({found}); train one with --mode train, or point "
                        f"paths.runs at the folder that holds them")
    table = markdown_table(groups)
    if damaged:
        table += f"\nleft out: {len(damaged)} damaged run folder(s):\n" + "".join(f"- {d}\n" for d in damaged)
    if out_file:
        write_text(out_file, table)
    return table
