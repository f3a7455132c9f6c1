"""--mode results (train/experiments/results_page.py): the results page generated from fabricated run
folders and results/ files, byte for byte the same on every render; the committed docs/RESULTS.md equals
a fresh render from the published runs alone."""
import subprocess
import sys

import pytest

from common.errors import UserError
from conftest import REPO_ROOT, write_finished_run
from train.experiments.grid import make_plan
from train.experiments.results_page import ABLATIONS_HEADER, SEEDS_PLOT, SPEED_HEADER, render_page, results_job
from train.experiments.runs import PUBLISHED_ROOT

TABLE3_HEADER = ("model,row,dataset,column,status,n_seeds,seeds,accuracy_mean,accuracy_std,macro_f1_mean,"
                 "macro_f1_std,strict_accuracy_mean,strict_accuracy_std,paper_accuracy,diff,embeddings,bert_path,"
                 "devices,commit")


def overrides(tmp_path):
    return [f"paths.runs={tmp_path / 'runs'}", f"paths.processed={tmp_path / 'processed'}"]


def user_plan(tmp_path):
    """The default grid over the run folders under tmp_path/runs alone (no published runs)."""
    return make_plan(None, None, 5, None, overrides(tmp_path), published=None)


def write_run(tmp_path, model, dataset, seed, accuracy, commit=None, dirty=False, timing=None):
    """A fabricated finished run folder (its metrics.json) that the default grid counts as finished."""
    plan = make_plan([model], [dataset], seed + 1, None, overrides(tmp_path), published=None)
    cell = next(c for c in plan.cells if c.seed == seed)
    metrics = {"model": model, "run_name": cell.cfg.name, "dataset": dataset, "seed": seed, "device": "cpu",
               "test": {"accuracy": accuracy, "macro_f1": accuracy - 1, "strict_accuracy": 40.0},
               "config": dict(cell.cfg.to_dict(), seed=seed)}
    if commit:
        metrics.update(commit=commit, dirty=dirty)
    if timing:
        metrics["timing"] = timing
    write_finished_run(cell.folder, metrics)


def write_results(folder, table3_rows=(), gpu_rows=()):
    """A results/ folder: ablations.csv, speed.csv, table2.md and optional Table 3 CSVs (earlier/, gpu/)."""
    (folder / "gpu").mkdir(parents=True)
    (folder / "earlier").mkdir(parents=True)
    (folder / "ablations.csv").write_text(
        ",".join(ABLATIONS_HEADER) + "\n"
        "head_lr,one rate,mams-atsa,0,78.44,78.29,abc1234,python main.py --mode train --set model.head_lr=null,CPU\n"
        "head_lr,head at 1e-3,mams-atsa,0 1,81.92 ± 1.64,81.41,def5678,python main.py --mode train,H200\n"
        "new_switch,on,mams-acsa,0,66.01,64.02,0badc0d,python main.py --mode train --set model.x=1,\n")
    (folder / "speed.csv").write_text(
        ",".join(SPEED_HEADER) + "\n"
        "2026-01-02,CPU 2 cores,feed123,\"CapsNet: MAMS-ATSA, 20 epochs, fit\",python main.py --mode train,"
        "134.2,s,seed 0\n")
    (folder / "table2.md").write_text("# Table 2\n\nwords\n\n| dataset | split |\n|---|---|\n| mams-atsa | train |\n")
    for path, rows in ((folder / "earlier" / "table3.csv", table3_rows), (folder / "gpu" / "table3.csv", gpu_rows)):
        if rows:
            path.write_text(TABLE3_HEADER + "\n" + "".join(r + "\n" for r in rows))


GPU_ROW = ("capsnet,CapsNet,mams-atsa,ATSA MAMS,ok,3,0 1 2,73.65,0.33,72.45,0.30,49.00,0.50,79.776,-6.13,"
           "glove-6b-50d,,cuda,cafe999")


