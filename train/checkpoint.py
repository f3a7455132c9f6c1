"""One checkpoint format for every model (FORMAT): weights + resolved config + data fingerprints +
what it takes to encode new text and rebuild the model (`encoder`, the Encoder's state, and
`data_info`, the DataInfo's shapes; see train.data.PreparedData.inference_state), so that predict
and explain need nothing but the checkpoint file (and, for BERT models, the backbone). A checkpoint
of another format is refused with one line."""
from pathlib import Path

import torch

from common.errors import UserError
from common.io import atomic_path

FORMAT = 2   # the checkpoint format this version writes and reads
# model_state keys that earlier versions of this format wrote, and the keys they are now: CapsNet's
# ACSA category embedding became its AspectVector's (src/blocks.py).
RENAMED_KEYS = {"category_embedding.weight": "aspect.category.weight"}


def save_checkpoint(path, model, cfg, fingerprints, inference=None, extra=None):
    """cfg: the resolved config (a plain mapping); inference: {"encoder", "data_info"}
    (PreparedData.inference_state()), what predict and explain load the model with."""
    payload = {"format": FORMAT, "model_state": model.state_dict(), "config": cfg,
               "fingerprints": fingerprints, **(inference or {}), **(extra or {})}
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(payload, f)
    except RuntimeError as err:   # torch's writer turns a failed write (a full disk) into a RuntimeError
        failed = _os_error(err)
        if failed is None:
            raise
        raise OSError(failed.errno, failed.strerror, str(path)) from None


def _os_error(err):
    """The OSError behind an exception (its cause or context chain), or None."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def read_payload(path):
    """The stored mapping of a checkpoint file (any format: load_checkpoint checks it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found" if not path.exists() else
                        f"{path}: is a folder, not a checkpoint file" if path.is_dir() else
                        f"{path}: not a regular file, so not a checkpoint")
    if path.name in ("model.safetensors", "config.json", "encoder.json") and (path.parent / "config.json").is_file():
        raise UserError(f"{path}: a file of the pretrained model folder {path.parent}; name the folder itself")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise UserError(f"{path}: not a PyTorch checkpoint file (torch.load failed: {type(err).__name__})") from None
    return payload


def load_checkpoint(path):
    payload = read_payload(path)
    if not isinstance(payload, dict) or "format" not in payload or "model_state" not in payload:
        raise UserError(f"{path}: not a checkpoint of this project (it holds no \"format\" and \"model_state\"; "
                        f"this version writes format {FORMAT})")
    if payload["format"] != FORMAT:
        raise UserError(f"{path}: checkpoint format {payload['format']!r}, this version reads format {FORMAT}; "
                        f"re-train it with this version")
    return payload


def upgrade_state(model, state):
    """A model_state in the keys of `model`: keys of earlier versions renamed (RENAMED_KEYS), and a
    missing key of a shared parameter (AspectVector's view of the word embedding, which earlier
    CapsNets did not have) filled from another key of the same parameter."""
    state = {RENAMED_KEYS.get(key, key): value for key, value in state.items()}
    keys_of = {}
    for key, value in model.state_dict(keep_vars=True).items():
        keys_of.setdefault(id(value), []).append(key)
    for keys in keys_of.values():
        present = next((key for key in keys if key in state), None)
        for key in keys if present is not None else ():
            state.setdefault(key, state[present])
    return state


def check_fingerprints(path, stored, current):
    """The checkpoint must have been built for the same vocabulary / inputs as the processed data."""
    for key, value in stored.items():
        if key in current and current[key] != value:
            raise UserError(f"{path}: checkpoint was built for another {key.replace('_', ' ')} "
                            f"({value} vs the processed data's {current[key]}); re-train or re-preprocess "
                            f"with the checkpoint's settings")
