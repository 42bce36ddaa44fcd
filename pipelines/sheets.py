"""Contact sheets: rows of same-sized images with a caption, for people to judge colour by eye."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from colorize.core.images import atomic_save


def contact_sheet(
    rows: list[list[np.ndarray]],
    captions: list[str],
    path: Path,
    tile: int = 160,
    headers: list[str] | None = None,
) -> Path:
    """Write a PNG with one row per entry of ``rows`` (uint8 RGB arrays), each captioned; with
    ``headers``, a band on top names each column."""
    columns = max(len(row) for row in rows)
    caption_height = 14
    header_height = caption_height if headers else 0
    sheet = Image.new("RGB", (columns * tile, header_height + len(rows) * (tile + caption_height)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, header in enumerate(headers or []):
        draw.text((c * tile + 2, 1), header, fill="black")
    for r, (row, caption) in enumerate(zip(rows, captions)):
        top = header_height + r * (tile + caption_height)
        draw.text((2, top + 1), caption, fill="black")
        for c, array in enumerate(row):
            image = Image.fromarray(array)
            image.thumbnail((tile, tile))
            sheet.paste(image, (c * tile + (tile - image.width) // 2, top + caption_height))
    atomic_save(sheet, Path(path), format="PNG")
    return Path(path)
