"""The typed `paths:` and `data:` config sections (values in configs/default.yaml and
configs/datasets/*.yaml; checks here)."""
from dataclasses import dataclass
from typing import Optional

from common.schema import spec


@dataclass(frozen=True)
class PathsConfig:
    raw: str            # raw XML root; the environment variable ABSA_DATA_ROOT overrides it
    processed: str      # <processed>/<dataset>/ holds the arrays
    runs: str           # <runs>/<dataset>/<run name>/seed<N>/ holds checkpoints, logs, plots


@dataclass(frozen=True)
class DownloadConfig:
    sha256: dict                  # {split: hex digest}
    url: Optional[str] = None     # one template with {split} ...
    urls: Optional[dict] = None   # ... or one URL per split

    def __post_init__(self):
        from common.errors import UserError
        if (self.url is None) == (self.urls is None):
            raise UserError("data.download: give either url (a template with {split}) or urls (one per split)")

    def url_of(self, split):
        return self.url.format(split=split) if self.url else self.urls[split]


@dataclass(frozen=True)
class DataConfig:
    name: str
    folder: str                       # <raw root>/<folder>/<split>.xml
    task: str = spec(choices=("atsa", "acsa"))
    splits: tuple[str, ...]           # the splits stored as files; no "val" = held out of train
    lowercase: bool
    min_freq: int = spec(min=1)
    limit: Optional[int] = spec(min=1)
    embeddings: str                   # "glove-6b-50d" or a GloVe-format text file
    oov_init_range: float = spec(min=0.0)
    val_fraction: float = spec(above=0.0, max=0.5)
    seed: int = spec(min=0, max=2**32 - 1)
    embedding_dim: Optional[int] = spec(min=1)
    # dataset facts that not every dataset has
    categories: Optional[tuple[str, ...]] = None   # ACSA: the category list
    download: Optional[DownloadConfig] = None      # where --mode download fetches the split files
    expected_counts: Optional[dict] = None         # the paper's Table 2: {split: {positive, negative, neutral}}
    train_sample: Optional[dict] = None            # MAMS-small: train is a sample with these class counts
    file_format: str = spec(choices=("xml", "jsonl"), default="xml")   # <folder>/<split>.<file_format>
    # predict / explain refuse longer texts (words, and tokens after tokenising); 32767 is the most
    # the 16-bit position distances hold. Checkpoints from before the setting get that limit.
    max_words: Optional[int] = spec(min=1, max=32767, default=None)

    def __post_init__(self):
        from common.errors import UserError
        if "train" not in self.splits or "test" not in self.splits:
            raise UserError(f"data.splits={list(self.splits)}: needs at least train and test")
        if self.task == "acsa" and not self.categories:
            raise UserError(f"data.categories: the ACSA dataset {self.name} needs its category list")
