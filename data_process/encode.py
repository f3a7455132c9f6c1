"""The one encoder: instances -> tokens -> fixed-width index arrays, for training splits, test and
predict alike.

Both tasks: the word fields fields.py declares for the task (sequences with their `_len`), label,
sentence_id, and the raw text / aspect strings for reports. BERT fields are added when the encoder is
given a backbone (BertInputs).
"""
from dataclasses import dataclass

import numpy as np

from common.errors import UserError

from .fields import BertInputs, task_fields
from .tokenizer import tokenize, tokenize_with_term
from .vocab import ASPECT, PAD, SPECIALS, Vocab


@dataclass
class Tokenised:
    tokens: list          # sentence tokens
    term: tuple           # (first, last) token positions of the term; (0, 0) for ACSA


def tokenise(instances, task, lowercase=True):
    if task == "atsa":
        return [Tokenised(*tokenize_with_term(i.text, i.start, i.end, lowercase)) for i in instances]
    return [Tokenised(tokenize(i.text, lowercase), (0, 0)) for i in instances]


def _pad(rows):
    width = max([len(r) for r in rows] + [1])
    out = np.full((len(rows), width), PAD, dtype=np.int32)
    for k, row in enumerate(rows):
        out[k, :len(row)] = row
    lengths = np.array([len(r) for r in rows], dtype=np.int32)
    return out, lengths


def position_limit(task):
    """(the most tokens a sentence may have, the field and integer type that bound it): the term
    distances (ATSA) count positions in 16 bits; otherwise the 32-bit word arrays."""
    distance = task_fields(task).get("sentence_distance")
    if distance is not None:
        return int(np.iinfo(distance.dtype).max), "sentence_distance", distance.dtype
    return int(np.iinfo(np.int32).max), "sentence", "int32"


def check_positions(instances, tokenised, task):
    """A UserError naming the first sentence with more tokens than the arrays' integer types hold
    (a review of 40,000 tokens would overflow the 16-bit term distances)."""
    limit, field, dtype = position_limit(task)
    for instance, tokens in zip(instances, tokenised):
        if len(tokens.tokens) > limit:
            preview = instance.text[:40] + ("..." if len(instance.text) > 40 else "")
            raise UserError(f"sentence {instance.sentence_id + 1} ({preview!r}): {len(tokens.tokens)} tokens, more "
                            f"than the {limit} positions its {field} array ({dtype}) holds; split the text into "
                            f"shorter sentences")


def word_arrays(instances, tokenised, vocab, task, categories=None):
    """Dict of numpy arrays of the task's word-level fields for `instances` (fields.WORD_FIELDS)."""
    sentences = [vocab.encode(t.tokens) for t in tokenised]
    spans = [t.term for t in tokenised]
    arrays = {}
    for name, field in task_fields(task).items():
        if field.kind == "sequence":
            arrays[name], arrays[f"{name}_len"] = _pad([field.row(s, a, b, ASPECT)
                                                        for s, (a, b) in zip(sentences, spans)])
        elif field.kind == "aligned":
            values = np.zeros((len(sentences), max([len(s) for s in sentences] + [1])), dtype=field.dtype)
            for k, (s, (a, b)) in enumerate(zip(sentences, spans)):
                values[k, :len(s)] = field.row(len(s), a, b)
            arrays[name] = values
        else:
            index = {c: i for i, c in enumerate(categories)}
            arrays[name] = np.array([index[i.aspect] for i in instances], dtype=field.dtype)
    arrays["label"] = np.array([i.label for i in instances], dtype=np.int64)
    arrays["sentence_id"] = np.array([i.sentence_id for i in instances], dtype=np.int32)
    arrays["text"] = np.array([i.text for i in instances], dtype=str)
    arrays["aspect_text"] = np.array([i.aspect for i in instances], dtype=str)
    return arrays


class Encoder:
    """Turns instances into the arrays a model reads: word fields from the vocabulary and, when a
    backbone is given (BertInputs), the BERT sentence-pair fields from its tokenizer."""

    def __init__(self, vocab, task, categories, lowercase, bert=None):
        self.vocab, self.task, self.categories, self.lowercase, self.bert = vocab, task, categories, lowercase, bert
        self._tokenizer = None

    def state(self):
        """Everything this encoder needs, as plain values (stored in checkpoints): the vocabulary's
        word list, task, categories, lowercase, and the BERT backbone setting (model.backbone as
        configured, e.g. "default", and max_length) or None."""
        bert = None if self.bert is None else {"path": self.bert.path, "max_length": int(self.bert.max_length)}
        return {"words": list(self.vocab.words), "task": self.task,
                "categories": list(self.categories) if self.categories else None,
                "lowercase": bool(self.lowercase), "bert": bert}

    @classmethod
    def from_state(cls, state):
        bert, categories = state.get("bert"), state.get("categories")
        return cls(Vocab(state["words"]), state["task"], tuple(categories) if categories else None, state["lowercase"],
                   None if bert is None else BertInputs(bert["path"], bert["max_length"]))

    def tokenizer(self):
        """The BERT backbone's tokenizer (loaded once)."""
        from .bert_inputs import load_tokenizer, resolve_backbone
        if self.bert is None:
            raise UserError("this model reads no BERT fields")
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(resolve_backbone(self.bert.path))
        return self._tokenizer

    def field_tokens(self, instance, field, arrays=None, row=0):
        """The token strings at the positions of `field` for one instance: words for the word fields
        (`context` with the <aspect> marker in place of the term), word pieces for BERT fields (from
        `arrays`, the instance's encoded row `row`)."""
        if field.startswith("bert_"):
            ids = arrays["bert_input_ids"][row][:int(arrays["bert_len"][row])]
            return self.tokenizer().convert_ids_to_tokens([int(i) for i in ids])
        declared = task_fields(self.task).get(field)
        if declared is None or declared.kind != "sequence":
            raise ValueError(f"no token strings for field {field!r}")
        (tokenised,) = tokenise([instance], self.task, self.lowercase)
        return declared.row(tokenised.tokens, *tokenised.term, SPECIALS[ASPECT])

    def words(self, instances, tokenised=None):
        if tokenised is None:
            tokenised = tokenise(instances, self.task, self.lowercase)
        return word_arrays(instances, tokenised, self.vocab, self.task, self.categories)

    def bert_arrays(self, instances):
        """(BERT arrays, number of truncated sentences)."""
        from .bert_inputs import build_pairs, max_pair_length, resolve_backbone, uses_token_types
        folder = resolve_backbone(self.bert.path)
        return build_pairs(self.tokenizer(), instances, self.task, max_pair_length(folder, self.bert.max_length),
                           uses_token_types(folder))

    def encode(self, instances):
        """Every field this encoder can make for `instances` (word fields, plus BERT fields)."""
        arrays = self.words(instances)
        if self.bert is not None:
            arrays.update(self.bert_arrays(instances)[0])
        return arrays
