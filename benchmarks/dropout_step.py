"""Milliseconds per CPU training step with torch's nn.Dropout against src/dropout.Dropout, in one
process on the same batches, the two taking turns block by block (so a slow spell of a shared
machine slows both alike). Prints each block's figure and the medians; asserts nothing.

    python benchmarks/dropout_step.py                                   # capsnet, mams-atsa
    python benchmarks/dropout_step.py --dataset mams-acsa --rounds 10
    python benchmarks/dropout_step.py --set model.embed_projection=300 --fraction 0.15

The two give the same numbers (tests/test_dropout.py); only the time to draw the masks differs.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.dropout import Dropout  # noqa: E402
from src.models import build_model  # noqa: E402
from train.config import compose  # noqa: E402
from train.data import PreparedData  # noqa: E402
from train.run import datasets, make_train_loader, model_inputs  # noqa: E402
from train.runtime import set_seed  # noqa: E402
from train.trainer import make_optimizer, train_step  # noqa: E402


def use_dropout(model, kind):
    """Replace every dropout module of `model` by one of `kind` with the same p."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Dropout):          # src/dropout.Dropout is one too
                setattr(module, name, kind(child.p))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="capsnet")
    parser.add_argument("--dataset", default="mams-atsa")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=0.12, help="share of an epoch's batches per block")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    cfg = compose(args.model, args.dataset, None, args.overrides)
    data = PreparedData(cfg.data, cfg.paths, model_inputs(cfg), log=lambda *_: None)
    set_seed(0)
    model = build_model(cfg.model_name, cfg.model, data.info())
    sets = datasets(data, cfg, model.input_fields(), ("train",), torch.device("cpu"))
    loader = make_train_loader(sets["train"], cfg.train, seed=0)
    batches = list(loader)
    block = max(1, int(len(batches) * args.fraction))
    optimizer, scheduler = make_optimizer(model, cfg.train, 5 + 2 * args.rounds * block)
    model.train()

    def step(batch):                         # the training loop's own step (train/trainer.py)
        train_step(model, batch, optimizer, scheduler, cfg.train.grad_clip, torch.device("cpu"))

    for batch in batches[:5]:
        step(batch)
    kinds = {"nn.Dropout": torch.nn.Dropout, "src/dropout.Dropout": Dropout}
    blocks = {name: [] for name in kinds}
    for turn in range(args.rounds):
        start = 5 + (turn * block) % max(1, len(batches) - block - 5)
        for name, kind in kinds.items():
            use_dropout(model, kind)
            clock = time.perf_counter()
            for batch in batches[start:start + block]:
                step(batch)
            blocks[name].append((time.perf_counter() - clock) / block * 1e3)
    print(f"{cfg.model_name} on {cfg.data.name}, CPU, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds of {block} steps each way")
    for name, figures in blocks.items():
        print(f"{name:20s} median {statistics.median(figures):6.1f} ms/step   blocks: "
              + " ".join(f"{x:.1f}" for x in figures))


if __name__ == "__main__":
    main()
