"""Colour hints: what a person knows of a photo's colours, as an expert's extra input.

A hint-aware expert reads, beside L, three planes at its work size (Zhang et al., "Real-Time
User-Guided Image Colorization", SIGGRAPH 2017): the a and b of each hinted patch (LAB units,
0 elsewhere) and a mask that is 1 where a hint is. With no hints all three planes are 0, and
the expert colours the photo on its own.

Training draws hints from the true colours (``simulate_hints``); a user's points and the
simulated ones become planes through the same ``hint_planes``, so the network sees at
inference exactly the kind of input it learned from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HINT_PLANES = 3  # a, b, mask
# Patch sides drawn in training, in work-size pixels (odd, so a patch has a centre pixel).
PATCH_SIDES = (1, 3, 5, 7, 9)


@dataclass(frozen=True)
class PlacedHint:
    """One hint at the work size: a square patch centred on (row, col) of side ``2 * half + 1``."""

    row: int
    col: int
    ab: tuple[float, float]  # LAB units
    half: int = 0


def hint_planes(hints: list[PlacedHint], height: int, width: int) -> np.ndarray:
    """(3, height, width) float32: a, b and mask planes; later hints cover earlier ones."""
    planes = np.zeros((HINT_PLANES, height, width), np.float32)
    for hint in hints:
        rows = slice(max(hint.row - hint.half, 0), min(hint.row + hint.half + 1, height))
        cols = slice(max(hint.col - hint.half, 0), min(hint.col + hint.half + 1, width))
        planes[0, rows, cols] = hint.ab[0]
        planes[1, rows, cols] = hint.ab[1]
        planes[2, rows, cols] = 1.0
    return planes


def hint_count(rng: np.random.Generator, zero_share: float, mean_count: float) -> int:
    """How many hints one training photo gets: none with probability ``zero_share`` (so the
    expert keeps colouring well on its own), else a geometric count with mean ``mean_count``
    (few points often, many now and then, as people give them)."""
    if rng.random() < zero_share:
        return 0
    return int(rng.geometric(1.0 / mean_count))


def simulate_hints(ab: np.ndarray, count: int, rng: np.random.Generator) -> list[PlacedHint]:
    """``count`` hints drawn from the true ab (2, H, W), each the mean colour of a patch.

    Places are drawn more often where the photo is colourful: a person hints the red car,
    not the gray road, and a hint on a gray patch teaches the network little.
    """
    if count <= 0:
        return []
    _, height, width = ab.shape
    chroma = np.hypot(ab[0], ab[1]).ravel().astype(np.float64)
    weights = chroma + 2.0  # a gray photo still gets hints, spread evenly
    places = rng.choice(chroma.size, size=count, p=weights / weights.sum())
    hints = []
    for place in places:
        row, col = divmod(int(place), width)
        half = int(rng.choice(PATCH_SIDES)) // 2
        patch = ab[:, max(row - half, 0) : row + half + 1, max(col - half, 0) : col + half + 1]
        mean = patch.reshape(2, -1).mean(axis=1)
        hints.append(PlacedHint(row, col, (float(mean[0]), float(mean[1])), half))
    return hints
