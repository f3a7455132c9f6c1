"""--mode publish: the explicit step that puts finished runs into the repository's published results.

It copies the test predictions and metrics of the grid's finished run folders (default settings, or
an experiment whose run_name names its runs apart per model; seeds 0..N-1) into results/predictions/
(train/experiments/runs.py), then renders the committed tables from the published runs alone:
results/table3.{md,csv,tex,png}, results/claims.{md,csv}, results/table3_seeds.{png,csv}, the results
page docs/RESULTS.md with its seeds plot docs/img/table3_seeds.png, and the headline table of
README.md (between its markers). Nothing else writes there: --mode reproduce, table and results write
a user's tables to their own folder.

A run already published with the same config and predictions is left as it is. One that differs is
never replaced unless --force is given; without it the whole step stops before writing anything.
"""
from pathlib import Path

from common.errors import UserError
from common.io import read_text, write_text

from ..config import parse_override
from .claims import write_claims
from .grid import make_plan, ran_as_planned, split_names
from .results_page import headline_table, with_headline, write_page
from .runs import PUBLISHED_ROOT, REPO_ROOT, from_folder, from_published, same_run, write_published
from .table import render_table

RESULTS_DIR = REPO_ROOT / "results"
PAGE = REPO_ROOT / "docs" / "RESULTS.md"
README = REPO_ROOT / "README.md"


def published_plan(published=PUBLISHED_ROOT, seeds=5):
    """The default Table 3 grid over the published runs alone (no run folder is read)."""
    return make_plan(None, None, seeds, published=published, use_folders=False)


def check_overrides(experiment, overrides):
    """Published runs hold the default settings (Table 3's), or an experiment's that names its runs apart
    from them per model (run_name with "{model}", as configs/experiments/mpnet.yaml's "{model}-mpnet");
    --set may move paths (where the run folders are), nothing else."""
    if experiment:
        from ..config import read_yaml
        run_name = read_yaml(experiment).get("run_name")
        if not isinstance(run_name, str) or "{model}" not in run_name or run_name == "{model}":
            raise UserError(f"--config {experiment}: publish takes the default settings, or an experiment whose "
                            f"run_name names its runs apart per model (e.g. \"{{model}}-mpnet\")")
    for item in overrides:
        key = parse_override(item)[0]
        if not key.startswith("paths."):
            raise UserError(f"--set {item}: publish takes the default settings only; --set may name paths.* alone")


def runs_to_publish(plan):
    """([(cell, FinishedRun of its folder, target file)] to write, number already published, [conflicts]).
    A conflict is a published file that holds another result (or is damaged): (target, why)."""
    todo, same, conflicts = [], 0, []
    for cell in plan.cells:
        run = from_folder(cell.folder)
        if run is None or not ran_as_planned(run.metrics, cell):
            continue
        target = cell.published_file
        try:
            existing = from_published(target)
        except UserError as err:
            conflicts.append((target, f"damaged ({err})"))
            todo.append((cell, run, target))
            continue
        if existing is None:
            todo.append((cell, run, target))
        elif same_run(existing, run):
            same += 1
        else:
            conflicts.append((target, f"holds another result than {cell.folder}"))
            todo.append((cell, run, target))
    return todo, same, conflicts


def publish_job(models, datasets, seeds, experiment, overrides, force=False, published=PUBLISHED_ROOT,
                results_dir=RESULTS_DIR, page=PAGE, readme=README):
    """Publish the finished runs, then regenerate the committed tables and page; returns the exit status."""
    check_overrides(experiment, overrides)
    plan = make_plan(split_names(models, "--models"), split_names(datasets, "--datasets"), seeds, experiment,
                     overrides, published=published)
    runs = Path(plan.cells[0].cfg.paths.runs) if plan.cells else None
    if runs is not None and not runs.is_dir():
        raise UserError(f"paths.runs={runs}: no such folder (publish copies the finished runs found there)")
    todo, same, conflicts = runs_to_publish(plan)
    if conflicts and not force:
        target, why = conflicts[0]
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise UserError(f"{target}: already published and {why}{more}; nothing was written. "
                        f"--force replaces published runs")
    for cell, run, target in todo:
        write_published(target, run.metrics, run.predictions)
    table_plan = published_plan(published)
    report = write_claims(table_plan, results_dir)
    _, cells = render_table(table_plan, results_dir, marks=report.marks)
    write_page(table_plan, results_dir, page)
    if readme is not None:
        write_text(readme, with_headline(read_text(readme, "README"), headline_table(table_plan, results_dir, report)))
    shown = sum(1 for c in cells if c.status == "ok")
    print(f"published {len(todo)} run(s) to {Path(published).as_posix()}"
          + (f", replacing {len(conflicts)}" if conflicts else "") + f"; {same} already published. "
          f"Table 3 has {shown} cells with published runs; written: {Path(results_dir).as_posix()}/table3.*, "
          f"claims.*, table3_seeds.*, and {Path(page).as_posix()}")
    return 0
