"""Requests for predict and explain: reading (--text/--aspect, a JSONL file, or Python pairs),
validation, and turning them into instances. The classifying itself is train/inference/api.py's
SentimentClassifier, the one code path for the command line and for Python callers.

ATSA aspects are terms located in the text (case-insensitive, whole words first); ACSA aspects are
category names of the dataset the checkpoint was trained on.
"""
import re
from pathlib import Path

from common.errors import UserError
from common.text import check_unicode
from data_process.jsonl_reader import json_lines
from data_process.xml_reader import Instance


def read_requests(text=None, aspects=(), input_file=None):
    """[(text, [aspects], where)] from --text/--aspect or a JSONL file of {"text", "aspects"}."""
    requests = []
    if text is not None:
        requests.append((text, list(aspects), "--text"))
    if input_file:
        path = Path(input_file)
        if path.is_dir():
            raise UserError(f"{path}: is a folder; --input takes a JSON-lines file")
        if not path.exists():
            raise UserError(f"{path}: input file not found")   # else read, /dev/stdin included
        before = len(requests)
        for line_no, item in json_lines(path):
            where = f"{path}:{line_no}"
            if not isinstance(item, dict) or not isinstance(item.get("text"), str) \
                    or not isinstance(item.get("aspects"), list) \
                    or not all(isinstance(a, str) for a in item["aspects"]):
                raise UserError(f'{where}: expected {{"text": "...", "aspects": ["...", ...]}}')
            requests.append((item["text"], item["aspects"], where))
        if len(requests) == before:
            raise UserError(f'{path}: no requests in the file (one {{"text": ..., "aspects": [...]}} a line)')
    if not requests:
        raise UserError("predict needs --text with one or more --aspect, or --input FILE (JSONL)")
    return check_requests(requests)


def requests_from_items(items):
    """[(text, [aspects], where)] from Python items: (text, [aspects]), (text, aspect) or
    {"text": ..., "aspects": [...]}; `where` is "item <k>"."""
    if isinstance(items, (str, dict)) or (isinstance(items, tuple) and len(items) == 2 and isinstance(items[0], str)):
        items = [items]  # one item passed bare
    requests = []
    for k, item in enumerate(items):
        where = f"item {k}"
        if isinstance(item, dict):
            text, aspects = item.get("text"), item.get("aspects", item.get("aspect"))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            text, aspects = item
        else:
            raise UserError(f'{where}: expected (text, [aspects]) or {{"text": ..., "aspects": [...]}}')
        if isinstance(aspects, str):
            aspects = [aspects]
        if not isinstance(text, str) or not isinstance(aspects, (list, tuple)) \
                or not all(isinstance(a, str) for a in aspects):
            raise UserError(f"{where}: expected a text string and a list of aspect strings")
        requests.append((text, list(aspects), where))
    return check_requests(requests)


def check_requests(requests):
    for text_value, aspect_list, where in requests:
        if not any(char.isprintable() and not char.isspace() for char in text_value):
            raise UserError(f"{where}: empty text" + (" (no visible character)" if text_value.strip() else ""))
        if not aspect_list:
            raise UserError(f"{where}: no aspects given (use --aspect, or an \"aspects\" list)")
        for what, value in (("text", text_value), *(("aspect", a) for a in aspect_list)):
            check_unicode(value, f"{where}: the {what}", command_line=where == "--text")
    return requests


def shortened(value, limit=80):
    """repr(value), cut to about `limit` characters: an error message echoes a request, not all of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} characters)"


def locate_term(text, term, where):
    """(start, end) of `term` in `text`: first whole-word match, else first substring match (case-insensitive)."""
    if not term.strip():
        raise UserError(f"{where}: empty aspect")
    span = find_term(text, term)
    if span is None:
        raise UserError(f"{where}: aspect {shortened(term)} not found in the text")
    return span


def find_term(text, term):
    """locate_term's search; None when absent. ASCII text is searched with str.find (a regular
    expression per distinct term costs a compilation each: most of the time of predicting 10,000
    aspects); other text with the regular expressions, whose case folding str.lower does not copy."""
    if not (text.isascii() and term.isascii()):
        match = re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) \
            or re.search(re.escape(term), text, re.IGNORECASE)
        return match and match.span()
    lowered, term = text.lower(), term.lower()
    first = start = lowered.find(term)
    while start >= 0:
        end = start + len(term)
        if not (start and _is_word(lowered[start - 1])) and not (end < len(lowered) and _is_word(lowered[end])):
            return start, end                                      # the first whole-word match
        start = lowered.find(term, start + 1)
    return None if first < 0 else (first, first + len(term))       # else the first substring match


def _is_word(char):
    return char.isalnum() or char == "_"                           # regular expressions' \w, on ASCII


def make_instances(requests, task, categories):
    instances = []
    for k, (text, aspects, where) in enumerate(requests):
        for aspect in aspects:
            if task == "atsa":
                start, end = locate_term(text, aspect, where)
                instances.append(Instance(k, text, text[start:end], start, end, 0))
            else:
                if aspect not in categories:
                    raise UserError(f"{where}: unknown category {shortened(aspect)} (this model knows: "
                                    f"{', '.join(categories)})")
                instances.append(Instance(k, text, aspect, -1, -1, 0))
    return instances

