"""Fast substitutes for readable modules: other ways of computing the same functions.

The readable modules (src/layers.py, src/blocks.py, used by src/models/) are the reference: they
compute the paper's equations plainly, and they never import this package. Each substitute here is
a subclass of the module it replaces that overrides `forward` only, so it has the same parameters,
buffers and state_dict keys; `applies(module)` says whether it computes that module's function.
train/kernels.py swaps them in when a run asks for `train.kernels: fast`. Tests hold each
substitute equal to its module, outputs and every gradient (tests/test_kernels.py):

  gru.py           FastBiGRU for BiGRU (CapsNet's encoder, Eq. 2): a hand-written forward and
                   backward pass on a CPU, one cuDNN GRU per layer holding its state through
                   padding on CUDA
  lstm.py          FastRNNEncoder for RNNEncoder (the baselines' (Bi)LSTM): the LSTM over the
                   padded batch with the state reset on padding
  capsule_head.py  FastCapsuleHead for CapsuleHead with capsule-guided routing (Eqs. 3-6), without
                   forming the primary capsules

CUDA graphs (train/cuda_graphs.py) need the substitutes on CUDA: the packed reference RNNs read the
lengths on the host.
"""
from ..blocks import BiGRU, RNNEncoder
from ..layers import CapsuleHead
from .capsule_head import FastCapsuleHead
from .gru import FastBiGRU
from .lstm import FastRNNEncoder

SUBSTITUTES = {BiGRU: FastBiGRU, RNNEncoder: FastRNNEncoder, CapsuleHead: FastCapsuleHead}   # readable -> fast

__all__ = ["SUBSTITUTES", "FastBiGRU", "FastRNNEncoder", "FastCapsuleHead"]
