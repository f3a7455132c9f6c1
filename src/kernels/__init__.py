"""Faster formulations of readable layers, behind one switch.

The readable modules (src/layers.py, src/blocks.py, src/models/capsnet.py) are the reference: they
compute the paper's equations plainly. This package holds other ways of computing the same
functions, each held equal to its readable module by tests of outputs and of every gradient
(tests/test_kernels.py):

  gru.py           CapsNet's BiGRU (Eq. 2) over a padded batch: a hand-written forward and backward
                   pass on a CPU, one cuDNN GRU per layer holding its state through padding on CUDA
  lstm.py          the baselines' (Bi)LSTM over a padded batch with the state reset on padding
  capsule_head.py  CapsuleHead (Eqs. 3-6) without forming the primary capsules

The switch is the config key `train.kernels`: `fast` (the default) uses these where they apply,
`reference` runs the readable code only. The training job, SentimentClassifier and the benchmarks
set it with `use`; a readable module asks `enabled(kernel)` before it hands work over. CUDA graphs
(train/cuda_graphs.py) need the fast kernels on CUDA: the packed reference RNNs read the lengths on
the host.
"""
from contextlib import contextmanager

from .capsule_head import capsule_head, capsule_head_applies
from .gru import bidirectional_gru
from .lstm import reset_state_lstm

__all__ = ["CHOICES", "KERNELS", "use", "using", "current", "enabled", "capsule_head", "capsule_head_applies",
           "bidirectional_gru", "reset_state_lstm"]

CHOICES = ("fast", "reference")
KERNELS = ("gru", "lstm", "capsule_head")
_choice = "fast"


def use(choice):
    """Set the switch for this process: "fast" or "reference"."""
    global _choice
    if choice not in CHOICES:
        raise ValueError(f"kernels: {choice!r} is not one of {', '.join(CHOICES)}")
    _choice = choice


@contextmanager
def using(choice):
    """The switch set to `choice` inside a with block, restored after it."""
    before = _choice
    use(choice)
    try:
        yield
    finally:
        use(before)


def current():
    """The switch's setting: "fast" or "reference"."""
    return _choice


def enabled(kernel):
    """Whether the readable module should hand `kernel` (one of KERNELS) to this package."""
    if kernel not in KERNELS:
        raise ValueError(f"kernels: no kernel named {kernel!r} (known: {', '.join(KERNELS)})")
    return _choice == "fast"
