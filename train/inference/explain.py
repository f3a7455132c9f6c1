"""`--mode explain`: the weights behind each prediction, as JSON records and heat maps."""
import re
from pathlib import Path

from ..plots import plot_explanation


def slug(text, limit=40):
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "x"


def explain_job(clf, requests, out=None, default_folder=None):
    """explain: one record per (text, aspect) with its heat map written to a PNG (`out`: a .png file,
    or a folder; default: <default_folder>/<slug>.png). Returns the records, each with "png"."""
    clf.check_explains()
    pairs = [(text, aspect) for text, aspects, _ in requests for aspect in aspects]
    records = []
    for text, aspect in pairs:
        record = clf.explain(text, aspect)
        name = f"{slug(text)}--{slug(aspect, 30)}.png"
        if out is None:
            path = Path(default_folder) / name
        elif str(out).endswith(".png"):
            path = Path(out) if len(pairs) == 1 else Path(out).with_name(f"{Path(out).stem}--{slug(aspect, 30)}.png")
        else:
            path = Path(out) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_explanation(record, path)
        records.append(dict(record, png=str(path)))
    return records
