"""Where a CapsNet training step's GPU time goes: the kernels of one step, eager and replayed from
a CUDA graph, summed by kind (BiGRU, matrix products, element-wise, embeddings and indexing,
reductions, clipping and Adam, copies), from torch.profiler. Prints tables; asserts nothing.

    python benchmarks/gpu_kernels.py                       # capsnet, mams-atsa, CUDA
    python benchmarks/gpu_kernels.py --dataset mams-acsa --steps 50

The model trains on the epoch's batches (seed 0, widths rounded up as under CUDA graphs) for one
warm-up pass over the first `--steps` batches, then the same batches run under the profiler, once
eagerly and once from graphs (recorded during the warm-up). "per step" divides by the steps; the
eager run also lists the operators that launched the kernels (torch.profiler's table). Kernel
time is what the GPU spent inside kernels; a graphed step's wall time (benchmarks/gpu_step.py) is
that plus the gaps between kernels.
"""
import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.models import build_model  # noqa: E402
from train.config import compose  # noqa: E402
from train.cuda_graphs import GraphedSteps  # noqa: E402
from train.data import PreparedData  # noqa: E402
from train.kernels import use_kernels  # noqa: E402
from train.run import datasets, make_train_loader, model_inputs  # noqa: E402
from train.runtime import set_seed  # noqa: E402
from train.trainer import make_optimizer, train_step, update  # noqa: E402

KINDS = (   # (kind, words in a kernel's name), first match wins
    ("BiGRU (cuDNN)", ("rnn", "gru", "cudnn", "elemwise")),
    ("Adam", ("adam",)),
    ("clipping (norms, scaling)", ("norm", "foreach")),
    ("matrix products", ("gemm", "gemv", "cutlass", "sm90_xmma", "splitk", "dot")),
    ("embeddings, indexing", ("embedding", "index", "gather", "scatter", "sort", "radix", "unique", "segment",
                              "compute_grad_weight", "sum_and_scatter", "renorm", "krn_partial")),
    ("random numbers (dropout)", ("philox", "fused_dropout", "bernoulli", "distribution")),
    ("reductions", ("reduce",)),
    ("copies, fills", ("copy", "memcpy", "memset", "fill", "cat", "catarray")),
    ("element-wise", ("elementwise", "vectorized", "unrolled", "pointwise")),
)


def kind_of(name):
    lowered = name.lower()
    for kind, words in KINDS:
        if any(word in lowered for word in words):
            return kind
    return "other"


def kernel_table(prof, steps):
    """(rows by kind: (kind, microseconds per step, kernels per step), top kernels by time)."""
    by_kind, by_name = defaultdict(lambda: [0.0, 0]), defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CUDA or getattr(event, "is_user_annotation", False):
            continue     # host events, and ranges such as Optimizer.step#Adam.step that the profiler shows on the GPU
        us = event.time_range.elapsed_us()
        for table in (by_kind[kind_of(event.name)], by_name[event.name]):
            table[0] += us
            table[1] += 1
    kinds = sorted(((k, t / steps, n / steps) for k, (t, n) in by_kind.items()), key=lambda r: -r[1])
    names = sorted(((k, t / steps, n / steps) for k, (t, n) in by_name.items()), key=lambda r: -r[1])
    return kinds, names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mams-atsa")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--top", type=int, default=25, help="kernels listed by name")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    device = torch.device("cuda")
    cfg = compose("capsnet", args.dataset, None, args.overrides)
    data = PreparedData(cfg.data, cfg.paths, model_inputs(cfg), log=lambda *_: None)
    set_seed(0)
    model = use_kernels(build_model(cfg.model_name, cfg.model, data.info()), cfg.train.kernels).to(device).train()
    train = datasets(data, cfg, model.input_fields(), ("train",), device)["train"]
    batches = [b for b in make_train_loader(train, cfg.train, seed=0, graphed=True)
               if len(b["label"]) == cfg.train.batch_size][:args.steps]
    optimizer, scheduler = make_optimizer(model, cfg.train, 10 * len(batches), capturable=True)

    def eager(batch):
        return train_step(model, batch, optimizer, scheduler, cfg.train.grad_clip, device)
    graphs = GraphedSteps(eager, lambda b: update(model, b, optimizer, cfg.train.grad_clip, device),
                          optimizer, scheduler, device, cfg.train.cuda_graph_limit)
    for batch in batches:                    # warm-up, and every shape recorded
        graphs.step(batch)
    for batch in batches:
        graphs.step(batch)
    torch.cuda.synchronize()
    print(f"capsnet on {args.dataset}, {torch.cuda.get_device_name()}: {len(batches)} steps of "
          f"{cfg.train.batch_size}, {len(graphs.graphs)} graphs")
    for label, step in (("eager", eager), ("graphs", graphs.step)):
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for batch in batches:
                step(batch)
            torch.cuda.synchronize()
        kinds, names = kernel_table(prof, len(batches))
        total, count = sum(r[1] for r in kinds), sum(r[2] for r in kinds)
        print(f"\n{label}: {total:.0f} us of kernels a step, {count:.0f} kernels a step")
        print("| kind | us / step | share | kernels / step |\n|---|---|---|---|")
        for kind, us, n in kinds:
            print(f"| {kind} | {us:.1f} | {100 * us / max(total, 1e-9):.0f}% | {n:.1f} |")
        print(f"\n| {label}: kernel (top {args.top}) | us / step | calls / step |\n|---|---|---|")
        for name, us, n in names[:args.top]:
            print(f"| {name[:110]} | {us:.1f} | {n:.1f} |")
        if label == "eager":   # the operators that launched them (totals over all the steps)
            print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=args.top,
                                            max_name_column_width=60))


if __name__ == "__main__":
    main()
