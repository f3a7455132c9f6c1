"""The documentation is true, and says nothing about how the work was organised.

Every repository file or folder that README.md and docs/*.md name exists (a `module.name` after a
file names something defined in it; placeholders <name>, * and {a,b} must match at least one
file), and every command they show runs as written: `python main.py ...` parses with main.py's own
parser and its `--set` keys are config keys, a benchmark script takes every option given to it,
`python -m` names an importable module and `pip install -r` an existing file. docs/RESULTS.md is
generated from results/ (python main.py --mode results), so its paths are checked too (a stale one
is fixed in results/*.csv); its commands are records of what ran at a given commit, so their
options are not. Paths that name a user's output (runs/..., data/..., /tmp/...) are not repository
files and are not checked."""
import fnmatch
import importlib.util
import itertools
import re
import shlex
import subprocess

import pytest

from conftest import REPO_ROOT

DOCS = [REPO_ROOT / "README.md"] + sorted((REPO_ROOT / "docs").glob("*.md"))
GENERATED = REPO_ROOT / "docs" / "RESULTS.md"


def tracked_files():
    """The repository's files (git's index): what a fresh checkout holds."""
    out = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


TRACKED = tracked_files()
TOP_LEVEL = {name.split("/")[0] for name in TRACKED}
# a path-like word: not inside another path (an absolute path, a URL) and not inside a word
PART = r"(?:[\w.-]|<[\w-]+>|\*|\{[\w.,-]+\})+"
PATH = re.compile(rf"(?<![\w/.:~$<>{{}}*-])({PART}(?:/{PART})*/?)")
# Files the docs name as what a command writes into a repository folder, and the module that writes
# each (which must name it): outputs, not files of a checkout.
OUTPUTS = {"results/table3_seeds.png": "train/experiments/claims.py"}


def named_paths(text):
    """The repository paths a Markdown text names: words whose first part is a top-level file or
    folder of the repository and that are a path (hold a /) or, in code, a top-level file."""
    code = " ".join(re.findall(r"`([^`\n]+)`", text) + re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M))
    for source, whole in ((text, False), (code, True)):
        for match in PATH.finditer(source):
            word = match.group(1).rstrip(".,:;")
            if word.split("/")[0] in TOP_LEVEL and ("/" in word or (whole and word in TRACKED)):
                yield word


def expansions(pattern):
    """{a,b} expanded: results/table3.{md,csv} -> results/table3.md, results/table3.csv."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[part] if k % 2 == 0 else part.split(",") for k, part in enumerate(parts)]
    return ["".join(combination) for combination in itertools.product(*choices)]


def exists(path):
    """Whether `path` (a file, a folder ending in / or not, a glob with <name> or *, or file.name
    for a name defined in a Python file) names something in the repository."""
    folder = path.rstrip("/")
    for candidate in expansions(folder):
        glob = re.sub(r"<[\w-]+>", "*", candidate)
        if candidate in TRACKED or any(name.startswith(candidate + "/") for name in TRACKED):
            continue
        if any(ch in glob for ch in "*?") and any(fnmatch.fnmatch(name, glob) for name in TRACKED):
            continue
        module, _, attribute = candidate.rpartition(".")
        source = REPO_ROOT / f"{module}.py"
        if module and f"{module}.py" in TRACKED and re.search(
                rf"^\s*(def |class )?{re.escape(attribute)}\b", source.read_text(encoding="utf-8"), re.M):
            continue
        return False
    return True


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_repository_path_the_docs_name_exists(doc):
    missing = sorted({path for path in named_paths(doc.read_text(encoding="utf-8"))
                      if not exists(path) and path not in OUTPUTS})
    where = " (fix the row in results/*.csv, then python main.py --mode results)" if doc == GENERATED else ""
    assert not missing, f"{doc.relative_to(REPO_ROOT)} names what the repository does not hold{where}: {missing}"


def test_the_outputs_the_docs_name_are_written_by_the_module_named_for_them():
    for output, writer in OUTPUTS.items():
        assert output.rpartition("/")[2] in (REPO_ROOT / writer).read_text(encoding="utf-8"), (output, writer)


def test_the_path_check_finds_a_missing_file_and_accepts_placeholders_and_defined_names():
    assert set(named_paths("see `src/dropout.py`, docs/NOPE.md and `main.py`; runs/x is output")) == \
        {"docs/NOPE.md", "src/dropout.py", "main.py"}
    assert not exists("src/dropout.py") and not exists("docs/NOPE.md")
    assert exists("configs/models/<name>.yaml") and exists("results/table3.{md,csv,tex,png}")
    assert exists("src/layers.DynamicRouting") and not exists("src/layers.NoSuchRouting")


# --- commands ---------------------------------------------------------------------------------------

def shown_commands(text):
    """The commands a Markdown text shows: the lines of its bash blocks and its `python ...` /
    `pip ...` code spans, comments dropped, backslash continuations joined, [optional parts] kept
    without their brackets."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)
    lines = [line for block in blocks for line in re.sub(r"\\\n\s*", " ", block).splitlines()]
    lines += re.findall(r"`((?:python|pip) [^`\n]+)`", text)
    commands = []
    for line in lines:
        command = line.split("  #")[0].strip()
        if command.startswith(("python ", "pip ")):
            commands.append(re.sub(r"\[([^\]]*)\]", r"\1", command))
    return commands


