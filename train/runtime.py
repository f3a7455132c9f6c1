"""Where a run executes: seeding, device choice, CPU threads."""
import random

import numpy as np
import torch

from common.errors import UserError


def set_seed(seed):
    """Fixes Python, NumPy and torch RNGs (data order, initialisation, dropout). cuDNN's GRU and
    atomics-based CUDA kernels may still differ between runs on a GPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(name):
    """'auto' (CUDA when present), 'cpu' or 'cuda'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    return torch.device(name)


def set_threads(num_threads):
    """torch CPU threads (None = torch's default)."""
    if num_threads:
        torch.set_num_threads(int(num_threads))


def peak_memory_mib(device):
    """Peak memory so far: allocated by torch on CUDA, else the process's peak resident set."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)   # Linux reports KiB
