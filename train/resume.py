"""Runs that outlast a sitting: a training's state after its last finished epoch, kept beside its run
folder as <parent>/.seed<N>.resume.pt, so that a training stopped by SIGTERM, Ctrl-C or the machine
going away starts again from there instead of from scratch.

The state holds everything the rest of the run depends on: the model's weights, the optimiser's and
the learning-rate schedule's state, the random states (Python, NumPy, torch, CUDA) and the training
loader's shuffling generator, the loop's counters and history, the best validation so far and the
best checkpoint's bytes. On a CPU a resumed run therefore ends with the same numbers as one that was
never stopped (tests/test_resume.py); on a GPU, as close as two uninterrupted runs are (cuDNN).

It is written atomically after every epoch, read back only when it holds the same config as the
run being started (paths and thread count aside), and removed when the run's folder is complete.
"""
import io
import random
from pathlib import Path

import numpy as np
import torch

from common.io import atomic_path

FORMAT = 1


def resume_file(folder):
    """Where the run folder `folder`'s resume state lives."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.resume.pt"


def rng_state():
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def loader_generator(loader):
    """The torch.Generator that shuffles a training loader (its batch sampler's, or its own)."""
    sampler = getattr(loader, "batch_sampler", None)
    return getattr(sampler, "generator", None) or getattr(loader, "generator", None)


def write_resume(path, state):
    """Write a resume state atomically (a killed write leaves the previous one)."""
    buffer = io.BytesIO()
    torch.save(dict(state, format=FORMAT), buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def read_resume(path, config, same_config):
    """The resume state at `path` when it is one for `config` (same_config(stored, config)), else None:
    a missing, damaged or foreign state is no reason to fail, only to start from the first epoch."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:   # noqa: BLE001 (a truncated or foreign file, whatever torch raises for it)
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not same_config(state.get("config"), config):
        return None
    return state


def remove_resume(path):
    Path(path).unlink(missing_ok=True)
