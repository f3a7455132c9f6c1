"""Finished runs, from either of their two homes: a run folder (runs/<dataset>/<run name>/seed<N>/,
written by a training) or a published file (results/predictions/<dataset>/<run name>/seed<N>.parquet,
committed with the tables it backs).

A published file is one Parquet table of the run's test predictions, one row per test instance in
test order: `sentence_id` and `aspect` (the instance's id; its position is the row number), `gold`
and `predicted` (label names) and `score_<label>` (the class probabilities, float32). The run's
metrics.json (without its per-epoch history) rides along in the file's key-value metadata under
`absa.run`: model, dataset, seed, the full config, the commit that trained it, the device and the
test metrics. That is everything Table 3, the claims and the seeds plot read, so they can be
recomputed from the repository alone.

Both homes are read through `FinishedRun`, and a run's predictions are checked against its own
metrics.json (the same instances, the same confusion matrix) before any table or test uses them.
"""
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.io import atomic_path
from common.labels import LABEL_INDEX, LABELS

from ..config import comparable
from ..run_folder import read_metrics, unfinished_reason

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_ROOT = REPO_ROOT / "results" / "predictions"   # the default home of published runs
METADATA_KEY = b"absa.run"
FORMAT = 1            # bumped when the file's layout changes
LEFT_OUT = ("history",)   # metrics.json keys not published (per-epoch curves: in the run folder only)


def published_file(root, dataset, run_name, seed):
    """Where a published run lives: <root>/<dataset>/<run name>/seed<N>.parquet."""
    return Path(root) / dataset / run_name / f"seed{seed}.parquet"


@dataclass
class RunPredictions:
    """One run's test predictions as arrays; `keys` are the instances' (sentence_id, aspect), in test order."""
    path: Path
    keys: tuple
    gold: np.ndarray        # label indices
    predicted: np.ndarray
    scores: np.ndarray = None   # (n, len(LABELS)) class probabilities


@dataclass
class FinishedRun:
    """A finished run: its metrics.json dict and where its predictions are ("run folder" or "published")."""
    metrics: dict
    source: str
    path: Path              # the run folder, or the published .parquet file

    @cached_property
    def predictions(self):
        """The run's RunPredictions, checked against its metrics (UserError naming the file if they disagree)."""
        predictions = (read_folder_predictions(self.path / "predictions.jsonl") if self.source == "run folder"
                       else read_published(self.path)[1])
        check_against_metrics(predictions, self.metrics)
        return predictions


# ---------------------------------------------------------------------------- run folders

def from_folder(folder):
    """The FinishedRun of a finished run folder, else None (no folder, or not a finished run)."""
    folder = Path(folder)
    if unfinished_reason(folder) is not None:
        return None
    return FinishedRun(read_metrics(folder / "metrics.json"), "run folder", folder)


