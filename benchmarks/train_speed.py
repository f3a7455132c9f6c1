"""Training speed and memory of any registered model: samples/s, tokens/s, seconds per epoch (training
alone, and with the validation pass), peak memory, for this working tree and, with
--compare-commit REF, for an older commit side by side. Prints one table; asserts nothing.

    python benchmarks/train_speed.py                                   # capsnet, mams-atsa, 1 epoch, CPU
    python benchmarks/train_speed.py --models capsnet,td-lstm --datasets mams-atsa,mams-acsa --epochs 2
    python benchmarks/train_speed.py --compare-commit 8e25dce          # this tree against that commit
    python benchmarks/train_speed.py --devices cuda --models capsnet,capsnet-bert
    python benchmarks/train_speed.py --config configs/experiments/capsnet-proj300.yaml --compare-commit 8e25dce
    python benchmarks/train_speed.py --compare-commit e27622d --epochs 2 --repeats 3   # interleaved, 3 each
    python benchmarks/train_speed.py --variant train.kernels=reference   # also this tree, readable layers only

Each figure comes from a real `main.py --mode train` run in a subprocess (the command line is
stable across commits, so an old commit is measured the same way, from a git worktree of it), into
a temporary runs folder: the timing block of its metrics.json, and the peak resident memory of the
process (CPU) or the peak memory allocated by torch (CUDA, from metrics.json where the commit
records it). Preprocessing is not timed; an old commit preprocesses into its own temporary folder
(its pipeline may differ), so it never touches data/processed. Needs the raw data ($ABSA_DATA_ROOT
or data/raw) unless data/processed is current.

On a shared machine a run can meet a slow spell (CapsNet's CPU epochs on two shared cores took
5.0-5.5 s in quiet spells and 7-8 s in slow ones). With --repeats N each tree trains N times, the trees taking
turns (A B A B ...), so a spell slows both alike (a --variant, this tree with one more setting,
takes its turn as a tree does); a row then reports the tree's fastest run (what
the code can do) and, in the last column, the median of its runs' training seconds per epoch.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_training(tree, model, dataset, device, epochs, runs, processed, threads, overrides, config=None):
    """Train once in `tree` with main.py; returns (metrics dict or None, peak RSS MiB, error line)."""
    command = [sys.executable, "main.py", "--mode", "train", "--model", model, "--dataset", dataset,
               "--device", device, "--set", f"train.epochs={epochs}", "--set", f"paths.runs={runs}",
               "--set", "train.tensorboard=false", "--set", f"run_name=bench-{model}"]
    if processed:
        command += ["--set", f"paths.processed={processed}"]
    if config:
        command += ["--config", str(Path(config).resolve())]
    if threads:
        command += ["--set", f"train.num_threads={threads}"]
    for item in overrides:
        command += ["--set", item]
    process = subprocess.Popen(command, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    peak_rss = usage.ru_maxrss / 1024   # Linux reports KiB
    if os.waitstatus_to_exitcode(status) != 0:
        lines = [line for line in (stderr + stdout).splitlines() if line.strip()]
        return None, peak_rss, (lines[-1] if lines else "failed")
    metrics_file = Path(runs) / dataset / f"bench-{model}" / "seed0" / "metrics.json"
    return json.loads(metrics_file.read_text()), peak_rss, ""


def seconds_per_epoch(result):
    """Training seconds per epoch of one run_training result (inf when it failed)."""
    metrics = result[0]
    return metrics["timing"]["train_seconds"] / max(1, len(metrics["history"])) if metrics else float("inf")


def row(label, model, dataset, device, results):
    """The table row of one tree's runs: its fastest run's figures, and the median s/epoch of all."""
    metrics, peak_rss, error = min(results, key=seconds_per_epoch)
    if metrics is None:
        return [label, model, dataset, device, f"failed: {error[:60]}"]
    timing, epochs = metrics["timing"], max(1, len(metrics["history"]))
    memory = timing.get("peak_memory_mib") if device == "cuda" else round(peak_rss)
    median = statistics.median(seconds_per_epoch(r) for r in results)
    return [label, model, dataset, device, f"{timing['train_samples_per_second']:.0f}",
            f"{timing['train_tokens_per_second']:.0f}", f"{timing['train_seconds'] / epochs:.2f}",
            f"{timing['wall_seconds'] / epochs:.2f}", "-" if memory is None else f"{memory:.0f}",
            f"{metrics['test']['accuracy']:.2f}", f"{median:.2f}"]


def print_table(rows, epochs, repeats):
    header = ["tree", "model", "dataset", "device", "samples/s", "tokens/s", "s/epoch train",
              "s/epoch +val", "peak MiB", "test acc", "median s/epoch train"]
    measured = [r for r in rows if len(r) == len(header)]     # a failed run's row ends with its error
    widths = [max(len(str(r[i])) for r in (rows if i < 4 else measured) + [header]) for i in range(len(header))]
    runs = f"fastest of {repeats} interleaved runs per tree" if repeats > 1 else "one run per tree"
    print(f"\n{epochs} epoch(s) per run, {runs}; peak MiB: CPU = peak resident memory of the training "
          "process, CUDA = peak allocated by torch; test acc after so few epochs says nothing about the model")
    for r in [header] + rows:
        cells = [str(v).rjust(w) if i > 3 else str(v).ljust(w) for i, (v, w) in enumerate(zip(r[:4], widths))]
        cells += [str(v).rjust(w) for v, w in zip(r[4:], widths[4:])] if len(r) == len(header) else r[4:]
        print("  ".join(cells))


def worktree(ref, where):
    """A detached git worktree of `ref` at `where` (removed by the caller)."""
    result = subprocess.run(["git", "worktree", "add", "--detach", str(where), ref], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"--compare-commit {ref}: {result.stderr.strip().splitlines()[-1]}")
    return where


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="capsnet")
    parser.add_argument("--datasets", default="mams-atsa")
    parser.add_argument("--devices", default="cpu", help="cpu, cuda or both (comma-separated)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch CPU threads per run (default: torch's)")
    parser.add_argument("--config", help="an experiment YAML for every run (configs/experiments/...)")
    parser.add_argument("--compare-commit", metavar="REF", help="also measure this commit, side by side")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per tree, the trees taking turns; rows show each tree's fastest run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE for every run")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE",
                        help="also this tree with this setting (repeatable: one row each)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    import torch  # only to know whether CUDA is there
    devices = [d for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = [("this tree", ROOT, None, [])]
        trees += [(f"this tree, {variant}", ROOT, None, [variant]) for variant in args.variant]
        if args.compare_commit:
            old_tree = worktree(args.compare_commit, Path(tmp) / "ref")
            trees.append((args.compare_commit, old_tree, Path(tmp) / "processed", []))
        try:
            for model in args.models.split(","):
                for dataset in args.datasets.split(","):
                    for device in devices:
                        results = {label: [] for label, *_ in trees}
                        for turn in range(args.repeats):
                            for index, (label, tree, processed, extra) in enumerate(trees):
                                runs = Path(tmp) / f"runs-{model}-{dataset}-{device}-{index}-{turn}"
                                results[label].append(run_training(tree, model, dataset, device, args.epochs, runs,
                                                                   processed, args.threads,
                                                                   args.overrides + extra, args.config))
                                metrics, _, error = results[label][-1]
                                outcome = (f"{seconds_per_epoch(results[label][-1]):.2f} s/epoch training" if metrics
                                           else f"failed: {error}")
                                print(f"{label} {model} {dataset} {device} run {turn + 1}: {outcome}", flush=True)
                        for label, *_ in trees:
                            rows.append(row(label, model, dataset, device, results[label]))
        finally:
            if args.compare_commit:
                subprocess.run(["git", "worktree", "remove", "--force", str(Path(tmp) / "ref")], cwd=ROOT,
                               capture_output=True)
    print_table(rows, args.epochs, args.repeats)


if __name__ == "__main__":
    main()
