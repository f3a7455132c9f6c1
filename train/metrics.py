"""One metrics function for every model: accuracy, macro-F1, per-class P/R/F1, confusion matrix."""
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from common.labels import LABELS


def classification_metrics(labels, predictions):
    """Percentages rounded to 2 decimals; confusion[i][j] = gold i predicted j (LABELS order)."""
    classes = list(range(len(LABELS)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0)
    return {
        "accuracy": round(100.0 * float(accuracy_score(labels, predictions)), 2),
        "macro_f1": round(100.0 * float(f1_score(labels, predictions, labels=classes, average="macro",
                                                 zero_division=0)), 2),
        "per_class": {name: {"precision": round(100.0 * float(precision[i]), 2),
                             "recall": round(100.0 * float(recall[i]), 2),
                             "f1": round(100.0 * float(f1[i]), 2), "support": int(support[i])}
                      for i, name in enumerate(LABELS)},
        "confusion": confusion_matrix(labels, predictions, labels=classes).tolist(),
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
