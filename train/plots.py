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


def plot_explanation(record, path):
    """The heat maps of an explain record (train.inference.api.SentimentClassifier.explain): one panel per
    weight map, words along the x axis, one row per weight (u, each sentiment capsule, each hop...);
    the predicted label and its scores in the title."""
    maps = record["weights"]
    width = max(6.0, 0.45 * max(len(m["words"]) for m in maps) + 2.5)
    heights = [0.9 + 0.45 * len(m["rows"]) for m in maps]
    fig, axes = plt.subplots(len(maps), 1, figsize=(width, sum(heights) + 1.2), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, heat in zip(axes[:, 0], maps):
        rows = list(heat["rows"])
        # the aspect marker (CapsNet on ATSA) is left out of the colour scale: it would wash out the other words
        skip = (heat.get("marker") or {}).get("position")
        top = max((v for r in rows for j, v in enumerate(heat["rows"][r]) if j != skip), default=0.0) or 1.0
        image = ax.imshow([heat["rows"][r] for r in rows], cmap="Reds", aspect="auto", vmin=0.0, vmax=top)
        ax.set_xticks(range(len(heat["words"])), heat["words"], rotation=60, ha="right", fontsize=9)
        ax.set_yticks(range(len(rows)), rows, fontsize=9)
        title = heat["name"] if skip is None else (f"{heat['name']}  (colours scaled to the words; "
                                                   f"{heat['marker']['word']} marks the term's place)")
        ax.set_title(title, fontsize=10)
        if len(heat["words"]) <= 40:   # the values themselves, when they fit
            for i, r in enumerate(rows):
                for j, value in enumerate(heat["rows"][r]):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if value > top / 2 else "black")
        fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    scores = ", ".join(f"{name} {value:.2f}" for name, value in record["scores"].items())
    fig.suptitle(f"{record['model']}: aspect {record['aspect']!r} -> {record['label']} ({scores})", fontsize=11)
    fig.tight_layout()
    _save(fig, path)
