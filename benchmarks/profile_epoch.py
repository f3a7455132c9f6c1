"""Where one training epoch goes: cutting batches, forward, backward, gradient clipping + Adam, the
validation pass, and, for models that split into `encode` and a capsule `head` (CapsNet, CapsNet-DR),
the two halves' forward + backward apart. Prints seconds per epoch; asserts nothing.

    python benchmarks/profile_epoch.py                        # capsnet, mams-atsa, CPU
    python benchmarks/profile_epoch.py --model td-lstm --dataset mams-acsa --threads 1

Each part is timed with wall clocks around the real calls on the real batches of one epoch (seed 0),
after a warm-up of 5 steps; on CUDA every timed part ends with a synchronisation. The encoder/head
split re-runs them on the same batches, each part on its own, so it adds up to about the forward +
backward time, not exactly.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.dataset import make_eval_loader  # noqa: E402
from src.models import build_model  # noqa: E402
from train.config import compose  # noqa: E402
from train.data import PreparedData  # noqa: E402
from train.kernels import use_kernels  # noqa: E402
from train.run import datasets, make_train_loader, model_inputs  # noqa: E402
from train.runtime import pick_device, set_seed  # noqa: E402
from train.trainer import evaluate, make_optimizer  # noqa: E402


class Clock:
    def __init__(self, device):
        self.device, self.totals = device, {}

    def __call__(self, name, fn):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start
        return out


def encoder_and_head(model, batches, clock):
    """CapsNet's encoder (model.encode: embeddings and BiGRU) and capsule head, each forward +
    backward on its own (the head's input states are cut from the encoder's graph)."""
    for batch in batches:
        def encoder():
            states, mask, aspect = model.encode(batch)
            (states.sum() + aspect.sum()).backward()
            return states.detach().requires_grad_(), mask, aspect.detach()
        states, mask, aspect = clock("  encoder: embeddings + BiGRU forward + backward", encoder)
        clock("  capsule head forward + backward", lambda: model.head(states, mask, aspect).sum().backward())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="capsnet")
    parser.add_argument("--dataset", default="mams-atsa")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = compose(args.model, args.dataset, None, args.overrides)
    device = pick_device(args.device)
    data = PreparedData(cfg.data, cfg.paths, model_inputs(cfg), log=lambda *_: None)
    set_seed(0)
    # --set train.kernels=reference profiles the readable modules
    model = use_kernels(build_model(cfg.model_name, cfg.model, data.info()), cfg.train.kernels).to(device)
    sets = datasets(data, cfg, model.input_fields(), ("train", "val"), device)
    loader = make_train_loader(sets["train"], cfg.train, seed=0)
    optimizer, _ = make_optimizer(model, cfg.train, len(loader))
    clock = Clock(device)
    batches = clock("cutting the epoch's batches (loader)", lambda: list(loader))
    model.train()
    for i, batch in enumerate(batches):
        name = "warm-up" if i < 5 else None

        def forward():
            return model.loss(model(batch).float(), batch["label"])

        def backward():
            optimizer.zero_grad(set_to_none=True)
            loss.backward()

        def step():
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
        loss = clock(name or "forward (model + loss)", forward)
        clock(name or "backward", backward)
        clock(name or "gradient clipping + Adam", step)
    clock.totals.pop("warm-up", None)
    clock("validation pass", lambda: evaluate(model, make_eval_loader(sets["val"], cfg.train.eval_batch_size), device))
    if hasattr(model, "encode") and hasattr(model, "head"):
        model.train()
        encoder_and_head(model, batches[5:], clock)
    print(f"{cfg.model_name} on {cfg.data.name}, {device}, {torch.get_num_threads()} threads, "
          f"{len(batches)} batches of {cfg.train.batch_size} (timed: {len(batches) - 5})")
    train = sum(clock.totals[k] for k in ("forward (model + loss)", "backward", "gradient clipping + Adam"))
    print(f"{'training steps (forward + backward + clip/Adam)':52s} {train:7.2f} s")
    for name, seconds in clock.totals.items():
        print(f"{name:52s} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
