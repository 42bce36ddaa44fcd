"""Image files in and out: safe decoding by content, and atomic writes that keep metadata.

Decoding accepts JPEG, PNG, TIFF, BMP and WebP in modes L, LA, RGB, RGBA, P, CMYK, I;16
(and 16-bit TIFF), applies EXIF orientation, and refuses oversized images before their
pixels are decoded. Every problem with a file is an ``ImageError`` with a one-line reason.
"""

from __future__ import annotations

import os
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from colorize.experts.color import gray_to_lightness, rgb_to_lab

SUPPORTED_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
DEFAULT_MAX_PIXELS = 100_000_000
COLORIZED_TAG = "colorize"  # PNG text key / EXIF software marker naming the expert used

# We check sizes ourselves (before decoding, with a clear message); PIL's own bomb check
# would otherwise raise its own error type at 2x its default.
Image.MAX_IMAGE_PIXELS = None


class ImageError(Exception):
    """A file cannot be used as an input image; the message is one line."""


@dataclass
class DecodedImage:
    """One input photo, upright. ``pixels``: float32 (H, W) gray or (H, W, 3) RGB in [0, 1]."""

    pixels: np.ndarray
    alpha: np.ndarray | None  # (H, W), the input's own values and dtype
    bits: int  # 8 or 16 per channel
    format: str  # detected from content: one of SUPPORTED_FORMATS
    icc_profile: bytes | None
    exif: bytes | None

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def lightness(self) -> torch.Tensor:
        """L in [0, 100], shape (1, H, W)."""
        return lightness_from_array(self.pixels)


def lightness_from_array(pixels: np.ndarray) -> torch.Tensor:
    """float (H, W) gray or (H, W, 3) RGB in [0, 1] -> L in [0, 100], (1, H, W)."""
    values = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
    if values.dim() == 2:
        return gray_to_lightness(values[None])
    if values.dim() == 3 and values.shape[-1] == 3:
        return rgb_to_lab(values.permute(2, 0, 1))[:1]
    raise ValueError(f"expected a gray (H, W) or RGB (H, W, 3) image, got shape {tuple(values.shape)}")


