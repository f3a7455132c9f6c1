"""`--mode explain`: the weights behind each prediction, as JSON records and heat maps.

All or nothing: every request is checked, the output places are checked writable, and every record
is computed before the first heat map is written; the heat maps are then written to temporary files
and renamed into place together. With several (text, aspect) pairs, `--out NAME.png` writes
NAME-1--<aspect>.png, NAME-2--<aspect>.png, ... (numbered in request order); in a folder (`--out
DIR`, or the run folder's explain/) each map is <text>--<aspect>.png, numbered -2, -3, ... where two
names would be the same.
"""
import re
import unicodedata
from contextlib import ExitStack
from pathlib import Path

from common.errors import UserError
from common.io import atomic_path, check_writable_dir

from ..plots import plot_explanation

# Endings that name an image file of another format: --out given one of them is a mistake, not a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".svg", ".pdf", ".eps")


def slug(text, limit=40):
    """A file-name part for `text`: ASCII letters and digits (accents dropped: café -> cafe), '-' between."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:limit].rstrip("-") or "x"


def output_paths(pairs, out=None, default_folder=None):
    """One distinct .png path per (text, aspect) pair; a bad `out` is a UserError naming --out."""
    if out is not None and not str(out).strip():
        raise UserError("--out '': takes a .png file or a folder (left out: beside the model)")
    suffix = Path(str(out)).suffix.lower() if out is not None else ""
    if suffix in IMAGE_SUFFIXES and suffix != ".png" and not Path(out).is_dir():
        raise UserError(f"--out {out}: explain writes PNG heat maps; name a .png file or a folder")
    if out is not None and str(out).lower().endswith(".png"):
        out = Path(out)
        if out.is_dir():
            raise UserError(f"--out {out}: is a folder; name a .png file or a folder without the .png ending")
        check_writable_dir(out.parent, "--out")
        if len(pairs) == 1:
            return [out]
        return [out.with_name(f"{out.stem}-{k}--{slug(aspect, 30)}.png") for k, (_, aspect) in enumerate(pairs, 1)]
    folder = Path(default_folder if out is None else out)
    check_writable_dir(folder, "--out" if out is not None else "the run folder's explain/")
    paths, used = [], set()
    for text, aspect in pairs:
        stem = f"{slug(text)}--{slug(aspect, 30)}"
        name, k = f"{stem}.png", 1
        while name in used:
            k += 1
            name = f"{stem}-{k}.png"
        used.add(name)
        paths.append(folder / name)
    return paths


def explain_job(clf, requests, out=None, default_folder=None):
    """explain: one record per (text, aspect) with its heat map written to a PNG (`out`: a .png file,
    or a folder; default: <default_folder>/<slug>.png). Returns the records, each with "png"."""
    clf.check_explains()
    clf.check_requests(requests)                      # every request, before any work
    pairs = [(text, aspect) for text, aspects, _ in requests for aspect in aspects]
    paths = output_paths(pairs, out, default_folder)
    records = [clf.explain(text, aspect) for text, aspect in pairs]
    with ExitStack() as stack:   # every map to a temporary file; renamed into place only if all are written
        temporaries = [stack.enter_context(atomic_path(path)) for path in paths]
        for record, tmp in zip(records, temporaries):
            plot_explanation(record, tmp)
    return [dict(record, png=str(path)) for record, path in zip(records, paths)]
