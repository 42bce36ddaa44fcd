"""Image files in and out: safe decoding by content, and atomic writes that keep metadata.

Decoding accepts JPEG, PNG, TIFF, BMP and WebP in modes L, LA, RGB, RGBA, P, CMYK, I;16
(and 16-bit TIFF, float TIFF of values 0-1), applies EXIF orientation, and refuses
oversized images before their pixels are decoded. Every problem with a file is an
``ImageError`` with a one-line reason. Outputs carry a marker (EXIF Software, PNG text,
TIFF Software) naming the expert, which is also how a later run recognises them as ours.
"""

from __future__ import annotations

import io
import re
import stat as statmod
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from colorize.core.color import lightness_from_array
from colorize.core.errors import ColorizeError
from colorize.core.files import atomic_write


@dataclass(frozen=True)
class ImageFormat:
    """A file format colorize reads and writes: Pillow's name for it, its file extensions
    (the first is the one colorize writes) and its media type."""

    name: str
    extensions: tuple[str, ...]
    media_type: str


# The one table of formats: every other list of them (suffixes a folder is searched for,
# what an output name's extension says to write, the server's media types) is drawn from it.
FORMATS = (
    ImageFormat("JPEG", (".jpg", ".jpeg"), "image/jpeg"),
    ImageFormat("PNG", (".png",), "image/png"),
    ImageFormat("TIFF", (".tif", ".tiff"), "image/tiff"),
    ImageFormat("BMP", (".bmp",), "image/bmp"),
    ImageFormat("WEBP", (".webp",), "image/webp"),
)
SUPPORTED_FORMATS = tuple(image_format.name for image_format in FORMATS)
FORMAT_NAMED = {image_format.name: image_format for image_format in FORMATS}
FORMAT_OF_EXTENSION = {
    extension: image_format.name for image_format in FORMATS for extension in image_format.extensions
}
DEFAULT_MAX_PIXELS = 100_000_000
MAX_JPEG_SCANS = 500
COLORIZED_TAG = "colorize"  # PNG text key
# EXIF/TIFF Software of our outputs: "colorize: <note>". Recognised by this whole prefix, as
# other programs call themselves "colorizer 2.1" or "colorize.cc online".
_SOFTWARE_PREFIX = f"{COLORIZED_TAG}: "

# PIL warns about odd metadata in the files it reads ("Possibly corrupt EXIF data", ...).
# Those say nothing the user can act on, and `warnings.catch_warnings` is not thread-safe
# (decoding runs in worker threads), so they are filtered once, for PIL only.
warnings.filterwarnings("ignore", module=r"PIL(\.|$)")

_ORIENTATION, _SOFTWARE = 0x0112, 0x0131
_QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations turned a quarter: width and height swap
_BITS_PER_SAMPLE, _SAMPLE_FORMAT = 258, 339
_SIGNED, _FLOAT = 2, 3  # SampleFormat values (1 is unsigned integer, the default)
_BAND_PIXELS = 1 << 18  # pixels per band where a whole photo is converted in pieces
_PNG_BLOCK_BYTES = 1 << 22  # decompressed bytes of PNG rows read and unfiltered at a time
# Adam7's seven passes: first column and row, then the step between columns and rows.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
# A JPEG APP1 segment holds at most 65,533 bytes of EXIF ("Exif\0\0" included).
_MAX_EXIF_BYTES = 65533
# Descriptive TIFF tags carried from a TIFF input to its TIFF output (the rest of a TIFF
# header describes the pixel layout, which we write anew).
_XMP_TAG = 700
_TIFF_KEPT_TAGS = (270, 271, 272, 306, 315, 33432, _XMP_TAG)  # description, make, model, date, artist, copyright, XMP


class ImageError(ColorizeError):
    """A file cannot be used as an input image; the message is one line."""


