"""Colour maths for inference in numpy: CIE LAB <-> sRGB (D65 white, 2° observer), L of a
photo, the resizes around the networks, and composing the output photo.

The numbers are scikit-image's (``rgb2lab``, ``lab2rgb``) and those of experts/color.py, the
torch version that training differentiates through. Photos are channels-last, as files and
scikit-image hold them: RGB (..., 3) float in [0, 1] or uint8 / uint16, LAB (..., 3) with L in
[0, 100] and a, b roughly in [-110, 110]. Planes that go to and come from the networks are
channels-first, as the networks take them: L (1, H, W), ab (2, h, w). float32 stays float32
and float64 float64; integer pixels give float32.

Conversions of whole photos and composing the output work tile by tile (at most
``_BAND_PIXELS`` pixels): the working set stays in cache, and the only full-size array made
is the result, for any shape (a 1 x 10,000,000 strip too).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import numpy as np

# The same constants as skimage.color, so that outputs agree with it to float precision.
_XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_EPSILON = 0.008856  # (6/29)^3, where the cube root is replaced by a line
_KAPPA = 7.787
_DELTA = 6 / 29  # where f^-1(t) = t^3 meets its linear segment
# f(X/Xn), f(Y), f(Z/Zn) after f^-1 -> linear RGB: the white point folded into the matrix.
_RGB_FROM_F = (_RGB_FROM_XYZ * _WHITE_D65).astype(np.float32)

_BAND_PIXELS = 1 << 16  # pixels per tile: the tile's buffers (~3 MB) stay in L2/L3
_TILE_COLUMNS = 1 << 13  # wider photos are cut into tiles of this many columns
_BLEND_SOURCE_ROWS = 4  # upsampling blends rows in pieces that span about this many source rows


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3), float in [0, 1] or uint8 / uint16 -> LAB (..., 3)."""
    rgb = _unit_float(_check_channels(rgb, "rgb_to_lab"))
    # In float64 whatever the input: a and b are differences of cube roots near 1, times
    # 500 and 200, which float32 arithmetic leaves ~1e-4 off; the result is then exact to
    # the precision of its own dtype.
    fx, fy, fz = np.moveaxis(_f(_linearize(rgb.astype(np.float64)) @ (_XYZ_FROM_RGB / _WHITE_D65[:, None]).T), -1, 0)
    return np.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), axis=-1).astype(rgb.dtype)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """LAB (..., 3), float -> sRGB (..., 3) in [0, 1] (out-of-gamut colours clipped).

    The reference formulas, for any size and precision; ``compose_upsampled`` is the fast
    float32 form for whole photos."""
    lab = _check_channels(lab, "lab_to_rgb")
    lab = lab.astype(_float_type(lab), copy=False)
    lightness, a, b = np.moveaxis(lab, -1, 0)
    fy = (lightness + 16) / 116
    # skimage clips negative z (colours far outside the gamut); so do we, to agree with it.
    f = np.stack((fy + a / 500, fy, np.maximum(fy - b / 200, 0)), axis=-1)
    xyz = np.where(f > 0.2068966, f**3, (f - 16 / 116) / _KAPPA)
    return _srgb_gamma(xyz @ _RGB_FROM_F.T.astype(lab.dtype, copy=False))


