"""One metrics function for every model: accuracy, macro-F1, per-class P/R/F1, confusion matrix.

Everything comes from the confusion matrix, in NumPy (scikit-learn's functions give the same
numbers, tests/test_metrics.py checks it, but importing sklearn.metrics slows every run's start and
each validation)."""
import numpy as np

from common.labels import LABELS


def classification_metrics(labels, predictions):
    """Percentages rounded to 2 decimals; confusion[i][j] = gold i predicted j (LABELS order). A class
    with no gold and no predicted instance has precision, recall and F1 0 (and counts in macro-F1)."""
    k = len(LABELS)
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    both = np.concatenate([labels.ravel(), predictions.ravel()])
    if labels.shape != predictions.shape or labels.ndim != 1 or ((both < 0) | (both >= k)).any():
        raise ValueError(f"classification_metrics: labels and predictions must be equal-length arrays of 0..{k - 1}")
    confusion = np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k)
    hits = np.diag(confusion)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    f1_denominator = 2 * hits + (predicted - hits) + (support - hits)          # 2 tp + fp + fn
    f1 = np.divide(2 * hits, f1_denominator, out=np.zeros(k), where=f1_denominator > 0)
    return {
        "accuracy": round(100.0 * float(hits.sum() / max(len(labels), 1)), 2),
        "macro_f1": round(100.0 * float(f1.mean()), 2),
        "per_class": {name: {"precision": round(100.0 * float(precision[i]), 2),
                             "recall": round(100.0 * float(recall[i]), 2),
                             "f1": round(100.0 * float(f1[i]), 2), "support": int(support[i])}
                      for i, name in enumerate(LABELS)},
        "confusion": confusion.tolist(),
        "labels": list(LABELS),
    }


def strict_accuracy(sentence_ids, gold, predicted):
    """Sentence-level accuracy (%): the share of sentences whose aspects are all classified right.

    One entry per aspect instance; instances of the same sentence share a sentence id. Rounded to 2
    decimals like the other percentages; None when there are no instances."""
    correct_by_sentence = {}
    for sentence, g, p in zip(sentence_ids, gold, predicted):
        key = int(sentence)
        correct_by_sentence[key] = correct_by_sentence.get(key, True) and bool(g == p)
    if not correct_by_sentence:
        return None
    return round(100.0 * sum(correct_by_sentence.values()) / len(correct_by_sentence), 2)
