"""Compose and check a run's configuration.

Sources, later ones winning key by key: configs/default.yaml, configs/models/<model>.yaml,
configs/datasets/<dataset>.yaml, an experiment file (--config), then --set KEY=VALUE. A model or
experiment file may hold `by_task: {atsa: {...}, acsa: {...}}`, merged in for the dataset's task.

The composed tree is checked before any work: an unknown key, a wrong type or a value outside its
choices or range is one UserError naming the file (or --set) that set it. The result is a RunConfig
of typed sections; each function receives the section it reads.
"""
import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from common.errors import UserError
from common.io import read_text
from common.schema import build, spec, to_dict
from data_process.config import DataConfig, PathsConfig
from data_process.user_dataset import check_trainable, inspect_folder
from src.models import get_model_class

from .kernels import CHOICES as KERNEL_CHOICES

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class TrainConfig:
    # counts have upper bounds that no experiment reaches and a typo (a few extra digits) exceeds
    epochs: int = spec(min=1, max=10_000)
    batch_size: int = spec(min=1, max=65_536)
    eval_batch_size: int = spec(min=1, max=65_536)
    lr: float = spec(above=0.0)
    weight_decay: float = spec(min=0.0)
    grad_clip: Optional[float] = spec(above=0.0)
    warmup_ratio: float = spec(min=0.0, max=1.0)
    max_steps: Optional[int] = spec(min=1, max=10**9)
    select_metric: str = spec(choices=("accuracy", "macro_f1", "loss"))
    eval_every_steps: Optional[int] = spec(min=1, max=10**9)
    bucket_by_length: bool
    bucket_chunk: int = spec(min=1, max=100_000)
    num_threads: Optional[int] = spec(min=1, max=1024)
    amp_bf16: bool                    # bf16 autocast on CUDA
    amp_bf16_cpu: bool                # bf16 autocast on the CPU (one with native bf16)
    kernels: str = spec(choices=KERNEL_CHOICES)   # fast substitutes (train/kernels.py) or the readable modules only
    cuda_graphs: bool                 # on CUDA, replay training steps from CUDA graphs where they allow it
    graph_width_multiple: int = spec(min=1, max=4096) # under CUDA graphs, batch widths round up to a multiple
    cuda_graph_limit: int = spec(min=1, max=10_000) # at most this many graphs (batch shapes) each for training
                                              # and validation; steps of further shapes run eagerly
    log_every: int = spec(min=1, max=10**9)
    tensorboard: bool                 # also write TensorBoard event files into the run folder


@dataclass(frozen=True)
class InferenceConfig:
    """How --mode predict, explain and serve run a trained model (not a setting of the run)."""
    bf16: bool                        # bf16 autocast on the CPU (where the CPU has native bf16)
    max_batch: int = spec(min=1, max=65_536)         # serve: aspects in one model call at most
    max_delay_ms: float = spec(min=0.0, max=1000.0)  # serve: how long a call that is not full waits
    turn: int = spec(min=1, max=65_536)              # serve: a request's aspects per turn


@dataclass(frozen=True)
class RunConfig:
    model_name: str                   # the registry name (--model)
    run_name: Optional[str]           # run folder name (default: the model name)
    paths: PathsConfig
    data: DataConfig
    train: TrainConfig
    model: Any                        # the model class's Config
    inference: InferenceConfig        # how the trained model runs; not part of the run (to_dict leaves it out)

    @property
    def name(self):
        return self.run_name or self.model_name

    def to_dict(self):
        """The run's settings as plain data (what checkpoints and metrics.json store, and the grid
        compares): every section but `inference`, which changes how a trained model runs, not the run."""
        tree = to_dict(self)
        tree.pop("inference")
        return tree

    def replace(self, **sections):
        return dataclasses.replace(self, **sections)


# Config keys that do not change a run's result, left out when a stored config is compared (the grid's
# "finished", a published run's match, a resume state's match): paths; train.num_threads; train.kernels
# picks between formulations that tests hold equal; data.max_words limits only predict / explain.
IGNORED_KEYS = (("paths",), ("train", "num_threads"), ("train", "kernels"), ("data", "max_words"))

# Settings added after runs were stored, each with the value that behaves as the code did before it
# existed: comparable() leaves such a key out while it holds that value, so the older runs still match.
ADDED_KEYS = {("train", "amp_bf16_cpu"): False}


def _parent(config, path):
    """The mapping of `config` (plain data) that holds the last key of `path`, or None."""
    for key in path[:-1]:
        config = config.get(key) if isinstance(config, dict) else None
    return config if isinstance(config, dict) else None


