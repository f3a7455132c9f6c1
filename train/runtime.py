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


def cpu_has_bf16():
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): oneDNN's own check."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def training_bf16(tcfg, device):
    """Whether training and its evaluations run under bf16 autocast on `device`: train.amp_bf16 on
    CUDA, train.amp_bf16_cpu on the CPU. bf16 asked of a CPU without native bf16 (emulated: slower,
    not faster) is a UserError naming the setting."""
    if device.type == "cuda":
        return bool(tcfg.amp_bf16)
    if device.type == "cpu" and tcfg.amp_bf16_cpu:
        if not cpu_has_bf16():
            raise UserError("train.amp_bf16_cpu=true: this CPU has no native bf16 (AVX512-BF16 or AMX); "
                            "set train.amp_bf16_cpu=false")
        return True
    return False


def peak_memory_mib(device):
    """Peak memory so far: allocated by torch on CUDA, else the process's peak resident set."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)   # Linux reports KiB
