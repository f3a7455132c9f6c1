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
