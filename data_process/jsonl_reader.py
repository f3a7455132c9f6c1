"""Read a user's dataset split written as JSON Lines: one sentence per line.

    {"text": "The food was good.", "aspects": [{"term": "food", "from": 4, "to": 8, "polarity": "positive"}]}
    {"text": "The food was good.", "aspects": [{"category": "food", "polarity": "positive"}]}

Aspects with "term" (and character offsets "from"/"to", end exclusive, as in SemEval-2014 XML) make
the aspect-term task (atsa); aspects with "category" make the aspect-category task (acsa). The task is
read from the file; a file holding both kinds needs it given (`--set data.task=atsa|acsa`), and
then only the aspects of that kind are read. One `Instance` per (sentence, aspect), as the XML reader
gives; `conflict` polarities are dropped and counted. Blank lines are skipped. Every problem is one
UserError naming the file and line.
"""
import json
from pathlib import Path

from common.errors import UserError
from common.labels import LABEL_INDEX
from common.text import check_unicode

from .xml_reader import Instance, ReadStats, kept_polarity

TASKS = ("atsa", "acsa")
_KEY = {"atsa": "term", "acsa": "category"}
TASK_HINT = "--set data.task=atsa|acsa"


def read_jsonl(path, task=None, categories=None):
    """Parse one split file. Returns (instances, ReadStats, task).

    task: "atsa", "acsa" or None (read it from the file). categories: the allowed ACSA category
    names (None = any).
    """
    path = Path(path)
    if task is not None and task not in TASKS:
        raise UserError(f"unknown task {task!r}: expected 'atsa' or 'acsa'")
    records = _records(path)
    if not records:
        raise UserError(f"{path}: no sentences (the file is empty)")
    task = _task(path, records, task)
    key = _KEY[task]

    instances, stats = [], ReadStats()
    for sentence_id, (line, text, aspects) in enumerate(records):
        stats.sentences += 1
        where = f"{path}:{line}"
        used = 0
        for number, aspect in enumerate(aspects, 1):
            if key not in aspect:
                if _KEY[_other(task)] in aspect:
                    continue  # the other task's aspect in a mixed file
                raise UserError(f"{where}: aspect {number} has no {key!r}" +
                                (" (missing category)" if task == "acsa" else ""))
            used += 1
            polarity = aspect.get("polarity")
            if not kept_polarity(polarity, f"{where}: aspect {number}", stats):
                continue
            if task == "atsa":
                instances.append(_term_instance(aspect, text, sentence_id, polarity, f"{where}: aspect {number}"))
            else:
                category = aspect["category"]
                if not isinstance(category, str) or not category.strip():
                    raise UserError(f"{where}: aspect {number}: missing category (got {category!r})")
                if categories is not None and category not in categories:
                    raise UserError(f"{where}: aspect {number}: unknown category {category!r} (expected one "
                                    f"of {', '.join(categories)})")
                instances.append(Instance(sentence_id, text, category, -1, -1, LABEL_INDEX[polarity]))
        if not used:
            stats.sentences_without_aspects += 1
    if not instances:
        raise UserError(f"{path}: no {key} aspect with a usable polarity (is this the right task's file?)")
    return instances, stats, task


def sentence_lines(path):
    """The 1-based line number of each sentence (non-blank line) of a JSONL file, by sentence id."""
    with open(path, encoding="utf-8-sig") as handle:
        return [number for number, line in enumerate(handle, 1) if line.strip()]


def json_lines(path):
    """(line number, object) for each non-blank line of a JSON-lines file (or a stream such as
    /dev/stdin); a file that is missing, a folder, unreadable, not UTF-8 or holds a line that is not
    JSON is one UserError."""
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a JSON-lines file")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise UserError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
                except RecursionError:
                    raise UserError(f"{where}: not valid JSON (nested too deeply)") from None
                yield number, obj
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None


def _records(path):
    """[(line number, text, [aspect dicts])] for the non-blank lines; shape errors raised here."""
    if not path.is_file():
        raise UserError(f"{path}: split file not found")
    records = []
    for number, obj in json_lines(path):
        where = f"{path}:{number}"
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) \
                or not isinstance(obj.get("aspects"), list):
            raise UserError(f"{where}: expected an object with a \"text\" string and an \"aspects\" "
                            f"list, got {_preview(obj)}")
        if not obj["text"].strip():
            raise UserError(f"{where}: empty \"text\"")
        check_unicode(obj["text"], f"{where}: the text")
        for i, aspect in enumerate(obj["aspects"], 1):
            if not isinstance(aspect, dict):
                raise UserError(f"{where}: aspect {i} is not an object (got {_preview(aspect)})")
            for key, value in aspect.items():
                if isinstance(value, str):
                    check_unicode(value, f"{where}: aspect {i}'s {key!r}")
        records.append((number, obj["text"], obj["aspects"]))
    return records


def _task(path, records, task):
    """The task of the file: given, or read from the kinds of aspects it holds."""
    kinds = {t for _, _, aspects in records for a in aspects for t in TASKS if _KEY[t] in a}
    if task is not None:
        if kinds and task not in kinds:
            (found,) = kinds
            raise UserError(f"{path}: data.task is {task} but the file holds only {_KEY[found]} aspects "
                            f"({found}); use {TASK_HINT}")
        return task
    if len(kinds) == 2:
        raise UserError(f"{path}: holds both term (atsa) and category (acsa) aspects; choose one with "
                        f"{TASK_HINT}")
    if not kinds:
        for line, _, aspects in records:
            if aspects:
                raise UserError(f"{path}:{line}: aspect 1 has neither \"term\" nor \"category\"")
        raise UserError(f"{path}: no sentence has any aspect")
    return kinds.pop()


def _other(task):
    return "acsa" if task == "atsa" else "atsa"


def _term_instance(aspect, text, sentence_id, polarity, where):
    term = aspect["term"]
    if not isinstance(term, str) or not term.strip():
        raise UserError(f"{where}: missing or empty term (got {term!r})")
    start, end = aspect.get("from"), aspect.get("to")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise UserError(f"{where}: term {term!r} has missing or non-integer \"from\"/\"to\" offsets "
                        f"(got {start!r}, {end!r})")
    if not 0 <= start < end <= len(text):
        raise UserError(f"{where}: offsets {start}-{end} of the term {term!r} are not a span of the text "
                        f"(0 <= from < to <= {len(text)}, its length)")
    if text[start:end] != term:
        raise UserError(f"{where}: offsets {start}-{end} give {text[start:end]!r}, not the term {term!r}")
    return Instance(sentence_id, text, term, start, end, LABEL_INDEX[polarity])


def _preview(value, limit=60):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."
