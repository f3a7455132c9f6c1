"""Speed and memory figures: preprocessing time, training samples/s (and tokens/s), peak memory,
on the CPU and, when one is present, on CUDA. Prints a table; asserts nothing.

    python benchmarks/train_speed.py                       # capsnet, mams-atsa, 100 steps
    python benchmarks/train_speed.py --model bert --steps 20 --devices cpu

Needs the raw data ($ABSA_DATA_ROOT or data/raw). Preprocessing is timed from scratch into a
temporary folder, so nothing under data/ is touched.
"""
import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_process.preprocess import preprocess  # noqa: E402
from src.dataset import ABSADataset  # noqa: E402
from src.models import build_model  # noqa: E402
from train.config import compose  # noqa: E402
from train.data import PreparedData  # noqa: E402
from train.run import make_train_loader, set_seed  # noqa: E402
from train.trainer import make_optimizer, move, token_count, train_step  # noqa: E402


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def time_training(cfg, data, device, steps, warmup=5):
    set_seed(0)
    model = build_model(cfg["model"], data.info()).to(device)
    dataset = ABSADataset(data.split("train"), model.input_fields(cfg["data"]["task"]))
    loader = make_train_loader(dataset, cfg["train"], seed=0)
    optimizer, scheduler = make_optimizer(model, cfg["train"], steps + warmup)
    bf16 = bool(cfg["train"].get("amp_bf16"))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    done, samples, tokens, start = 0, 0, 0, None
    while done < steps + warmup:
        for batch in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start, samples, tokens = time.perf_counter(), 0, 0
            train_step(model, move(batch, device), optimizer, scheduler, cfg["train"]["grad_clip"], device, bf16)
            samples += len(batch["label"])
            tokens += int(token_count(batch))
            done += 1
            if done == steps + warmup:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else peak_rss_mib()
    return samples / seconds, tokens / seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="capsnet")
    parser.add_argument("--dataset", default="mams-atsa")
    parser.add_argument("--config")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(args.model, args.dataset, args.config, args.overrides + [f"paths.processed={tmp}"])
        start = time.perf_counter()
        preprocess(cfg, log=lambda *_: None)
        prep = time.perf_counter() - start
        start = time.perf_counter()
        data = PreparedData(cfg, log=lambda *_: None)
        bert_prep = time.perf_counter() - start
        rows = []
        for name in args.devices.split(","):
            if name == "cuda" and not torch.cuda.is_available():
                continue
            device = torch.device(name)
            label = torch.cuda.get_device_name() if name == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
            rows.append((label,) + time_training(cfg, data, device, args.steps))
    print(f"\n{args.model} on {args.dataset}, batch {cfg['train']['batch_size']}, {args.steps} timed steps "
          f"after 5 warm-up steps")
    bert_note = f"; BERT inputs: {bert_prep:.2f} s" if cfg["model"].get("bert_path") else ""
    print(f"preprocessing from raw XML: {prep:.2f} s" + bert_note)
    print(f"{'device':32s} {'samples/s':>10s} {'tokens/s':>10s} {'peak MiB':>10s}")
    for label, sps, tps, peak in rows:
        print(f"{label:32s} {sps:10.1f} {tps:10.1f} {peak:10.1f}")
    print("(peak MiB: CUDA = max allocated by torch; CPU = peak resident set of the process)")


if __name__ == "__main__":
    main()
