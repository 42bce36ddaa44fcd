"""Training and evaluation data: image discovery, stable splits, and streaming datasets.

Nothing here holds more than one batch of pixels in memory: datasets keep file paths
and decode on access, so a 100 000-image folder costs only its list of paths.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from colorize.core.images import DEFAULT_MAX_PIXELS, decode, is_colour_photo

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})


class DataError(Exception):
    """A training or evaluation folder cannot be used as given."""


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
    kept, held_out = [], []
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


def load_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode a photo as 8-bit RGB by the rules every input follows (``images.decode``:
    upright, size refused before decoding, any supported mode and depth)."""
    data = decode(path, max_pixels).data
    if data.dtype == np.uint16:
        data = ((data.astype(np.float32) + 128) / 257).astype(np.uint8)
    return Image.fromarray(np.dstack([data] * 3) if data.ndim == 2 else data, "RGB")


@dataclass
class CropPolicy:
    """Random crops for training, centre views for validation.

    ``scale`` is the crop's share of the image area: crops smaller than the whole photo
    keep objects near the size they have at the inference work size.
    """

    size: int = 128
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True


@dataclass
class SampleStats:
    skipped_unreadable: int = 0
    skipped_grayscale: int = 0
    skipped_files: list[str] = field(default_factory=list)


class ColorPhotoDataset(torch.utils.data.Dataset):
    """Streams (rgb, valid) pairs: rgb is float (3, S, S) in [0, 1].

    Augmentation randomness is derived from (seed, epoch, index), so the same epoch yields
    the same crops in any process and after a resume. Unusable files (unreadable, or with
    no colour to learn from) come back with valid=False and are dropped by ``collate``.
    """

    def __init__(
        self,
        files: list[Path],
        crop: CropPolicy,
        train: bool,
        seed: int = 0,
        require_colour: bool = True,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.files = list(files)
        self.max_pixels = max_pixels
        self.require_colour = require_colour
        self.crop = crop
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, bool, int]:
        size = self.crop.size
        try:
            image = load_rgb(self.files[index], self.max_pixels)
        except Exception:  # any decoder failure means "skip this file", counted by the caller
            return torch.zeros(3, size, size), False, index
        # Judged on the whole photo: a crop of blue sky alone is still colour to learn from.
        if self.require_colour and not is_colour_photo(np.asarray(image)):
            return torch.zeros(3, size, size), False, index
        if self.train:
            rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
            image = self._random_crop(image, rng)
        else:
            image = ImageOps.fit(image, (size, size), Image.BILINEAR)
        rgb = np.asarray(image)
        return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255, True, index

    def _random_crop(self, image: Image.Image, rng: random.Random) -> Image.Image:
        width, height = image.size
        area = width * height
        for _ in range(10):
            target = area * rng.uniform(*self.crop.scale)
            aspect = np.exp(rng.uniform(np.log(self.crop.ratio[0]), np.log(self.crop.ratio[1])))
            w, h = int(round((target * aspect) ** 0.5)), int(round((target / aspect) ** 0.5))
            if 0 < w <= width and 0 < h <= height:
                break
        else:
            w, h = min(width, height), min(width, height)
        left, top = rng.randint(0, width - w), rng.randint(0, height - h)
        image = image.resize((self.crop.size, self.crop.size), Image.BILINEAR, box=(left, top, left + w, top + h))
        if self.crop.flip and rng.random() < 0.5:
            image = ImageOps.mirror(image)
        return image


def collate(batch: list[tuple[torch.Tensor, bool, int]]) -> tuple[torch.Tensor, list[int], list[int]]:
    """Stack the valid samples: (images, their indices, indices of the dropped ones)."""
    kept = [rgb for rgb, valid, _ in batch if valid]
    size = batch[0][0].shape[-1]
    images = torch.stack(kept) if kept else torch.zeros(0, 3, size, size)
    return images, [i for _, valid, i in batch if valid], [i for _, valid, i in batch if not valid]
