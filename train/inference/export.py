"""Re-export a format-1 checkpoint (before checkpoints held their encoder) as format 2:

    python -m train.inference.export runs/mams-atsa/capsnet/seed0/checkpoint.pt [--out NEW.pt] [--processed DIR]

The vocabulary and encoder settings are taken from the processed data the checkpoint was trained
on (its stored paths.processed, or --processed), which must still match it (checked by fingerprint,
as --mode test does). Without --out the file is replaced in place.
"""
import argparse
import dataclasses
from pathlib import Path

import torch

from common.errors import UserError, run_command
from common.io import atomic_path

from ..checkpoint import FORMAT, check_fingerprints, read_payload
from ..data import PreparedData
from ..run import model_inputs
from .api import stored_config


def export(old, out=None, processed=None, log=print):
    old = Path(old)
    payload = read_payload(old)
    if not isinstance(payload, dict) or payload.get("format") != 1 or "model_state" not in payload:
        raise UserError(f"{old}: not a format-1 checkpoint of this project (nothing to re-export)")
    config = dict(payload["config"])
    config["train"] = {"tensorboard": False, **config.get("train", {})}   # keys added since format 1
    cfg = stored_config(old, dict(payload, config=config))
    if processed is not None:
        cfg = cfg.replace(paths=dataclasses.replace(cfg.paths, processed=str(processed)))
    data = PreparedData(cfg.data, cfg.paths, model_inputs(cfg), log=log)
    check_fingerprints(old, payload["fingerprints"], data.fingerprints())
    payload.update(data.inference_state(), format=FORMAT, config=config)
    out = Path(out) if out else old
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    log(f"{out}: checkpoint format {FORMAT}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="Re-export a format-1 checkpoint as format 2.")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", help="the new file (default: replace the checkpoint)")
    parser.add_argument("--processed", help="the processed-data root it was trained with (default: its stored path)")
    args = parser.parse_args(argv)
    export(args.checkpoint, args.out, args.processed)
    return 0


if __name__ == "__main__":
    run_command(main)