def read_folder_predictions(path):
    """A run folder's predictions.jsonl as RunPredictions; a missing or damaged file is a UserError."""
    try:
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise UserError(f"{path}: finished run without predictions.jsonl") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: unreadable predictions ({err})") from None
    if not records:
        raise UserError(f"{path}: no predictions")
    try:
        keys = tuple((int(r["sentence_id"]), str(r["aspect"])) for r in records)
        gold = np.array([LABEL_INDEX[r["gold"]] for r in records], dtype=np.int64)
        predicted = np.array([LABEL_INDEX[r["predicted"]] for r in records], dtype=np.int64)
        scores = np.array([[float(r["scores"][name]) for name in LABELS] for r in records], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: a record lacks a field or has an unknown label ({err!r})") from None
    return RunPredictions(Path(path), keys, gold, predicted, scores)


def check_against_metrics(predictions, metrics):
    """A prediction file must be the run's own: as many instances and the same confusion matrix as
    its metrics.json says (a file from another run, truncated or edited, fails here)."""
    test = metrics.get("test", {})
    confusion = test.get("confusion")
    ours = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(ours, (predictions.gold, predictions.predicted), 1)
    if confusion is not None:
        order = [LABEL_INDEX[name] for name in test.get("labels", LABELS)]
        theirs = np.zeros_like(ours)
        theirs[np.ix_(order, order)] = np.asarray(confusion, dtype=np.int64)
        if not np.array_equal(ours, theirs):
            raise UserError(f"{predictions.path}: the predictions disagree with the run's metrics "
                            f"({int(ours.sum())} instances, {int(np.trace(ours))} right; its metrics say "
                            f"{int(theirs.sum())} and {int(np.trace(theirs))})")
    elif test.get("accuracy") is not None:
        accuracy = round(100.0 * float(np.trace(ours)) / max(1, int(ours.sum())), 2)
        if abs(accuracy - float(test["accuracy"])) > 0.005 + 1e-9:
            raise UserError(f"{predictions.path}: the predictions give accuracy {accuracy:.2f}, "
                            f"the run's metrics say {test['accuracy']}")


# ---------------------------------------------------------------------------- published files

def write_published(path, metrics, predictions):
    """Write one run as a published .parquet file (atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        "sentence_id": pa.array([k[0] for k in predictions.keys], pa.int32()),
        "aspect": pa.array([k[1] for k in predictions.keys], pa.string()).dictionary_encode(),
        "gold": pa.array([LABELS[i] for i in predictions.gold], pa.string()).dictionary_encode(),
        "predicted": pa.array([LABELS[i] for i in predictions.predicted], pa.string()).dictionary_encode(),
    }
    for j, name in enumerate(LABELS):
        columns[f"score_{name}"] = pa.array(predictions.scores[:, j], pa.float32())
    meta = {key: value for key, value in metrics.items() if key not in LEFT_OUT}
    table = pa.table(columns).replace_schema_metadata(
        {METADATA_KEY: json.dumps({"format": FORMAT, "metrics": meta}, sort_keys=True).encode("utf-8")})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=19)


def read_published(path):
    """(metrics dict, RunPredictions) of a published file; a damaged or foreign file is a UserError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise UserError(f"{path}: not a readable published run ({err})") from None
    try:
        meta = json.loads((table.schema.metadata or {})[METADATA_KEY].decode("utf-8"))
        metrics = meta["metrics"]
        if meta.get("format") != FORMAT or not isinstance(metrics, dict) or not isinstance(metrics.get("test"), dict):
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
        data = table.to_pydict()
        keys = tuple(zip((int(s) for s in data["sentence_id"]), (str(a) for a in data["aspect"])))
        gold = np.array([LABEL_INDEX[g] for g in data["gold"]], dtype=np.int64)
        predicted = np.array([LABEL_INDEX[p] for p in data["predicted"]], dtype=np.int64)
        scores = np.array([data[f"score_{name}"] for name in LABELS], dtype=np.float32).T.reshape(-1, len(LABELS))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a published run of this project ({err!r})") from None
    if not keys:
        raise UserError(f"{path}: no predictions")
    return metrics, RunPredictions(path, keys, gold, predicted, scores)


def from_published(path):
    """The FinishedRun of a published file, None when there is none; a damaged file is a UserError."""
    path = Path(path)
    if not path.is_file():
        return None
    metrics, predictions = read_published(path)
    expected = (path.parent.parent.name, path.parent.name, path.stem)
    found = (metrics.get("dataset"), metrics.get("run_name") or metrics.get("model"), f"seed{metrics.get('seed')}")
    if found != expected:
        raise UserError(f"{path}: holds the run {'/'.join(map(str, found))}, not {'/'.join(expected)}")
    run = FinishedRun(metrics, "published", path)
    run.__dict__["predictions"] = predictions   # already read: cache it (checked on first access)
    check_against_metrics(predictions, metrics)
    return run


def same_run(a, b):
    """Whether two FinishedRuns hold the same result: the same config, seed and test predictions."""
    if comparable(a.metrics.get("config", {})) != comparable(b.metrics.get("config", {})):
        return False
    pa, pb = a.predictions, b.predictions
    return (a.metrics.get("seed") == b.metrics.get("seed") and pa.keys == pb.keys
            and np.array_equal(pa.gold, pb.gold) and np.array_equal(pa.predicted, pb.predicted))
