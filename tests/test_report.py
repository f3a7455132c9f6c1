"""--mode report: the table of run results, averaged over seeds (train/experiments/report.py)."""
import json

from train.experiments.report import report


def _write(root, dataset, name, seed, accuracy, macro_f1):
    folder = root / dataset / name / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "dataset": dataset, "model": name, "run_name": name, "seed": seed, "device": "cpu",
        "test": {"accuracy": accuracy, "macro_f1": macro_f1}, "timing": {"wall_seconds": 10.0 * (seed + 1)}}))


def test_report_averages_seeds_per_dataset_and_model_and_writes_the_table(tmp_path):
    _write(tmp_path, "mams-atsa", "capsnet", 0, 70.0, 60.0)
    _write(tmp_path, "mams-atsa", "capsnet", 1, 72.0, 64.0)
    _write(tmp_path, "mams-acsa", "capsnet", 0, 65.5, 61.25)
    table = report(tmp_path, tmp_path / "summary.md")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "| 0,1 | cpu | 71.00 ± 1.41 | 62.00 ± 2.83 | 15 |" in rows["mams-atsa"]
    assert "| 0 | cpu | 65.50 | 61.25 | 10 |" in rows["mams-acsa"]
    assert (tmp_path / "summary.md").read_text() == table