@dataclass
class DecodedImage:
    """One input photo, upright, at its own bit depth.

    ``data``: uint8 or uint16, (H, W) gray or (H, W, 3) RGB, exactly as stored (4x smaller
    than float, which matters for the images waiting in the decode queue). ``pixels`` is
    the float32 view in [0, 1] that most callers want.
    """

    data: np.ndarray
    alpha: np.ndarray | None  # (H, W), the input's own values and dtype
    bits: int  # 8 or 16 per channel
    format: str  # detected from content: one of SUPPORTED_FORMATS
    icc_profile: bytes | None
    exif: bytes | None  # orientation already reset to 'normal' (the pixels are upright)
    marker: str | None = None  # the colorize marker, when the file is itself a colorize output
    dpi: tuple[float, float] | None = None  # a scan's resolution: what prints it at its true size
    xmp: bytes | None = None  # a JPEG's or WebP's XMP packet (a TIFF's travels with its tags)
    text: dict[str, str] = field(default_factory=dict)  # a PNG's text chunks (its XMP among them), ours left out
    _pixels: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def pixels(self) -> np.ndarray:
        """float32 (H, W) gray or (H, W, 3) RGB in [0, 1] (converted once, on first use)."""
        if self._pixels is None:
            self._pixels = to_float(self.data)
        return self._pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.data.shape[1], self.data.shape[0]

    @property
    def is_gray(self) -> bool:
        return self.data.ndim == 2

    def lightness(self) -> np.ndarray:
        """L in [0, 100], float32 (1, H, W)."""
        return lightness_from_array(self.data)


def to_float(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float array -> float32 in [0, 1] (floats pass through)."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return np.asarray(array, dtype=np.float32)


def pixels_from_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, int]:
    """A PIL image in any supported mode -> (float pixels in [0, 1], alpha or None, bits)."""
    data, alpha, bits = _array_from_image(image)
    return to_float(data), alpha, bits


def _array_from_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, int]:
    """A PIL image -> (uint8/uint16 data (H, W) or (H, W, 3), alpha or None, bits)."""
    mode = image.mode
    if mode == "F":
        return _float_to_16bit(image), None, 16
    if mode.startswith("I;16") or mode == "I":
        # "I;16B" arrives big-endian, and mode "I" holds 16-bit PNG data in 32-bit ints.
        array = np.asarray(image)
        return np.clip(array, 0, 65535).astype(np.uint16), None, 16
    if mode == "1":
        image = image.convert("L")
    elif mode in ("L", "RGB") and "transparency" in image.info:
        image = image.convert(mode + "A")  # a PNG's tRNS: pixels of that one value are transparent
    elif mode in ("P", "PA"):
        image = image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")  # CMYK, YCbCr, RGBX, ...
    array = np.asarray(image)
    alpha = None
    if image.mode in ("LA", "RGBA"):
        alpha, array = array[..., -1].copy(), array[..., :-1]
        if array.shape[-1] == 1:
            array = array[..., 0]
    return np.ascontiguousarray(array), alpha, 8


def _read_16bit_rgb_tiff(path: Path, planar: bool) -> np.ndarray | None:
    """PIL reads 16-bit RGB TIFFs only as 8 bits; tifffile keeps all 16. ``planar``: the
    file stores each channel as its own plane (PlanarConfiguration 2), read as (C, H, W)."""
    import tifffile

    array = tifffile.imread(path, key=0)
    if planar and array.ndim == 3:
        array = np.moveaxis(array, 0, -1)
    if array.dtype == np.uint16 and array.ndim == 3 and array.shape[-1] in (3, 4):
        return array
    return None


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as handle:
        header = handle.read(25)  # signature (8), IHDR length + type (8), width, height, bit depth
    return header[24] if len(header) == 25 else 8


def _read_16bit_png(path: Path) -> np.ndarray:
    """PIL reads 16-bit colour and gray+alpha PNGs only as 8 bits, and a gray one's tRNS not
    at all. Here pypng parses the chunks (checking every CRC) and the pixels go straight into
    one (H, W, planes) uint16 array; a tRNS colour becomes an alpha plane, and samples of
    fewer significant bits (sBIT) are stretched to the full 16."""
    import png

    with open(path, "rb") as handle:
        reader = png.Reader(file=handle)
        reader.preamble()
        samples = _png_samples(reader)
    if reader.trns:
        samples = _with_key_alpha(samples, reader.transparent)
    _stretch_significant_bits(samples, _significant_bits(reader.sbit))
    return samples


