"""Strips one pixel high or wide (issue #35, point 11): a 10,000,000 x 1 16-bit PNG once took
8 GB to colorize, as pypng's reader made Python objects of every row and value, and each
composition tile of a tall strip copied whole rows of the network's ab. Also: 16-bit PNG rows
of every filter type, interlaced or not, decode exactly as they were written."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest
from conftest import SAFETY_TIMEOUT

from colorize.core import images
from colorize.core.images import decode

_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # planes -> PNG colour type: L, LA, RGB, RGBA
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _filtered(rows: np.ndarray, bpp: int, types) -> np.ndarray:
    """PNG scanlines of ``rows`` (H, row bytes), row y filtered with ``types[y]``, straight
    from the specification; None: every row unfiltered (type 0), at once."""
    if types is None:
        return np.hstack([np.zeros((len(rows), 1), np.uint8), rows])
    values = rows.astype(np.int32)
    out = np.empty((len(rows), rows.shape[1] + 1), np.uint8)
    for y, kind in enumerate(types):
        above = values[y - 1] if y else np.zeros_like(values[0])
        left = np.concatenate([np.zeros(bpp, np.int32), values[y, :-bpp]])
        corner = np.concatenate([np.zeros(bpp, np.int32), above[:-bpp]])
        estimate = left + above - corner
        far_left, far_above, far_corner = abs(estimate - left), abs(estimate - above), abs(estimate - corner)
        paeth = np.where(
            (far_left <= far_above) & (far_left <= far_corner), left, np.where(far_above <= far_corner, above, corner)
        )
        prediction = (0 * left, left, above, (left + above) // 2, paeth)[kind]
        out[y] = [kind, *((values[y] - prediction) & 0xFF)]
    return out


def _write_png16(path, samples: np.ndarray, types=None, interlace: bool = False) -> None:
    """``samples`` (H, W, planes) uint16 as a 16-bit PNG (PIL cannot write one in colour, and
    pypng always writes filter type 0). ``types``: a function of a pass's row count giving each
    row's filter type."""
    height, width, planes = samples.shape
    stream = []
    for left, top, across, down in _ADAM7 if interlace else ((0, 0, 1, 1),):
        part = np.ascontiguousarray(samples[top::down, left::across].astype(">u2"))
        if part.size:
            rows = part.view(np.uint8).reshape(len(part), -1)
            stream.append(_filtered(rows, 2 * planes, None if types is None else types(len(rows))).tobytes())
    header = struct.pack(">IIBBBBB", width, height, 16, _COLOUR_TYPES[planes], 0, 0, int(interlace))
    compressed = zlib.compress(b"".join(stream))
    idat = b"".join(_chunk(b"IDAT", compressed[i : i + 999]) for i in range(0, len(compressed), 999))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + idat + _chunk(b"IEND", b""))


def _strip(length: int, planes: int, tall: bool) -> np.ndarray:
    ramp = (np.arange(length * planes, dtype=np.uint64) * 40503 % 65536).astype(np.uint16)
    return ramp.reshape((length, 1, planes) if tall else (1, length, planes))


# ---------------------------------------------------------------- decoding memory


