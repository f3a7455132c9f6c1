"""One checkpoint format for every model: weights + resolved config + data fingerprints."""
from pathlib import Path

import torch

from common.io import atomic_path
from common.errors import UserError

FORMAT = 1


def save_checkpoint(path, model, cfg, fingerprints, extra=None):
    payload = {"format": FORMAT, "model_state": model.state_dict(), "config": cfg,
               "fingerprints": fingerprints, **(extra or {})}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found (train one with --mode train, or name one with --checkpoint)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise UserError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path}: not a checkpoint of this project (format {FORMAT})")
    return payload


def check_fingerprints(path, stored, current):
    """The checkpoint must have been built for the same vocabulary / inputs as the processed data."""
    for key, value in stored.items():
        if key in current and current[key] != value:
            raise UserError(f"{path}: checkpoint was built for another {key.replace('_', ' ')} "
                            f"({value} vs the processed data's {current[key]}); re-train or re-preprocess "
                            f"with the checkpoint's settings")
