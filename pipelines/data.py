"""Training data: streaming datasets of photo folders (pipelines/photo_folders.py finds the photos).

Nothing here holds more than one batch of pixels in memory: datasets keep file paths
and decode on access, so a 100 000-image folder costs only its list of paths.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from colorize.core.color import is_colour_photo
from colorize.core.images import DEFAULT_MAX_PIXELS, decode


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
        files: Sequence[Path],
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
            image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
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
        image = image.resize(
            (self.crop.size, self.crop.size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h)
        )
        if self.crop.flip and rng.random() < 0.5:
            image = ImageOps.mirror(image)
        return image


def collate(batch: list[tuple[torch.Tensor, bool, int]]) -> tuple[torch.Tensor, list[int], list[int]]:
    """Stack the valid samples: (images, their indices, indices of the dropped ones)."""
    kept = [rgb for rgb, valid, _ in batch if valid]
    size = batch[0][0].shape[-1]
    images = torch.stack(kept) if kept else torch.zeros(0, 3, size, size)
    return images, [i for _, valid, i in batch if valid], [i for _, valid, i in batch if not valid]
