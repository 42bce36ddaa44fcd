"""Test photos for the benchmark: real content at 0.25, 2 and 12 megapixels, as gray JPEGs.

Made from scikit-image's bundled sample photos (no downloads): cropped to 4:3, converted
to gray, upscaled with Lanczos and given a light film grain. The grain matters: an
upscaled 512-pixel photo is unnaturally smooth, and JPEG decoding and encoding of smooth
images is faster than of real scans, which would flatter the I/O numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SOURCES = ("astronaut", "coffee", "chelsea")
# Name -> (width, height): 4:3 frames of about 0.25, 2 and 12 megapixels.
SIZES = {"0.25MP": (576, 432), "2MP": (1632, 1224), "12MP": (4000, 3000)}
GRAIN = 3.0  # standard deviation of the added grain, in 8-bit levels
QUALITY = 90  # of the input JPEGs (a typical scanner or camera setting)


def make_photo(source: str, size: tuple[int, int], path: Path) -> Path:
    from skimage import data

    image = Image.fromarray(getattr(data, source)()).convert("L")
    width, height = image.size
    if width * 3 > height * 4:  # too wide for 4:3: crop the sides
        keep = height * 4 // 3
        image = image.crop(((width - keep) // 2, 0, (width - keep) // 2 + keep, height))
    else:
        keep = width * 3 // 4
        image = image.crop((0, (height - keep) // 2, width, (height - keep) // 2 + keep))
    pixels = np.asarray(image.resize(size, Image.LANCZOS), dtype=np.float32)
    pixels += np.random.default_rng(sum(map(ord, source))).normal(0, GRAIN, pixels.shape).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8)).save(path, quality=QUALITY)
    return path


def photo_set(workdir: Path) -> dict[str, list[Path]]:
    """size name -> one gray JPEG per source (made once, then reused from ``workdir``)."""
    photos: dict[str, list[Path]] = {}
    for size_name, size in SIZES.items():
        photos[size_name] = []
        for source in SOURCES:
            path = workdir / "photos" / size_name / f"{source}.jpg"
            if not path.is_file():
                make_photo(source, size, path)
            photos[size_name].append(path)
    return photos


def folder_of(photos: list[Path], count: int, folder: Path) -> Path:
    """A folder of ``count`` photos, cycling through ``photos`` (copies, distinct names)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for index in range(count):
        source = photos[index % len(photos)]
        shutil.copyfile(source, folder / f"{index:04d}_{source.name}")
    return folder
