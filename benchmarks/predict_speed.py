"""Inference speed: classify N aspects read from a JSON-lines file with a trained checkpoint and print
aspects/s, end to end (reading and checking the file, tokenising, encoding, the model, writing one
JSON line per aspect), the way `main.py --mode predict --input FILE` does it. Process start-up and
checkpoint loading are not counted (they are printed apart). Asserts nothing.

    python benchmarks/predict_speed.py                      # runs/mams-atsa/capsnet/seed0/checkpoint.pt, 10,000 aspects
    python benchmarks/predict_speed.py --checkpoint runs/mams-acsa/capsnet/seed0/checkpoint.pt --aspects 20000

The requests are the test sentences of the checkpoint's dataset with their aspects (terms for
ATSA, categories for ACSA), repeated until there are N aspects; they are written to a temporary
file first (not timed). Needs the raw data ($ABSA_DATA_ROOT or data/raw).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_process.preprocess import read_instances  # noqa: E402
from train.inference.api import SentimentClassifier  # noqa: E402
from train.inference.requests import read_requests  # noqa: E402


def request_lines(clf, count):
    """JSON lines {"text", "aspects"} from the test split of the checkpoint's dataset, `count` aspects."""
    instances = read_instances(clf.cfg.data, clf.cfg.paths)[0]["test"]
    by_sentence = {}
    for instance in instances:
        by_sentence.setdefault((instance.sentence_id, instance.text), []).append(instance.aspect)
    sentences = list(by_sentence.items())
    lines, total = [], 0
    while total < count:
        for (_, text), aspects in sentences:
            aspects = aspects[:count - total]
            lines.append(json.dumps({"text": text, "aspects": aspects}) + "\n")
            total += len(aspects)
            if total >= count:
                break
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/mams-atsa/capsnet/seed0/checkpoint.pt")
    parser.add_argument("--aspects", type=int, default=10000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, help="default: the checkpoint's train.eval_batch_size")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    clf = SentimentClassifier.load(args.checkpoint, args.device)
    load_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "requests.jsonl", Path(tmp) / "predictions.jsonl"
        source.write_text("".join(request_lines(clf, args.aspects)), encoding="utf-8")
        clf.predict_requests(read_requests(input_file=source)[:50], args.batch_size)   # warm-up
        passes = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results = clf.predict_requests(read_requests(input_file=source), args.batch_size)
            with open(target, "w", encoding="utf-8") as out:
                out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
            passes.append(time.perf_counter() - start)
    best = min(passes)
    print(f"{clf.cfg.name} on {clf.cfg.data.name} ({args.checkpoint}), {args.device}, "
          f"{torch.get_num_threads()} threads, batch {args.batch_size or clf.cfg.train.eval_batch_size}")
    print(f"checkpoint load: {load_seconds:.2f} s (not counted)")
    print(f"{len(results)} aspects end to end: best of {len(passes)} passes {best:.2f} s "
          f"(all: {', '.join(f'{p:.2f}' for p in passes)}) -> {len(results) / best:,.0f} aspects/s")


if __name__ == "__main__":
    main()
