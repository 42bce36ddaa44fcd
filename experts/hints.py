"""Colour hints: what a person knows of a photo's colours.

Every expert follows hints through ``spread_hints``: after the network, the difference
between each hint's colour and the expert's at its place is spread over the photo, far along
places of similar lightness and fading with distance, so the hinted colour holds at the point
and carries over the object it lies on. It needs no network of its own, so it works for every
expert, and a photo without hints is left exactly as the expert coloured it.

An expert may also read hints itself (trained with ``--hint-input``): beside L it takes three
planes at its work size (Zhang et al., "Real-Time User-Guided Image Colorization", SIGGRAPH
2017): the a and b of each hinted patch (LAB units, 0 elsewhere) and a mask that is 1 where a
hint is. Training draws hints from the true colours (``simulate_hints``); a user's points and
the simulated ones become planes through the same ``hint_planes``, so the network sees at
inference exactly the kind of input it learned from. Spreading follows it too.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from colorize.core.color import rgb_to_lab
from colorize.core.errors import ColorizeError

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


# How far a hint's colour spreads (chosen on the protocol's choosing sources, MODELS.md "Hints"):
# a Gaussian fall-off of this share of the expert's output side, times a Gaussian of the
# lightness difference to the hinted patch (LAB L units), so colour stays on the object.
SPREAD_REACH = 24 / 112
SPREAD_LIGHTNESS = 8.0
# A second, short pass puts each hint's colour exactly at its place (the first moves a patch's
# mean, and blends neighbouring hints): each pixel near hints takes its nearest hint's colour,
# whole on the patch and a plateau one pixel past it, then less of it over 3/112 of the side.
FINISH_REACH = 3 / 112
FINISH_PLATEAU = 1 / 112


def spread_hints(ab: np.ndarray, lightness: np.ndarray, hints: Sequence[PlacedHint]) -> np.ndarray:
    """The expert's ``ab`` (2, h, w) moved toward ``hints`` (placed on the same h x w grid);
    ``lightness`` (h, w) is the photo's L on that grid. Returns a new array."""
    side = max(ab.shape[-2:])
    spread = _blend_residuals(ab, lightness, hints, SPREAD_REACH * side)
    return _finish_at_places(spread, hints, FINISH_REACH * side, max(1, round(FINISH_PLATEAU * side)))


def _patch(hint: PlacedHint) -> tuple[slice, slice]:
    return (
        slice(max(hint.row - hint.half, 0), hint.row + hint.half + 1),
        slice(max(hint.col - hint.half, 0), hint.col + hint.half + 1),
    )


def _residual(ab: np.ndarray, hint: PlacedHint) -> np.ndarray:
    """The hint's ab minus the mean ab of its patch."""
    return np.asarray(hint.ab, np.float32) - ab[(slice(None), *_patch(hint))].reshape(2, -1).mean(axis=1)


def _beyond(hint: PlacedHint, rows: np.ndarray, cols: np.ndarray, plateau: int) -> np.ndarray:
    """Each pixel's distance past the hint's patch and ``plateau`` (0 inside them), on the grid
    of ``rows`` (h, 1) and ``cols`` (1, w) (float32 coordinates)."""
    beyond = np.hypot(rows - np.float32(hint.row), cols - np.float32(hint.col))
    beyond -= hint.half + plateau
    return np.maximum(beyond, 0, out=beyond)