def pixels_from_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, int]:
    """A PIL image in any supported mode -> (float pixels in [0, 1], alpha or None, bits)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image).astype(np.float32)
        # Mode "I" holds 16-bit PNG data in a 32-bit container.
        return np.clip(array / 65535.0, 0, 1), None, 16
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")  # CMYK, YCbCr, 1, ...
    array = np.asarray(image)
    alpha = None
    if image.mode in ("LA", "RGBA"):
        alpha, array = array[..., -1].copy(), array[..., :-1]
        if array.shape[-1] == 1:
            array = array[..., 0]
    return array.astype(np.float32) / 255.0, alpha, 8


def _read_16bit_rgb_tiff(path: Path) -> np.ndarray | None:
    """PIL reads 16-bit RGB TIFFs only as 8 bits; tifffile keeps all 16."""
    import tifffile

    array = tifffile.imread(path)
    if array.dtype == np.uint16 and array.ndim == 3 and array.shape[-1] in (3, 4):
        return array
    return None


def decode(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read one image file, upright. Raises ``ImageError`` for anything unusable."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's warnings about odd metadata are not ours to show
            with Image.open(path) as image:
                if image.format not in SUPPORTED_FORMATS:
                    raise ImageError(f"unsupported format {image.format}")
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"too large: {width}x{height} = {width * height / 1e6:.1f} MP > --max-pixels {max_pixels / 1e6:g} MP"
                    )
                icc, exif = image.info.get("icc_profile"), image.info.get("exif")
                fmt = image.format
                sixteen_bit_rgb = fmt == "TIFF" and image.mode in ("RGB", "RGBA") and 16 in _bits_per_sample(image)
                upright = ImageOps.exif_transpose(image)
                if sixteen_bit_rgb and (array := _read_16bit_rgb_tiff(path)) is not None:
                    pixels, alpha = array[..., :3].astype(np.float32) / 65535, (array[..., 3] if array.shape[-1] == 4 else None)
                    bits = 16
                else:
                    pixels, alpha, bits = pixels_from_image(upright)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not a file") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (or a format colorize does not read)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"cannot decode ({_first_line(error)})") from None
    if pixels.size == 0:
        raise ImageError("image has no pixels")
    if exif is not None:
        exif = _reset_orientation(exif)
    return DecodedImage(pixels, alpha, bits, fmt, icc, exif)


def _bits_per_sample(image: Image.Image) -> tuple[int, ...]:
    value = getattr(image, "tag_v2", {}).get(258, ())
    return tuple(value) if isinstance(value, tuple) else (value,)


def _reset_orientation(exif: bytes) -> bytes:
    """The pixels are now upright, so the EXIF orientation tag must say 'normal'."""
    data = Image.Exif()
    try:
        data.load(exif)
    except Exception:  # unreadable EXIF is dropped rather than copied broken
        return b""
    data[0x0112] = 1
    return data.tobytes()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def is_colour_photo(pixels: np.ndarray, chroma_threshold: float = 6.0, hue_spread: float = 0.35) -> bool:
    """True for a real colour photo; False for gray and uniformly tinted (sepia, cyanotype) scans.

    Looks at a downsampled copy: a photo is black-and-white when almost no pixel has chroma
    above ``chroma_threshold`` (LAB units), or when the coloured pixels share one hue (circular
    spread below ``hue_spread`` radians), which is what a toned print looks like.
    """
    if pixels.ndim == 2:
        return False
    step = max(1, max(pixels.shape[:2]) // 128)
    small = torch.from_numpy(np.ascontiguousarray(pixels[::step, ::step], dtype=np.float32)).permute(2, 0, 1)
    ab = rgb_to_lab(small)[1:].reshape(2, -1)
    chroma = ab.norm(dim=0)
    coloured = chroma > chroma_threshold
    if coloured.float().mean() < 0.05:
        return False
    hue = torch.atan2(ab[1, coloured], ab[0, coloured])
    resultant = torch.hypot(hue.cos().mean(), hue.sin().mean())
    spread = float(torch.sqrt(-2 * torch.log(resultant.clamp(min=1e-6))))
    return spread > hue_spread


def atomic_save(image: Image.Image, path: Path, format: str, **params) -> Path:
    """Save through a temporary file in the same folder, then rename over ``path``.

    A crash or Ctrl-C at any moment leaves either no file or the complete new one, never a
    partial image; the temporary name starts with '.' and ends '.tmp', so no run ingests it.
    """
    return _atomic_write(Path(path), lambda handle: image.save(handle, format=format, **params))


def _to_8bit_image(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    array = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    if alpha is None:
        return Image.fromarray(array, "RGB")
    alpha8 = alpha if alpha.dtype == np.uint8 else (alpha.astype(np.float32) / 257 + 0.5).astype(np.uint8)
    return Image.fromarray(np.dstack([array, alpha8]), "RGBA")


def _to_16bit_array(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    array = (np.clip(rgb, 0, 1) * 65535 + 0.5).astype(np.uint16)
    if alpha is None:
        return array
    alpha16 = alpha.astype(np.uint16) * (257 if alpha.dtype == np.uint8 else 1)
    return np.dstack([array, alpha16])


def encode(
    rgb: np.ndarray,
    source: DecodedImage,
    path: Path,
    keep_metadata: bool = True,
    note: str | None = None,
    quality: int = 95,
) -> Path:
    """Write ``rgb`` (float (H, W, 3) in [0, 1]) in the source's format, bit depth and alpha, atomically.

    ICC profile and EXIF of the source are kept where the format allows (unless
    ``keep_metadata`` is False); ``note`` records the colorization in the file itself
    (EXIF Software, and a PNG text chunk).
    """
    icc = source.icc_profile if keep_metadata else None
    if source.bits == 16 and source.format in ("PNG", "TIFF"):
        array = _to_16bit_array(rgb, source.alpha)
        writer = _write_png16 if source.format == "PNG" else _write_tiff16
        return _atomic_write(Path(path), lambda handle: writer(handle, array, note, icc))
    image = _to_8bit_image(rgb, source.alpha)
    fmt = source.format
    params: dict = {}
    if icc:
        params["icc_profile"] = icc
    if fmt == "JPEG":
        image = image.convert("RGB")  # JPEG has no alpha
        params.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        params.update(quality=quality)
    elif fmt == "PNG" and note:
        text = PngImagePlugin.PngInfo()
        text.add_text(COLORIZED_TAG, note)
        params["pnginfo"] = text
    exif = _exif_with_note(source.exif if keep_metadata else None, note)
    if fmt != "BMP" and exif:
        params["exif"] = exif
    return atomic_save(image, Path(path), fmt, **params)


def _exif_with_note(exif: bytes | None, note: str | None) -> bytes | None:
    if not note and not exif:
        return None
    data = Image.Exif()
    if exif:
        data.load(exif)
    if note:
        data[0x0131] = f"colorize ({note})"  # Software
    return data.tobytes()


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _write_tiff16(handle, array: np.ndarray, note: str | None, icc: bytes | None) -> None:
    import tifffile

    extratags = [(34675, "B", len(icc), icc, True)] if icc else []
    tifffile.imwrite(
        handle,
        array,
        photometric="rgb",
        extrasamples=["unassalpha"] if array.shape[-1] == 4 else None,
        software=f"colorize ({note})" if note else None,
        extratags=extratags,
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png16(handle, array: np.ndarray, note: str | None, icc: bytes | None) -> None:
    """16-bit RGB(A) PNG written directly: PIL has no 16-bit colour modes."""
    height, width, channels = array.shape
    colour_type = 6 if channels == 4 else 2
    rows = array.astype(">u2").reshape(height, width * channels).view(np.uint8)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()  # filter byte 0 per row
    handle.write(b"\x89PNG\r\n\x1a\n")
    handle.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)))
    if icc:
        handle.write(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))
    if note:
        handle.write(_png_chunk(b"tEXt", COLORIZED_TAG.encode() + b"\x00" + note.encode("latin-1", "replace")))
    handle.write(_png_chunk(b"IDAT", zlib.compress(raw, 6)))
    handle.write(_png_chunk(b"IEND", b""))
