"""Imports run one way, and no module imports itself back.

Between packages: main -> train -> src -> data_process -> common (common imports no package of the
project); inside train/: experiments -> inference -> the loop. Across every module of the project
(inside a package too): no import cycle, counting imports made inside functions. The readable
modules never import the fast substitutes. All checked on the source, so a new import that breaks
a rule fails here."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["train", "src", "data_process", "common"]  # a package may import only those after it
PROJECT_FOLDERS = ORDER + ["benchmarks", "tests"]


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


def test_train_rooms_import_one_way():
    """train/ (the loop) <- train/inference <- train/experiments: the loop never imports inference or
    experiments, inference never imports experiments."""
    graph = import_graph(ROOT)
    for module, imported in graph.items():
        if module.split(".")[0] != "train":
            continue
        allowed = ROOMS[ROOMS.index(room_of(module)):]
        upward = {m for m in imported if m.split(".")[0] == "train" and room_of(m) not in allowed}
        assert not upward, f"{module} ({room_of(module)}) imports {sorted(upward)}"


# --- the module graph ------------------------------------------------------------------------------

def module_files(root, folders=PROJECT_FOLDERS):
    """{dotted module name: path} of the .py files under `folders` of `root`, and root's own .py files
    (main.py); a package's __init__.py is the package."""
    paths = sorted(root.glob("*.py")) + [p for folder in folders for p in sorted((root / folder).rglob("*.py"))]
    modules = {}
    for path in paths:
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(name, path, modules):
    """The modules of `modules` that the module `name` (at `path`) imports, wherever in the file
    (inside functions too): `from X import n` counts X.n where that is a module, else X."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known(dotted):           # the module itself, else its nearest enclosing project module
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from filter(None, (known(alias.name) for alias in node.names))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                target = known(f"{source}.{alias.name}") if f"{source}.{alias.name}" in modules else known(source)
                if target:
                    yield target


def import_graph(root):
    """{module: set of the project modules it imports} for the project under `root`."""
    modules = module_files(root)
    return {name: set(imported_modules(name, path, modules)) - {name} for name, path in modules.items()}


def cycles(graph):
    """The import cycles of `graph`: each a sorted list of the modules that import one another
    (the strongly connected components of more than one module; Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_of_the_project_imports_itself_back():
    assert cycles(import_graph(ROOT)) == []


def write_modules(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_cycle_check_finds_a_cycle_through_a_package_and_one_behind_a_lazy_import(tmp_path):
    """The two shapes a cycle took here: a module importing a package whose module imports it back
    (layers -> kernels/ -> layers), and two modules importing each other, one of them inside a
    function (grid -> grid_ray -> grid); plain imports of a package's own modules are no cycle."""
    write_modules(tmp_path, {
        "src/__init__.py": "",
        "src/layers.py": "from . import kernels\n",
        "src/kernels/__init__.py": "from .head import fast_head\n",
        "src/kernels/head.py": "from .. import layers\n",
        "src/models/__init__.py": "from . import capsnet\n",
        "src/models/capsnet.py": "from .base import Model\nfrom ..layers import squash\n",
        "src/models/base.py": "import torch\n",
        "train/__init__.py": "",
        "train/grid.py": "def reproduce():\n    from .grid_ray import run_ray\n",
        "train/grid_ray.py": "from train.grid import run_pool\n",
    })
    assert cycles(import_graph(tmp_path)) == [["src.kernels", "src.kernels.head", "src.layers"],
                                              ["train.grid", "train.grid_ray"]]


READABLE = ["src.layers", "src.blocks", "src.models"]   # the modules a reader reads as the paper


def test_the_readable_modules_import_no_fast_substitute():
    """src/layers.py, src/blocks.py and src/models/ compute the paper's equations as written; the fast
    substitutes (src/kernels/) are swapped in from outside them (train/kernels.py)."""
    for module, imported in import_graph(ROOT).items():
        if any(module == r or module.startswith(r + ".") for r in READABLE):
            fast = sorted(m for m in imported if m == "src.kernels" or m.startswith("src.kernels."))
            assert not fast, f"{module} imports {fast}"
