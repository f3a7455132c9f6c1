"""bf16 against float32 at inference: on each checkpoint's own test split, how many labels bf16
autocast changes, the accuracy of each, and the time of a test pass in each. Asserts nothing.

    python benchmarks/bf16_agreement.py        # CapsNet on MAMS-ATSA and MAMS-ACSA, seed 0
    python benchmarks/bf16_agreement.py --checkpoints runs/mams-atsa/bert/seed0/checkpoint.pt --device cpu

The test instances are the processed test split of the checkpoint's dataset (--mode test's), read
with the checkpoint's encoder; each pass runs the model as --mode predict does (inference.bf16 on or
off, train.eval_batch_size per call), fastest of --repeats passes. inference.bf16 stays off by
default unless no label changes on the MAMS test sets (docs/SERVING.md).
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT = ("runs/mams-atsa/capsnet/seed0/checkpoint.pt", "runs/mams-acsa/capsnet/seed0/checkpoint.pt")


def test_pass(clf, dataset, repeats):
    """(scores (N, C), seconds of the fastest pass) of clf's model over `dataset`."""
    from src.dataset import make_eval_loader
    from train.trainer import predict_scores
    best, scores = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        with clf.autocast():
            scores, _ = predict_scores(clf.model, make_eval_loader(dataset, clf.cfg.train.eval_batch_size),
                                       clf.device)
        best = min(best, time.perf_counter() - start)
    return scores, best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=",".join(DEFAULT), help="comma-separated checkpoint files")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="passes per precision (the fastest is shown)")
    args = parser.parse_args()
    from common.errors import UserError
    from train.config import compose
    from train.inference.api import SentimentClassifier
    from train.inference.evaluate import load_for_inference
    from train.run import datasets
    rows = []
    for checkpoint in args.checkpoints.split(","):
        try:
            fp32 = SentimentClassifier.load(checkpoint, args.device)
            bf16 = SentimentClassifier.load(checkpoint, args.device, bf16=True)
            cfg = compose(fp32.cfg.model_name, fp32.cfg.data.name)
            model, data, ckpt_cfg, _ = load_for_inference(cfg, checkpoint, fp32.device, log=lambda *_: None)
        except UserError as err:
            sys.exit(f"error: {err}")
        test = datasets(data, ckpt_cfg, model.input_fields(), ("test",), fp32.device)["test"]
        gold = test.arrays["label"].cpu()
        (s32, t32), (s16, t16) = test_pass(fp32, test, args.repeats), test_pass(bf16, test, args.repeats)
        l32, l16 = s32.argmax(-1), s16.argmax(-1)
        rows.append((f"{fp32.cfg.name} / {fp32.cfg.data.name}", len(gold), int((l32 != l16).sum()),
                     100.0 * float((l32 == gold).float().mean()), 100.0 * float((l16 == gold).float().mean()),
                     float((fp32.model.probabilities(s32) - bf16.model.probabilities(s16)).abs().max()), t32, t16))
    print("| model / dataset | test instances | labels bf16 changes | accuracy float32 | accuracy bf16 | "
          "largest score difference | test pass float32 | test pass bf16 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, changed, a32, a16, diff, t32, t16 in rows:
        print(f"| {name} | {n} | {changed} | {a32:.2f} | {a16:.2f} | {diff:.4f} | {t32:.2f} s | {t16:.2f} s |")


if __name__ == "__main__":
    main()