@pytest.mark.parametrize("tall", [False, True], ids=["2000000x1", "1x2000000"])
@pytest.mark.parametrize("planes", [3, 2], ids=["RGB", "LA"])
def test_decoding_a_16bit_strip_takes_a_few_times_its_own_size(tmp_path, planes, tall):
    """pypng's rows were Python ints (40 bytes a sample) and the reader stacked one numpy
    array per row: a 1 x 2,000,000 RGB strip took 1.4 GB to decode for its 12 MB."""
    samples = _strip(2_000_000, planes, tall)
    path = tmp_path / "strip.png"
    _write_png16(path, samples)

    tracemalloc.start()
    try:
        decoded = decode(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    colour = planes - 1 if planes == 2 else 3
    assert np.array_equal(decoded.data.reshape(samples.shape[:2] + (-1,)), samples[..., :colour])
    if planes == 2:
        assert np.array_equal(decoded.alpha, samples[..., 1])
    # Measured 1.7-3.7x (the file's samples, a block of the inflated stream, the planes split);
    # pypng's reader took 20-170x.
    assert peak <= 5 * samples.nbytes, (
        f"decoding a {samples.shape[1]}x{samples.shape[0]} 16-bit strip peaked at {peak / 1e6:.0f} MB "
        f"for {samples.nbytes / 1e6:.0f} MB of samples"
    )


# ---------------------------------------------------------------- every filter, exactly


@pytest.mark.parametrize("planes", [2, 3, 4], ids=["LA", "RGB", "RGBA"])
@pytest.mark.parametrize("interlace", [False, True], ids=["straight", "Adam7"])
@pytest.mark.parametrize("shape", [(23, 31), (1, 40), (40, 1), (1, 1)])
def test_16bit_png_rows_of_every_filter_type_decode_exactly(tmp_path, monkeypatch, planes, interlace, shape):
    """Rows are unfiltered a block at a time: a block of 100 bytes here, so that most blocks
    start below a row of the block before (the row that Up, Average and Paeth look up to)."""
    monkeypatch.setattr(images, "_PNG_BLOCK_BYTES", 100)
    rng = np.random.default_rng(planes * 100 + shape[0] + interlace)
    samples = rng.integers(0, 65536, (*shape, planes), dtype=np.uint16)
    path = tmp_path / "filtered.png"
    _write_png16(path, samples, types=lambda count: rng.integers(0, 5, count), interlace=interlace)

    decoded = decode(path)
    colour = 1 if planes == 2 else 3
    assert np.array_equal(decoded.data.reshape(*shape, colour), samples[..., :colour])
    alpha = samples[..., -1] if planes in (2, 4) else None
    assert (decoded.alpha is None) == (alpha is None) and (alpha is None or np.array_equal(decoded.alpha, alpha))


def test_a_16bit_png_cut_short_in_its_pixels_fails_in_one_line(tmp_path):
    samples = _strip(3000, 3, tall=True)
    raw = _filtered(samples.astype(">u2").view(np.uint8).reshape(3000, -1), 6, None).tobytes()
    header = struct.pack(">IIBBBBB", 1, 3000, 16, 2, 0, 0, 0)
    path = tmp_path / "short.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw[:-700]))
        + _chunk(b"IEND", b"")
    )
    with pytest.raises(ValueError, match="ends early"):
        images._read_16bit_png(path)
    with pytest.raises(images.ImageError) as error:
        decode(path)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- composition memory


_COMPOSE = """
import sys
import numpy as np
from colorize.core.color import compose_upsampled

def peak():  # this process's own peak RSS (ru_maxrss would carry the parent's over exec)
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024

height, width = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
lightness = rng.random((1, height, width), np.float32) * 100
small_ab = rng.standard_normal((2, 256, 256), np.float32) * 30
before = peak()
rgb = compose_upsampled(lightness, small_ab)
print(peak() - before, rgb.nbytes)
"""


@pytest.mark.parametrize("height, width", [(2_000_000, 1), (1, 2_000_000)], ids=["1x2000000", "2000000x1"])
def test_composing_a_strip_needs_little_beyond_its_output(height, width):
    """A tall strip's tiles are one column of 131,072 rows: selecting those rows of the
    network's 256 x 256 ab before its one column copied 268 MB per tile; and the source
    positions of all 2,000,000 rows (or columns) were kept at 20 bytes each."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("peak memory is read from Linux's /proc")
    done = subprocess.run(
        [sys.executable, "-c", _COMPOSE, str(height), str(width)],
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    grown, output = map(int, done.stdout.split())
    assert grown <= output + 32e6, (
        f"composing a {width}x{height} strip grew the peak by {grown / 1e6:.0f} MB for a {output / 1e6:.0f} MB output"
    )
