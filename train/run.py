"""The jobs behind main.py's modes: train, test and explain (predict and explain classify through
train/api.py's SentimentClassifier; request reading lives in predict.py)."""
import json
import re
import time
from collections import namedtuple
from pathlib import Path

import torch

from common.errors import UserError
from common.io import write_json
from src.dataset import ABSADataset, make_eval_loader, make_loader
from src.models import build_model, get_model_class

from . import cuda_graphs
from .api import SentimentClassifier
from .checkpoint import check_fingerprints, load_checkpoint, save_checkpoint
from .data import PreparedData
from .metrics import strict_accuracy
from .plots import plot_confusion, plot_curves, plot_explanation
from .predictions import test_predictions, write_predictions
from .run_folder import attach_log_file, make_logger, run_dir
from .runtime import peak_memory_mib, pick_device, set_seed, set_threads
from .trainer import evaluate, fit


def model_inputs(cfg):
    """The InputSpec of the run's model for its task."""
    return get_model_class(cfg.model_name).inputs(cfg.model, cfg.data.task)


def datasets(data, cfg, fields, splits, device):
    """The splits' ABSADatasets, held on `device` (batches are cut there)."""
    return {s: ABSADataset(data.split(s), fields, cfg.data.limit).to(device) for s in splits}


def make_train_loader(dataset, tcfg, seed, graphed=False):
    """The shuffled training loader, bucketed by length when train.bucket_by_length is set; under
    CUDA graphs (`graphed`) its batch widths round up to a multiple of train.graph_width_multiple."""
    return make_loader(dataset, tcfg.batch_size, shuffle=True, seed=seed,
                       bucket_chunk=tcfg.bucket_chunk if tcfg.bucket_by_length else None,
                       width_multiple=tcfg.graph_width_multiple if graphed else 1)


def train_job(cfg, seed, device_name="auto"):
    """Train one seed; test the validation-selected checkpoint; write the run folder. Returns test metrics."""
    set_threads(cfg.train.num_threads)
    out = run_dir(cfg, seed)
    logger = make_logger()
    log = logger.info
    device = pick_device(device_name)
    prep_start = time.perf_counter()
    data = PreparedData(cfg.data, cfg.paths, model_inputs(cfg), log=log)
    prep_seconds = time.perf_counter() - prep_start

    set_seed(seed)
    model = build_model(cfg.model_name, cfg.model, data.info()).to(device)
    sets = datasets(data, cfg, model.input_fields(), ("train", "val", "test"), device)
    tcfg = cfg.train
    train_loader = make_train_loader(sets["train"], tcfg, seed, graphed=cuda_graphs.can_use(model, tcfg, device))
    val_loader = make_eval_loader(sets["val"], tcfg.eval_batch_size)
    test_loader = make_eval_loader(sets["test"], tcfg.eval_batch_size)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"{cfg.model_name} on {cfg.data.name} seed {seed}, {device}: "
        f"{len(sets['train'])}/{len(sets['val'])}/{len(sets['test'])} instances, {n_params:,} trainable parameters")
    resolved = dict(cfg.to_dict(), seed=seed)
    ckpt = out / "checkpoint.pt"
    attach_log_file(logger, out / "train.log")
    # from an earlier run in this folder
    for stale in ("metrics.json", "predictions.jsonl", "curves.png", "confusion.png"):
        (out / stale).unlink(missing_ok=True)

    inference = data.inference_state()   # the encoder and DataInfo shapes: predict needs no data

    def on_best(epoch, val):
        save_checkpoint(ckpt, model, resolved, data.fingerprints(), inference,
                        {"epoch": epoch, "step": val["step"], "val": val})

    writer = None
    if tcfg.tensorboard:
        from .tensorboard import open_writer
        writer = open_writer(out)   # event files beside checkpoint.pt: tensorboard --logdir runs
    try:
        history, best, timing = fit(model, train_loader, val_loader, tcfg, device, on_best, log, writer)
    finally:
        if writer is not None:
            writer.close()
    state = load_checkpoint(ckpt)
    model.load_state_dict(state["model_state"])
    test = evaluate(model, test_loader, device, tcfg.amp_bf16)
    predictions = test_predictions(model, test_loader, data.split("test"), device, tcfg.amp_bf16)
    write_predictions(out / "predictions.jsonl", predictions)  # before metrics.json, the completion marker
    ids, gold, predicted = ([p[k] for p in predictions] for k in ("sentence_id", "gold", "predicted"))
    test["strict_accuracy"] = strict_accuracy(ids, gold, predicted)  # sentence level: all its aspects right
    timing["preprocess_seconds"] = round(prep_seconds, 2)
    timing["peak_memory_mib"] = peak_memory_mib(device)
    metrics = {"model": cfg.model_name, "run_name": cfg.name, "dataset": cfg.data.name, "seed": seed,
               "device": str(device), "torch_threads": torch.get_num_threads(), "best_epoch": state["epoch"],
               "best_step": state["step"], "val": best, "test": test, "timing": timing, "history": history,
               "config": resolved}
    write_json(out / "metrics.json", metrics)
    title = f"{cfg.name} / {cfg.data.name} / seed {seed}"
    plot_curves(history, out / "curves.png", title)
    plot_confusion(test["confusion"], test["labels"], out / "confusion.png", f"test: {title}")
    log(f"best: epoch {state['epoch']}, step {state['step']}: test accuracy {test['accuracy']:.2f}, "
        f"macro-F1 {test['macro_f1']:.2f}; wall {timing['wall_seconds']} s; run folder {out}")
    return summary_line(test, cfg, seed, timing)


