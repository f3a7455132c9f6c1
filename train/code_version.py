"""The version of the code a run was trained with, for its metrics.json: the git commit and whether
tracked files had uncommitted changes (the results page shows both).

A copy of a checkout without its .git folder (a compute node that was sent the files alone) can
declare its commit with the environment variable ABSA_CODE_COMMIT; whoever sets it vouches that the
files are that commit's, unchanged (for example by checking their SHA-256 against `git ls-files`)."""
import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _git(*args):
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


# Tracked files that the project's own commands write (the published tables and page): a change to
# them does not change what a run computes, so it does not make the code "dirty".
OUTPUTS = ("results", "docs/RESULTS.md")


def code_version():
    """{"commit": the HEAD commit (outside a git checkout: $ABSA_CODE_COMMIT, else None),
    "dirty": uncommitted changes to tracked files other than the OUTPUTS}."""
    commit = _git("rev-parse", "HEAD")
    if not commit or not commit.strip():
        return {"commit": os.environ.get("ABSA_CODE_COMMIT") or None, "dirty": False}
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  *(f":(exclude){path}" for path in OUTPUTS))
    return {"commit": commit.strip(), "dirty": bool(status and status.strip())}
