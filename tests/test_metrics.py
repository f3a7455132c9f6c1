"""train/metrics.py: the NumPy metrics give scikit-learn's numbers (accuracy, macro-F1 with
zero_division=0, per-class precision / recall / F1 / support, the confusion matrix)."""
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from train.metrics import classification_metrics


def sklearn_metrics(labels, predictions):
    classes = [0, 1, 2]
    precision, recall, f1, support = precision_recall_fscore_support(labels, predictions, labels=classes,
                                                                     zero_division=0)
    return (round(100.0 * accuracy_score(labels, predictions), 2),
            round(100.0 * f1_score(labels, predictions, labels=classes, average="macro", zero_division=0), 2),
            [[round(100.0 * v[i], 2) for v in (precision, recall, f1)] + [int(support[i])] for i in classes],
            confusion_matrix(labels, predictions, labels=classes).tolist())


@pytest.mark.parametrize("case", range(200))
def test_numpy_metrics_equal_sklearn_metrics(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(1, 60))
    present = rng.choice(3, size=int(rng.integers(1, 4)), replace=False)   # some classes may be absent
    labels = rng.choice(present, size=n)
    predictions = rng.choice(3, size=n) if case % 3 else labels.copy()
    if case % 7 == 0:
        predictions = np.full(n, present[0])                               # one class predicted only
    got = classification_metrics(labels, predictions)
    accuracy, macro_f1, per_class, confusion = sklearn_metrics(labels, predictions)
    assert got["accuracy"] == accuracy and got["macro_f1"] == macro_f1 and got["confusion"] == confusion
    assert [[c["precision"], c["recall"], c["f1"], c["support"]] for c in got["per_class"].values()] == per_class


def test_labels_out_of_range_or_of_another_length_are_refused():
    with pytest.raises(ValueError, match="0..2"):
        classification_metrics([0, 3], [0, 1])
    with pytest.raises(ValueError, match="equal-length"):
        classification_metrics([0, 1], [0])
