"""The jobs behind main.py's modes: train, test. (predict lives in predict.py.)"""
import json
import logging
import logging.handlers
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from data_process.atomic import write_json
from src.dataset import ABSADataset, make_loader
from src.errors import UserError
from src.models import build_model, get_model_class

from .checkpoint import check_fingerprints, load_checkpoint, save_checkpoint
from .data import PreparedData
from .plots import plot_confusion, plot_curves
from .trainer import evaluate, fit


def set_seed(seed):
    """Fixes Python, NumPy and torch RNGs (data order, initialisation, dropout). cuDNN's GRU and
    atomics-based CUDA kernels may still differ between runs on a GPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    return torch.device(name)


def run_dir(cfg, seed):
    name = cfg.get("run_name") or cfg["model"]["name"]
    return Path(cfg["paths"]["runs"]) / cfg["data"]["name"] / name / f"seed{seed}"


def make_logger(name="absa"):
    """A logger printing to stdout that also keeps its records until attach_log_file() names a file,
    so a run that fails before training (bad data, bad options) leaves no run folder behind."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(stream)
    logger.addHandler(logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1))
    return logger


def attach_log_file(logger, path):
    """Write the records kept so far to `path` and everything after them too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for memory in [h for h in logger.handlers if isinstance(h, logging.handlers.MemoryHandler)]:
        memory.setTarget(handler)
        memory.flush()
        logger.removeHandler(memory)
    logger.addHandler(handler)


def datasets(data, cfg, fields, splits):
    limit = cfg["data"].get("limit")
    return {s: ABSADataset(data.split(s), fields, limit) for s in splits}


def make_train_loader(dataset, tcfg, seed):
    """The shuffled training loader, bucketed by length when train.bucket_by_length is set."""
    return make_loader(dataset, tcfg["batch_size"], shuffle=True, seed=seed,
                       bucket_chunk=tcfg.get("bucket_chunk") if tcfg.get("bucket_by_length") else None)


def train_job(cfg, seed, device_name="auto"):
    """Train one seed; test the validation-selected checkpoint; write the run folder. Returns test metrics."""
    if cfg["train"].get("num_threads"):
        torch.set_num_threads(int(cfg["train"]["num_threads"]))
    out = run_dir(cfg, seed)
    logger = make_logger()
    log = logger.info
    device = pick_device(device_name)
    task = cfg["data"]["task"]
    get_model_class(cfg["model"]["name"])  # an unknown model fails before any work
    prep_start = time.perf_counter()
    data = PreparedData(cfg, log=log)
    prep_seconds = time.perf_counter() - prep_start

    set_seed(seed)
    model = build_model(cfg["model"], data.info()).to(device)
    sets = datasets(data, cfg, model.input_fields(task), ("train", "val", "test"))
    tcfg = cfg["train"]
    train_loader = make_train_loader(sets["train"], tcfg, seed)
    val_loader = make_loader(sets["val"], tcfg["eval_batch_size"])
    test_loader = make_loader(sets["test"], tcfg["eval_batch_size"])
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"{cfg['model']['name']} on {cfg['data']['name']} seed {seed}, {device}: "
        f"{len(sets['train'])}/{len(sets['val'])}/{len(sets['test'])} instances, {n_params:,} trainable parameters")
    resolved = dict(cfg, seed=seed)
    ckpt = out / "checkpoint.pt"
    attach_log_file(logger, out / "train.log")
    for stale in ("metrics.json", "curves.png", "confusion.png"):  # from an earlier run in this folder
        (out / stale).unlink(missing_ok=True)

    def on_best(epoch, val):
        save_checkpoint(ckpt, model, resolved, data.fingerprints(), {"epoch": epoch, "step": val["step"], "val": val})

    history, best, timing = fit(model, train_loader, val_loader, cfg, device, on_best, log)
    state = load_checkpoint(ckpt)
    model.load_state_dict(state["model_state"])
    test = evaluate(model, test_loader, device, bool(tcfg.get("amp_bf16")))
    timing["preprocess_seconds"] = round(prep_seconds, 2)
    metrics = {"model": cfg["model"]["name"], "run_name": cfg.get("run_name") or cfg["model"]["name"],
               "dataset": cfg["data"]["name"], "seed": seed, "device": str(device),
               "torch_threads": torch.get_num_threads(), "best_epoch": state["epoch"], "best_step": state["step"], "val": best,
               "test": test, "timing": timing, "history": history, "config": resolved}
    write_json(out / "metrics.json", metrics)
    title = f"{metrics['run_name']} / {cfg['data']['name']} / seed {seed}"
    plot_curves(history, out / "curves.png", title)
    plot_confusion(test["confusion"], test["labels"], out / "confusion.png", f"test: {title}")
    log(f"best: epoch {state['epoch']}, step {state['step']}: test accuracy {test['accuracy']:.2f}, macro-F1 {test['macro_f1']:.2f}; "
        f"wall {timing['wall_seconds']} s; run folder {out}")
    return summary_line(test, cfg, seed, timing)


def summary_line(test, cfg, seed, timing=None):
    line = {"model": cfg.get("run_name") or cfg["model"]["name"], "dataset": cfg["data"]["name"], "seed": seed,
            "accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}
    if timing:
        line["wall_seconds"] = timing["wall_seconds"]
    return line


def load_for_inference(cfg, checkpoint, device, log=print):
    """(model, prepared data, checkpoint config) for a checkpoint, checked against the processed data."""
    state = load_checkpoint(checkpoint)
    ckpt_cfg = state["config"]
    # The checkpoint decides the model and data settings; the caller's paths and limits still apply.
    ckpt_cfg = dict(ckpt_cfg, paths=cfg["paths"], data=dict(ckpt_cfg["data"], limit=cfg["data"].get("limit")))
    if ckpt_cfg["data"]["name"] != cfg["data"]["name"]:
        raise UserError(f"{checkpoint}: checkpoint was trained on {ckpt_cfg['data']['name']}, "
                        f"not {cfg['data']['name']}")
    data = PreparedData(ckpt_cfg, log=log)
    check_fingerprints(checkpoint, state["fingerprints"], data.fingerprints())
    model = build_model(ckpt_cfg["model"], data.info())
    model.load_state_dict(state["model_state"])
    return model.to(device).eval(), data, ckpt_cfg


def test_job(cfg, seed, device_name="auto", checkpoint=None):
    device = pick_device(device_name)
    checkpoint = Path(checkpoint) if checkpoint else run_dir(cfg, seed) / "checkpoint.pt"
    log = make_logger().info
    model, data, ckpt_cfg = load_for_inference(cfg, checkpoint, device, log)
    test_set = datasets(data, ckpt_cfg, model.input_fields(ckpt_cfg["data"]["task"]), ("test",))["test"]
    loader = make_loader(test_set, cfg["train"]["eval_batch_size"])
    test = evaluate(model, loader, device, bool(ckpt_cfg["train"].get("amp_bf16")))
    log(f"{checkpoint}: test on {len(test_set)} instances")
    for name, scores in test["per_class"].items():
        log(f"  {name:9s} P {scores['precision']:6.2f}  R {scores['recall']:6.2f}  F1 {scores['f1']:6.2f}  n={scores['support']}")
    return dict(summary_line(test, ckpt_cfg, ckpt_cfg.get("seed", seed)), checkpoint=str(checkpoint),
                per_class=test["per_class"], confusion=test["confusion"])


def print_json(obj):
    print(json.dumps(obj), flush=True)
