"""The commit a run records: git's HEAD in a checkout, $ABSA_CODE_COMMIT in a copy without .git."""
from train import code_version as cv


def test_a_copy_without_git_records_the_declared_commit(monkeypatch):
    monkeypatch.setattr(cv, "_git", lambda *args: None)   # no git checkout around the code
    monkeypatch.setenv("ABSA_CODE_COMMIT", "0123abc")
    assert cv.code_version() == {"commit": "0123abc", "dirty": False}
    monkeypatch.delenv("ABSA_CODE_COMMIT")
    assert cv.code_version() == {"commit": None, "dirty": False}


def test_a_checkout_records_head_whatever_the_variable_says(monkeypatch):
    answers = {"rev-parse": "feedbeef\n", "status": ""}
    monkeypatch.setattr(cv, "_git", lambda *args: answers[args[0]])
    monkeypatch.setenv("ABSA_CODE_COMMIT", "0123abc")
    assert cv.code_version() == {"commit": "feedbeef", "dirty": False}


def test_changed_published_tables_do_not_make_the_code_dirty_but_a_changed_code_file_does(tmp_path, monkeypatch):
    import subprocess
    for name in ("results/table3.md", "docs/RESULTS.md", "docs/USAGE.md", "src/model.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("committed\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(git + command, cwd=tmp_path, check=True, capture_output=True)
    monkeypatch.setattr(cv, "REPO_ROOT", tmp_path)
    (tmp_path / "results/table3.md").write_text("a grid's table\n")      # what the grid's commands write
    (tmp_path / "docs/RESULTS.md").write_text("a regenerated page\n")
    assert cv.code_version()["dirty"] is False
    (tmp_path / "docs/USAGE.md").write_text("edited\n")
    assert cv.code_version()["dirty"] is True
    subprocess.run(["git", "checkout", "-q", "docs/USAGE.md"], cwd=tmp_path, check=True)
    (tmp_path / "src/model.py").write_text("edited\n")
    assert cv.code_version()["dirty"] is True