def test_page_from_run_folders_shows_each_cell_seeds_commit_command_and_is_the_same_on_two_renders(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "results", gpu_rows=[GPU_ROW])
    write_run(tmp_path, "capsnet", "mams-atsa", 0, 71.25, commit="aaa1111")
    write_run(tmp_path, "capsnet", "mams-atsa", 1, 73.75, commit="aaa1111")
    write_run(tmp_path, "td-lstm", "mams-atsa", 0, 76.95, commit="bbb2222", dirty=True)
    first = render_page(user_plan(tmp_path), "results")
    second = render_page(user_plan(tmp_path), "results")
    assert first == second
    assert "- source: 3 run folder(s) of your own (paths.runs)" in first
    capsnet_row = next(line for line in first.splitlines() if line.startswith("| CapsNet |"))
    assert "72.50 ± 1.77 (79.776)" in capsnet_row          # mean ± sample std of 71.25 and 73.75
    assert "`python main.py --mode reproduce --models capsnet --seeds 2 --device cpu`" in capsnet_row
    td_row = next(line for line in first.splitlines() if line.startswith("| TD-LSTM |"))
    assert "76.95 (74.596) [seeds 0]" in td_row and "--models td-lstm --seeds 1" in td_row
    assert "- seeds: 0 1 in most cells" in first
    # the GPU table comes from its CSV, with its own seeds and commit
    assert "73.65 ± 0.33 (79.776)" in first and "- commit: cafe999" in first
    # ablations (a `what` without a title of its own gets a table too), speed, Table 2, claims, seeds plot
    for text in ("78.44", "81.92 ± 1.64", "abc1234", "def5678", "### new_switch",
                 "`python main.py --mode train --set model.head_lr=null`", "66.01", "134.2 s", "feed123",
                 "2026-01-02", "| mams-atsa | train |", "## Claims",
                 "| ATSA MAMS | CapsNet > best word-vector baseline (ours: TD-LSTM; paper: GCAE) |",
                 f"]({SEEDS_PLOT})"):
        assert text in first, text


def test_cells_from_different_commits_are_flagged_with_their_cells(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "results")
    write_run(tmp_path, "capsnet", "mams-atsa", 0, 71.0, commit="aaa1111")
    write_run(tmp_path, "td-lstm", "mams-atsa", 0, 76.0, commit="bbb2222", dirty=True)
    page = render_page(user_plan(tmp_path), "results")
    assert "**cells from different commits**" in page
    assert "  - aaa1111: CapsNet / ATSA MAMS" in page
    assert "  - bbb2222+dirty: TD-LSTM / ATSA MAMS" in page


def test_runs_of_one_commit_are_not_flagged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "results")
    write_run(tmp_path, "capsnet", "mams-atsa", 0, 71.0, commit="aaa1111")
    write_run(tmp_path, "td-lstm", "mams-atsa", 0, 76.0, commit="aaa1111")
    page = render_page(user_plan(tmp_path), "results")
    assert "different commits**" not in page and "- commit: aaa1111 (the runs' metrics.json)" in page


def test_training_time_sums_every_run_and_cpu_time_the_runs_that_record_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "results")
    write_run(tmp_path, "capsnet", "mams-atsa", 0, 71.0, timing={"wall_seconds": 3600.0, "cpu_seconds": 5400.0})
    write_run(tmp_path, "capsnet", "mams-atsa", 1, 72.0, timing={"wall_seconds": 1800.0})   # an older run
    page = render_page(user_plan(tmp_path), "results")
    assert "- training time: 1.5 h over 2 runs" in page
    assert "- CPU time: 1.5 h over 1 run(s) (those that record" in page
    write_run(tmp_path, "capsnet", "mams-atsa", 1, 72.0, timing={"wall_seconds": 1800.0, "cpu_seconds": 1800.0})
    assert "- CPU time: 2.0 h over 2 run(s) (those that record" in render_page(user_plan(tmp_path), "results")


def test_cells_without_a_run_come_from_the_earlier_csv_and_a_run_replaces_its_cell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    earlier = [("memnet,MemNet,mams-atsa,ATSA MAMS,ok,1,0,70.43,,69.52,,41.00,,64.568,5.86,glove-6b-50d,,cpu,"
                "1234abc"),
               ("capsnet,CapsNet,mams-atsa,ATSA MAMS,ok,1,0,73.58,,72.44,,41.00,,79.776,-6.2,glove-6b-50d,,cpu,"
                "1234abc")]
    write_results(tmp_path / "results", table3_rows=earlier, gpu_rows=[GPU_ROW])
    page = render_page(user_plan(tmp_path), "results")
    assert "- source: results/earlier/table3.csv" in page and "- source: results/gpu/table3.csv" in page
    assert "| MemNet | 70.43 (64.568) |" in page and "| CapsNet | 73.58 (79.776) |" in page
    write_run(tmp_path, "capsnet", "mams-atsa", 0, 71.0, commit="aaa1111")
    page = render_page(user_plan(tmp_path), "results")
    earlier_table = page.split("### Table 3, seed 0 at earlier commits (CPU)")[1].split("###")[0]
    assert "| MemNet | 70.43 (64.568) |" in earlier_table and "| CapsNet |" not in earlier_table
    assert "| CapsNet | 71.00 (79.776) |" in page.split("### Table 3, published runs\n")[1]


