"""Which runs of the grid --mode compare (and the claims) may use, and why the others are left out.

A seed is used when its run is finished for the grid's config (grid.cell_status: its run folder, or
its published file) and its predictions agree with its own metrics (runs.check_against_metrics: as
many instances as the test confusion matrix counts, and that confusion matrix). A prediction file
that disagrees was written by another run (copied, edited or left from an older training) and is
not trusted; the seed is left out, and every seed left out is named with the reason.
"""
from common.errors import UserError

from ..config import comparable
from ..run_folder import read_metrics, setting_changes, unfinished_reason
from .grid import cell_status

NO_RUN = "no run folder"   # the reason of a seed that was never trained (left_out_reason)


def left_out_reason(cell, state):
    """Why a cell of the grid is not a finished run of the grid's config (`state`: grid.cell_status's)."""
    if state == "new":
        return NO_RUN + (" and no published run" if cell.published is not None else "")
    if state == "incomplete":
        reason = unfinished_reason(cell.folder) if cell.use_folders and cell.folder.exists() else None
        return f"not a finished run ({reason})" if reason else "a damaged published run"
    if state == "changed":
        try:
            stored = read_metrics(cell.folder / "metrics.json").get("config") or {}
        except UserError:   # not a run folder's: the published run holds the other config
            return "its published run was trained with other settings"
        return f"trained with other settings ({setting_changes(comparable(stored), cell.expected_config())})"
    return None


def usable_runs(plan, model, dataset):
    """({seed: RunPredictions}, {seed: why left out}) of `model` on `dataset` over the plan's seeds."""
    runs, left_out = {}, {}
    for cell in plan.cells:
        if (cell.model, cell.dataset) != (model, dataset):
            continue
        state, run = cell_status(cell)
        why = left_out_reason(cell, state) if run is None else None
        if why is None:
            try:
                runs[cell.seed] = run.predictions        # checked against the run's own metrics
            except UserError as err:
                why = str(err)
        if why is not None:
            left_out[cell.seed] = why
    return runs, left_out


def left_out_seeds(plan, a, b, dataset, plan_b=None, labels=None):
    """[{"seed", "model", "why"}] of the seeds of 0..plan.seeds-1 that a comparison of A and B on
    `dataset` leaves out: one entry per model that lacks the seed. B's runs come from `plan_b` when
    given (one model under two settings), else from `plan`; "model" is the name A or B is shown by
    (`labels`, default the model names)."""
    label_a, label_b = labels or (a, b)
    sides = {label_a: (plan, a)}
    sides.setdefault(label_b, (plan_b or plan, b))       # A compared with itself: its seeds once
    reasons = {label: usable_runs(where, model, dataset)[1] for label, (where, model) in sides.items()}
    return [{"seed": seed, "model": label, "why": why[seed]}
            for seed in range(plan.seeds) for label, why in reasons.items() if seed in why]


def left_out_lines(result):
    """The lines naming a compare result's left-out seeds (for stderr)."""
    return [f"{result['dataset']}: seed {entry['seed']} left out ({entry['model']}: {entry['why']})"
            for entry in result.get("left_out", ())]
