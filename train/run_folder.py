"""The run folder runs/<dataset>/<run name>/seed<N>/ and the log that goes into it."""
import logging
import logging.handlers
import sys
from pathlib import Path


def run_dir(cfg, seed):
    """The folder of one run of a RunConfig."""
    return Path(cfg.paths.runs) / cfg.data.name / cfg.name / f"seed{seed}"


def make_logger(name="absa"):
    """A logger printing to stdout that also keeps its records until attach_log_file() names a file,
    so a run that fails before training (bad data, bad options) leaves no run folder behind."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(stream)
    logger.addHandler(logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1))
    return logger


def attach_log_file(logger, path):
    """Write the records kept so far to `path` and everything after them too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for memory in [h for h in logger.handlers if isinstance(h, logging.handlers.MemoryHandler)]:
        memory.setTarget(handler)
        memory.flush()
        logger.removeHandler(memory)
    logger.addHandler(handler)
