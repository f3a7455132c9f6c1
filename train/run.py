"""The training job behind `--mode train`: data, model, the loop, then the run folder's files."""
import errno
import json
import time
from pathlib import Path

import torch

from common.errors import UserError
from common.io import check_writable_dir, write_json
from data_process.raw_data import sha256_of, split_files
from src.dataset import ABSADataset, make_eval_loader, make_loader
from src.models import build_model, get_model_class

from . import cuda_graphs
from .checkpoint import load_checkpoint, save_checkpoint
from .code_version import code_version
from .config import comparable
from .data import PreparedData
from .kernels import use_kernels
from .metrics import strict_accuracy
from .plots import plot_confusion, plot_curves
from .predictions import test_predictions, write_predictions
from .resume import read_resume, remove_resume, resume_file, write_resume
from .run_folder import attach_log_file, check_replaceable, close_log_files, make_logger, run_dir, staged_run
from .runtime import peak_memory_mib, pick_device, set_seed, set_threads, training_bf16
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


def train_job(cfg, seed, device_name="auto", overwrite=False):
    """Train one seed; test the validation-selected checkpoint; write the run folder. Returns test metrics.

    Everything is written into a staging folder that replaces the run folder only once the run is
    complete (train/run_folder.py), under the run's lock: the previous run survives a failure. A
    finished run in the folder is replaced only with `overwrite` (--overwrite); without it, the
    training is refused before any work. A disk that fills (or any failed write) is one UserError
    naming the run folder and the problem, the previous run untouched."""
    set_threads(cfg.train.num_threads)
    final = run_dir(cfg, seed)
    check_writable_dir(cfg.paths.runs, "paths.runs")
    config = dict(cfg.to_dict(), seed=seed)
    check_replaceable(final, config, overwrite, data_files(cfg))   # before the lock: fail fast
    logger = make_logger()
    try:
        with staged_run(final) as out:
            check_replaceable(final, config, overwrite, data_files(cfg))   # under it: no race
            summary = _train_into(out, final, cfg, seed, device_name, logger)
        remove_resume(resume_file(final))     # the run folder is complete: nothing left to resume
    except OSError as err:
        if err.errno not in WRITE_ERRORS:
            raise
        raise UserError(f"{final}: the training could not write its files ({write_problem(err)}); "
                        f"{'the previous run is untouched' if final.exists() else 'no run folder was made'}"
                        ) from None
    finally:
        close_log_files(logger)
    return summary


def data_files(cfg):
    """{split: SHA-256} of the dataset's raw split files that exist: the data a run trains and tests on
    (metrics.json's data_files; a run folder or resume state of other files is not this run's)."""
    return {split: sha256_of(path) for split, path in sorted(split_files(cfg.data, cfg.paths).items())
            if path.is_file()}


def same_run_config(stored, config):
    """Whether a resume state's config is this run's (paths and thread count aside)."""
    return isinstance(stored, dict) and comparable(stored) == comparable(config)
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)


def write_problem(err):
    """An OSError of a write, in words: the file (where known) and the system's reason."""
    reason = {errno.ENOSPC: "no space left on the disk", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "the file system is read-only"}.get(err.errno, err.strerror or str(err))
    return f"{Path(err.filename).name}: {reason}" if err.filename else reason


def _train_into(out, final, cfg, seed, device_name, logger):
    """train_job's work, every file written into `out` (the staging folder of run folder `final`)."""
    log = logger.info
    device = pick_device(device_name)
    training_bf16(cfg.train, device)   # bf16 asked of a CPU without it fails before any work
    prep_start = time.perf_counter()
    data = PreparedData(cfg.data, cfg.paths, model_inputs(cfg), log=log)
    prep_seconds = time.perf_counter() - prep_start
    files = data_files(cfg)

    set_seed(seed)
    model = use_kernels(build_model(cfg.model_name, cfg.model, data.info()), cfg.train.kernels).to(device)
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

    inference = data.inference_state()   # the encoder and DataInfo shapes: predict needs no data
    saved = resume_file(final)
    resume = read_resume(saved, resolved, same_run_config)
    if resume is not None and resume.get("data_files", files) != files:
        log(f"{saved.name}: a stopped training on other data files; starting from the first epoch")
        resume = None
    best_bytes = None
    if resume is not None:   # a stopped training of this run: go on after its last finished epoch
        ckpt.write_bytes(resume["best_checkpoint"])
        best_bytes = resume["best_checkpoint"]

    def on_best(epoch, val):
        nonlocal best_bytes
        save_checkpoint(ckpt, model, resolved, data.fingerprints(), inference,
                        {"epoch": epoch, "step": val["step"], "val": val})
        best_bytes = ckpt.read_bytes()

    kept = resume["epoch"] if resume is not None else None   # the last epoch the resume state holds

    def on_epoch(epoch, state):
        nonlocal kept
        write_resume(saved, dict(state, config=resolved, data_files=files, best_checkpoint=best_bytes))
        kept = epoch

    writer = None
    if tcfg.tensorboard:
        from .tensorboard import open_writer
        writer = open_writer(out)   # event files beside checkpoint.pt: tensorboard --logdir runs
    try:
        history, best, timing = fit(model, train_loader, val_loader, tcfg, device, on_best, log, writer,
                                    resume=resume, on_epoch=on_epoch)
    except KeyboardInterrupt:   # Ctrl-C or SIGTERM (common/errors.py): say what the same command does next
        log(f"stopped after epoch {kept}: the same command resumes from there ({saved})" if kept is not None
            else "stopped before its first epoch ended: the same command starts it again")
        raise
    finally:
        if writer is not None:
            writer.close()
    state = load_checkpoint(ckpt)
    model.load_state_dict(state["model_state"])
    bf16 = training_bf16(tcfg, device)
    test = evaluate(model, test_loader, device, bf16)
    predictions = test_predictions(model, test_loader, data.split("test"), device, bf16)
    write_predictions(out / "predictions.jsonl", predictions)
    ids, gold, predicted = ([p[k] for p in predictions] for k in ("sentence_id", "gold", "predicted"))
    test["strict_accuracy"] = strict_accuracy(ids, gold, predicted)  # sentence level: all its aspects right
    timing["preprocess_seconds"] = round(prep_seconds, 2)
    timing["peak_memory_mib"] = peak_memory_mib(device)
    metrics = {"model": cfg.model_name, "run_name": cfg.name, "dataset": cfg.data.name, "seed": seed,
               "device": str(device), "torch_threads": torch.get_num_threads(), **code_version(),
               "best_epoch": state["epoch"], "best_step": state["step"], "val": best, "test": test,
               "timing": timing, "history": history, "config": resolved, "data_files": files}
    write_json(out / "metrics.json", metrics)
    title = f"{cfg.name} / {cfg.data.name} / seed {seed}"
    plot_curves(history, out / "curves.png", title)
    plot_confusion(test["confusion"], test["labels"], out / "confusion.png", f"test: {title}")
    log(f"best: epoch {state['epoch']}, step {state['step']}: test accuracy {test['accuracy']:.2f}, "
        f"macro-F1 {test['macro_f1']:.2f}; wall {timing['wall_seconds']} s; run folder {final}")
    return summary_line(test, cfg, seed, timing)


def summary_line(test, cfg, seed, timing=None):
    line = {"model": cfg.name, "dataset": cfg.data.name, "seed": seed,
            "accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}
    if timing:
        line["wall_seconds"] = timing["wall_seconds"]
    return line


def print_json(obj):
    print(json.dumps(obj), flush=True)
