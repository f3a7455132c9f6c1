"""The run folder runs/<dataset>/<run name>/seed<N>/: where it is, when it counts as finished, how a
training replaces it (staging folder, lock, one rename), and the log that goes into it.

A training never writes into the run folder itself. It holds the run's lock (<parent>/.seed<N>.lock,
an flock with the holder's pid in it; the kernel drops it when the process dies, so a killed
training's lock is simply taken over) and writes everything into a staging folder beside it
(<parent>/.seed<N>.staging-<pid>). Only when metrics, checkpoint, predictions and plots are all
written does the staging folder replace the run folder, in one rename; until then the previous run
is untouched, and a training that fails or is interrupted leaves it exactly as it was.
"""
import ctypes
import errno
import fcntl
import logging
import logging.handlers
import math
import os
import shutil
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

from common.errors import UserError
from common.io import read_json_object

# The files of a finished run; metrics.json is written last.
FINISHED_FILES = ("checkpoint.pt", "predictions.jsonl", "metrics.json")


def run_dir(cfg, seed):
    """The folder of one run of a RunConfig."""
    return Path(cfg.paths.runs) / cfg.data.name / cfg.name / f"seed{seed}"


TABLE_METRICS = ("accuracy", "macro_f1")   # the test metrics the tables average


def read_metrics(path):
    """A run's metrics.json as a dict; a missing, truncated or foreign file is a UserError naming it."""
    metrics = read_json_object(path, "metrics file")
    missing = [k for k in ("model", "dataset", "seed", "test") if k not in metrics]
    if missing or not isinstance(metrics["test"], dict) or not isinstance(metrics.get("config", {}), dict):
        what = ", ".join(missing) or "test/config"
        raise UserError(f"{path}: not a run's metrics file (missing or malformed: {what})")
    for key in TABLE_METRICS:   # a NaN would spread through every table
        value = metrics["test"].get(key)
        if key in metrics["test"] and not finite_number(value):
            raise UserError(f"{path}: test {key} is {value!r}, not a finite number")
    return metrics


def finite_number(value):
    """An int or float (not a bool) that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def unfinished_reason(folder):
    """None when `folder` holds a finished run (checkpoint, predictions and a readable metrics.json),
    else why not, as text."""
    folder = Path(folder)
    if not folder.is_dir():
        return "no run folder"
    for name in FINISHED_FILES:
        if not (folder / name).is_file():
            return f"no {name}"
    if not zipfile.is_zipfile(folder / "checkpoint.pt"):   # torch.save writes a zip archive
        return "checkpoint.pt is damaged"
    try:
        read_metrics(folder / "metrics.json")
    except UserError as err:
        return str(err)
    return None


def finished_checkpoint(folder):
    """<folder>/checkpoint.pt of a finished run, for test / predict / explain; a folder that is
    missing or not finished is a UserError (a training replaces run folders whole, so this only
    meets folders damaged from outside)."""
    folder = Path(folder)
    reason = unfinished_reason(folder)
    if reason == "no run folder":
        raise UserError(f"{folder / 'checkpoint.pt'}: checkpoint not found (train one with --mode train, "
                        f"or name one with --checkpoint)")
    if reason is not None:
        raise UserError(f"{folder}: not a finished run ({reason}); train it again with --mode train")
    return folder / "checkpoint.pt"


def _flat(tree, prefix=""):
    """{dotted key: value} of a nested mapping."""
    out = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        out.update(_flat(value, dotted) if isinstance(value, dict) else {dotted: value})
    return out


def setting_changes(stored, config, limit=3):
    """The settings (dotted keys, paths aside) in which two run configs differ, as text:
    "train.epochs=20 there, 1 here"; '' when they agree."""
    old, new = ({k: v for k, v in _flat(c).items() if not k.startswith("paths.")} for c in (stored, config))
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k, "unset") != new.get(k, "unset")]
    shown = [f"{k}={old.get(k, 'unset')} there, {new.get(k, 'unset')} here" for k in changed[:limit]]
    return "; ".join(shown) + (f"; {len(changed) - limit} more" if len(changed) > limit else "")


def check_replaceable(folder, config, overwrite, data_files=None):
    """A UserError unless `folder` may take a new run: a finished run there is replaced only when the
    user says so (`overwrite`, --overwrite: the convention of Hugging Face's examples, which refuse an
    output folder that holds results); a folder that holds no finished run may always be written.
    `data_files`: {split: SHA-256} of the raw files now, to say when the run was trained on others."""
    folder = Path(folder)
    if overwrite or unfinished_reason(folder) is not None:
        return
    metrics = read_metrics(folder / "metrics.json")
    changes = setting_changes(metrics.get("config") or {}, config)
    stored_files = metrics.get("data_files")
    changed = sorted(split for split, digest in (data_files or {}).items()
                     if isinstance(stored_files, dict) and stored_files.get(split, digest) != digest)
    if changes:
        what = f"a finished run with other settings ({changes})"
    elif changed:
        what = f"a finished run on other data (its {', '.join(changed)} file changed since)"
    else:
        what = "a finished run of these settings"
    raise UserError(f"{folder}: holds {what}; --overwrite replaces it, --set run_name=NAME trains into a run "
                    f"folder of its own")


# ---------------------------------------------------------------------------- locking and staging

def lock_path(folder):
    return folder.parent / f".{folder.name}.lock"


def _holder(path):
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def run_lock(folder):
    """Hold the run folder's lock for the block; another process holding it is a UserError naming
    the folder and that process's pid. A lock left by a killed process is taken over."""
    folder = Path(folder)
    path = lock_path(folder)
    made, above = [], folder.parent   # the folders made here, innermost first: removed again if left empty
    while not above.exists():
        made.append(above)
        above = above.parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:   # another run's failed lock removed the folder it had made: make it again
            folder.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{folder}: another training (pid {_holder(path)}) is writing this run folder; "
                            f"wait for it to finish or stop it") from None
        try:   # the holder before us may have removed the file between our open and our flock
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        recover(folder)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
        for empty in made:   # a run that failed before writing anything leaves no empty folders behind
            try:
                empty.rmdir()
            except OSError:   # not empty (a finished run, another run's lock): kept
                break


