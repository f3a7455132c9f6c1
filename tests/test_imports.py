"""Imports run one way: main -> train -> src -> data_process -> common (common imports no package
of the project). Checked on the source, so a new module that imports upwards fails here."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["train", "src", "data_process", "common"]  # a package may import only those after it


def project_imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("package", ORDER)
def test_package_imports_only_packages_below_it(package):
    allowed = set(ORDER[ORDER.index(package):])
    for path in sorted((ROOT / package).rglob("*.py")):
        upward = {name for name in project_imports(path) if name in ORDER and name not in allowed}
        assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)} (order: {' -> '.join(ORDER)})"


ROOMS = ["train.experiments", "train.inference", "train"]  # inside train/: a room imports only rooms after it


def room_of(module):
    return next(room for room in ROOMS if module == room or module.startswith(room + "."))


def train_imports(path):
    """The absolute train.* modules that the file at `path` (under train/) imports."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("train"):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("train"))


def test_train_rooms_import_one_way():
    """train/ (the loop) <- train/inference <- train/experiments: the loop never imports inference or
    experiments, inference never imports experiments."""
    for path in sorted((ROOT / "train").rglob("*.py")):
        room = room_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        allowed = ROOMS[ROOMS.index(room):]
        upward = {m for m in train_imports(path) if room_of(m) not in allowed}
        assert not upward, f"{path.relative_to(ROOT)} ({room}) imports {sorted(upward)}"