def _png_samples(reader) -> np.ndarray:
    """The pixels of a 16-bit PNG whose header ``reader`` has read: (H, W, planes) uint16."""
    height, width, planes = reader.height, reader.width, reader.planes
    samples = np.empty((height, width, planes), ">u2")
    stream = _InflatedPixels(_idat_chunks(reader))
    passes = _ADAM7 if reader.interlace else ((0, 0, 1, 1),)
    for left, top, across, down in passes:
        target = samples[top::down, left::across]
        if target.size == 0:
            continue  # a pass with no pixels has no rows in the file either
        rows = target if not reader.interlace else np.empty(target.shape, ">u2")
        _read_rows(stream, rows.view(np.uint8).reshape(len(rows), -1), 2 * planes)
        if rows is not target:
            target[...] = rows
    # Swapped to native order in place: a converted copy would be another whole photo.
    return samples if samples.dtype.isnative else samples.byteswap(inplace=True).view(np.uint16)


def _idat_chunks(reader):
    while (chunk := reader.chunk())[0] != b"IEND":
        if chunk[0] == b"IDAT":
            yield chunk[1]


class _InflatedPixels:
    """A PNG's decompressed pixel stream, read in exact amounts: inflated only as far as it is
    read, a block at a time, so neither a huge photo nor a hostile stream is ever whole in memory."""

    def __init__(self, chunks):
        self._chunks, self._inflate = chunks, zlib.decompressobj()

    def read(self, size: int) -> np.ndarray:
        out, filled = np.empty(size, np.uint8), 0
        while filled < size:
            data = self._inflate.unconsumed_tail or next(self._chunks, None)
            if data is None:
                raise ValueError("the PNG's pixel data ends early (a truncated file?)")
            inflated = self._inflate.decompress(data, min(size - filled, _PNG_BLOCK_BYTES))
            out[filled : filled + len(inflated)] = np.frombuffer(inflated, np.uint8)
            filled += len(inflated)
        return out


