"""A user's own dataset: a folder with one file per split.

Layout: <folder>/train.<ext>, <folder>/test.<ext> and optionally <folder>/val.<ext>, where <ext> is
`xml` (SemEval-2014 format, see xml_reader.py) or `jsonl` (see jsonl_reader.py), the same for every
split. The task (atsa / acsa) is read from the files unless given; for ACSA the categories are the
ones the training file uses, in first-seen order, and val/test may use no other.
"""
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from common.errors import UserError

from .jsonl_reader import TASK_HINT, TASKS, read_jsonl, sentence_lines
from .xml_reader import read_semeval_xml

SPLITS = ("train", "val", "test")
REQUIRED = ("train", "test")
FORMATS = ("xml", "jsonl")
MIN_TRAIN_SENTENCES = 2   # without a val file: one held out for validation, one left to train on
_XML_TAG = {"atsa": "aspectTerm", "acsa": "aspectCategory"}


@dataclass(frozen=True)
class UserDataset:
    folder: Path
    files: dict                  # {split: path}, splits in train / val / test order
    format: str                  # "xml" or "jsonl"
    task: str                    # "atsa" or "acsa"
    categories: Optional[tuple]  # ACSA: the training file's categories, first-seen order; else None
    train_sentences: int = 0     # sentences of the training file that have aspects


def inspect_folder(path, task=None):
    """Check a user's dataset folder and describe it (UserDataset). Reads every split once."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"{folder}: is a file, not a dataset folder (a folder holding train and test files)"
                        if folder.exists() else f"{folder}: dataset folder not found")
    if task is not None and task not in TASKS:
        raise UserError(f"unknown task {task!r}: expected 'atsa' or 'acsa'")
    files = _split_files(folder)
    fmt = files["train"].suffix[1:]

    tasks = {split: _file_task(p, task) for split, p in files.items()}
    train_task = tasks["train"]
    for split, found in tasks.items():
        if found != train_task:
            raise UserError(f"{files[split]}: holds {found} aspects but {files['train'].name} holds "
                            f"{train_task} ones; all splits must be the same task")

    categories = None
    train, _ = read_split(files["train"], train_task, None)
    if train_task == "acsa":
        categories = tuple(dict.fromkeys(i.aspect for i in train))
    for split, p in files.items():
        if split != "train":
            instances, _ = read_split(p, train_task, None)
            if train_task == "acsa":
                _check_categories(p, instances, categories, files["train"])
    return UserDataset(folder, files, fmt, train_task, categories, len({i.sentence_id for i in train}))


def check_trainable(found):
    """Without a val file a validation set is held out of train: train needs sentences to spare."""
    if "val" not in found.files and found.train_sentences < MIN_TRAIN_SENTENCES:
        raise UserError(f"{found.files['train']}: {found.train_sentences} sentence(s) with aspects; without a val "
                        f"file a validation set is held out of train, which needs at least {MIN_TRAIN_SENTENCES} "
                        f"(or add a val file)")
    return found


def read_split(path, task, categories=None):
    """(instances, ReadStats) of one split file, by its suffix (.xml or .jsonl)."""
    path = Path(path)
    if path.suffix == ".xml":
        return read_semeval_xml(path, task, categories)
    if path.suffix == ".jsonl":
        instances, stats, _ = read_jsonl(path, task, categories)
        return instances, stats
    raise UserError(f"{path}: unknown split file format (expected .xml or .jsonl)")


def _split_files(folder):
    files = {}
    for split in SPLITS:
        for ext in FORMATS:
            path = folder / f"{split}.{ext}"
            if (path.exists() or path.is_symlink()) and not path.is_file():
                what = ("a link to nothing" if not path.exists() else "a folder" if path.is_dir()
                        else "not a regular file")
                raise UserError(f"{path}: {what}; a split file must be a file")
        found = [folder / f"{split}.{ext}" for ext in FORMATS if (folder / f"{split}.{ext}").is_file()]
        if len(found) > 1:
            raise UserError(f"{folder}: both {found[0].name} and {found[1].name}; keep one")
        if found:
            files[split] = found[0]
        elif split in REQUIRED:
            raise UserError(f"{folder}: no {split} file (expected {split}.xml or {split}.jsonl)")
    formats = {p.suffix for p in files.values()}
    if len(formats) > 1:
        names = ", ".join(p.name for p in files.values())
        raise UserError(f"{folder}: mixed formats ({names}); use .xml or .jsonl for every split")
    return files


def _file_task(path, task):
    """The task a split file holds (checked against `task` when given)."""
    if path.suffix == ".jsonl":
        return read_jsonl(path, task)[2]
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise UserError(f"{path}: malformed XML ({err})") from None
    kinds = [t for t in TASKS if root.find(f".//{_XML_TAG[t]}") is not None]
    if task is not None:
        if kinds and task not in kinds:
            raise UserError(f"{path}: data.task is {task} but the file holds only <{_XML_TAG[kinds[0]]}> "
                            f"aspects ({kinds[0]}); use {TASK_HINT}")
        return task
    if len(kinds) == 2:
        raise UserError(f"{path}: holds both <aspectTerm> (atsa) and <aspectCategory> (acsa) aspects; "
                        f"choose one with {TASK_HINT}")
    if not kinds:
        raise UserError(f"{path}: no <aspectTerm> or <aspectCategory> in the file")
    return kinds[0]


def _check_categories(path, instances, categories, train_path):
    known = set(categories)
    for instance in instances:
        if instance.aspect not in known:
            if path.suffix == ".jsonl":
                where = f"{path}:{sentence_lines(path)[instance.sentence_id]}"
            else:
                where = f"{path}: sentence {instance.sentence_id + 1}"
            raise UserError(f"{where}: category {instance.aspect!r} never appears in {train_path.name} "
                            f"(train has {', '.join(categories)})")
