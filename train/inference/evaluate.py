"""`--mode test`: a checkpoint on its dataset's processed test split; and loading a checkpoint's
classifier for predict and explain."""
from collections import namedtuple
from pathlib import Path

from common.errors import UserError
from src.dataset import make_eval_loader

from ..checkpoint import check_fingerprints
from ..data import PreparedData
from ..run import datasets, model_inputs, summary_line
from ..run_folder import finished_checkpoint, make_logger, run_dir
from ..runtime import pick_device
from ..trainer import evaluate
from .api import SentimentClassifier


def load_classifier(checkpoint, device, dataset=None, bf16=False):
    """The SentimentClassifier of a checkpoint (self-contained: no data is read); `dataset` (a
    composed data.name, e.g. user-reviews-1a2b3c4d for a folder), when given, must be the one it
    was trained on; bf16: inference.bf16."""
    clf = SentimentClassifier.load(checkpoint, device, bf16)
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
    checkpoint = Path(checkpoint) if checkpoint else finished_checkpoint(run_dir(cfg, seed))
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
