"""Instances -> token lists -> fixed-width index arrays (the fields the models ask for).

ATSA fields: sentence, aspect (the term's tokens), context (the sentence with the term replaced by
the <aspect> marker), aspect_mask (1 on the term's positions in `sentence`).
ACSA fields: sentence, category (index into the dataset's category list).
Both: *_len, label, sentence_id, and the raw text / aspect strings for reports.
"""
from dataclasses import dataclass

import numpy as np

from .tokenizer import tokenize, tokenize_with_term
from .vocab import ASPECT, PAD


@dataclass
class Tokenised:
    tokens: list          # sentence tokens
    term: tuple           # (first, last) token positions of the term; (0, 0) for ACSA


def tokenise(instances, task, lowercase=True):
    if task == "atsa":
        return [Tokenised(*tokenize_with_term(i.text, i.start, i.end, lowercase)) for i in instances]
    return [Tokenised(tokenize(i.text, lowercase), (0, 0)) for i in instances]


def _pad(rows, width=None):
    width = max([len(r) for r in rows] + [1]) if width is None else width
    out = np.full((len(rows), width), PAD, dtype=np.int32)
    for k, row in enumerate(rows):
        out[k, :len(row)] = row
    lengths = np.array([len(r) for r in rows], dtype=np.int32)
    return out, lengths


def encode(instances, tokenised, vocab, task, categories=None):
    """Dict of numpy arrays for one split."""
    sentences = [vocab.encode(t.tokens) for t in tokenised]
    arrays = {}
    arrays["sentence"], arrays["sentence_len"] = _pad(sentences)
    if task == "atsa":
        aspects = [s[a:b] for s, (a, b) in zip(sentences, (t.term for t in tokenised))]
        contexts = [s[:a] + [ASPECT] + s[b:] for s, (a, b) in zip(sentences, (t.term for t in tokenised))]
        arrays["aspect"], arrays["aspect_len"] = _pad(aspects)
        arrays["context"], arrays["context_len"] = _pad(contexts)
        mask = np.zeros_like(arrays["sentence"], dtype=np.uint8)
        for k, t in enumerate(tokenised):
            mask[k, t.term[0]:t.term[1]] = 1
        arrays["aspect_mask"] = mask
    else:
        index = {c: i for i, c in enumerate(categories)}
        arrays["category"] = np.array([index[i.aspect] for i in instances], dtype=np.int64)
    arrays["label"] = np.array([i.label for i in instances], dtype=np.int64)
    arrays["sentence_id"] = np.array([i.sentence_id for i in instances], dtype=np.int32)
    arrays["text"] = np.array([i.text for i in instances], dtype=str)
    arrays["aspect_text"] = np.array([i.aspect for i in instances], dtype=str)
    return arrays