def with_added_keys(config):
    """A stored config (plain data) with the ADDED_KEYS it predates set to their earlier behaviour, so
    a checkpoint or shipped model trained before a setting existed loads as what it was."""
    config = json.loads(json.dumps(config))
    for path, value in ADDED_KEYS.items():
        parent = _parent(config, path)
        if parent is not None:
            parent.setdefault(path[-1], value)
    return config


def comparable(config):
    """A stored or composed config as plain JSON data, without the IGNORED_KEYS, and without the
    ADDED_KEYS that hold their earlier behaviour."""
    config = json.loads(json.dumps(config))
    for path in IGNORED_KEYS + tuple(ADDED_KEYS):
        parent = _parent(config, path)
        if parent is not None and path[-1] in parent:
            if path in ADDED_KEYS and parent[path[-1]] != ADDED_KEYS[path]:
                continue
            parent.pop(path[-1])
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing a key given twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice, line "
                                                        f"{key_node.start_mark.line + 1}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path):
    path = Path(path)
    text = read_text(path, "config file")   # UTF-8 with or without BOM, UTF-16 with BOM
    try:
        value = yaml.load(text, Loader=_UniqueKeyLoader) or {}   # a SafeLoader
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return value


SECTIONS = ("paths", "data", "train", "model", "inference")   # the top-level mappings; run_name is the one scalar


def merge(base, update, origins, source, prefix=""):
    """Recursive merge of `update` into a copy of `base`; records in `origins` the source of every key set."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if not prefix and key in SECTIONS and isinstance(value, dict) and key in out and not isinstance(out[key], dict):
            # a section set to a scalar earlier: the mistake is there, not in what adds keys to it
            raise UserError(f"{origins.get(dotted, 'config')}: section {key} is not a mapping (got {out[key]!r})")
        origins[dotted] = source
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, origins, source, dotted)
        else:
            out[key] = copy.deepcopy(value)
            if isinstance(value, dict):
                for sub in _dotted_keys(value, dotted):
                    origins[sub] = source
    return out


def _dotted_keys(tree, prefix):
    for key, value in tree.items():
        yield f"{prefix}.{key}"
        if isinstance(value, dict):
            yield from _dotted_keys(value, f"{prefix}.{key}")


def model_files(path):
    """[the file it extends (recursively), ..., path] for a model file with `extends: <model>`."""
    chain = [Path(path)]
    while True:
        parent = read_yaml(chain[0]).get("extends")
        if parent is None:
            return chain
        parent_file = CONFIG_ROOT / "models" / f"{parent}.yaml"
        if not isinstance(parent, str) or not parent_file.is_file() or parent_file in chain:
            raise UserError(f"{chain[0]}: extends {parent!r}, which is not another model's config")
        chain.insert(0, parent_file)


def available(kind):
    return sorted(p.stem for p in (CONFIG_ROOT / kind).glob("*.yaml"))


def _split_by_task(tree, source):
    """A file's tree without its `by_task` part, and that part ({task: tree})."""
    tree = dict(tree)
    by_task = tree.pop("by_task", None) or {}
    if not isinstance(by_task, dict) or any(k not in ("atsa", "acsa") or not isinstance(v, dict)
                                            for k, v in by_task.items()):
        raise UserError(f"{source}: by_task takes a mapping with keys atsa and/or acsa")
    return tree, by_task


def compose(model, dataset, experiment=None, overrides=()):
    """The checked RunConfig. `dataset` is a name from configs/datasets/ or a folder of the user's
    own data (train and test files, optionally val, as SemEval XML or JSON lines)."""
    user_folder = is_dataset_folder(dataset)
    for kind, name in (("models", model), ("datasets", dataset)):
        if not (kind == "datasets" and user_folder) and not (CONFIG_ROOT / kind / f"{name}.yaml").is_file():
            raise UserError(f"unknown {kind[:-1]} {name!r} (available: {', '.join(available(kind))}"
                            + ("; or a folder holding train and test files" if kind == "datasets" else "") + ")")
    origins = {}
    default_file = CONFIG_ROOT / "default.yaml"
    model_file = CONFIG_ROOT / "models" / f"{model}.yaml"
    tree = merge({}, read_yaml(default_file), origins, str(default_file))
    model_by_task = {}
    for path in model_files(model_file):   # a model file may extend another (capsnet-dr: capsnet)
        model_tree, by_task = _split_by_task(read_yaml(path), path)
        model_tree.pop("extends", None)
        tree = merge(tree, model_tree, origins, str(path))
        for task, part in by_task.items():
            model_by_task[task] = merge(model_by_task.get(task, {}), part, origins, str(path))
    if user_folder:
        tree = merge(tree, user_dataset_tree(dataset, overrides), origins, f"--dataset {dataset}")
    else:
        dataset_file = CONFIG_ROOT / "datasets" / f"{dataset}.yaml"
        tree = merge(tree, read_yaml(dataset_file), origins, str(dataset_file))
    task = (tree.get("data") or {}).get("task")
    tree = merge(tree, model_by_task.get(task, {}), origins, str(model_file))
    if experiment:
        experiment_tree, experiment_by_task = _split_by_task(read_yaml(experiment), experiment)
        tree = merge(tree, experiment_tree, origins, str(experiment))
        tree = merge(tree, experiment_by_task.get(task, {}), origins, str(experiment))
    for item in overrides:
        key, value = parse_override(item)
        tree = merge(tree, nest(key, value), origins, f"--set {item}")
    return from_tree(tree, model, origins)