def summary_line(test, cfg, seed, timing=None):
    line = {"model": cfg.name, "dataset": cfg.data.name, "seed": seed,
            "accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}
    if timing:
        line["wall_seconds"] = timing["wall_seconds"]
    return line


def load_classifier(checkpoint, device, dataset=None):
    """The SentimentClassifier of a checkpoint (self-contained: no data is read); `dataset`, when
    given, must be the one it was trained on."""
    clf = SentimentClassifier.load(checkpoint, device)
    if dataset is not None and clf.cfg.data.name != dataset:
        raise UserError(f"{checkpoint}: checkpoint was trained on {clf.cfg.data.name}, not {dataset}")
    return clf


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
    checkpoint = Path(checkpoint) if checkpoint else run_dir(cfg, seed) / "checkpoint.pt"
    log = make_logger().info
    model, data, ckpt_cfg, trained_seed = load_for_inference(cfg, checkpoint, device, log)
    test_set = datasets(data, ckpt_cfg, model.input_fields(), ("test",), device)["test"]
    loader = make_eval_loader(test_set, cfg.train.eval_batch_size)
    test = evaluate(model, loader, device, ckpt_cfg.train.amp_bf16)
    log(f"{checkpoint}: test on {len(test_set)} instances")
    for name, scores in test["per_class"].items():
        log(f"  {name:9s} P {scores['precision']:6.2f}  R {scores['recall']:6.2f}  F1 {scores['f1']:6.2f}  "
            f"n={scores['support']}")
    trained = seed if trained_seed is None else trained_seed
    return dict(summary_line(test, ckpt_cfg, trained), checkpoint=str(checkpoint),
                per_class=test["per_class"], confusion=test["confusion"])


def slug(text, limit=40):
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "x"


def explain_job(clf, requests, out=None, default_folder=None):
    """explain: one record per (text, aspect) with its heat map written to a PNG (`out`: a .png file,
    or a folder; default: <default_folder>/<slug>.png). Returns the records, each with "png"."""
    clf.check_explains()
    pairs = [(text, aspect) for text, aspects, _ in requests for aspect in aspects]
    records = []
    for text, aspect in pairs:
        record = clf.explain(text, aspect)
        name = f"{slug(text)}--{slug(aspect, 30)}.png"
        if out is None:
            path = Path(default_folder) / name
        elif str(out).endswith(".png"):
            path = Path(out) if len(pairs) == 1 else Path(out).with_name(f"{Path(out).stem}--{slug(aspect, 30)}.png")
        else:
            path = Path(out) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_explanation(record, path)
        records.append(dict(record, png=str(path)))
    return records


def print_json(obj):
    print(json.dumps(obj), flush=True)