def _grid(rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """Float32 coordinates of ``rows`` (n, 1) and ``cols`` (1, m), for ``_beyond``."""
    return (
        np.arange(rows.start, rows.stop, dtype=np.float32)[:, None],
        np.arange(cols.start, cols.stop, dtype=np.float32)[None, :],
    )


def _blend_residuals(ab: np.ndarray, lightness: np.ndarray, hints: Sequence[PlacedHint], reach: float) -> np.ndarray:
    rows, cols = _grid(slice(0, ab.shape[-2]), slice(0, ab.shape[-1]))
    moved = np.zeros_like(ab, dtype=np.float32)
    total = np.zeros(ab.shape[-2:], np.float32)
    for hint in hints:
        # One exponential of both fall-offs: exp(-(d / reach)^2 / 2 - (dL / sigma)^2 / 2).
        weight = _beyond(hint, rows, cols, 0)
        weight *= np.float32(1 / reach)
        np.square(weight, out=weight)
        light = lightness - np.float32(lightness[_patch(hint)].mean())
        light *= np.float32(1 / SPREAD_LIGHTNESS)
        weight += np.square(light, out=light)
        weight *= np.float32(-0.5)
        np.exp(weight, out=weight)
        moved += weight * _residual(ab, hint)[:, None, None]
        total += weight
    # Near one hint its difference is taken whole; between hints, their blend; far from all,
    # less and less of it, down to the expert's own colour.
    return ab + moved / np.maximum(total, 1.0)


def _finish_at_places(ab: np.ndarray, hints: Sequence[PlacedHint], reach: float, plateau: int) -> np.ndarray:
    height, width = ab.shape[-2:]
    nearest = np.full((height, width), np.inf, np.float32)
    wanted = np.zeros_like(ab, dtype=np.float32)
    for hint in hints:  # later hints win ties, as later hints cover earlier ones in the planes
        # Only a window around the hint: 5 reaches past its plateau the weight is below 4e-6.
        extent = hint.half + plateau + math.ceil(5 * reach)
        rows = slice(max(hint.row - extent, 0), min(hint.row + extent + 1, height))
        cols = slice(max(hint.col - extent, 0), min(hint.col + extent + 1, width))
        beyond = _beyond(hint, *_grid(rows, cols), plateau)
        closer = beyond <= nearest[rows, cols]
        nearest[rows, cols][closer] = beyond[closer]
        wanted[:, rows, cols][:, closer] = np.asarray(hint.ab, np.float32)[:, None]
    weight = np.exp(np.square(nearest / np.float32(reach)) * np.float32(-0.5))
    return ab + weight * (wanted - ab)


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


@dataclass(frozen=True)
class Hint:
    """A colour a person knows at one place of a photo.

    ``x``, ``y``: the place, in the photo's pixels (column, row from the top left of the
    upright photo) or, with ``relative``, as fractions of its width and height (0 to 1).
    ``color``: any CSS colour ("red", "#b22222", "rgb(178, 34, 34)"); only its chroma (LAB
    a and b) is used, the photo keeps its own lightness. ``radius``: the size of the patch
    of that colour around the place, in the photo's pixels.
    """

    x: float
    y: float
    color: str
    radius: float = 0.0
    relative: bool = False

    def __post_init__(self):
        numbers = (self.x, self.y, self.radius)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
            raise HintError(f"hint at {self.x}, {self.y}: the place and radius must be finite numbers")
        if self.radius < 0:
            raise HintError(f"hint at {self.x}, {self.y}: radius {self.radius} is negative")
        if self.relative and not (0 <= self.x <= 1 and 0 <= self.y <= 1):
            raise HintError(f"hint at {self.x}, {self.y}: fractions of the photo's sides lie from 0 to 1")
        self.ab  # a colour that cannot be read is refused when the hint is made

    @property
    def ab(self) -> tuple[float, float]:
        """The colour's LAB a and b."""
        return colour_ab(self.color)

    def check_inside(self, height: int, width: int) -> None:
        """``HintError`` when this hint's place lies outside a photo of ``height`` x ``width``
        (fractions always lie inside)."""
        if not self.relative and not (0 <= self.x < width and 0 <= self.y < height):
            raise HintError(f"hint at {self.x:g}, {self.y:g} lies outside the {width} x {height} photo")

    def place(self, height: int, width: int, size: int) -> PlacedHint:
        """This hint on the expert's square input of ``size``, for a photo of ``height`` x ``width``."""
        self.check_inside(height, width)
        x, y = (self.x * width, self.y * height) if self.relative else (self.x + 0.5, self.y + 0.5)
        row = min(int(y * size / height), size - 1)
        col = min(int(x * size / width), size - 1)
        half = min(round(self.radius * size / max(height, width)), max(PATCH_SIDES) // 2)
        return PlacedHint(row, col, self.ab, half)


class HintError(ColorizeError):
    """A hint that cannot be used (its colour, place or size); the message names it."""

    exit_code = 2


_CSS_LAB = re.compile(r"lab\(\s*[-+0-9.e]+%?\s+([-+0-9.e]+)\s+([-+0-9.e]+)\s*\)", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def colour_ab(colour: str) -> tuple[float, float]:
    """A CSS colour's LAB a and b; ``HintError`` naming it when it is none. CSS's own
    ``lab(L a b)`` gives a and b exactly (simulated hints are written so)."""
    from PIL import ImageColor

    found = _CSS_LAB.fullmatch(str(colour).strip())
    if found:
        try:
            a, b = float(found[1]), float(found[2])
        except ValueError:
            raise HintError(f"{colour!r} is not a colour (a CSS name such as 'red', or '#b22222')") from None
        if math.isfinite(a) and math.isfinite(b):
            return a, b
    try:
        red, green, blue = ImageColor.getrgb(str(colour).strip())[:3]
    except ValueError:
        raise HintError(f"{colour!r} is not a colour (a CSS name such as 'red', or '#b22222')") from None
    lab = rgb_to_lab(np.array([[[red, green, blue]]], np.float32) / 255)[0, 0]
    return float(lab[1]), float(lab[2])


def placed_planes(hints: Sequence[Hint], height: int, width: int, size: int) -> np.ndarray:
    """The hint planes (3, size, size) of a photo of ``height`` x ``width`` on a square input of ``size``."""
    return hint_planes([hint.place(height, width, size) for hint in hints], size, size)


def parse_hint(text: str) -> Hint:
    """A hint as the command line writes it: ``X,Y=COLOR`` or ``X,Y,RADIUS=COLOR``.

    X and Y are pixels of the photo (``120,80``) or, written with a decimal point and at most 1,
    fractions of its width and height (``0.4,0.7``); RADIUS is in pixels."""
    place, separator, color = str(text).partition("=")
    parts = [part.strip() for part in place.split(",")]
    if not separator or not color.strip() or len(parts) not in (2, 3):
        raise HintError(f"hint {text!r}: write X,Y=COLOR or X,Y,RADIUS=COLOR (e.g. 120,80=#b22222 or 0.4,0.7=red)")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise HintError(f"hint {text!r}: {place!r} is not two or three numbers") from None
    fractions = [("." in part or "e" in part.lower()) and 0 <= number <= 1 for part, number in zip(parts, numbers)]
    if fractions[0] != fractions[1]:
        raise HintError(f"hint {text!r}: give both places in pixels (120,80) or both as fractions (0.4,0.7)")
    return Hint(numbers[0], numbers[1], color.strip(), numbers[2] if len(numbers) == 3 else 0.0, fractions[0])


@overload
def hints_from_json(value: list[Any], source: str) -> list[Hint]: ...
@overload
def hints_from_json(value: object, source: str) -> list[Hint] | dict[str, list[Hint]]: ...
def hints_from_json(value: object, source: str) -> list[Hint] | dict[str, list[Hint]]:
    """Hints from a JSON document (parsed): a list of points for one photo, or an object
    mapping photo file names to such lists. A point is ``{"x": 120, "y": 80, "color": "red"}``
    with optional ``"radius"`` (pixels) and ``"relative": true`` (x and y as fractions).
    ``source`` names the document in messages."""
    if isinstance(value, list):
        return [_point(point, f"{source}, point {index + 1}") for index, point in enumerate(value)]
    if isinstance(value, dict):
        by_name = {}
        for name, points in value.items():
            if not isinstance(points, list):
                raise HintError(f"{source}, {name!r}: expected a list of points")
            by_name[str(name)] = [_point(point, f"{source}, {name!r}, point {n + 1}") for n, point in enumerate(points)]
        return by_name
    raise HintError(f"{source}: expected a list of points or an object of file names to lists of points")


_POINT_KEYS = {"x", "y", "color", "radius", "relative"}


def _point(point, where: str) -> Hint:
    if not isinstance(point, dict) or not {"x", "y", "color"} <= point.keys():
        raise HintError(f'{where}: a point needs x, y and color, e.g. {{"x": 120, "y": 80, "color": "red"}}')
    if unknown := sorted(set(point) - _POINT_KEYS):
        raise HintError(f"{where}: unknown key {unknown[0]!r} (a point has {', '.join(sorted(_POINT_KEYS))})")
    relative = point.get("relative", False)
    if not isinstance(relative, bool) or not isinstance(point["color"], str):
        raise HintError(f"{where}: relative is true or false, and color a string")
    try:
        return Hint(point["x"], point["y"], point["color"], point.get("radius", 0.0), relative)
    except HintError as error:
        raise HintError(f"{where}: {error}") from None


def hints_to_json(hints: Sequence[Hint]) -> list[dict]:
    """The JSON points of ``hints`` (what ``hints_from_json`` reads back)."""
    return [
        {
            "x": h.x,
            "y": h.y,
            "color": h.color,
            **({"radius": h.radius} if h.radius else {}),
            **({"relative": True} if h.relative else {}),
        }
        for h in hints
    ]


def hints_from_truth(ab: np.ndarray, count: int, rng: np.random.Generator, size: int = 224) -> list[Hint]:
    """``count`` hints a person who knew the true colours (ab (2, H, W) of the photo) might give,
    drawn as training draws them (``simulate_hints``) on a ``size`` x ``size`` copy, and put
    back in the photo's terms: places as fractions, patch sizes in its pixels, colours exact."""
    from colorize.core.color import resize_bilinear

    height, width = ab.shape[-2:]
    small = resize_bilinear(np.ascontiguousarray(ab, dtype=np.float32), (size, size))
    return [
        Hint(
            (hint.col + 0.5) / size,
            (hint.row + 0.5) / size,
            f"lab(50% {hint.ab[0]:.4f} {hint.ab[1]:.4f})",
            hint.half * max(height, width) / size,
            relative=True,
        )
        for hint in simulate_hints(small, count, rng)
    ]
