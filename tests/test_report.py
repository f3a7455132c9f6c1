"""--mode report: the table of run results, averaged over seeds (train/experiments/report.py)."""
import shutil

import pytest

from common.errors import UserError
from conftest import write_finished_run
from train.experiments.report import report


def _write(root, dataset, name, seed, accuracy, macro_f1, folder_name=None):
    """A finished run folder root/dataset/name/seed<N> (or folder_name) whose metrics.json says these numbers."""
    return write_finished_run(root / dataset / name / (folder_name or f"seed{seed}"), {
        "dataset": dataset, "model": name, "run_name": name, "seed": seed, "device": "cpu",
        "test": {"accuracy": accuracy, "macro_f1": macro_f1}, "timing": {"wall_seconds": 10.0 * (seed + 1)}})


def _rows(table):
    """{(dataset, model): table row} of a report."""
    rows = [line.split("|") for line in table.splitlines()[2:] if line.startswith("| ")]
    return {(row[1].strip(), row[2].strip()): "|".join(row) for row in rows}


def test_report_averages_seeds_per_dataset_and_model_and_writes_the_table(tmp_path):
    _write(tmp_path, "mams-atsa", "capsnet", 0, 70.0, 60.0)
    _write(tmp_path, "mams-atsa", "capsnet", 1, 72.0, 64.0)
    _write(tmp_path, "mams-acsa", "capsnet", 0, 65.5, 61.25)
    table = report(tmp_path, tmp_path / "summary.md")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "| 0,1 | cpu | 71.00 ± 1.41 | 62.00 ± 2.83 | 15 |" in rows["mams-atsa"]
    assert "| 0 | cpu | 65.50 | 61.25 | 10 |" in rows["mams-acsa"]
    assert (tmp_path / "summary.md").read_text() == table


DAMAGED_METRICS = {   # a metrics.json report cannot use -> the words naming why
    "a JSON list": ("[1, 2]", "holds a JSON list"),
    "empty": ("", "not valid JSON"),
    "truncated": ('{"model": "capsnet", "dataset": "mams-atsa", "se', "not valid JSON"),
    "an empty object": ("{}", "not a run's metrics file"),
    "accuracy NaN": ('{"model": "capsnet", "dataset": "mams-atsa", "seed": 2, '
                     '"test": {"accuracy": NaN, "macro_f1": 60.0}}', "test accuracy is nan, not a finite number"),
    "accuracy as text": ('{"model": "capsnet", "dataset": "mams-atsa", "seed": 2, '
                         '"test": {"accuracy": "70", "macro_f1": 60.0}}', "test accuracy is '70', not a finite number"),
}


@pytest.mark.parametrize("content, why", DAMAGED_METRICS.values(), ids=DAMAGED_METRICS.keys())
def test_report_leaves_out_a_damaged_metrics_json_names_it_and_still_reports_the_good_runs(tmp_path, content, why):
    _write(tmp_path, "mams-atsa", "capsnet", 0, 70.0, 60.0)
    _write(tmp_path, "mams-atsa", "capsnet", 1, 72.0, 64.0)
    damaged = _write(tmp_path, "mams-atsa", "capsnet", 2, 10.0, 10.0)
    (damaged / "metrics.json").write_text(content)
    table = report(tmp_path, tmp_path / "summary.md")
    assert "| 0,1 | cpu | 71.00 ± 1.41 | 62.00 ± 2.83 | 15 |" in _rows(table)[("mams-atsa", "capsnet")]
    note = table.split("\nleft out: ")[1]
    assert note.startswith("1 damaged run folder(s):\n") and len(note.splitlines()) == 2
    assert f"- {damaged} ({damaged / 'metrics.json'}: " in note and why in note
    assert (tmp_path / "summary.md").read_text() == table


def test_report_without_a_good_run_is_one_error_naming_the_damaged_ones_and_writes_nothing(tmp_path):
    damaged = _write(tmp_path, "mams-atsa", "capsnet", 0, 70.0, 60.0)
    (damaged / "metrics.json").write_text("[1, 2]")
    with pytest.raises(UserError, match=r"no runs to report \(1 damaged run folder\(s\) left out: .*seed0 \(.*"
                                        r"metrics.json: the metrics file holds a JSON list") as error:
        report(tmp_path, tmp_path / "summary.md")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "summary.md").exists()


def test_report_reads_only_seed_folders_counts_only_finished_runs_and_groups_by_the_folder_path(tmp_path):
    run = _write(tmp_path, "mams-atsa", "capsnet", 0, 70.0, 60.0)
    for copy in ("seed0.bak", "seedX", "seed01", "seed-1"):      # not run folders: never another seed
        shutil.copytree(run, run.parent / copy)
    shutil.copytree(run, tmp_path / "mams-atsa" / "capsnet-old" / "seed0")   # a renamed copy: its own row
    unfinished = _write(tmp_path, "mams-atsa", "capsnet", 1, 90.0, 90.0)
    (unfinished / "checkpoint.pt").unlink()
    _write(tmp_path, "mams-acsa", "capsnet", 0, 50.0, 40.0, folder_name="seed0.bak")   # no run folder at all
    table = report(tmp_path)
    rows = _rows(table)
    assert set(rows) == {("mams-atsa", "capsnet"), ("mams-atsa", "capsnet-old")}
    assert "| 0 | cpu | 70.00 | 60.00 | 10 |" in rows[("mams-atsa", "capsnet")]
    assert "| 0 | cpu | 70.00 | 60.00 | 10 |" in rows[("mams-atsa", "capsnet-old")]
    assert table.endswith(f"\nleft out: 1 damaged run folder(s):\n- {unfinished} (no checkpoint.pt)\n")
