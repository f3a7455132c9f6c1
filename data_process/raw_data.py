"""Locate the raw split files and, on a machine with internet, download the official ones.

Layout: <root>/<dataset folder>/<split>.xml, <root> = $ABSA_DATA_ROOT or paths.raw (data/raw).
"""
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from common.errors import UserError
from common.io import atomic_path

ENV_VAR = "ABSA_DATA_ROOT"


def raw_root(paths):
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env)
        if not root.is_dir():
            raise UserError(f"{ENV_VAR}={env}: folder not found")
        return root
    return Path(paths.raw)


def split_files(data, paths):
    """{split: path} for the splits stored as files (a held-out validation split is not a file)."""
    folder = raw_root(paths) / data.folder
    return {split: folder / f"{split}.{data.file_format}" for split in data.splits}


def missing_files(data, paths):
    return [p for p in split_files(data, paths).values() if not p.is_file()]


def check_layout(data, paths):
    """UserError naming the first missing file and the layout expected."""
    missing = missing_files(data, paths)
    if missing:
        raise UserError(f"{missing[0]}: split file not found (expected <root>/{data.folder}/"
                        f"{{{','.join(data.splits)}}}.{data.file_format} with <root> = ${ENV_VAR} or "
                        f"{paths.raw})")


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def download(data, paths, timeout=30):
    """Fetch every missing split file of the dataset and check its SHA-256. Returns the paths written."""
    spec = data.download
    if not spec:
        check_layout(data, paths)
        return []
    written = []
    for split, path in split_files(data, paths).items():
        if path.is_file():
            continue
        url = spec.url_of(split)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError) as err:
            raise UserError(f"cannot download {url} ({getattr(err, 'reason', err)}); offline? put the "
                            f"XML files under {path.parent}/ or point ${ENV_VAR} at a folder holding "
                            f"{data.folder}/{{{','.join(data.splits)}}}.xml") from None
        digest = hashlib.sha256(payload).hexdigest()
        expected = spec.sha256[split]
        if digest != expected:
            raise UserError(f"{url}: SHA-256 {digest} does not match the expected {expected}; nothing written")
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(payload)
        except OSError as err:
            raise UserError(f"{path}: cannot write ({err.strerror})") from None
        written.append(path)
    return written


def ensure_raw(data, paths, log=print):
    """Download what is missing (train/test call this); a no-op when the files are there."""
    if missing_files(data, paths):
        for path in download(data, paths):
            log(f"downloaded {path}")
    check_layout(data, paths)
