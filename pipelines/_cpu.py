"""The CPU side of a photo's full-resolution work, and the process settings that make it fast.

On the CPU the full-resolution part (upsampling ab, LAB -> RGB) is done in tiles of rows,
so a 12-megapixel photo never has a full-size ab or LAB tensor: the work stays in cache and
the only full-size allocation is the output itself. Tiles are shared among a few worker
threads. Why each setting is what it is: benchmarks/README.md. ``pipelines.inference``
holds the flow and calls these.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from colorize.experts.color import join_lab, lab_planes_to_rgb, lab_to_rgb


def compose_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """L (1, H, W) and ab (2, H, W) -> float32 RGB (H, W, 3) in [0, 1] (out-of-gamut clipped)."""
    ab = ab.to(lightness.device)
    if _fused(lightness, ab):
        return lab_planes_to_rgb(lightness[0], ab[0], ab[1]).numpy()
    return lab_to_rgb(join_lab(lightness, ab)).permute(1, 2, 0).cpu().numpy()


def _fused(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def compose_upsampled(
    lightness: torch.Tensor, small_ab: torch.Tensor, map_bands: Callable = map, dtype=np.float32
) -> np.ndarray:
    """L (1, H, W) and ab at the network's resolution (2, h, w) -> RGB (H, W, 3), as
    ``compose_rgb(lightness, bilinear upsample of small_ab)`` but without a full-size ab.

    ``map_bands`` runs the independent bands of rows (e.g. ``ThreadPoolExecutor.map``).
    ``dtype`` uint8 gives ``(rgb * 255 + 0.5)`` truncated, the 8 bits a file stores, made
    band by band: a quarter of the memory of float32, and no separate conversion pass.
    """
    height, width = lightness.shape[-2:]
    small_ab = small_ab.to(lightness.device)
    eight_bit = np.dtype(dtype) == np.uint8
    if not eight_bit and np.dtype(dtype) != np.float32:
        raise ValueError(f"dtype must be float32 or uint8, got {np.dtype(dtype)}")
    if not _fused(lightness, small_ab):
        rgb = compose_rgb(lightness, upsample(small_ab, (height, width)))
        return (rgb * 255 + 0.5).astype(np.uint8) if eight_bit else rgb
    # Bilinear interpolation is separable: for each tile, widen the two source rows each
    # output row lies between, then blend them. The source positions are computed as
    # F.interpolate computes them (align_corners=False), in float32, for the tile alone.
    # Tiles hold about _BAND_PIXELS pixels and span at most _TILE_COLUMNS columns unless
    # the photo is only a few rows high, so a 10,000,000 x 1 strip (or 1 x 10,000,000)
    # never has a full-length copy of anything but L and the output.
    rgb = torch.empty(height, width, 3, dtype=torch.uint8 if eight_bit else torch.float32)
    columns = min(width, max(_TILE_COLUMNS, _BAND_PIXELS // height))
    band = max(1, _BAND_PIXELS // columns)
    tiles = [(top, first) for top in range(0, height, band) for first in range(0, width, columns)]

    def compose_tile(tile: tuple[int, int]) -> None:
        # Worker threads do not inherit inference mode; without it, writing into a buffer
        # made under inference mode (or from its tensors) is refused.
        with torch.inference_mode():
            _compose_tile(*tile)

    def _compose_tile(top: int, first: int) -> None:
        down, across = slice(top, min(top + band, height)), slice(first, min(first + columns, width))
        upper, lower, row_weight = _source_positions(height, small_ab.shape[-2], down)
        left, right, column_weight = _source_positions(width, small_ab.shape[-1], across)
        # Only the part of ab under the tile: selecting whole rows of it first would copy all
        # its columns for each of a tall strip's 131,072-row tiles, one column wide.
        window = small_ab[:, upper[0] : lower[-1] + 1, left[0] : right[-1] + 1]
        upper, lower, left, right = upper - upper[0], lower - upper[0], left - left[0], right - left[0]

        def widen(source_rows: torch.Tensor) -> torch.Tensor:
            return source_rows.index_select(2, left).lerp_(source_rows.index_select(2, right), column_weight)

        ab = widen(window.index_select(1, upper))
        ab.lerp_(widen(window.index_select(1, lower)), row_weight.view(1, -1, 1))
        lab_planes_to_rgb(lightness[0, down, across], ab[0], ab[1], out=rgb[down, across])

    for _ in map_bands(compose_tile, tiles):
        pass
    return rgb.numpy()


def _source_positions(size: int, source_size: int, part: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For outputs ``part`` of ``size``, the two source indices and the weight of the second,
    as bilinear interpolation with align_corners=False places them."""
    scale = torch.tensor(source_size / size, dtype=torch.float32)
    source = ((torch.arange(part.start, part.stop, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_(min=0)
    first = source.long()
    second = (first + 1).clamp_(max=source_size - 1)
    return first, second, source - first


_TILE_COLUMNS = 1 << 13  # wider photos are composed in tiles of this many columns
_BAND_PIXELS = 1 << 17  # pixels per band of rows: one colour-conversion chunk; measured fastest here


def upsample(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(ab[None], size=size, mode="bilinear", align_corners=False)[0]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def tune_cpu(intra_op_threads: int | None = 1, keep_freed_memory: bool = True) -> dict:
    """Process-wide settings for CPU work; returns what was set. Measured in benchmarks/.

    One intra-op thread for PyTorch: the pipeline parallelises coarsely instead (bands of
    rows over worker threads, decoding and encoding beside the networks), because OpenMP's
    fine-grained fork/join stalls badly whenever another program holds a core. And glibc
    is asked to keep freed memory: by default every allocation over 32 MB is a fresh
    mmap, and its first touch page-faults, which costs more than the work done in it.
    """
    if intra_op_threads is not None:  # None: torch's own count, as training wants (its batches are large)
        torch.set_num_threads(intra_op_threads)
    kept = keep_freed_memory and _keep_freed_memory()
    return {"intra_op_threads": torch.get_num_threads(), "keep_freed_memory": kept}


def _keep_freed_memory() -> bool:
    """glibc only: serve large blocks from the heap (M_MMAP_MAX = 0) and keep up to 1 GiB
    of freed memory mapped (M_TRIM_THRESHOLD), so each photo reuses the last one's pages."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))


def is_cpu(device) -> bool:
    return torch.device(device).type == "cpu"


# A side reduced more than this many times is first averaged down to that ratio by area.
_MAX_ANTIALIAS_RATIO = 64


def resize_square(lightness: torch.Tensor, size: int) -> torch.Tensor:
    """(1, H, W) -> (1, 1, size, size), antialiased.

    An antialiased resize costs in proportion to how much it shrinks, and enlarges one side
    before shrinking the other: a 10,000,000 x 1 strip became a 10,000,000 x 224
    intermediate (9 GB). Sides far above ``size`` are area-averaged first (cheap, and the
    same smoothing antialiasing would do); an ordinary photo never takes this path.
    """
    if lightness.shape[-2:] == (size, size):
        return lightness[None]
    height, width = lightness.shape[-2:]
    limit = size * _MAX_ANTIALIAS_RATIO
    if height > limit or width > limit:
        lightness = F.adaptive_avg_pool2d(lightness[None], (min(height, limit), min(width, limit)))[0]
    return F.interpolate(lightness[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)
