"""Milliseconds per CapsNet training step on CUDA, for each way a step can run: eager or replayed from
CUDA graphs (train/cuda_graphs.py), with the BiGRU as the packed cuDNN GRU (the earlier CUDA path,
which reads the lengths back to the host), one cuDNN GRU per direction with rows reversed in place,
one bidirectional cuDNN GRU per layer holding the state through padding (src/kernels/gru.py's CUDA path),
the hand-written stepwise passes (its CPU path), or the reversed rows with the two directions on
two CUDA streams. Prints one table; asserts nothing.

    python benchmarks/gpu_step.py                       # capsnet, mams-atsa
    python benchmarks/gpu_step.py --dataset mams-acsa --epochs 3

Each variant builds the seeded model afresh and runs `--epochs` epochs over the same batches (cut
once, widths rounded up to train.graph_width_multiple for every variant); the table reports the
last epoch (the first records the graphs), timed with a synchronisation at both ends, and the mean
loss of that epoch (the variants must agree closely).
"""
import argparse
import functools
import sys
import time
from pathlib import Path

import torch
from torch import _VF
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.kernels.gru import held_state_gru, stepwise_gru  # noqa: E402
from src.models import build_model  # noqa: E402
from train.config import compose  # noqa: E402
from train.cuda_graphs import GraphedSteps  # noqa: E402
from train.data import PreparedData  # noqa: E402
from train.kernels import use_kernels  # noqa: E402
from train.run import datasets, make_train_loader, model_inputs  # noqa: E402
from train.runtime import set_seed  # noqa: E402
from train.trainer import make_optimizer, train_step, update  # noqa: E402


def packed_gru(gru, inputs, lengths, constant=None):
    """The earlier CUDA path: the packed nn.GRU (the lengths go to the host every step)."""
    inputs = torch.cat([inputs, constant.unsqueeze(1).expand(-1, inputs.size(1), -1)], dim=-1)
    packed = pack_padded_sequence(inputs, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=inputs.size(1))[0]


def reversed_rows_gru(gru, inputs, lengths, constant=None, two_streams=False):
    """The first sync-free CUDA path (commit 245ce3c), src/kernels/gru.py's bidirectional_gru through cuDNN
    without packing (any device; lengths >= 1), two one-direction calls per layer. The forward
    direction reads a row's real steps before its padding, so padding cannot reach them. The backward
    direction reads each row with its real steps reversed in place (positions len-1, ..., 0, the
    padding left where it is), so it too reads them first; the same permutation (its own inverse)
    puts its outputs back in order. `two_streams` (CUDA): the backward direction runs on a second
    stream, beside the forward one (not measured yet)."""
    if constant is not None:
        inputs = torch.cat([inputs, constant.unsqueeze(1).expand(-1, inputs.size(1), -1)], dim=-1)
    positions = torch.arange(inputs.size(1), device=inputs.device)
    real = positions < lengths[:, None]                                       # (B, T)
    reverse = torch.where(real, lengths[:, None] - 1 - positions, positions)  # (B, T)
    x = inputs
    for layer in range(gru.num_layers):
        if two_streams and x.is_cuda:
            main, side = torch.cuda.current_stream(), _side_stream(x.device)
            side.wait_stream(main)
            with torch.cuda.stream(side):
                backward = _reorder(_one_direction(gru, layer, "_reverse", _reorder(x, reverse)), reverse)
            forward = _one_direction(gru, layer, "", x)
            main.wait_stream(side)
        else:
            forward = _one_direction(gru, layer, "", x)
            backward = _reorder(_one_direction(gru, layer, "_reverse", _reorder(x, reverse)), reverse)
        x = torch.cat([forward, backward], dim=-1)
    return x * real.unsqueeze(-1).to(x.dtype)


_SIDE_STREAMS = {}


def _side_stream(device):
    if device not in _SIDE_STREAMS:
        _SIDE_STREAMS[device] = torch.cuda.Stream(device)
    return _SIDE_STREAMS[device]


