"""Word vocabulary built from the training split. PAD=0, UNK=1, ASPECT marker=2."""
import hashlib
import json
from pathlib import Path

from common.errors import UserError
from common.io import write_json

PAD, UNK, ASPECT = 0, 1, 2
SPECIALS = ("<pad>", "<unk>", "<aspect>")


class Vocab:
    def __init__(self, words):
        self.words = list(words)
        if tuple(self.words[:3]) != SPECIALS:
            raise ValueError("a vocabulary starts with <pad>, <unk>, <aspect>")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, counts, min_freq=1):
        """From token counts (a Counter): most frequent first, ties alphabetical, so the same data
        always gives the same indices; words seen fewer than min_freq times are left out (-> UNK)."""
        kept = sorted((w for w, c in counts.items() if c >= min_freq and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept)

    def __len__(self):
        return len(self.words)

    def encode(self, tokens):
        return [self.index.get(t, UNK) for t in tokens]

    @property
    def fingerprint(self):
        return hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()[:16]

    def save(self, path):
        write_json(path, self.words)

    @classmethod
    def load(cls, path):
        path = Path(path)
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: not a readable vocabulary ({err})") from None
