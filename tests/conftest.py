"""Shared fixtures: the repository root on sys.path, the raw data beside the checkout, a tiny
SemEval-2014-format XML writer, and config dicts whose output paths point into tmp folders."""
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr, escape

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# ../shared/data beside the checkout (CI lays a copy of shared/ there)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data():
    """The raw data folder (<root>/MAMS-ATSA/train.xml ...). Skips only if the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"raw data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def sentence_xml(text, terms=(), categories=()):
    """One <sentence>: terms = [(term, from, to, polarity)], categories = [(category, polarity)]."""
    parts = [f"  <sentence>\n    <text>{escape(text)}</text>\n"]
    if terms:
        parts.append("    <aspectTerms>\n")
        for term, start, end, polarity in terms:
            parts.append(f"      <aspectTerm term={quoteattr(term)} from=\"{start}\" to=\"{end}\" "
                         f"polarity={quoteattr(polarity)}/>\n")
        parts.append("    </aspectTerms>\n")
    if categories:
        parts.append("    <aspectCategories>\n")
        for category, polarity in categories:
            parts.append(f"      <aspectCategory category={quoteattr(category)} polarity={quoteattr(polarity)}/>\n")
        parts.append("    </aspectCategories>\n")
    parts.append("  </sentence>\n")
    return "".join(parts)


def term(text, word, polarity, occurrence=0):
    """(term, from, to, polarity) for the occurrence-th appearance of `word` in `text`."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(word, start + 1)
    return (word, start, start + len(word), polarity)


def write_xml(path, sentences, root="sentences"):
    """Write a SemEval-2014-format file from sentence_xml() strings; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>\n' + "".join(sentences) + f"</{root}>\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def xml_writer(tmp_path):
    """write(name, sentences, root='sentences') -> path of a small XML file under tmp_path."""
    def write(name, sentences, root="sentences"):
        return write_xml(tmp_path / name, sentences, root)
    return write


@pytest.fixture
def tmp_paths(tmp_path):
    """{'processed': ..., 'runs': ...}: output folders that are never the repository's."""
    paths = {"processed": tmp_path / "processed", "runs": tmp_path / "runs"}
    return paths


def compose_cfg(dataset="mams-atsa", model="capsnet", processed=None, runs=None, overrides=()):
    """A composed config whose processed/runs paths point at the given (tmp) folders."""
    from train.config import compose
    cfg = compose(model, dataset, None, list(overrides))
    if processed is not None:
        cfg["paths"]["processed"] = str(processed)
    if runs is not None:
        cfg["paths"]["runs"] = str(runs)
    return cfg
