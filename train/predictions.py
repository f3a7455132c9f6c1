"""A run's test predictions: one record per test instance, kept in the run folder as predictions.jsonl."""
import json

from common.io import write_text
from common.labels import LABELS

from .trainer import predict_scores


def test_predictions(model, loader, arrays, device, bf16=False):
    """[{sentence_id, text, aspect, gold, predicted, scores: {label: probability}}] in test order.

    `arrays` is the processed test split (data.split("test")); the loader covers its first
    len(loader.dataset) instances (data.limit), in file order."""
    scores, labels = predict_scores(model, loader, device, bf16)
    probabilities = model.probabilities(scores).tolist()
    predicted = scores.argmax(-1).tolist()
    records = []
    for i, (gold, pred, probs) in enumerate(zip(labels.tolist(), predicted, probabilities)):
        records.append({"sentence_id": int(arrays["sentence_id"][i]), "text": str(arrays["text"][i]),
                        "aspect": str(arrays["aspect_text"][i]), "gold": LABELS[gold], "predicted": LABELS[pred],
                        "scores": {name: round(float(p), 6) for name, p in zip(LABELS, probs)}})
    return records


def write_predictions(path, records):
    """predictions.jsonl, written atomically (one JSON object per line)."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_predictions(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
