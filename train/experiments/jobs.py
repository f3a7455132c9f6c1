"""The experiment modes of main.py: `--mode reproduce` and `--mode table` (with the claims table)."""
from pathlib import Path

from common.io import check_writable_dir

from .claims import write_claims
from .grid import make_plan, reproduce, split_names
from .runs import PUBLISHED_ROOT
from .table import render_table


def grid_job(mode, models, datasets, seeds, jobs, device, experiment, overrides, backend, address, results,
             published=PUBLISHED_ROOT):
    """--mode reproduce (train what is not finished, then render the table) or --mode table (render
    only), into `results` (None: <paths.runs>/results). Returns the exit status: 1 when a run
    failed, else 0."""
    plan = make_plan(split_names(models, "--models"), split_names(datasets, "--datasets"), seeds, experiment,
                     overrides, published=published)
    if results is None:
        results = Path(plan.cells[0].cfg.paths.runs if plan.cells else "runs") / "results"
    check_writable_dir(results, "--results")   # before any training: the table is written at the end
    if mode == "reproduce":
        for runs in sorted({str(cell.cfg.paths.runs) for cell in plan.cells}):
            check_writable_dir(runs, "paths.runs")
    outcomes = []
    if mode == "reproduce":
        outcomes = reproduce(plan, jobs, device, experiment, overrides, backend, address)
    elif plan.notes:
        print("\n".join(plan.notes))
    report = write_claims(plan, results)     # claims.{md,csv}, table3_seeds.png; marks for table3.md
    _, cells = render_table(plan, results, marks=report.marks)
    shown = sum(1 for c in cells if c.status == "ok")
    stale, damaged = sum(c.stale for c in cells), sum(c.damaged for c in cells)
    print(f"table: {shown} of {sum(1 for c in cells if c.status != 'n/a')} cells have results"
          + (f" ({stale} run(s) with another config left out)" if stale else "")
          + (f" ({damaged} damaged run folder(s) left out)" if damaged else "")
          + f"; written to {Path(results) / 'table3'}.{{md,csv,tex,png}}")
    tested = [c for c in report.claims if c.result is not None]
    held = sum(c.verdict == "holds here" for c in tested)
    untested = len(report.claims) - len(tested)
    print(f"claims: {held} of {len(tested)} tested hold here"
          + (f" ({untested} of the {len(report.claims)} not tested: no runs to compare)" if untested else "")
          + f"; written to {Path(results) / 'claims'}.{{md,csv}} and {Path(results) / 'table3_seeds.png'}")
    return 1 if any(not o.ok for o in outcomes) else 0