def test_a_results_csv_without_its_columns_is_one_user_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "results")
    (tmp_path / "results" / "speed.csv").write_text("date,device\n2026-01-01,cpu\n")
    with pytest.raises(UserError, match=r"results/speed\.csv: missing column\(s\) commit, what"):
        results_job("results", tmp_path / "page.md", 5, None, overrides(tmp_path), published=None)
    assert not (tmp_path / "page.md").exists()


def test_a_table3_csv_with_a_field_that_is_not_a_number_is_one_user_error_naming_file_and_line(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "results", gpu_rows=[GPU_ROW.replace("73.65", "n/a%")])
    with pytest.raises(UserError, match=r"results/gpu/table3\.csv: line 2: could not convert"):
        render_page(user_plan(tmp_path), "results")


def test_committed_results_page_equals_a_fresh_render_from_the_published_runs(tmp_path):
    # a fresh clone has no run folders: the page comes from the published runs and results/ alone
    plan = make_plan(None, None, 5, None, overrides(tmp_path), published=PUBLISHED_ROOT)
    page = render_page(plan, REPO_ROOT / "results")
    assert (REPO_ROOT / "docs" / "RESULTS.md").read_text(encoding="utf-8") == page, \
        "docs/RESULTS.md is stale: run python main.py --mode publish and commit it"


def test_mode_results_writes_the_users_page_and_seeds_plot_to_their_folder_and_leaves_docs_alone(tmp_path):
    before = (REPO_ROOT / "docs" / "RESULTS.md").read_bytes()
    command = [sys.executable, "main.py", "--mode", "results", "--results", str(tmp_path / "mine"),
               "--set", f"paths.runs={tmp_path / 'runs'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"results page written to {(tmp_path / 'mine' / 'RESULTS.md').as_posix()}")
    assert (tmp_path / "mine" / "RESULTS.md").read_bytes() == before     # no run folders: the published page
    assert (REPO_ROOT / "docs" / "RESULTS.md").read_bytes() == before
    if "## Claims" in before.decode("utf-8"):
        assert (tmp_path / "mine" / SEEDS_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mode_results_to_a_folder_it_cannot_write_is_one_error_line_and_exit_2(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    command = [sys.executable, "main.py", "--mode", "results", "--out", str(tmp_path / "file" / "RESULTS.md"),
               "--set", f"paths.runs={tmp_path / 'runs'}"]
    bad = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [f"error: --out {tmp_path / 'file'}: not a folder"]


def test_the_central_claim_sentence_gives_each_mams_verdict_or_says_it_was_not_tested():
    from train.experiments.claims import Claim, Report
    from train.experiments.results_page import central_claim
    names = {"capsnet-bert": ("CapsNet-BERT", {}), "bert": ("BERT", {})}
    tested = Claim("mams-acsa", "capsnet-bert", "bert", "bert", 1.17, "bert",
                   {"difference": 3.86, "ci95": (1.31, 6.46), "seeds": [0, 1, 2]}, holm_p=0.0138,
                   verdict="holds here")
    untested = Claim("mams-atsa", "capsnet-bert", "bert", "bert", 1.17, "bert", None, reason="no runs")
    text = central_claim(Report([untested, tested]), names)
    assert "(+1.17 points on both tasks in the paper)" in text
    assert "MAMS-ATSA: not tested (no runs)" in text
    assert "MAMS-ACSA: holds here, +3.86 points, 95% CI [+1.31, +6.46], Holm p = 0.0138, seeds 0 1 2" in text


def test_the_baseline_claim_sentence_counts_the_columns_of_each_verdict_and_names_them():
    from train.experiments.claims import BEST_BASELINE, Claim, Report
    from train.experiments.results_page import baseline_claim
    columns = {"mams-atsa": "ATSA MAMS", "mams-acsa": "ACSA MAMS", "restaurant-atsa": "ATSA Restaurant"}

    def claim(dataset, verdict, result=True):
        return Claim(dataset, "capsnet", "td-lstm", BEST_BASELINE, 2.0, "gcae",
                     {"difference": -1.0} if result else None, verdict=verdict)
    text = baseline_claim(Report([claim("mams-atsa", "reversed here"), claim("mams-acsa", "not significant here"),
                                  claim("restaurant-atsa", "no runs", result=False),
                                  Claim("mams-atsa", "capsnet", "capsnet-dr", "capsnet-dr")]), columns)
    assert "over 3 columns: holds on 0; reversed on 1 (ATSA MAMS); not significant on 1 (ACSA MAMS); " \
           "not tested on 1 (ATSA Restaurant)" in text
