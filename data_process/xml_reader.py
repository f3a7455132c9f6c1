"""Read SemEval-2014-format XML (the format of MAMS and SemEval-14 Task 4).

One `Instance` per (sentence, aspect) pair. ATSA reads `<aspectTerm term from to polarity>`,
ACSA reads `<aspectCategory category polarity>`. `conflict` polarities are dropped and counted.
Every problem is raised as a UserError naming the file (and line where known).
"""
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from common.labels import DROPPED_POLARITIES, LABEL_INDEX, LABELS


@dataclass(frozen=True)
class Instance:
    sentence_id: int     # position of the sentence in the file
    text: str
    aspect: str          # the term (ATSA) or the category name (ACSA)
    start: int           # character offsets of the term (ATSA); -1 for ACSA
    end: int
    label: int           # index into LABELS


@dataclass
class ReadStats:
    sentences: int = 0
    sentences_without_aspects: int = 0
    dropped_conflict: int = 0


def read_semeval_xml(path, task, categories=None):
    """Parse one split file. Returns (instances, ReadStats).

    task: "atsa" or "acsa". categories: the allowed ACSA category names (None = any).
    """
    path = Path(path)
    if task not in ("atsa", "acsa"):
        raise UserError(f"unknown task {task!r}: expected 'atsa' or 'acsa'")
    if not path.is_file():
        raise UserError(f"{path}: split file not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise UserError(f"{path}: malformed XML ({err})") from None
    if root.tag != "sentences":
        raise UserError(f"{path}: root element is <{root.tag}>, expected <sentences> (SemEval-2014 format)")

    tag = "aspectTerm" if task == "atsa" else "aspectCategory"
    instances, stats = [], ReadStats()
    for sentence_id, sentence in enumerate(root.iter("sentence")):
        stats.sentences += 1
        where = f"{path}: sentence {sentence_id + 1}"
        text_node = sentence.find("text")
        if text_node is None or not (text_node.text or "").strip():
            raise UserError(f"{where}: missing or empty <text>")
        text = text_node.text
        aspects = list(sentence.iter(tag))
        if not aspects:
            stats.sentences_without_aspects += 1
        for node in aspects:
            polarity = node.get("polarity")
            if not kept_polarity(polarity, where, stats):
                continue
            if task == "atsa":
                instances.append(_term_instance(node, text, sentence_id, polarity, where))
            else:
                category = node.get("category")
                if not category:
                    raise UserError(f"{where}: <aspectCategory> without a category")
                if categories is not None and category not in categories:
                    raise UserError(f"{where}: unknown category {category!r} (expected one of "
                                    f"{', '.join(categories)})")
                instances.append(Instance(sentence_id, text, category, -1, -1, LABEL_INDEX[polarity]))
    if not instances:
        raise UserError(f"{path}: no <{tag}> with a usable polarity (is this the right task's file?)")
    return instances, stats


def kept_polarity(polarity, where, stats):
    """True for a polarity of LABELS; False for a dropped one (`conflict`, counted in stats); a
    UserError naming `where` for anything else. Shared by the XML and JSON-lines readers."""
    if polarity in DROPPED_POLARITIES:
        stats.dropped_conflict += 1
        return False
    if polarity not in LABEL_INDEX:
        raise UserError(f"{where}: unknown polarity {polarity!r} (expected one of "
                        f"{', '.join(LABELS + DROPPED_POLARITIES)})")
    return True


def _term_instance(node, text, sentence_id, polarity, where):
    term = node.get("term")
    try:
        start, end = int(node.get("from")), int(node.get("to"))
    except (TypeError, ValueError):
        raise UserError(f"{where}: aspect term {term!r} has missing or non-integer from/to offsets") from None
    if not term:
        raise UserError(f"{where}: <aspectTerm> without a term")
    if not (0 <= start < end <= len(text)) or text[start:end] != term:
        raise UserError(f"{where}: offsets {start}-{end} give {text[start:end]!r}, "
                        f"not the term {term!r}")
    return Instance(sentence_id, text, term, start, end, LABEL_INDEX[polarity])
