"""Photo folders, without torch: which files are photos, and which of them are held out.

One rule for every command that reads a folder: ``colorize auto`` and ``classify`` list
inputs with ``walk_files`` and ``is_image_candidate``, training and ``eval`` with
``list_images``; the held-out split (``is_held_out``, ``held_out_part``) is the one training
records and ``eval --holdout`` scores.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from colorize.core.errors import ColorizeError
from colorize.core.images import FORMAT_OF_EXTENSION

IMAGE_SUFFIXES = frozenset(FORMAT_OF_EXTENSION)


class DataError(ColorizeError):
    """A training or evaluation folder cannot be used as given."""

    exit_code = 2  # a folder named on the command line


def list_images(folder: Path) -> list[Path]:
    """Every image below ``folder`` (any depth), sorted for reproducibility: found by the rules
    ``colorize auto -r`` follows (``walk_files``, ``is_image_candidate``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    files = sorted(p for p in walk_files(folder, recursive=True) if is_image_candidate(p) and p.is_file())
    if not files:
        raise DataError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


# The first bytes of each format we read: folders are scanned by content for files whose
# extension says nothing (old scanner software writes "IMG0001" or ".jpe").
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)


def _looks_like_image(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
    except OSError:
        return False
    if head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    # "BM" alone starts many text files; a real BMP also has a known DIB header size.
    return head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES


def is_image_candidate(path: Path) -> bool:
    """An image name, or image content under another name. Hidden files (our own
    in-flight temporaries '.colorize.PID.xxxx.tmp', macOS '._name.jpg') never are."""
    if path.name.startswith("."):
        return False
    named = path.suffix.lower() in IMAGE_SUFFIXES
    if not path.exists():
        return named  # a broken link: decoding names the problem
    if not path.is_file():
        return False  # a pipe or a device: even reading its first bytes could block forever
    return named or _looks_like_image(path)


def walk_files(folder: Path, recursive: bool, on_error=None) -> Iterator[Path]:
    """Files below ``folder`` in sorted order, hidden files and folders left out.

    Symbolic links to folders are not followed (a link back up would loop forever); links to
    files are read like files. ``on_error`` gets the ``OSError`` of each unreadable folder.
    """
    for root, dirs, files in os.walk(folder, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _bucket(key: str) -> float:
    """A stable number in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def is_held_out(path: Path, fraction: float, seed: int = 0) -> bool:
    """Stable held-out membership from a hash of the file's name.

    Only the name counts, not the folder, so a photo stays on the same side whether a
    model was trained on ``train/people`` or evaluated on ``train/`` with its sub-folders.
    """
    return _bucket(f"{seed}:{Path(path).name}") < fraction


HELD_OUT_PARTS = ("validation", "test")


def held_out_part(path: Path) -> str:
    """Which half of the held-out photos ``path`` belongs to: "validation" or "test".

    Training chooses its best epoch and its decoding on the validation half, and the routing
    threshold is chosen there too; the test half is only ever scored, so the numbers
    reported on it are not flattered by any choice made on the same photos.
    """
    return "test" if _bucket(f"part:{Path(path).name}") < 0.5 else "validation"


def split_files(files: list[Path], fraction: float, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(kept, held out) by ``is_held_out``."""
    kept: list[Path] = []
    held_out: list[Path] = []
    for path in files:
        (held_out if is_held_out(path, fraction, seed) else kept).append(path)
    return kept, held_out


def split_for_training(files: list[Path], held_out_fraction: float) -> tuple[list[Path], list[Path], list[Path]]:
    """(training, validation, test) photos: the held-out ones (seed 0, the rule ``colorize eval
    --holdout`` applies) split by ``held_out_part``; training never reads the test ones."""
    train, held_out = split_files(files, held_out_fraction, seed=0)
    val = [path for path in held_out if held_out_part(path) == "validation"]
    test = [path for path in held_out if held_out_part(path) == "test"]
    return train, val, test


# Fewer validation photos than this choose an epoch and judge the result by noise: four photos
# of a 60-photo folder once refused an expert that its own starting weights also lost on.
MIN_VALIDATION = 20


def training_split(files: list[Path], held_out_fraction: float) -> tuple[list[Path], list[Path], dict]:
    """Training and validation photos, and what a weights file records of them: the counts
    (the test share is left for ``colorize eval --holdout``) and a fingerprint of the list.

    A folder too small to give ``MIN_VALIDATION`` validation photos at ``held_out_fraction``
    keeps no test share: up to a third of it is held out, and all of that validates (by the
    same stable hash of the names, so a resumed or repeated run splits it the same way)."""
    train, val, test = split_for_training(files, held_out_fraction)
    if len(val) < MIN_VALIDATION:
        fraction = max(held_out_fraction, min(1 / 3, MIN_VALIDATION / max(1, len(files))))
        (train, val), test = split_files(files, fraction, seed=0), []
    if not train or not val:
        raise DataError(f"need photos for both training and validation; found {len(train)} and {len(val)}")
    summary = {
        "images": len(files),
        "train_images": len(train),
        "val_images": len(val),
        "test_images": len(test),
        "file_list_sha256": file_list_hash(files),
    }
    return train, val, summary


def file_list_hash(files: list[Path]) -> str:
    """A short fingerprint of a file list (each file as 'folder/name', in order), machine-independent."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{Path(path).parent.name}/{Path(path).name}\n".encode())
    return digest.hexdigest()[:16]