def config_keys(tree, prefix=""):
    for key, value in tree.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from config_keys(value, f"{prefix}{key}.")


def check_main_command(args):
    """main.py's parser accepts `args`, and each --set KEY names a key of the composed config."""
    import main
    from train.config import compose
    parsed = main.parse_args(args)
    models = parsed.models.split(",") if parsed.models else [parsed.model]
    keys = {key for model in models for key in config_keys(compose(model, "mams-atsa", None, []).to_dict())}
    unknown = [o.split("=")[0] for o in parsed.overrides if o.split("=")[0] not in keys]
    assert not unknown, f"--set of unknown config keys {unknown}"


def check_command(command):
    words = shlex.split(command)
    if words[:2] == ["python", "main.py"]:
        if "MODE" not in words:                        # the synopsis: python main.py --mode MODE [options]
            check_main_command(words[2:])
    elif words[:2] == ["python", "-m"]:
        assert words[2] == "pytest" or importlib.util.find_spec(words[2]) is not None, f"no module {words[2]}"
    elif words[0] == "python":
        script = words[1]
        assert script in TRACKED, f"no script {script}"
        source = (REPO_ROOT / script).read_text(encoding="utf-8")
        options = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
        assert all(f'"{o}"' in source for o in options), f"{script} does not take {options}"
    else:
        assert words[:3] == ["pip", "install", "-r"] and words[3] in TRACKED, command


WRITTEN = [doc for doc in DOCS if doc != GENERATED]
COMMANDS = [(doc.name, command) for doc in WRITTEN for command in shown_commands(doc.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("doc,command", COMMANDS)
def test_every_command_the_docs_show_runs_as_written(doc, command):
    check_command(command)


def test_the_command_check_refuses_a_missing_script_an_unknown_option_and_an_unknown_config_key():
    assert len(COMMANDS) >= 30 and any(c.startswith("python benchmarks/") for _, c in COMMANDS)
    for wrong in ("python benchmarks/dropout_step.py", "python benchmarks/train_speed.py --no-such-option",
                  "python main.py --mode train --set train.no_such_key=1"):
        with pytest.raises(AssertionError):
            check_command(wrong)
    from common.errors import UserError
    with pytest.raises(UserError):
        check_command("python main.py --mode nonsense")


# --- words ------------------------------------------------------------------------------------------

# How the work was organised is no reader's business. Built from pieces so this file does not match itself.
FORBIDDEN = re.compile("|".join(["sess" + "ion of", "this sess" + "ion", "within the sess" + "ion",
                                 "iss" + r"ue [0-9]", "device mach" + "ine", "development mach" + "ine",
                                 "time is sc" + "arce", r"\ble" + r"nt (device|GPU|machine)"]), re.IGNORECASE)


def test_no_tracked_file_speaks_of_how_the_work_was_organised():
    hits = []
    for name in sorted(TRACKED):
        path = REPO_ROOT / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        hits += [f"{name}: {m.group(0)}" for m in FORBIDDEN.finditer(text)]
    assert not hits, hits
