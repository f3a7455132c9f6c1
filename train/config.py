"""Compose a run's configuration: default.yaml + models/<model>.yaml + datasets/<dataset>.yaml
(+ an experiment file) + --set KEY=VALUE overrides, later ones winning key by key.

A model file may hold `by_task: {atsa: {...}, acsa: {...}}`, merged in for the dataset's task.
"""
import copy
from pathlib import Path

import yaml

from src.errors import UserError

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


def read_yaml(path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return value


def merge(base, update):
    """Recursive dict merge; returns a new dict."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def available(kind):
    return sorted(p.stem for p in (CONFIG_ROOT / kind).glob("*.yaml"))


def compose(model, dataset, experiment=None, overrides=()):
    for kind, name in (("models", model), ("datasets", dataset)):
        if not (CONFIG_ROOT / kind / f"{name}.yaml").is_file():
            raise UserError(f"unknown {kind[:-1]} {name!r} (available: {', '.join(available(kind))})")
    cfg = read_yaml(CONFIG_ROOT / "default.yaml")
    model_cfg = read_yaml(CONFIG_ROOT / "models" / f"{model}.yaml")
    by_task = model_cfg.pop("by_task", {}) or {}
    cfg = merge(cfg, model_cfg)
    cfg = merge(cfg, read_yaml(CONFIG_ROOT / "datasets" / f"{dataset}.yaml"))
    cfg = merge(cfg, by_task.get(cfg["data"]["task"], {}))
    if experiment:
        experiment_cfg = read_yaml(experiment)
        experiment_by_task = experiment_cfg.pop("by_task", {}) or {}
        cfg = merge(cfg, experiment_cfg)
        cfg = merge(cfg, experiment_by_task.get(cfg["data"]["task"], {}))
    for item in overrides:
        set_key(cfg, item)
    cfg["model"]["name"] = model
    return cfg


def set_key(cfg, item):
    """Apply one 'a.b.c=value' override; the value is parsed as YAML (numbers, null, lists)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=1")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise UserError(f"--set {item!r}: no config section {part!r}")
        node = node[part]
    if leaf not in node:
        raise UserError(f"--set {item!r}: unknown key {key!r} (known in this section: "
                        f"{', '.join(sorted(node))})")
    current = node[leaf]
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise UserError(f"--set {item!r}: {key} takes true or false")
    elif isinstance(current, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads "1e-3" as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"--set {item!r}: {key} takes a number")
        if isinstance(current, int) and isinstance(value, float):
            if not value.is_integer():
                raise UserError(f"--set {item!r}: {key} takes a whole number")
            value = int(value)
    node[leaf] = value
