"""Every command of README.md works as written: each fenced command is either run here, in README
order, in a fresh clone of the checkout (with small-run settings appended so the suite stays short),
or named as covered by another check (CI's install and test steps, the own-data example's own test).
Following the README leaves the clone's tracked files as they were: a user's outputs go where git
ignores them."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, checkout_copy, find_raw_data, git_status, json_lines, ok

README = REPO_ROOT / "README.md"
# Appended to every `python main.py` command here: a short run, the same for every command so that the
# grid's config matching between reproduce and compare holds.
SMALL_RUN = ["--set", "train.epochs=1", "--set", "data.limit=200"]
# Commands checked elsewhere: what checks them.
COVERED = {
    "pip install -r requirements.txt": ".ci/run installs exactly this",
    "python -m pytest": ".ci/run runs exactly this",
}
OWN_DATA_TEST = REPO_ROOT / "tests" / "test_reliability.py"


def fenced_blocks(language):
    """(heading, body) of each ```language block of README.md, the heading being the section's."""
    text = README.read_text(encoding="utf-8")
    blocks, heading = [], None
    for match in re.finditer(r"^(#+ [^\n]*)$|^```" + language + r"\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            blocks.append((heading, match.group(2)))
    return blocks


def commands(body):
    """The shell commands of a block: comments dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


def readme_commands():
    """The `bash` blocks' commands outside the own-data section (which has its own test)."""
    return [c for heading, body in fenced_blocks("bash") if heading != "Your own data" for c in commands(body)]


def test_every_readme_command_is_run_here_or_named_as_covered():
    assert len(readme_commands()) >= 5 and len(fenced_blocks("python")) == 1   # the parser finds them
    assert "def test_the_readmes_own_data_example_works_as_written" in OWN_DATA_TEST.read_text(encoding="utf-8")
    for command in readme_commands():
        assert command in COVERED or command.startswith("python main.py "), command


@pytest.mark.slow
def test_the_readme_commands_work_as_written(tmp_path):
    root = find_raw_data()
    if root is None:
        pytest.skip("no raw data: set ABSA_DATA_ROOT, or put it under data/raw or ../shared/data")
    env = dict(os.environ, ABSA_DATA_ROOT=str(root))
    clone = checkout_copy(tmp_path / "clone")
    outputs = {}
    for command in readme_commands():
        if command in COVERED:
            continue
        args = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', command)][2:] + SMALL_RUN
        result = subprocess.run([sys.executable, "main.py", *args], cwd=clone, env=env,
                                capture_output=True, text=True, timeout=900)
        outputs[args[1]] = json_lines(ok(result).stdout)
    assert {"accuracy", "macro_f1"} <= set(outputs["train"][-1])
    assert [r["aspect"] for r in outputs["predict"]] == ["decor", "food"]
    assert [r["aspect"] for r in outputs["explain"]] == ["decor", "food"]
    assert all(r["weights"] for r in outputs["explain"])
    mine = clone / "runs" / "results"
    assert (mine / "table3.md").is_file() and (mine / "claims.md").is_file() and (mine / "RESULTS.md").is_file()
    last = outputs["compare"][-1]
    assert (last["dataset"], last["a"], last["b"]) == ("mams-atsa", "capsnet", "capsnet-dr")
    assert last["seeds"] == [0, 1, 2] and 0.0 <= last["p_value"] <= 1.0

    # The README's Python block, in the same folder (its run folder is the training command's).
    [(_, python)] = fenced_blocks("python")
    lines = python.rstrip().splitlines()
    assert lines[-1].startswith("clf.predict(")
    script = "\n".join(lines[:-1] + [f"import json; print(json.dumps({lines[-1]}))"])
    result = subprocess.run([sys.executable, "-c", script], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["aspect"] for r in records] == ["food", "service"]
    assert git_status(clone) == []             # nothing the project publishes was rewritten
