"""The preprocessing job: raw XML -> data/processed/<dataset>/.

Outputs: {split}.npz (see encode.py), vocab.json, embeddings.npy, sentiment.npy (3 x d, rows
positive / negative / neutral) and summary.yaml (counts, lengths, OOV rate, fingerprint).
Every file is written atomically and summary.yaml last: it marks a complete output. A second run
whose fingerprint (raw files' SHA-256 + data settings + code version) matches does no work.
"""
import hashlib
import json
import time
import zipfile
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import numpy as np
import yaml

from common.errors import UserError
from common.io import write_npy, write_npz, write_yaml
from common.labels import LABELS

from . import embeddings as emb
from .encode import Encoder, check_positions, tokenise
from .fields import WORD_FIELDS
from .lexicon import lexicon_words, sentiment_matrix
from .raw_data import ensure_raw, sha256_of, split_files
from .sampling import sample_train
from .user_dataset import read_split
from .vocab import UNK, Vocab

PIPELINE_VERSION = 3  # 3: left / right / sentence_distance fields
SPLITS = ("train", "val", "test")


def processed_dir(data, paths):
    return Path(paths.processed) / data.name


def fingerprint(data, files):
    keys = {k: getattr(data, k) for k in ("task", "lowercase", "min_freq", "oov_init_range",
                                           "val_fraction", "seed", "embedding_dim", "train_sample")}
    keys["categories"] = list(data.categories) if data.categories else None
    parts = {
        "version": PIPELINE_VERSION,
        "fields": {name: [f.task, f.kind, f.dtype] for name, f in WORD_FIELDS.items()},   # a new field: new arrays
        "nltk": version("nltk"),
        "raw": {split: sha256_of(path) for split, path in sorted(files.items())},
        "settings": keys,
        "embeddings": emb.source_identity(data.embeddings),
        "lexicon": lexicon_words(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def is_current(data, paths):
    """True when the processed arrays exist and match the raw files and settings."""
    out = processed_dir(data, paths)
    summary = out / "summary.yaml"
    if not summary.is_file():
        return False
    try:
        stored = yaml.safe_load(summary.read_text()).get("fingerprint")
    except (yaml.YAMLError, AttributeError):
        return False
    needed = [out / f"{s}.npz" for s in SPLITS] + [out / n for n in ("vocab.json", "embeddings.npy", "sentiment.npy")]
    return stored == fingerprint(data, split_files(data, paths)) and all(p.is_file() for p in needed)


def preprocess(data, paths, log=print, force=False):
    """Run the pipeline if the outputs are missing or stale. Returns the output folder."""
    ensure_raw(data, paths, log)
    out = processed_dir(data, paths)
    if not force and is_current(data, paths):
        log(f"{out}: up to date")
        return out
    start = time.perf_counter()
    task = data.task
    files = split_files(data, paths)
    instances, read_stats = read_instances(data, paths)
    tokenised = {s: tokenise(instances[s], task, data.lowercase) for s in SPLITS}

    vocab = Vocab.build(sentence_token_counts(instances["train"], tokenised["train"]), data.min_freq)
    vectors, dim = emb.lookup_vectors(data.embeddings, set(vocab.words) | _lexicon_set(), data.embedding_dim,
                                      required=lexicon_words())
    matrix, coverage = emb.embedding_matrix(vocab, vectors, dim, data.oov_init_range, data.seed)
    encoder = Encoder(vocab, task, data.categories, data.lowercase)
    sentiment, lexicon_hits = sentiment_matrix(vectors)
    for split in SPLITS:   # every split checked before any output is written
        try:
            check_positions(instances[split], tokenised[split], task)
        except UserError as err:
            raise UserError(f"{files.get(split, files['train'])}: {err}") from None

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.yaml").unlink(missing_ok=True)  # no marker while the outputs are being replaced
    split_summary = {}
    for split in SPLITS:
        arrays = encoder.words(instances[split], tokenised[split])
        write_npz(out / f"{split}.npz", **arrays)
        split_summary[split] = _split_summary(arrays, read_stats.get(split), (data.expected_counts or {}).get(split))
    vocab.save(out / "vocab.json")
    write_npy(out / "embeddings.npy", matrix)
    write_npy(out / "sentiment.npy", sentiment)

    train_tokens = Counter(t for x in tokenised["train"] for t in x.tokens)
    token_coverage = sum(c for w, c in train_tokens.items() if w in vectors) / max(1, sum(train_tokens.values()))
    summary = {
        "dataset": data.name,
        "task": task,
        "fingerprint": fingerprint(data, files),
        "raw_files": {s: str(p) for s, p in files.items()},
        "validation": "file" if "val" in files
        else f"held out: {data.val_fraction} of train sentences, seed {data.seed}",
        "vocab_size": len(vocab),
        "vocab_fingerprint": vocab.fingerprint,
        "embeddings": {"source": str(data.embeddings), "dim": dim,
                       "vocab_coverage": round(coverage, 4), "vocab_oov_rate": round(1 - coverage, 4),
                       "train_token_coverage": round(token_coverage, 4)},
        "sentiment_lexicon_words_found": lexicon_hits,
        "categories": list(data.categories) if data.categories else None,
        "splits": split_summary,
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_yaml(out / "summary.yaml", summary)
    log(f"{out}: {sum(len(instances[s]) for s in SPLITS)} instances, vocab {len(vocab)}, "
        f"{dim}-d vectors cover {coverage:.1%} of the vocabulary ({summary['seconds']} s)")
    return out


def read_instances(data, paths, hold_out_val=True):
    """({split: [Instance]}, {split: read stats}) for train / val / test; a dataset without a
    validation file gets one held out of train (unless hold_out_val is False)."""
    instances, read_stats = {}, {}
    for split, path in split_files(data, paths).items():
        instances[split], stats = read_split(path, data.task, data.categories)
        read_stats[split] = vars(stats)
    if data.train_sample:  # MAMS-small: a sample of train with the paper's class counts
        instances["train"], read_stats["train"]["sample"] = sample_train(instances["train"], data.train_sample,
                                                                         data.seed)
    if "val" not in instances and hold_out_val:
        instances["train"], instances["val"] = hold_out(instances["train"], data.val_fraction, data.seed)
    return instances, read_stats


def sentence_token_counts(instances, tokenised):
    """Token counts with every sentence counted once, although each of its aspects is an instance
    (per sentence, a token counts as often as it appears in any one of its tokenisations)."""
    per_sentence = {}
    for instance, tokens in zip(instances, tokenised):
        per_sentence.setdefault(instance.sentence_id, Counter()).__ior__(Counter(tokens.tokens))
    return sum(per_sentence.values(), Counter())


def _lexicon_set():
    return {w for words in lexicon_words().values() for w in words}


def hold_out(instances, fraction, seed):
    """Deterministic validation split by whole sentences (no sentence is in both)."""
    ids = sorted({i.sentence_id for i in instances})
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(ids)[: max(1, round(fraction * len(ids)))].tolist())
    return ([i for i in instances if i.sentence_id not in held], [i for i in instances if i.sentence_id in held])


def _split_summary(arrays, read_stats, expected):
    counts = Counter(arrays["label"].tolist())
    lengths = arrays["sentence_len"]
    summary = {
        "instances": int(len(lengths)),
        "classes": {name: int(counts.get(i, 0)) for i, name in enumerate(LABELS)},
        "sentence_tokens": {"max": int(lengths.max()), "mean": round(float(lengths.mean()), 2)},
        "unk_rate": round(float((arrays["sentence"] == UNK).sum() / max(1, lengths.sum())), 4),
    }
    if read_stats:
        summary["read"] = read_stats
    if expected:
        summary["paper_classes"] = expected
    return summary


def load_split(out, split):
    path = Path(out) / f"{split}.npz"
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: cannot read processed arrays ({err}); run --mode preprocess") from None
