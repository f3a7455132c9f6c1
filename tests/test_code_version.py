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