def rgb_to_lightness(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3), float in [0, 1] or uint8 / uint16 -> L (...) in [0, 100].

    L depends on the luminance Y alone, so only Y is computed; integer pixels are made
    linear through a table of every level (no float copy of the photo is made)."""
    rgb = _check_channels(rgb, "rgb_to_lightness")
    weights = _XYZ_FROM_RGB[1].astype(_float_type(rgb))
    if rgb.dtype in (np.uint8, np.uint16):
        table = _linear_table(rgb.dtype)
        return _map_tiles(lambda pixels: _luminance_to_lightness(table[pixels] @ weights), rgb, channels=True)
    return _map_tiles(lambda pixels: _luminance_to_lightness(_linearize(pixels) @ weights), rgb, channels=True)


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """Gray (...) read as R = G = B, float in [0, 1] or uint8 / uint16 -> L (...) in [0, 100].

    For a neutral colour X/Xn = Y = Z/Zn, so L is a curve of the gray value alone: integer
    levels are read from a table of all of them."""
    gray = np.asarray(gray)
    if gray.dtype in (np.uint8, np.uint16):
        return _look_up_tiles(_lightness_table(gray.dtype), gray)
    return _map_tiles(lambda pixels: _luminance_to_lightness(_linearize(pixels)), gray, channels=False)


def lightness_from_array(pixels: np.ndarray) -> np.ndarray:
    """Gray (H, W) or RGB (H, W, 3), float in [0, 1] or uint8 / uint16 -> L (1, H, W) in [0, 100]."""
    if pixels.ndim == 2:
        return gray_to_lightness(pixels)[None]
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        return rgb_to_lightness(pixels)[None]
    raise ValueError(f"expected a gray (H, W) or RGB (H, W, 3) image, got shape {tuple(pixels.shape)}")


def _check_channels(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim < 1 or image.shape[-1] != 3:
        raise ValueError(f"{name} expects an array of shape (..., 3), got {image.shape}")
    return image


def _float_type(array: np.ndarray) -> type:
    return np.float64 if array.dtype == np.float64 else np.float32


def _unit_float(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 -> float32 in [0, 1]; float32 and float64 as they are."""
    if array.dtype in (np.uint8, np.uint16):
        return array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    return array.astype(_float_type(array), copy=False)


def _linearize(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb > 0.04045, ((np.maximum(srgb, 0) + 0.055) / 1.055) ** 2.4, srgb / 12.92)


def _f(t: np.ndarray) -> np.ndarray:
    """CIE's f: the cube root, and a line below _EPSILON."""
    return np.where(t > _EPSILON, np.cbrt(t), _KAPPA * t + 16 / 116)


def _luminance_to_lightness(luminance: np.ndarray) -> np.ndarray:
    return 116 * _f(luminance) - 16


