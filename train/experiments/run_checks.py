"""Which runs of the grid --mode compare (and the claims) may use, and why the others are left out.

A seed is used when its run is finished for the grid's config (grid.run_state) and its
predictions.jsonl agrees with its own metrics.json: as many instances as the test confusion matrix
counts, that confusion matrix, and that accuracy. A prediction file that disagrees was written by
another run (copied, edited or left from an older training) and is not trusted; the seed is left
out, and every seed left out is named with the reason.
"""
import numpy as np

from common.errors import UserError
from common.labels import LABELS

from ..run_folder import read_metrics, setting_changes, unfinished_reason
from .grid import comparable, run_state

K = len(LABELS)


def predictions_problem(metrics, gold, predicted):
    """Why predictions (label indices) disagree with a run's metrics.json, or None when they agree."""
    test = metrics.get("test") or {}
    confusion = test.get("confusion")
    if isinstance(confusion, list):
        counted = int(np.asarray(confusion).sum())
        if counted != len(gold):
            return f"predictions.jsonl holds {len(gold)} instances, its metrics.json counts {counted}"
        ours = np.bincount(np.asarray(gold) * K + np.asarray(predicted), minlength=K * K).reshape(K, K)
        if ours.tolist() != confusion:
            return "predictions.jsonl's confusion matrix is not the one in its metrics.json"
    accuracy = 100.0 * float(np.mean(np.asarray(gold) == np.asarray(predicted))) if len(gold) else 0.0
    stored = test.get("accuracy")
    if isinstance(stored, (int, float)) and abs(accuracy - stored) > 0.0051:   # metrics.json: 2 decimals
        return f"predictions.jsonl gives accuracy {accuracy:.2f}, its metrics.json {stored:.2f}"
    return None


def left_out_reason(cell):
    """Why a cell of the grid is not a finished run of the grid's config, or None when it is."""
    state = run_state(cell)
    if state == "new":
        return "no run folder"
    if state == "incomplete":
        return f"not a finished run ({unfinished_reason(cell.folder)})"
    if state == "changed":
        stored = comparable(read_metrics(cell.folder / "metrics.json").get("config") or {})
        return f"trained with other settings ({setting_changes(stored, cell.expected_config())})"
    return None


def usable_runs(plan, model, dataset, read_run):
    """({seed: predictions}, {seed: why left out}) of `model` on `dataset` over the plan's seeds;
    read_run(cell) reads a run's predictions (with .gold and .predicted) or raises a UserError."""
    runs, left_out = {}, {}
    for cell in plan.cells:
        if (cell.model, cell.dataset) != (model, dataset):
            continue
        why = left_out_reason(cell)
        if why is None:
            try:
                run = read_run(cell)
            except UserError as err:
                why = str(err)
            else:
                why = predictions_problem(read_metrics(cell.folder / "metrics.json"), run.gold, run.predicted)
        if why is None:
            runs[cell.seed] = run
        else:
            left_out[cell.seed] = why
    return runs, left_out


def left_out_seeds(plan, a, b, dataset, read_run):
    """[{"seed", "model", "why"}] of the seeds of 0..plan.seeds-1 that a comparison of A and B on
    `dataset` leaves out: one entry per model that lacks the seed."""
    reasons = {model: usable_runs(plan, model, dataset, read_run)[1] for model in dict.fromkeys((a, b))}
    return [{"seed": seed, "model": model, "why": why[seed]}
            for seed in range(plan.seeds) for model, why in reasons.items() if seed in why]


def left_out_lines(result):
    """The lines naming a compare result's left-out seeds (for stderr)."""
    return [f"{result['dataset']}: seed {entry['seed']} left out ({entry['model']}: {entry['why']})"
            for entry in result.get("left_out", ())]
