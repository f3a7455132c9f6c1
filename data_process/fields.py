"""The fields the data layer provides, and the one rule that ties a padded field to its lengths.

A model declares the fields it reads (`input_fields`); the data layer provides exactly those.

Word-level fields (from the word vocabulary; `data_process/encode.py`):
  sentence            (N, T) word ids of the sentence
  context             (N, T) ATSA: the sentence with the term replaced by the <aspect> marker
  aspect              (N, T) ATSA: the term's word ids
  left                (N, T) ATSA: w_1 .. w_last-term-word (left context and the term), in order
  right               (N, T) ATSA: w_n .. w_first-term-word (right context and the term), reversed
  sentence_aspect_mask (N, T) ATSA: 1 on the term's positions in `sentence`
  sentence_distance   (N, T) ATSA: token distance to the term (0 on the term's own positions)
  category            (N,)   ACSA: index into the dataset's category list
BERT fields (from the backbone's tokenizer; `data_process/bert_inputs.py`):
  bert_input_ids, bert_token_type_ids, bert_sentence_mask, bert_aspect_mask   (N, T)
Every (N, T) field `<stem>` or `<stem>_<rest>` has its real lengths in `<stem>_len`
(`sentence_aspect_mask` -> `sentence_len`, `bert_input_ids` -> `bert_len`).
"""
from dataclasses import dataclass
from typing import Optional

WORD_FIELDS = ("sentence", "context", "aspect", "left", "right", "sentence_aspect_mask", "sentence_distance",
               "category")
ATSA_ONLY = ("context", "aspect", "left", "right", "sentence_aspect_mask", "sentence_distance")
ACSA_ONLY = ("category",)
BERT_FIELDS = ("bert_input_ids", "bert_token_type_ids", "bert_sentence_mask", "bert_aspect_mask")
SEQUENCE_STEMS = ("sentence", "context", "aspect", "left", "right", "bert")


def length_field(name):
    """The lengths of a padded (N, T) field, by the naming rule above; None for a (N,) field."""
    stem = name.split("_")[0]
    return f"{stem}_len" if stem in SEQUENCE_STEMS else None


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
