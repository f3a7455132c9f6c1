"""Classify new text with a trained checkpoint: one JSON object per (text, aspect).

ATSA aspects are terms located in the text (case-insensitive, whole words first); ACSA aspects are
category names of the dataset the checkpoint was trained on.
"""
import json
import re
from pathlib import Path

import torch

from common.errors import UserError
from common.labels import LABELS
from data_process.xml_reader import Instance
from src.dataset import ABSADataset, make_loader

from .trainer import predict_scores


def read_requests(text=None, aspects=(), input_file=None):
    """[(text, [aspects], where)] from --text/--aspect or a JSONL file of {"text", "aspects"}."""
    requests = []
    if text is not None:
        requests.append((text, list(aspects), "--text"))
    if input_file:
        path = Path(input_file)
        if not path.is_file():
            raise UserError(f"{path}: input file not found")
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{where}: not valid JSON ({err.msg})") from None
            if not isinstance(item, dict) or not isinstance(item.get("text"), str) \
                    or not isinstance(item.get("aspects"), list) \
                    or not all(isinstance(a, str) for a in item["aspects"]):
                raise UserError(f'{where}: expected {{"text": "...", "aspects": ["...", ...]}}')
            requests.append((item["text"], item["aspects"], where))
    if not requests:
        raise UserError("predict needs --text with one or more --aspect, or --input FILE (JSONL)")
    for text_value, aspect_list, where in requests:
        if not text_value.strip():
            raise UserError(f"{where}: empty text")
        if not aspect_list:
            raise UserError(f"{where}: no aspects given (use --aspect, or an \"aspects\" list)")
    return requests


def locate_term(text, term, where):
    """(start, end) of `term` in `text`: first whole-word match, else first substring match (case-insensitive)."""
    if not term.strip():
        raise UserError(f"{where}: empty aspect")
    match = re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) \
        or re.search(re.escape(term), text, re.IGNORECASE)
    if match is None:
        raise UserError(f"{where}: aspect {term!r} not found in the text")
    return match.span()


def make_instances(requests, task, categories):
    instances = []
    for k, (text, aspects, where) in enumerate(requests):
        for aspect in aspects:
            if task == "atsa":
                start, end = locate_term(text, aspect, where)
                instances.append(Instance(k, text, text[start:end], start, end, 0))
            else:
                if aspect not in categories:
                    raise UserError(f"{where}: unknown category {aspect!r} (this model knows: "
                                    f"{', '.join(categories)})")
                instances.append(Instance(k, text, aspect, -1, -1, 0))
    return instances


def predict(model, data, cfg, requests, device):
    """List of {"text", "aspect", "label", "scores"} dicts, in request order."""
    instances = make_instances(requests, cfg.data.task, cfg.data.categories)
    arrays = data.encoder().encode(instances)
    loader = make_loader(ABSADataset(arrays, model.input_fields()), cfg.train.eval_batch_size)
    scores, _ = predict_scores(model, loader, device)
    probs = model.probabilities(scores)
    results = []
    for instance, row in zip(instances, probs):
        results.append({"text": instance.text, "aspect": instance.aspect, "label": LABELS[int(torch.argmax(row))],
                        "scores": {name: round(float(row[i]), 4) for i, name in enumerate(LABELS)}})
    return results