def from_tree(tree, model, origins=None):
    """A RunConfig from a plain mapping (composed, or read back from a checkpoint)."""
    model_class = get_model_class(model)
    origins = origins or {}

    def origin(key):
        return origins.get(key, "config")

    tree = dict(tree)
    tree.pop("model_name", None)
    if "inference" not in tree:   # a stored config (checkpoints leave it out): the defaults
        tree["inference"] = read_yaml(CONFIG_ROOT / "default.yaml").get("inference")
    sections = dict(zip(SECTIONS, (PathsConfig, DataConfig, TrainConfig, model_class.Config, InferenceConfig)))
    unknown = [k for k in tree if k not in sections and k != "run_name"]
    if unknown:
        raise UserError(f"{origin(unknown[0])}: unknown top-level key {unknown[0]} "
                        f"(known: run_name, {', '.join(sections)})")
    built = {}
    for name, cls in sections.items():
        value = tree.get(name)
        if not isinstance(value, dict):
            raise UserError(f"{origin(name)}: section {name} missing or not a mapping")
        built[name] = build(cls, value, origin, name)
    for key, folder in dataclasses.asdict(built["paths"]).items():
        if not folder.strip():   # "" would be the current folder: the checkout, when run from there
            raise UserError(f"{origin('paths.' + key)}: paths.{key} is empty (it takes a folder)")
    run_name = tree.get("run_name")
    if run_name is not None and not isinstance(run_name, str):
        raise UserError(f"{origin('run_name')}: run_name is not a string (YAML read it as "
                        f"{type(run_name).__name__} {run_name!r}); quote the value")
    if run_name is not None and not run_name.strip():
        raise UserError(f"{origin('run_name')}: run_name is blank (leave it out for the model's name)")
    if run_name is not None:
        run_name = run_name.replace("{model}", model)   # one experiment file, a run name per model
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*", run_name) or ".." in run_name:
            raise UserError(f"{origin('run_name')}: run_name={run_name!r} is not a plain folder name "
                            f"(letters, digits and _ . + = -, no path)")
    cfg = RunConfig(model_name=model, run_name=run_name, **built)
    if cfg.data.task not in model_class.tasks:
        raise UserError(f"model {model!r} does not support the {cfg.data.task.upper()} task "
                        f"(it supports: {', '.join(t.upper() for t in model_class.tasks)})")
    return cfg


def is_dataset_folder(dataset):
    """A --dataset that names a folder (not a registered dataset name)."""
    return not (CONFIG_ROOT / "datasets" / f"{dataset}.yaml").is_file() and ("/" in dataset or Path(dataset).is_dir())


def user_dataset_tree(folder, overrides):
    """The data section for a user's dataset folder; data.task from --set chooses when its files hold both tasks."""
    task = None
    for item in overrides:
        key, value = parse_override(item)
        if key == "data.task":
            task = value
    found = check_trainable(inspect_folder(folder, task))
    return {"data": {"name": dataset_identity(found.folder), "folder": str(found.folder.resolve()),
                     "task": found.task, "splits": list(found.files), "categories": found.categories,
                     "file_format": found.format}}


def dataset_identity(folder):
    """The dataset name of a user's folder: user-<folder name>-<8 hex digits of its resolved path>,
    so that two folders with the same base name never share run folders or processed data, and
    every mode given the same folder (by any relative or absolute spelling) finds the same runs."""
    resolved = Path(folder).resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", resolved.name).strip("-.") or "data"
    return f"user-{readable}-{digest}"


def parse_override(item):
    """'a.b.c=value' -> ('a.b.c', value parsed as YAML: numbers, booleans, null, lists)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=1")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def nest(dotted, value):
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out
