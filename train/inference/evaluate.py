"""`--mode test`: a checkpoint on its dataset's processed test split; and loading a checkpoint's
classifier for predict and explain."""
import dataclasses
import json
from collections import namedtuple
from pathlib import Path

from common.errors import UserError
from src.dataset import make_eval_loader

from ..checkpoint import check_fingerprints
from ..data import PreparedData
from ..run import datasets, model_inputs, summary_line
from ..run_folder import finished_checkpoint, make_logger, run_dir
from ..runtime import pick_device, training_bf16
from ..trainer import evaluate
from .api import SentimentClassifier


def model_to_use(cfg, seed, checkpoint=None, say=None):
    """The checkpoint (or pretrained folder) predict, explain and serve answer with: --checkpoint when
    given; else the run folder's checkpoint; else, when there is no run folder, the model shipped in
    pretrained/ for this model and dataset, announced through `say` (stderr by default)."""
    import sys

    from .pretrained import shipped_folder
    if checkpoint:
        return Path(checkpoint)
    folder = run_dir(cfg, seed)
    if not folder.exists():
        shipped = shipped_folder(cfg.name, cfg.data.name)
        if shipped is not None:
            name = shipped.relative_to(shipped.parents[1])
            (say or (lambda text: print(text, file=sys.stderr)))(
                f"no trained run at {folder}: answering with the shipped model {name} (its card: {name / 'README.md'})")
            return shipped
    return finished_checkpoint(folder)


def export_job(cfg, seed, checkpoint, out, device="cpu", overwrite=False):
    """--mode export: a run's checkpoint (the run folder's, or --checkpoint) as a pretrained folder;
    the card's numbers come from the metrics.json beside the checkpoint, when there is one. A pretrained
    folder at `out` is replaced only with `overwrite` (--overwrite)."""
    from common.io import read_json_object
    path = Path(checkpoint) if checkpoint else finished_checkpoint(run_dir(cfg, seed))
    clf = load_classifier(path, device)
    metrics_file = path.parent / "metrics.json"
    metrics = read_json_object(metrics_file, "metrics file") if metrics_file.is_file() else None
    command = None
    if metrics and not checkpoint:
        command = (f"python main.py --mode train --model {clf.cfg.model_name} --dataset {clf.cfg.data.name} "
                   f"--seed {clf.seed}")
    folder = clf.save_pretrained(out, metrics, command, overwrite)
    return f"exported {path} to {folder} (model.safetensors, config.json, encoder.json, README.md)"


def load_classifier(checkpoint, device, dataset=None, bf16=False):
    """The SentimentClassifier of a checkpoint (self-contained: no data is read); `dataset` (a
    composed data.name, e.g. user-reviews-1a2b3c4d for a folder), when given, must be the one it
    was trained on; bf16: inference.bf16."""
    clf = SentimentClassifier.load(checkpoint, device, bf16)
    if dataset is not None and clf.cfg.data.name != dataset:
        raise UserError(f"{checkpoint}: checkpoint was trained on {clf.cfg.data.name}, not {dataset}")
    return clf


# The --set keys that change how a trained model answers, not what it learned: predict, explain and
# serve take the caller's value for these (the checkpoint's otherwise). The caller's inference.*,
# paths.* and run_name are read where they apply (main.py).
ANSWER_KEYS = (("data", "max_words"), ("train", "eval_batch_size"), ("train", "kernels"), ("train", "num_threads"))
CALLER_SECTIONS = ("inference", "paths", "run_name")
_ABSENT = object()


def answer_settings(clf, cfg, overrides):
    """clf answering with the ANSWER_KEYS given by `overrides` (the --set items; `cfg`: the config
    composed with them). Any other key set to a value other than the checkpoint's is refused rather
    than ignored: the checkpoint's settings are the model it holds."""
    from ..config import parse_override
    from ..runtime import set_threads
    trained, asked = clf.cfg.to_dict(), cfg.to_dict()
    chosen = {}
    for item in overrides:
        key = parse_override(item)[0]
        path = tuple(key.split("."))
        if path[0] in CALLER_SECTIONS:
            continue
        if path in ANSWER_KEYS:
            chosen[path] = _lookup(asked, path)
            continue
        value = _lookup(trained, path)
        if _lookup(asked, path) != value:
            had = "has no such setting" if value is _ABSENT else f"was trained with {key}={json.dumps(value)}"
            raise UserError(f"--set {key}: {clf.checkpoint} {had}; predict, explain and serve answer with the "
                            f"checkpoint's own settings (only {', '.join('.'.join(k) for k in ANSWER_KEYS)}, "
                            f"inference.* and paths.* apply)")
    if not chosen:
        return clf
    new = clf.cfg
    for (section, name), value in chosen.items():
        new = new.replace(**{section: dataclasses.replace(getattr(new, section), **{name: value})})
    set_threads(new.train.num_threads)
    return clf.reconfigured(new)


def _lookup(tree, path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return _ABSENT
        tree = tree[key]
    return tree


Loaded = namedtuple("Loaded", "model data cfg seed")


def load_for_inference(cfg, checkpoint, device, log=print):
    """Loaded(model, prepared data, checkpoint RunConfig, trained seed) for a checkpoint, with the
    processed data of its dataset (--mode test), checked against the checkpoint's vocabulary; the
    caller's paths and data limit apply."""
    clf = load_classifier(checkpoint, device, cfg.data.name)
    ckpt_cfg = clf.with_paths(cfg.paths, cfg.data.limit)
    data = PreparedData(ckpt_cfg.data, ckpt_cfg.paths, model_inputs(ckpt_cfg), log=log)
    check_fingerprints(checkpoint, clf.fingerprints, data.fingerprints())
    return Loaded(clf.model, data, ckpt_cfg, clf.seed)


def test_job(cfg, seed, device_name="auto", checkpoint=None):
    device = pick_device(device_name)
    checkpoint = Path(checkpoint) if checkpoint else finished_checkpoint(run_dir(cfg, seed))
    log = make_logger().info
    model, data, ckpt_cfg, trained_seed = load_for_inference(cfg, checkpoint, device, log)
    test_set = datasets(data, ckpt_cfg, model.input_fields(), ("test",), device)["test"]
    loader = make_eval_loader(test_set, cfg.train.eval_batch_size)
    test = evaluate(model, loader, device, training_bf16(ckpt_cfg.train, device))
    log(f"{checkpoint}: test on {len(test_set)} instances")
    for name, scores in test["per_class"].items():
        log(f"  {name:9s} P {scores['precision']:6.2f}  R {scores['recall']:6.2f}  F1 {scores['f1']:6.2f}  "
            f"n={scores['support']}")
    trained = seed if trained_seed is None else trained_seed
    return dict(summary_line(test, ckpt_cfg, trained), checkpoint=str(checkpoint),
                per_class=test["per_class"], confusion=test["confusion"])