def _read_rows(stream: _InflatedPixels, rows: np.ndarray, bpp: int) -> None:
    """Fill ``rows`` (H, row bytes) with the stream's next H scanlines, unfiltered, a block of
    rows at a time (one row at a time if a row alone is over the block size)."""
    height, row_bytes = rows.shape
    block = max(1, _PNG_BLOCK_BYTES // (row_bytes + 1))
    above = None  # the first row's: all zeros, as the PNG filters define it
    for top in range(0, height, block):
        count = min(block, height - top)
        _unfilter(stream.read(count * (row_bytes + 1)).reshape(count, -1), above, bpp, rows[top : top + count])
        above = rows[top + count - 1]


def _unfilter(scanlines: np.ndarray, above: np.ndarray | None, bpp: int, out: np.ndarray) -> None:
    """PNG scanlines (filter type, then the filtered bytes) -> their bytes, into ``out``.

    Every PNG filter predicts a byte from the ones ``bpp`` bytes to its left and above it,
    so byte k of every pixel forms an 8-bit gray image filtered exactly as the whole is.
    Each such lane is unfiltered by Pillow's C PNG decoder, with the row above the block
    put first (filter type 0: taken as it is); Pillow cannot hold the 16-bit samples, but
    it need not. pypng's pure-Python unfiltering took about 2 s a megapixel (Paeth).
    """
    count, width = len(scanlines), (scanlines.shape[1] - 1) // bpp
    if scanlines[:, 0].max() > 4:
        raise ValueError(f"unknown PNG filter type {scanlines[:, 0].max()}")
    filtered = scanlines[:, 1:].reshape(count, width, bpp)
    unfiltered = out.reshape(count, width, bpp)
    lane = np.zeros((count + 1, 1 + width), np.uint8)  # per row: filter type, then the bytes
    lane[1:, 0] = scanlines[:, 0]
    for byte in range(bpp):
        if above is not None:
            lane[0, 1:] = above[byte::bpp]
        lane[1:, 1:] = filtered[..., byte]
        image = Image.frombytes("L", (width, count + 1), zlib.compress(lane.data, 0), "zip", "L")
        unfiltered[..., byte] = np.asarray(image)[1:]


def _significant_bits(sbit: bytes | None) -> int:
    """The bits per sample that a PNG's sBIT chunk says are significant (16 without one)."""
    if not sbit:
        return 16
    if max(sbit) > 16 or min(sbit) == 0:
        raise ValueError(f"invalid sBIT chunk {tuple(sbit)} for 16-bit samples")
    return max(sbit)


def _stretch_significant_bits(samples: np.ndarray, bits: int) -> None:
    """In place, by bands: samples whose top ``bits`` bits alone are significant (12 of 16,
    as scanners write) -> round(top bits * 65535 / (2**bits - 1)). A 12-bit white (4095) may
    be stored as 65520 (low bits zero) or 65535 (bits repeated): either way it reads 65535.
    In integers, exactly: with an odd divisor no value lies halfway between two."""
    if bits == 16:
        return
    top, flat = 2**bits - 1, samples.reshape(-1)
    for start in range(0, flat.size, _BAND_PIXELS):
        band = flat[start : start + _BAND_PIXELS]
        band[...] = ((band >> (16 - bits)).astype(np.uint64) * (2 * 65535) + top) // (2 * top)


def _with_key_alpha(samples: np.ndarray, key: tuple[int, ...]) -> np.ndarray:
    """A tRNS colour made an alpha plane: transparent exactly where a pixel is that colour."""
    height, width, planes = samples.shape
    out = np.empty((height, width, planes + 1), np.uint16)
    flat, flat_out, key_value = samples.reshape(-1, planes), out.reshape(-1, planes + 1), np.array(key, np.uint16)
    for start in range(0, len(flat), _BAND_PIXELS):
        band = flat[start : start + _BAND_PIXELS]
        flat_out[start : start + len(band), :planes] = band
        flat_out[start : start + len(band), planes] = np.where((band != key_value).any(axis=1), 65535, 0)
    return out


def decode(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read one image file, upright. Raises ``ImageError`` (one line) for anything unusable.

    The format is detected from the content; the file name's extension plays no part.
    """
    path = Path(path)
    _check_file(path)
    try:
        # Opened from a handle, not a path: PIL memory-maps an uncompressed file it opens by
        # path, and its mapping of a TIFF stored sideways (orientation 5-8) reads the rows
        # at the turned width (scrambled stripes); a file cut short while mapped would also
        # kill the process with SIGBUS instead of raising.
        with open(path, "rb") as handle, Image.open(handle) as image:
            # MPO is what PIL calls a JPEG with extra frames (stereo or preview images from
            # some cameras); its first frame is an ordinary JPEG.
            fmt = "JPEG" if image.format == "MPO" else image.format
            frames = getattr(image, "n_frames", 1)
            if fmt not in SUPPORTED_FORMATS:
                kind = f"an animated {fmt} ({frames} frames)" if frames > 1 else f"format {fmt}"
                raise ImageError(
                    f"{kind} is not supported (colorize reads {', '.join(SUPPORTED_FORMATS)}); export a frame first"
                )
            if frames > 1 and fmt != "JPEG":
                # One output per input: colorizing the first page alone would drop the others unseen.
                what = f"a TIFF of {frames} pages" if fmt == "TIFF" else f"an animated {fmt} ({frames} frames)"
                raise ImageError(f"{what} is not supported: colorize writes one image per file; split it first")
            width, height = image.size
            if fmt == "JPEG":
                _check_scan_count(handle)
            if fmt == "TIFF":
                _check_tiff_samples(image)
            if width * height > max_pixels:
                raise ImageError(
                    f"too large: {width}x{height} = {width * height / 1e6:.1f} MP "
                    f"> --max-pixels {max_pixels / 1e6:g} MP"
                )
            # EXIF first: PIL closes a TIFF's file once its pixels are loaded, and its tags
            # with it. (A PNG with EXIF behind its pixels loads them here to reach it.)
            exif = image.getexif()
            orientation = exif.get(_ORIENTATION, 1)
            turned_by_pil = False
            array = None
            if fmt == "TIFF" and image.mode in ("RGB", "RGBA") and 16 in _tiff_values(image, _BITS_PER_SAMPLE):
                array = _read_16bit_rgb_tiff(path, planar=image.tag_v2.get(284) == 2)  # type: ignore[attr-defined]  # a TIFF's ImageFile has tag_v2
            elif (
                fmt == "PNG"
                and _png_bit_depth(path) == 16
                and (image.mode in ("RGB", "RGBA", "LA") or "transparency" in image.info)
            ):
                array = _read_16bit_png(path)
            if array is not None:
                colour = 1 if array.shape[-1] in (1, 2) else 3  # gray(+alpha) or RGB(+alpha)
                data, bits = (
                    np.ascontiguousarray(array[..., :colour].squeeze(-1) if colour == 1 else array[..., :3]),
                    16,
                )
                alpha = array[..., colour].copy() if array.shape[-1] in (2, 4) else None
            else:
                data, alpha, bits = _array_from_image(image)
                if fmt == "TIFF" and _ORIENTATION not in getattr(image, "tag_v2", {}):
                    # PIL >= 11 turns a TIFF upright as it loads its pixels (and drops the
                    # tag); every other format, and a TIFF read by tifffile, is turned below.
                    turned_by_pil = True
            marker = _marker(image, exif)
            icc = image.info.get("icc_profile") or None
            kept_exif = _kept_exif(image, exif)
            dpi = _dpi(image.info.get("dpi"))
            xmp = image.info.get("xmp") if fmt in ("JPEG", "WEBP") else None
            text = {k: v for k, v in getattr(image, "text", {}).items() if k != COLORIZED_TAG} if fmt == "PNG" else {}
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except PermissionError:
        raise ImageError("permission denied (cannot read the file)") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not a file") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (or a format colorize does not read)") from None
    except Image.DecompressionBombError as error:
        # PIL's own guard (at twice Image.MAX_IMAGE_PIXELS), left as PIL sets it for the whole
        # process: our limit is per call. Its message is the only place the size is told.
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = int(found.group(1)) if found else None
        if pixels is not None and pixels > max_pixels:
            raise ImageError(f"too large: {pixels / 1e6:.1f} MP > --max-pixels {max_pixels / 1e6:g} MP") from None
        raise ImageError(f"too large for the image library's own safety limit ({_first_line(error)})") from None
    except Exception as error:
        # Image parsers meet hostile bytes; whatever they raise, this one file is unusable.
        raise ImageError(f"cannot decode ({_first_line(error)})") from error
    if data.size == 0:
        raise ImageError("image has no pixels")
    if not turned_by_pil:
        data = _orient(data, orientation)
        alpha = None if alpha is None else _orient(alpha, orientation)
    if dpi is not None and orientation in _QUARTER_TURNS:
        dpi = dpi[::-1]  # the sides swap, and their resolutions with them
    return DecodedImage(
        data, alpha, bits, fmt, icc, kept_exif, marker, dpi, xmp if isinstance(xmp, bytes) else None, text
    )


def upright_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of the photo as ``decode`` will give it, upright, from its header alone;
    None when the header cannot be read (``decode`` then says why)."""
    try:
        with open(path, "rb") as handle, Image.open(handle) as image:
            width, height = image.size
            turned = image.getexif().get(_ORIENTATION, 1) in _QUARTER_TURNS
    except Exception:  # any reader's error: the file fails on its own when decoded
        return None
    return (height, width) if turned else (width, height)


def _check_scan_count(handle) -> None:
    """Refuse a JPEG with more scans than any real one has: each progressive scan makes the
    decoder pass over the whole image again, so 20,000 scans in 2 MB took 70 s to decode.

    A scan starts at an SOS marker (FF DA); inside compressed data an FF is always followed
    by 00 or a restart code, so counting FF DA pairs counts scans (never fewer).
    """
    position = handle.tell()
    handle.seek(0)
    scans, previous = 0, b""
    while block := handle.read(1 << 20):
        scans += (previous[-1:] + block).count(b"\xff\xda")
        if scans > MAX_JPEG_SCANS:
            raise ImageError(
                f"a JPEG of over {MAX_JPEG_SCANS} progressive scans (real photos have about 10): too costly to decode"
            )
        previous = block
    handle.seek(position)


def _dpi(value) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _check_file(path: Path) -> None:
    """Clear reasons for the commonest non-images, before any parser sees them."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ImageError("broken symbolic link" if path.is_symlink() else "no such file") from None
    except OSError as error:
        raise ImageError(f"cannot read ({error.strerror or error})") from None
    if path.is_dir():
        raise ImageError("is a folder, not a file")
    if not statmod.S_ISREG(stat.st_mode):
        raise ImageError("not a regular file (a pipe or a device?)")
    if stat.st_size == 0:
        raise ImageError("empty file (0 bytes)")


def _tiff_values(image: Image.Image, tag: int) -> tuple[int, ...]:
    value = getattr(image, "tag_v2", {}).get(tag, ())
    return tuple(value) if isinstance(value, tuple) else (value,)


def _check_tiff_samples(image: Image.Image) -> None:
    """Refuse samples with no one reading as brightness, before PIL clips them into a wrong
    photo: signed integers (where is black?) and integers over 16 bits (whose white?).
    Floats are read in ``_array_from_image``, where their values are known."""
    if _SIGNED in _tiff_values(image, _SAMPLE_FORMAT):
        raise ImageError("a TIFF of signed integer samples is not supported: save it as unsigned 8 or 16 bits first")
    bits = max(_tiff_values(image, _BITS_PER_SAMPLE), default=8)
    if _FLOAT not in _tiff_values(image, _SAMPLE_FORMAT) and bits > 16:
        raise ImageError(f"a TIFF of {bits}-bit integer samples is not supported: save it as 8 or 16 bits first")


def _float_to_16bit(image: Image.Image) -> np.ndarray:
    """A float image (PIL mode F, from a TIFF) of values in 0-1 -> uint16; there is no
    saying what other ranges mean (0-255? 0-65535? linear light?), so they are refused."""
    values = np.asarray(image)
    low, high = float(values.min()), float(values.max())
    if not 0 <= low <= high <= 1:  # NaN fails every comparison
        raise ImageError(
            f"a floating-point image of values from {low:g} to {high:g} is not supported "
            "(colorize reads 0 to 1): save it as 8 or 16 bits first"
        )
    return _quantize(values, np.uint16)


def _orient(array: np.ndarray, orientation) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W[, C]) array, as PIL's exif_transpose does.

    Done on the array rather than the PIL image so that 16-bit RGB, which PIL cannot
    hold, is turned the same way as everything else.
    """
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation if isinstance(orientation, int) else 1)
    # A copy, not ascontiguousarray: a flipped 1-pixel side counts as contiguous to numpy but
    # keeps its negative stride, which a later reader (torch, a buffer protocol) may refuse.
    return array if turned is None else np.array(turned(array), order="C", copy=True)


def _marker(image: Image.Image, exif: Image.Exif) -> str | None:
    """The colorize marker a previous run wrote into this file, if any."""
    text = image.info.get(COLORIZED_TAG)
    if isinstance(text, str):
        return text
    software = exif.get(_SOFTWARE)
    if isinstance(software, bytes):
        software = software.decode("latin-1", "replace")
    if isinstance(software, str) and software.startswith(_SOFTWARE_PREFIX):
        return software
    return None


def _kept_exif(image: Image.Image, exif: Image.Exif) -> bytes | None:
    if image.format == "TIFF":
        # A TIFF's "EXIF" from PIL is its whole first IFD, strip offsets and all.
        kept = Image.Exif()
        for tag in _TIFF_KEPT_TAGS:
            if tag in exif:
                kept[tag] = exif[tag]
        return kept.tobytes() if len(kept) else None
    if not len(exif):
        return None
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1  # the pixels are upright now
    try:
        return exif.tobytes()
    except Exception:  # EXIF that PIL can read but not write back is dropped, not copied broken
        return None


def read_marker(path: Path) -> str | None:
    """The colorize marker in ``path``'s metadata (cheap: pixels are not decoded), else None."""
    try:
        with Image.open(path) as image:
            return _marker(image, image.getexif())
    except Exception:  # not a readable image: certainly not one of our outputs
        return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def atomic_save(image: Image.Image, path: Path, format: str, **params) -> Path:
    """Save through a temporary file in the same folder, then rename over ``path``.

    A crash or Ctrl-C at any moment leaves either no file or the complete new one, never a
    partial image; the temporary is a hidden file, so no run ingests it.
    """
    return atomic_write(Path(path), lambda handle: image.save(handle, format=format, **params))


def output_bits(source: DecodedImage, format: str | None = None) -> int:
    """16 where the input was 16-bit and the output's format (by default the input's) can hold
    16 bits per channel, else 8."""
    return 16 if source.bits == 16 and (format or source.format) in ("PNG", "TIFF") else 8


def to_8bit(rgb: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1] -> uint8: ``(clip(rgb, 0, 1) * 255 + 0.5)`` truncated."""
    return rgb if rgb.dtype == np.uint8 else _quantize(rgb, np.uint8)


def _quantize(rgb: np.ndarray, dtype, band_pixels: int = 1 << 16) -> np.ndarray:
    """float in [0, 1] -> ``dtype``'s full range, by bands of rows in one reused buffer:
    the numbers of ``(clip(rgb, 0, 1) * top + 0.5).astype(dtype)`` without that
    expression's full-size temporaries (over 400 MB for a 12 MP photo)."""
    top = float(np.iinfo(dtype).max)
    out = np.empty(rgb.shape, dtype)
    band = max(1, band_pixels // max(1, rgb.shape[1]))  # a strip 1 row high is still one band of bounded size
    flat_rgb, flat_out = rgb.reshape(-1, *rgb.shape[2:]), out.reshape(-1, *rgb.shape[2:])
    step = band * rgb.shape[1]
    scratch = np.empty((step, *rgb.shape[2:]), np.float32)
    for start in range(0, flat_rgb.shape[0], step):
        part = scratch[: min(step, flat_rgb.shape[0] - start)]
        np.multiply(flat_rgb[start : start + step], top, out=part)
        part += 0.5
        np.clip(part, 0, top, out=part)
        flat_out[start : start + step] = part
    return out


def _to_8bit_image(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    array = to_8bit(rgb)
    if alpha is None:
        return Image.fromarray(array, "RGB")
    alpha8 = alpha if alpha.dtype == np.uint8 else (alpha.astype(np.float32) / 257 + 0.5).astype(np.uint8)
    return Image.fromarray(np.dstack([array, alpha8]), "RGBA")


def _to_16bit_array(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    array = _quantize(rgb, np.uint16)
    if alpha is None:
        return array
    alpha16 = alpha.astype(np.uint16) * (257 if alpha.dtype == np.uint8 else 1)
    return np.dstack([array, alpha16])


def _rgb_profile(icc: bytes | None) -> bytes | None:
    """``icc`` if it describes RGB data; a gray or CMYK input's profile would misdescribe our RGB output."""
    if icc and len(icc) >= 20 and icc[16:20] == b"RGB ":
        return icc
    return None


def encode(
    rgb: np.ndarray,
    source: DecodedImage,
    path: Path,
    keep_metadata: bool = True,
    note: str | None = None,
    quality: int = 95,
    format: str | None = None,
) -> Path:
    """Write ``rgb`` (float (H, W, 3) in [0, 1], or uint8 for an 8-bit output) in the source's
    format (or ``format``: JPEG, PNG, TIFF, WEBP, BMP), bit depth and alpha, atomically.

    ICC profile (when it is an RGB one) and EXIF of the source are kept where the format
    allows (unless ``keep_metadata`` is False); ``note`` records the colorization in the
    file itself: EXIF/TIFF Software ``colorize: <note>`` and a PNG text chunk ``colorize``.
    Metadata is never copied into BMP, which has no place for it; JPEG has no alpha.
    ``quality`` (1-100) is JPEG's and WebP's.
    """
    icc = _rgb_profile(source.icc_profile) if keep_metadata else None
    exif = source.exif if keep_metadata else None
    if note:
        note = note.encode("ascii", "replace").decode()  # EXIF and TIFF strings are 7-bit ASCII
    software = f"{_SOFTWARE_PREFIX}{note}" if note else None
    fmt = format or source.format
    if output_bits(source, fmt) == 16:
        array = _to_16bit_array(rgb, source.alpha)
        if fmt == "PNG":
            exif16 = _exif_with_software(exif, software)
            text = _png_text(source.text if keep_metadata else {}, note)
            return atomic_write(Path(path), lambda handle: _write_png16(handle, array, text, icc, exif16, source.dpi))
        return atomic_write(Path(path), lambda handle: _write_tiff16(handle, array, software, icc, exif, source.dpi))
    image = _to_8bit_image(rgb, source.alpha)
    params: dict = {}
    if source.dpi and fmt != "WEBP":
        params["dpi"] = source.dpi
    if icc and fmt != "BMP":
        params["icc_profile"] = icc
    if fmt == "JPEG":
        if image.mode != "RGB":
            image = image.convert("RGB")  # JPEG has no alpha
        params.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        params.update(quality=quality)
    if fmt in ("JPEG", "WEBP") and keep_metadata and source.xmp:
        params["xmp"] = source.xmp
    elif fmt == "TIFF":
        params.update(compression="tiff_adobe_deflate")
    elif fmt == "PNG":
        chunks = PngImagePlugin.PngInfo()
        for key, value in _png_text(source.text if keep_metadata else {}, note).items():
            chunks.add_itxt(key, value)
        params["pnginfo"] = chunks
    if fmt != "BMP" and (data := _exif_with_software(exif, software)):
        params["exif"] = data
    return atomic_save(image, Path(path), fmt, **params)


def _exif_with_software(exif: bytes | None, software: str | None) -> bytes | None:
    if not software and not exif:
        return None
    data = Image.Exif()
    if exif:
        try:
            data.load(exif)
        except Exception:  # the source's EXIF is unreadable: write ours alone
            data = Image.Exif()
    if software:
        data[_SOFTWARE] = software
    written = data.tobytes()
    if len(written) > _MAX_EXIF_BYTES and software:
        # The source's EXIF fitted; our marker pushed it over JPEG's limit. The photo and
        # its own metadata matter more than the marker (the PNG text chunk is unaffected).
        del data[_SOFTWARE]
        written = data.tobytes()
    return written if len(written) <= _MAX_EXIF_BYTES else exif


def _write_tiff16(
    handle, array: np.ndarray, software: str | None, icc: bytes | None, exif: bytes | None, dpi=None
) -> None:
    import tifffile

    extratags: list[tuple[int, str, int, str | bytes, bool]] = [(34675, "B", len(icc), icc, True)] if icc else []
    kept = Image.Exif()
    if exif:
        kept.load(exif)
    for tag in _TIFF_KEPT_TAGS[1:]:  # 270, the description, has its own argument
        if isinstance(value := kept.get(tag), str):
            extratags.append((tag, "s", 0, value, True))
        elif isinstance(value, bytes):  # XMP
            extratags.append((tag, "B", len(value), value, True))
    # tifffile wants a named file; the handle of a temporary from mkstemp has only a number.
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        array,
        photometric="rgb",
        extrasamples=["unassalpha"] if array.shape[-1] == 4 else None,
        software=software,
        description=kept.get(270) if isinstance(kept.get(270), str) else None,
        metadata=None,  # else tifffile writes its own JSON into the description
        resolution=dpi,
        resolutionunit="INCH" if dpi else None,
        compression="zlib",
        extratags=extratags,
    )
    handle.write(buffer.getbuffer())


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_text(kept: dict[str, str], note: str | None) -> dict[str, str]:
    """The text chunks of a PNG output: the source's, then our marker."""
    return {**kept, COLORIZED_TAG: note} if note else dict(kept)


def _write_png16(
    handle, array: np.ndarray, text: dict[str, str], icc: bytes | None, exif: bytes | None, dpi=None
) -> None:
    """16-bit RGB(A) PNG written directly: PIL has no 16-bit colour modes."""
    height, width, channels = array.shape
    colour_type = 6 if channels == 4 else 2
    handle.write(b"\x89PNG\r\n\x1a\n")
    handle.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)))
    if icc:
        handle.write(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))
    if dpi:
        per_metre = [round(d / 0.0254) for d in dpi]
        handle.write(_png_chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    for key, value in text.items():  # iTXt: UTF-8, uncompressed, no language
        handle.write(
            _png_chunk(b"iTXt", key.encode("latin-1", "replace")[:79] + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))
        )
    if exif:
        handle.write(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    handle.write(_png_chunk(b"IDAT", _png_pixel_stream(array)))
    handle.write(_png_chunk(b"IEND", b""))


def _png_pixel_stream(array: np.ndarray, band_pixels: int = 1 << 16) -> bytes:
    """The compressed rows of a 16-bit PNG, each behind its filter byte 0, made band by
    band so that no uncompressed copy of the whole photo exists at once."""
    height, width, channels = array.shape
    compressor = zlib.compressobj(6)
    parts = []
    band = max(1, band_pixels // width)
    for top in range(0, height, band):
        rows = array[top : top + band].astype(">u2").reshape(-1, width * channels).view(np.uint8)
        parts.append(compressor.compress(np.hstack([np.zeros((len(rows), 1), np.uint8), rows]).tobytes()))
    parts.append(compressor.flush())
    return b"".join(parts)
