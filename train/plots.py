"""The two pictures a researcher looks at first: training curves and the test confusion matrix."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.io import atomic_path  # noqa: E402


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_curves(history, path, title):
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    left.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    left.legend()
    right.plot(epochs, [h["val_accuracy"] for h in history], marker="o", label="val accuracy")
    right.plot(epochs, [h["val_macro_f1"] for h in history], marker="o", label="val macro-F1")
    right.set(xlabel="epoch", ylabel="%", title="validation")
    right.legend()
    fig.suptitle(title)
    _save(fig, path)


def plot_confusion(confusion, labels, path, title):
    fig, ax = plt.subplots(figsize=(4.5, 4))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="gold", title=title)
    top = max(max(row) for row in confusion) or 1
    for i, row in enumerate(confusion):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save(fig, path)
