"""The fields the data layer provides, each declared once here, and the one rule that ties a padded
field to its lengths.

A model declares the fields it reads (`input_fields`); the data layer provides exactly those. A word
field is declared in WORD_FIELDS with how one instance's row is made; the encoder
(`data_process/encode.py`) builds every declared field of the task, and the processed-data fingerprint
(`data_process/preprocess.py`) covers the declarations, so a new field is one entry here.
BERT fields come from the backbone's tokenizer (`data_process/bert_inputs.py`):
  bert_input_ids, bert_token_type_ids, bert_sentence_mask, bert_aspect_mask   (N, T), lengths bert_len
Every (N, T) field has its real lengths in `length_field(name)`: `<name>_len` for a sequence of its own,
`sentence_len` for a field aligned with the sentence's positions, `bert_len` for the BERT fields.
"""
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class WordField:
    """One word-level field. kind "sequence": its own (N, T) word ids, `row(ids, first, last, marker)`
    from the sentence's ids (or tokens), the term span [first, last) and the <aspect> marker, with
    lengths `<name>_len`; "aligned": (N, T) values at the sentence's positions, `row(n, first, last)`
    for a sentence of n words, of `dtype`; "category": (N,) the ACSA category's index."""
    task: Optional[str]   # "atsa", "acsa", or None for both tasks
    kind: str
    doc: str
    row: Optional[Callable] = None
    dtype: str = "int32"


def term_distance(length, first, last):
    """Token distance of each position to the term tokens[first:last] (0 on the term)."""
    return [first - i if i < first else (0 if i < last else i - last + 1) for i in range(length)]


WORD_FIELDS = {
    "sentence": WordField(None, "sequence", "word ids of the sentence", lambda s, a, b, m: list(s)),
    "aspect": WordField("atsa", "sequence", "the term's word ids", lambda s, a, b, m: list(s[a:b])),
    "context": WordField("atsa", "sequence", "the sentence with the term replaced by the <aspect> marker",
                         lambda s, a, b, m: list(s[:a]) + [m] + list(s[b:])),
    "left": WordField("atsa", "sequence", "w_1 .. w_last-term-word (left context and the term), in order",
                      lambda s, a, b, m: list(s[:b])),
    "right": WordField("atsa", "sequence", "w_n .. w_first-term-word (right context and the term), reversed",
                       lambda s, a, b, m: list(s[a:][::-1])),
    "sentence_aspect_mask": WordField("atsa", "aligned", "1 on the term's positions in `sentence`",
                                      lambda n, a, b: [int(a <= i < b) for i in range(n)], "uint8"),
    "sentence_distance": WordField("atsa", "aligned", "token distance to the term (0 on its own positions)",
                                   term_distance, "int16"),
    "category": WordField("acsa", "category", "index into the dataset's category list", dtype="int64"),
}
BERT_FIELDS = ("bert_input_ids", "bert_token_type_ids", "bert_sentence_mask", "bert_aspect_mask")


def task_fields(task):
    """{name: WordField} of the word fields a task's data has, in declaration order."""
    return {name: f for name, f in WORD_FIELDS.items() if f.task in (None, task)}


def length_field(name):
    """The lengths of a padded (N, T) field (see above); None for a (N,) field."""
    if name.startswith("bert_"):
        return "bert_len"
    field = WORD_FIELDS.get(name)
    if field is None or field.kind == "category":
        return None
    return f"{name}_len" if field.kind == "sequence" else "sentence_len"


@dataclass(frozen=True)
class BertInputs:
    """How to build the BERT fields: a local Hugging Face folder ("default" = the packaged MiniLM)
    and the longest "[CLS] sentence [SEP] aspect [SEP]" in word pieces."""
    path: str
    max_length: int


@dataclass(frozen=True)
class InputSpec:
    """What a model reads: `fields` (the first is its main sequence, used for length bucketing and
    token counts) and, when it reads BERT fields, how to build them."""
    fields: tuple
    bert: Optional[BertInputs] = None
