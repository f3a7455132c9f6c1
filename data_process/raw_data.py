"""Locate the raw split files and, on a machine with internet, download the official ones.

Layout: <root>/<dataset folder>/<split>.xml, <root> = $ABSA_DATA_ROOT or paths.raw (data/raw).
"""
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from src.errors import UserError

from .atomic import atomic_path

ENV_VAR = "ABSA_DATA_ROOT"


def raw_root(cfg):
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env)
        if not root.is_dir():
            raise UserError(f"{ENV_VAR}={env}: folder not found")
        return root
    return Path(cfg["paths"]["raw"])


def split_files(cfg):
    """{split: path} for the splits stored as files (a held-out validation split is not a file)."""
    folder = raw_root(cfg) / cfg["data"]["folder"]
    return {split: folder / f"{split}.xml" for split in cfg["data"]["splits"]}


def missing_files(cfg):
    return [p for p in split_files(cfg).values() if not p.is_file()]


def check_layout(cfg):
    """UserError naming the first missing file and the layout expected."""
    missing = missing_files(cfg)
    if missing:
        data = cfg["data"]
        raise UserError(f"{missing[0]}: split file not found (expected <root>/{data['folder']}/"
                        f"{{{','.join(data['splits'])}}}.xml with <root> = ${ENV_VAR} or "
                        f"{cfg['paths']['raw']})")


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def download(cfg, timeout=30):
    """Fetch every missing split file of the dataset and check its SHA-256. Returns the paths written."""
    spec = cfg["data"].get("download")
    if not spec:
        check_layout(cfg)
        return []
    written = []
    for split, path in split_files(cfg).items():
        if path.is_file():
            continue
        url = spec["url"].format(split=split)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError) as err:
            raise UserError(f"cannot download {url} ({getattr(err, 'reason', err)}); offline? put the "
                            f"XML files under {path.parent}/ or point ${ENV_VAR} at a folder holding "
                            f"{cfg['data']['folder']}/{{{','.join(cfg['data']['splits'])}}}.xml") from None
        digest = hashlib.sha256(payload).hexdigest()
        expected = spec["sha256"][split]
        if digest != expected:
            raise UserError(f"{url}: SHA-256 {digest} does not match the expected {expected}; nothing written")
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(payload)
        except OSError as err:
            raise UserError(f"{path}: cannot write ({err.strerror})") from None
        written.append(path)
    return written


def ensure_raw(cfg, log=print):
    """Download what is missing (train/test call this); a no-op when the files are there."""
    if missing_files(cfg):
        for path in download(cfg):
            log(f"downloaded {path}")
    check_layout(cfg)