def staging_dir(folder):
    return folder.parent / f".{folder.name}.staging-{os.getpid()}"


def _old_dir(folder):
    return folder.parent / f".{folder.name}.old-{os.getpid()}"


def recover(folder):
    """Under the lock: put back a previous run that a killed publish() had moved aside, and remove
    the staging folders of killed trainings."""
    for leftover in folder.parent.glob(f".{folder.name}.old-*"):
        if not folder.exists():
            os.replace(leftover, folder)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in folder.parent.glob(f".{folder.name}.staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)


_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where that is unavailable."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EXDEV):   # file system without it
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def publish(staging, folder):
    """Make the finished `staging` folder the run folder, replacing the previous run in one atomic
    exchange (or, without renameat2, two renames that recover() undoes if killed between them)."""
    if not folder.exists():
        os.rename(staging, folder)
        return
    if _exchange(staging, folder):
        shutil.rmtree(staging)   # now the previous run
        return
    old = _old_dir(folder)
    os.rename(folder, old)
    os.rename(staging, folder)
    shutil.rmtree(old)


@contextmanager
def staged_run(folder):
    """Hold the run's lock and yield a fresh staging folder to write the run into; it replaces the
    run folder when the block finishes, and is removed when the block fails (the previous run stays)."""
    folder = Path(folder)
    with run_lock(folder):
        staging = staging_dir(folder)
        staging.mkdir()
        try:
            yield staging
            publish(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------- the log

def make_logger(name="absa"):
    """A logger printing to stdout that also keeps its records until attach_log_file() names a file,
    so a run that fails before training (bad data, bad options) leaves no run folder behind."""
    logger = logging.getLogger(name)
    close_log_files(logger)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(stream)
    logger.addHandler(logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1))
    return logger


class _LogFile(logging.FileHandler):
    """A FileHandler whose failed write (a full disk) is raised to the training, which reports it in
    one line and keeps the previous run, rather than printed as a traceback and ignored."""

    def handleError(self, record):   # noqa: N802 (logging's name)
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            raise error
        super().handleError(record)


def attach_log_file(logger, path):
    """Write the records kept so far to `path` and everything after them too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _LogFile(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for memory in [h for h in logger.handlers if isinstance(h, logging.handlers.MemoryHandler)]:
        memory.setTarget(handler)
        memory.flush()
        logger.removeHandler(memory)
    logger.addHandler(handler)


def close_log_files(logger):
    """Close and detach the logger's file handlers (before its run folder is moved)."""
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        try:
            handler.close()
        except OSError:   # a full disk: the records that fit are written (and the run reported failed)
            pass
        logger.removeHandler(handler)
