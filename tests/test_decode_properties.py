"""Property tests for the decode path: whatever bytes a file holds, decoding either
succeeds with a sane image or raises ``ImageError`` with one line; nothing else escapes."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from colorize.core.color import is_colour_photo
from colorize.core.images import ImageError, decode, encode

# PIL warns about the damaged metadata these tests feed it; the CLI filters those warnings
# (imageio), but pytest resets filters for each test.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FORMAT_MODES = {
    "JPEG": ["L", "RGB", "CMYK"],
    "PNG": ["1", "L", "LA", "RGB", "RGBA", "P", "I;16"],
    "TIFF": ["1", "L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16"],
    "BMP": ["1", "L", "RGB", "P"],
    "WEBP": ["RGB", "RGBA"],
}
PAIRS = [(fmt, mode) for fmt, modes in FORMAT_MODES.items() for mode in modes]


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _decode_bytes(folder: Path, content: bytes, name: str = "fuzz.jpg"):
    path = folder / name
    path.write_bytes(content)
    try:
        return decode(path)
    except ImageError as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)
        return None


def _check_sane(decoded) -> None:
    width, height = decoded.size
    assert width >= 1 and height >= 1
    assert decoded.data.dtype in (np.uint8, np.uint16)
    assert decoded.data.ndim in (2, 3) and decoded.data.shape[:2] == (height, width)
    assert decoded.alpha is None or decoded.alpha.shape == (height, width)
    lightness = decoded.lightness()
    assert lightness.shape == (1, height, width)
    assert bool((lightness >= -1e-3).all() and (lightness <= 100 + 1e-3).all())


@st.composite
def images(draw):
    fmt, mode = draw(st.sampled_from(PAIRS))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    else:
        channels = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
        array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        base = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        image = Image.fromarray(array[..., 0] if channels == 1 else array, base)
        if mode == "CMYK":
            image = Image.frombytes("CMYK", (width, height), array.tobytes())
        elif mode != base:
            image = image.convert(mode)
    if draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 9))  # 0 and 9 are invalid orientations: must not crash
        extra = {"exif": exif.tobytes()}
    else:
        extra = {}
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **extra)
    return fmt, mode, (width, height), buffer.getvalue()


@SETTINGS
@given(content=st.binary(max_size=2048))
def test_random_bytes_decode_or_raise_image_error(folder, content):
    decoded = _decode_bytes(folder, content)
    if decoded is not None:
        _check_sane(decoded)


@SETTINGS
@given(
    prefix=st.sampled_from(
        [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 "]
    ),
    tail=st.binary(max_size=512),
)
def test_bytes_that_start_like_an_image_decode_or_raise_image_error(folder, prefix, tail):
    decoded = _decode_bytes(folder, prefix + tail)
    if decoded is not None:
        _check_sane(decoded)


@SETTINGS
@given(image=images())
def test_valid_images_of_any_size_and_mode_decode(folder, image):
    fmt, mode, (width, height), content = image
    decoded = _decode_bytes(folder, content, name="valid.img")
    assert decoded is not None, f"{fmt} {mode} {width}x{height} failed to decode"
    assert decoded.format == fmt
    assert sorted(decoded.size) == sorted((width, height))  # orientations 5-8 swap the sides
    assert decoded.bits == (16 if mode == "I;16" else 8)
    _check_sane(decoded)


@SETTINGS
@given(image=images(), data=st.data())
def test_damaged_images_decode_or_raise_image_error(folder, image, data):
    fmt, mode, _, content = image
    damaged = bytearray(content)
    if data.draw(st.booleans(), label="truncate"):
        damaged = damaged[: data.draw(st.integers(0, len(damaged) - 1), label="keep")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            position = data.draw(st.integers(0, len(damaged) - 1), label="at")
            damaged[position] = data.draw(st.integers(0, 255), label="byte")
    decoded = _decode_bytes(folder, bytes(damaged), name="damaged.img")
    if decoded is not None:
        _check_sane(decoded)


@SETTINGS
@given(image=images())
def test_whatever_decodes_can_be_written_back(folder, image):
    fmt, mode, _, content = image
    decoded = _decode_bytes(folder, content, name="valid.img")
    assert decoded is not None
    rgb = np.repeat(decoded.pixels[..., None], 3, -1) if decoded.is_gray else decoded.pixels
    out = encode(rgb, decoded, folder / "written.img", note="colorized by expert general (forced)")
    again = decode(out)
    assert again.size == decoded.size
    if fmt == "PNG" and decoded.bits == 16:
        # Written as 16-bit RGB; Pillow (and so decode) reads 16-bit colour PNGs at 8 bits.
        assert out.read_bytes()[24] == 16, "IHDR bit depth"
    else:
        assert again.bits == decoded.bits
    assert (again.alpha is None) == (decoded.alpha is None or fmt == "JPEG")


@SETTINGS
@given(
    shape=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    channels=st.sampled_from([None, 3]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_colour_test_never_crashes_on_any_array(shape, channels, dtype, seed):
    rng = np.random.default_rng(seed)
    full = shape if channels is None else (*shape, channels)
    if dtype == np.float32:
        array = rng.random(full, dtype=np.float32)
    else:
        array = rng.integers(0, np.iinfo(dtype).max, full, dtype=dtype, endpoint=True)
    assert is_colour_photo(array) in (True, False)