def _srgb_gamma(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB, clipped to [0, 1], as scikit-image computes it."""
    curve = np.where(linear > 0.0031308, 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return np.clip(curve, 0, 1)


@functools.cache
def _linear_table(dtype: np.dtype) -> np.ndarray:
    top = np.iinfo(dtype).max
    return _linearize(np.arange(top + 1) / top).astype(np.float32)


@functools.cache
def _lightness_table(dtype: np.dtype) -> np.ndarray:
    top = np.iinfo(dtype).max
    return _luminance_to_lightness(_linearize(np.arange(top + 1) / top)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Tiles: every full-resolution step visits a photo in pieces of at most _BAND_PIXELS pixels.


def _tiles(height: int, width: int) -> list[tuple[slice, slice]]:
    """(rows, columns) of the tiles covering height x width: bands of whole rows, cut into
    _TILE_COLUMNS-wide pieces only where the photo is too wide for a row or two to fit."""
    if height == 0 or width == 0:
        return []
    columns = min(width, max(_TILE_COLUMNS, _BAND_PIXELS // height))
    band = max(1, _BAND_PIXELS // columns)
    return [
        (slice(top, min(top + band, height)), slice(left, min(left + columns, width)))
        for top in range(0, height, band)
        for left in range(0, width, columns)
    ]


def _look_up_tiles(table: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``table[indices]`` for integer ``indices`` within the table, taken tile by tile into the
    result: a third faster than indexing at 12 MP (the indices' widening stays in cache)."""
    out = np.empty(indices.shape, table.dtype)
    if indices.size == 0:
        return out
    grid = indices.reshape(-1, indices.shape[-1]) if indices.ndim else indices.reshape(1, 1)
    into = out.reshape(grid.shape)
    for down, across in _tiles(*grid.shape):
        np.take(table, grid[down, across], out=into[down, across], mode="clip")  # "raise" would buffer ``out``
    return out


def _map_tiles(function: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, channels: bool) -> np.ndarray:
    """``function`` of each pixel of (..., H, W) pixels, or (..., H, W, 3) where ``channels``,
    applied tile by tile -> (..., H, W) in the function's dtype. Leading dimensions are more rows."""
    shape = pixels.shape[:-1] if channels else pixels.shape
    tail = pixels.shape[len(shape) :]
    if pixels.size == 0:
        return function(pixels.reshape(0, *tail)).reshape(shape)
    grid = pixels.reshape(-1, shape[-1], *tail) if shape else pixels.reshape(1, 1, *tail)
    out: np.ndarray | None = None
    for down, across in _tiles(*grid.shape[:2]):
        values = function(grid[down, across])
        if out is None:
            out = np.empty(grid.shape[:2], values.dtype)
        out[down, across] = values
    assert out is not None  # a photo of at least one pixel has at least one tile
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------
# Composing the output: full-resolution L + small ab -> RGB. The cost of a 12 MP photo is
# here, so it is written for speed: float32, in-place operations on one tile's buffers,
# and the sRGB gamma read from a table. Measured in benchmarks/numpy_kernels.py.

# The gamma table is indexed by a float32's top bits (exponent and leading mantissa bits):
# bins of constant *relative* width, 2^-12, which suits a power curve; each entry is the
# mean of the curve at its bin's edges, within 5e-5 of the formula everywhere (0.013 of an
# 8-bit level). Index k covers [float(k << _TABLE_SHIFT), float((k + 1) << _TABLE_SHIFT)),
# from 0 up to the bin of 1.0: negative values (sign bit set) read as negative indices
# and larger ones beyond the end, and ``take(mode="clip")`` sends them to 0 and 1.
_TABLE_SHIFT = 11


@functools.cache
def _gamma_table(dtype: np.dtype) -> np.ndarray:
    last = int(np.array(1.0, np.float32).view(np.int32)) >> _TABLE_SHIFT
    edges = (np.arange(last + 2, dtype=np.int64) << _TABLE_SHIFT).astype(np.int32).view(np.float32)
    curve = _srgb_gamma(np.minimum(edges.astype(np.float64), 1.0))
    means = ((curve[:-1] + curve[1:]) / 2).astype(np.float32)
    if dtype == np.uint8:
        # Truncated, as float -> uint8 conversions are: the bytes an 8-bit file stores.
        return (means * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    return means


def compose_upsampled(
    lightness: np.ndarray, small_ab: np.ndarray, dtype=np.float32, map_bands: Callable = map
) -> np.ndarray:
    """L (1, H, W) in [0, 100] and ab at the network's resolution (2, h, w) -> RGB (H, W, 3).

    The RGB of L joined with ab resized to (H, W) bilinearly (as ``F.interpolate(...,
    mode="bilinear", align_corners=False)``), made tile by tile: no full-size ab or LAB
    exists, only the result. ``dtype`` float32 gives [0, 1] (out-of-gamut colours clipped);
    uint8 gives ``(rgb * 255 + 0.5)`` truncated, the bytes an 8-bit file stores, with no
    float RGB made at all. ``map_bands`` runs the independent tiles (e.g. a thread pool's ``map``).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.uint8):
        raise ValueError(f"dtype must be float32 or uint8, got {dtype}")
    if lightness.ndim != 3 or lightness.shape[0] != 1 or small_ab.ndim != 3 or small_ab.shape[0] != 2:
        raise ValueError(f"expected L (1, H, W) and ab (2, h, w), got {lightness.shape} and {small_ab.shape}")
    plane = lightness[0]
    rgb = np.empty((*plane.shape, 3), dtype)
    # Upsampling is linear, so ab is scaled to the f(X/Xn) - f(Y) and f(Y) - f(Z/Zn) it
    # stands for once, at the small size, instead of at every output pixel.
    scaled = small_ab.astype(np.float32) * np.array([1 / 500, 1 / 200], np.float32)[:, None, None]
    tiles = _tiles(*plane.shape)
    table = _gamma_table(dtype)
    # The first tile is the largest: a whole band of rows, a whole run of columns.
    largest = tiles[0][0].stop * tiles[0][1].stop if tiles else 0
    local = threading.local()  # one set of tile buffers per worker thread

    def compose_tile(tile: tuple[slice, slice]) -> None:
        if not hasattr(local, "buffers"):
            local.buffers = _TileBuffers(largest)
        _compose_tile(plane, scaled, *tile, rgb, table, local.buffers)

    for _ in map_bands(compose_tile, tiles):
        pass
    return rgb


class _TileBuffers:
    """Scratch arrays for one tile of up to ``pixels`` pixels, reused tile after tile."""

    def __init__(self, pixels: int):
        self.f, self.low, self.cube = (np.empty((3, pixels), np.float32) for _ in range(3))
        # intp, the type take() indexes with: int32 indices would be converted, a copy per tile.
        self.index = np.empty((pixels, 3), np.intp)


def _compose_tile(plane, scaled_ab, rows: slice, cols: slice, rgb, table, buffers: _TileBuffers) -> None:
    lightness = plane[rows, cols]
    n = lightness.size
    f = buffers.f[:, :n].reshape(3, *lightness.shape)
    _upsample_tile(scaled_ab, plane.shape, rows, cols, out=f[::2])
    fy = f[1]
    np.multiply(lightness, 1 / 116, out=fy)
    fy += 16 / 116
    f[0] += fy
    np.subtract(fy, f[2], out=f[2])
    np.maximum(f[2], 0, out=f[2])  # skimage clips negative z too
    _f_to_rgb(buffers.f[:, :n], rgb[rows, cols], table, buffers)


def _f_to_rgb(f: np.ndarray, rgb: np.ndarray, table: np.ndarray, buffers: _TileBuffers) -> None:
    """f(X/Xn), f(Y), f(Z/Zn) planes (3, n) -> rgb (..., 3) of n pixels; ``f`` is overwritten."""
    n = f.shape[1]
    low, cube = buffers.low[:, :n], buffers.cube[:, :n]
    # f^-1 without a branch: max(t, d)^3 + 3d^2 min(t - d, 0) is t^3 above d and the line
    # below it (they meet at d); minimum and maximum cost less than `where`.
    np.subtract(f, _DELTA, out=low)
    np.minimum(low, 0, out=low)
    low *= 3 * _DELTA**2
    np.maximum(f, _DELTA, out=f)
    np.multiply(f, f, out=cube)
    cube *= f
    low += cube
    # (3, 3) x (3, n): BLAS does this in 0.5 ns a pixel, three times less than nine ufuncs,
    # and (n, 3) output, the layout the table lookup wants, costs four times more.
    np.matmul(_RGB_FROM_F, low, out=cube)
    index = buffers.index[:n]
    # Shifting writes the bins channels-last: the one transposition, done by an op that runs anyway.
    np.right_shift(cube.view(np.int32), _TABLE_SHIFT, out=index.T)
    np.take(table, index.reshape(rgb.shape), out=rgb, mode="clip")


def _upsample_tile(small: np.ndarray, size: tuple[int, int], rows: slice, cols: slice, out: np.ndarray) -> None:
    """Bilinear (align_corners=False) values of ``small`` (C, h, w) resized to ``size``, at
    ``rows`` x ``cols`` only -> ``out`` (C, rows, cols)."""
    upper, lower, row_weight = _source_positions(size[0], small.shape[-2], rows)
    left, right, column_weight = _column_positions(size[1], small.shape[-1], cols)
    # Only the part of ``small`` under the tile (a tall strip's tile is one column wide),
    # widened to the tile's columns: a few source rows, each once.
    window = small[:, upper[0] : lower[-1] + 1, left[0] : right[-1] + 1]
    wide = np.take(window, left - left[0], axis=2)
    wide += column_weight * (np.take(window, right - left[0], axis=2) - wide)
    upper, lower = upper - upper[0], lower - upper[0]
    # Each output row blends two of those rows: a (rows, source rows) matrix with two weights
    # a row, applied by BLAS (15x faster than gathering rows). Taken in pieces of rows that
    # span about _BLEND_SOURCE_ROWS source rows, so the matrix stays small for any shape.
    piece = max(64, _BLEND_SOURCE_ROWS * size[0] // small.shape[-2])
    for top in range(0, len(upper), piece):
        part = slice(top, top + piece)
        first, last = upper[part][0], lower[part][-1] + 1
        blend = np.zeros((len(upper[part]), last - first), np.float32)
        every = np.arange(len(blend))
        blend[every, upper[part] - first] = 1 - row_weight[part]
        blend[every, lower[part] - first] += row_weight[part]
        np.matmul(blend, wide[:, first:last], out=out[:, part])


def _column_positions(size: int, source_size: int, cols: slice) -> tuple[np.ndarray, ...]:
    """``_source_positions`` of a tile's columns. A photo's tiles share them (bands of whole
    rows, or the same few runs of a very wide photo), and computing them again for every tile
    costs a tenth of the upsampling: runs up to _TILE_COLUMNS long are kept (a few MB at most).
    A strip's longer runs are each used once."""
    if cols.stop - cols.start > _TILE_COLUMNS:
        return _source_positions(size, source_size, cols)
    return _kept_column_positions(size, source_size, cols.start, cols.stop)


@functools.lru_cache(maxsize=8)
def _kept_column_positions(size: int, source_size: int, start: int, stop: int) -> tuple[np.ndarray, ...]:
    positions = _source_positions(size, source_size, slice(start, stop))
    for array in positions:
        array.flags.writeable = False
    return positions


def _source_positions(size: int, source_size: int, part: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For outputs ``part`` of ``size``: the two source indices and the weight of the second,
    placed as F.interpolate places them (align_corners=False), in float32 as it computes them."""
    scale = np.float32(source_size) / np.float32(size)
    # scale * (i + 0.5) - 0.5 rounded once: torch's kernel is compiled to a fused multiply-add.
    source = np.float64(scale) * (np.arange(part.start, part.stop, dtype=np.float32) + np.float32(0.5)) - 0.5
    source = np.maximum(source, 0).astype(np.float32)
    first = source.astype(np.intp)
    return first, np.minimum(first + 1, source_size - 1), source - np.floor(source)


# ---------------------------------------------------------------------------------------
# Resizing to and from the networks' sizes.

# A side reduced more than this many times is first averaged down to that ratio by area.
_MAX_ANTIALIAS_RATIO = 64
# Resampling is a sparse matrix per axis, applied as dense blocks (BLAS): each a run of
# outputs whose inputs span about this many times the inputs of one output. Wider blocks
# multiply more zeros, narrower ones make more calls. Measured in benchmarks/numpy_kernels.py,
# as is why BLAS's own thread count is for the process (the CLI) to keep at 1: with two
# OpenBLAS threads on a busy 2-core machine, resize_square took 240 ms instead of 15.
_BLOCK_WASTE = 8
_FEW_COLUMNS = 16  # narrower rows are averaged by area with running sums instead


def resize_bilinear(image: np.ndarray, size: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """(..., H, W) float -> (..., size[0], size[1]), as ``F.interpolate(image, size,
    mode="bilinear", align_corners=False, antialias=antialias)``: when shrinking with
    ``antialias``, a triangle filter as wide as the ratio, else plain bilinear."""
    return _resample(image, size, _triangle_taps if antialias else _bilinear_taps)


def resize_square(lightness: np.ndarray, size: int) -> np.ndarray:
    """L (1, H, W) -> (1, 1, size, size), antialiased bilinear: the networks' input.

    An antialiased resize costs in proportion to how much it shrinks, so sides far above
    ``size`` (a 10,000,000 x 1 strip) are first averaged by area to ``_MAX_ANTIALIAS_RATIO``
    times ``size``, as ``F.adaptive_avg_pool2d``: the same smoothing, far cheaper. An
    ordinary photo never takes that step.
    """
    if lightness.shape[-2:] == (size, size):
        return lightness[None]
    height, width = lightness.shape[-2:]
    limit = size * _MAX_ANTIALIAS_RATIO
    if height > limit or width > limit:
        lightness = _resample(lightness, (min(height, limit), min(width, limit)), _area_taps)
    return resize_bilinear(lightness, (size, size))[None]


def _resample(image: np.ndarray, size: tuple[int, int], taps: Callable) -> np.ndarray:
    """(..., H, W) -> (..., *size), each axis by the weights ``taps`` gives; width first, as torch."""
    image = np.asarray(image)
    image = image.astype(_float_type(image), copy=False)
    height, width = image.shape[-2:]
    out = np.empty((*image.shape[:-2], *size), image.dtype)
    for plane, target in zip(image.reshape(-1, height, width), out.reshape(-1, *size)):
        # Columns are resampled as the rows of the transposed plane: BLAS reads either layout.
        narrowed = _resample_rows(plane.T, size[1], taps).T
        target[...] = _resample_rows(narrowed, size[0], taps)
    return out


def _resample_rows(rows: np.ndarray, new_size: int, taps: Callable) -> np.ndarray:
    """(N, M) -> (new_size, M): each output row a weighted sum of a run of input rows."""
    size = len(rows)
    if new_size == size:
        return rows  # every kernel here is the identity at equal sizes
    if taps is _area_taps and rows.shape[1] < _FEW_COLUMNS:
        # A strip (10,000,000 x 1): dense blocks would be mostly zeros, ~700 per input here.
        return _area_mean_rows(rows, new_size)
    out = np.empty((new_size, rows.shape[1]), rows.dtype)
    for part, start, block in _resample_plan(size, new_size, taps, rows.dtype):
        np.matmul(block, rows[start : start + block.shape[1]], out=out[part])
    return out


@functools.lru_cache(maxsize=64)
def _resample_plan(
    size: int, new_size: int, taps: Callable, dtype: np.dtype
) -> tuple[tuple[slice, int, np.ndarray], ...]:
    """The dense blocks of ``_resample_rows``: (outputs, first input, weights (outputs, inputs)).
    Kept for the sizes seen last: a folder's photos and the networks' sizes repeat, and making
    the blocks costs more than using them on a small image."""
    middle = slice(new_size // 2, new_size // 2 + 1)
    span = taps(size, new_size, middle)[1].shape[1]  # inputs one output reads
    per_block = max(1, round((_BLOCK_WASTE - 1) * span * new_size / size) + 1)
    plan = []
    for start in range(0, new_size, per_block):
        part = slice(start, min(start + per_block, new_size))
        first, weights = taps(size, new_size, part)
        block = np.zeros((len(first), min(first[-1] + weights.shape[1], size) - first[0]), dtype)
        columns = first[:, None] - first[0] + np.arange(weights.shape[1])
        inside = columns < block.shape[1]
        block[np.nonzero(inside)[0], columns[inside]] = weights[inside]
        block.flags.writeable = False  # shared by every later call
        plan.append((part, int(first[0]), block))
    return tuple(plan)


# The taps below are computed in float32 step by step as torch's CPU kernels compute them
# (UpSampleKernel.cpp): a position off by one float32 step moves a weight by ~1e-5, and
# next to a sharp edge (100 L apart) the output by 1e-3.


def _bilinear_taps(size: int, new_size: int, part: slice) -> tuple[np.ndarray, np.ndarray]:
    """For outputs ``part`` of a resize from ``size`` to ``new_size``, plain bilinear: the
    first input each reads and the weights (outputs, 2) of it and the next."""
    first, second, weight = _source_positions(new_size, size, part)
    weights = np.stack((1 - weight, weight), axis=1)
    weights[second == first] = (1, 0)  # at the last input, both taps are that input
    return first, weights


def _triangle_taps(size: int, new_size: int, part: slice) -> tuple[np.ndarray, np.ndarray]:
    """The same for torch's antialiased kernel: a triangle as wide as the ratio when
    shrinking (one input either side when enlarging), renormalised where it overhangs a border."""
    scale = np.float32(size) / np.float32(new_size)
    support, inverse = (scale, np.float32(1 / np.float64(scale))) if scale >= 1 else (np.float32(1), np.float32(1))
    center = (np.float64(scale) * (np.arange(part.start, part.stop) + 0.5)).astype(np.float32)
    # float32 sums, then + 0.5 and the products in float64, as the C++ promotes them.
    first = np.maximum((center - support).astype(np.float64) + 0.5, 0).astype(np.intp)
    taps = np.minimum(((center + support).astype(np.float64) + 0.5).astype(np.intp), size) - first
    taps = np.clip(taps, 0, 2 * int(np.ceil(support)) + 1)
    inputs = first[:, None] + np.arange(taps.max())
    x = np.abs(((inputs.astype(np.float32) - center[:, None]).astype(np.float64) + 0.5) * inverse).astype(np.float32)
    weights = np.where((x < 1) & (inputs < first[:, None] + taps[:, None]), 1 - x, np.float32(0))
    total = np.add.accumulate(weights, axis=1)[:, -1:]  # summed in order, as torch does
    return first, weights / np.where(total == 0, np.float32(1), total)


def _area_taps(size: int, new_size: int, part: slice) -> tuple[np.ndarray, np.ndarray]:
    """The same for averaging by area, as ``F.adaptive_avg_pool2d``."""
    first, stop = _area_windows(size, new_size, np.arange(part.start, part.stop))
    inputs = first[:, None] + np.arange((stop - first).max())
    return first, np.where(inputs < stop[:, None], np.float32(1) / (stop - first)[:, None], np.float32(0))


def _area_windows(size: int, new_size: int, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output i averages inputs floor(i n / m) to ceil((i + 1) n / m) - 1: where n / m is not
    a whole number, a window shares its last input with the next one."""
    return outputs * size // new_size, -((outputs + 1) * size // -new_size)


def _area_mean_rows(rows: np.ndarray, new_size: int) -> np.ndarray:
    """``_area_taps``' means by running sums, for rows of a few columns (shrinking only)."""
    first, stop = _area_windows(len(rows), new_size, np.arange(new_size))
    sums = np.add.reduceat(rows, first, axis=0)  # [first[i], first[i + 1]), the last to the end
    shared = np.flatnonzero(stop[:-1] > first[1:])
    sums[shared] += rows[first[shared + 1]]
    return sums / (stop - first)[:, None].astype(rows.dtype)


# ---------------------------------------------------------------------------------------
# What is a black-and-white photo.

_SAME_HUE_DEGREES = 10.0
_SAME_HUE_SLOPE = float(np.tan(np.radians(_SAME_HUE_DEGREES)))


def is_colour_photo(pixels: np.ndarray, chroma_threshold: float = 6.0, min_fraction: float = 0.03) -> bool:
    """True for a real colour photo; False for gray and toned (sepia, cyanotype) prints.

    ``pixels``: (H, W) or (H, W, 3), float in [0, 1] or uint8 / uint16. In a toned print the
    colour follows brightness (dark brown shadows, cream highlights), and where it does not,
    it is more or less of the same hue (a faded or stained print). So a pixel is evidence of
    colour when its ab lies further than ``chroma_threshold`` from the mean ab of pixels of
    the same L *and* off that mean's own hue (by more than ``_SAME_HUE_DEGREES``); a photo
    is colour when more than ``min_fraction`` of its pixels are. A single-hue test would call
    warm colour photos (a ginger cat, a cup of coffee) black-and-white.
    """
    if pixels.ndim == 2:
        return False
    # Box-average by at least 4: JPEG stores chroma at half resolution, blurred across sharp
    # edges while L stays sharp, which would look like colour beside every edge of a toned
    # print. Averaging blocks lines chroma up with L again; ~64 px also keeps this instant.
    factor = max(4, max(pixels.shape[:2]) // 64)
    lab = rgb_to_lab(_box_reduce(pixels, factor)).reshape(-1, 3)
    bins = 16
    index = np.clip((lab[:, 0] * np.float32(bins / 100)).astype(np.intp), 0, bins - 1)
    counts = np.maximum(np.bincount(index, minlength=bins), 1)
    mean = np.stack([np.bincount(index, lab[:, c], bins) / counts for c in (1, 2)]).astype(np.float32)[:, index]
    offset = lab[:, 1:].T - mean
    strength = np.hypot(*mean)
    direction = mean / np.maximum(strength, 1e-6)
    along = (offset * direction).sum(axis=0)
    across = offset[1] * direction[0] - offset[0] * direction[1]
    # Same hue: the pixel's ab lies within the angle around the mean's direction.
    same_hue = (strength > chroma_threshold) & (np.abs(across) < _SAME_HUE_SLOPE * np.maximum(strength + along, 0))
    evidence = (np.hypot(*offset) > chroma_threshold) & ~same_hue
    return bool(evidence.mean(dtype=np.float32) > min_fraction)


def _box_reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, C) -> float32 means over blocks of about factor x factor pixels (at least one
    block each way), in [0, 1]; converted to float a band of blocks at a time."""
    rows, cols = max(1, pixels.shape[0] // factor), max(1, pixels.shape[1] // factor)
    block_h, block_w = pixels.shape[0] // rows, pixels.shape[1] // cols
    out = np.empty((rows, cols, pixels.shape[2]), np.float32)
    band = max(1, _BAND_PIXELS // (block_h * pixels.shape[1]))
    for top in range(0, rows, band):
        part = pixels[top * block_h : min(top + band, rows) * block_h, : cols * block_w]
        blocks = _unit_float(part).astype(np.float32, copy=False).reshape(-1, block_h, cols, block_w, pixels.shape[2])
        out[top : top + band] = blocks.mean(axis=(1, 3))
    return out