def _reorder(x, index):
    """x (B, T, d) with row b's positions taken in the order index[b] (B, T)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


def _one_direction(gru, layer, suffix, x):
    """One direction ("" or "_reverse") of one layer of `gru` over x (B, T, d), from a zero state:
    nn.GRU's own kernel (cuDNN on CUDA) run as a one-layer, one-direction GRU on those weights."""
    weights = [getattr(gru, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    start = x.new_zeros(1, x.size(0), gru.hidden_size)
    return _VF.gru(x, start, weights, True, 1, 0.0, gru.training, False, True)[0]


def clamped(gru_function):
    """bidirectional_gru through one implementation, whatever the device."""
    return lambda gru, inputs, lengths, constant=None: gru_function(gru, inputs, lengths.clamp(min=1), constant)


ENCODERS = {"packed cuDNN": packed_gru, "reversed rows, cuDNN": clamped(reversed_rows_gru),
            "stepwise (hand-written)": clamped(stepwise_gru), "held state, cuDNN": clamped(held_state_gru),
            "reversed rows, two streams": clamped(functools.partial(reversed_rows_gru, two_streams=True))}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_variant(cfg, data, encoder, graphed, batches, epochs, device):
    set_seed(0)
    model = use_kernels(build_model(cfg.model_name, cfg.model, data.info()), "fast").to(device).train()
    model.encoder.forward = functools.partial(ENCODERS[encoder], model.encoder)   # this variant's BiGRU
    optimizer, scheduler = make_optimizer(model, cfg.train, epochs * len(batches), capturable=graphed)

    def step(batch):
        return train_step(model, batch, optimizer, scheduler, cfg.train.grad_clip, device)
    if graphed:
        steps = GraphedSteps(step, lambda b: update(model, b, optimizer, cfg.train.grad_clip, device),
                             optimizer, scheduler, device, cfg.train.cuda_graph_limit)
        step = steps.step
    for _ in range(epochs):
        synchronize(device)
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        for batch in batches:
            total += step(batch)
        synchronize(device)
        seconds = time.perf_counter() - start
    return seconds, float(total) / len(batches), len(steps.graphs) if graphed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mams-atsa")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cuda", help="cuda (cpu: a smoke test of this script, eager only)")
    parser.add_argument("--only", default="", help="run only the BiGRU variants whose name contains this")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = compose("capsnet", args.dataset, None, args.overrides)
    data = PreparedData(cfg.data, cfg.paths, model_inputs(cfg), log=lambda *_: None)
    fields = build_model(cfg.model_name, cfg.model, data.info()).input_fields()
    train = datasets(data, cfg, fields, ("train",), device)["train"]
    batches = list(make_train_loader(train, cfg.train, seed=0, graphed=True))
    print(f"capsnet on {args.dataset}: {len(batches)} batches of {cfg.train.batch_size}, "
          f"{len({tuple(b[fields[0]].shape) for b in batches})} shapes; "
          f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}")
    print(f"| BiGRU | steps | ms / step | epoch s | 20 epochs s | mean loss (epoch {args.epochs}) | graphs |")
    print("|---|---|---|---|---|---|---|")
    # eager first, graphs last (a failed capture can leave the device unusable for what follows)
    variants = [(encoder, False) for encoder in ENCODERS]
    if device.type == "cuda":   # packing reads lengths on the host: no graph of it
        variants += [(encoder, True) for encoder in ENCODERS if encoder != "packed cuDNN"]
    for encoder, graphed in [v for v in variants if args.only in v[0]]:
        try:
            seconds, loss, graphs = run_variant(cfg, data, encoder, graphed, batches, args.epochs, device)
        except Exception as err:                          # report and go on: one table, every variant
            print(f"| {encoder} | {'graphs' if graphed else 'eager'} | failed: {str(err).splitlines()[0][:80]} |")
            continue
        print(f"| {encoder} | {'graphs' if graphed else 'eager'} | {1000 * seconds / len(batches):.2f} | "
              f"{seconds:.2f} | {20 * seconds:.1f} | {loss:.5f} | {graphs} |")

if __name__ == "__main__":
    main()
