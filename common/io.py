"""Write files so that a crash never leaves a half-written output (temp file, then rename), and read
the files a user or a crash can damage so that a bad one is one UserError naming it."""
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

from .errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the output the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_yaml(path, obj):
    write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_npz(path, **arrays):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def write_npy(path, array):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


# ---------------------------------------------------------------------------- checked readers
# Every file a user or a crash can damage is read here: a bad file is one UserError naming it.

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def read_text(path, what="file"):
    """The text of a file an editor wrote: UTF-8 with or without a byte-order mark, or UTF-16 /
    UTF-32 with one. A missing, unreadable or undecodable file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read the {what} ({err.strerror})") from None
    encoding, skip = "utf-8", 0
    for bom, name in _BOMS:
        if raw.startswith(bom):
            encoding, skip = name, len(bom)
            break
    try:
        return raw[skip:].decode(encoding)
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: the {what} is not {encoding.upper()} text (byte {err.start + skip}); "
                        f"save it as UTF-8") from None


def read_json_object(path, what="JSON file"):
    """A JSON file holding an object (dict); a missing, truncated or other-shaped file is a UserError."""
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except ValueError as err:
        raise UserError(f"{path}: the {what} is not valid JSON ({err}; truncated or edited?)") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: the {what} holds a JSON {type(value).__name__}, expected an object")
    return value


def check_writable_dir(path, what):
    """Raise a UserError unless `path` is (or can be made) a folder this process can write into.
    It is tried for real (folders made, a file written, all of it removed again): permission bits
    do not tell, e.g. for root or on a read-only or virtual file system."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        where = "" if probe == path else f" ({probe} is a file)"
        raise UserError(f"{what} {path}: not a folder{where}")
    made = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UserError(f"{what} {path}: not writable ({err.strerror})") from None
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
