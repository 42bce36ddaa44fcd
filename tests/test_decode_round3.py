"""Decoding and composing fixes from issue #35, each on real tiny files: 16-bit PNGs with
sBIT or tRNS, TIFFs of float and signed or 32-bit integer samples, other programs named
"colorize..." in EXIF Software, and photos wider than one composition tile."""

from __future__ import annotations

import numpy as np
import png
import pytest
import tifffile
from PIL import Image

from colorize.core.color import compose_upsampled, lab_to_rgb, resize_bilinear
from colorize.core.images import ImageError, decode, encode, read_marker

# ---------------------------------------------------------------- 16-bit PNG with sBIT


def _write_png(path, rows: np.ndarray, **options) -> None:
    with open(path, "wb") as handle:
        png.Writer(rows.shape[1], rows.shape[0], **options).write(handle, rows.reshape(rows.shape[0], -1).tolist())


@pytest.mark.parametrize("planes", ["RGB", "LA", "L"])
def test_12_bit_png_in_16_bits_keeps_its_brightness_and_alpha(tmp_path, planes):
    """pypng writes a 12-bit PNG as 16 bits with an sBIT chunk of 12, as scanners do; the
    decoder's sBIT shift must not leave values 16x too small (a near-black photo)."""
    twelve = np.array([[0, 1000, 2048, 4095]], np.uint16)
    if planes == "RGB":
        samples = np.dstack([twelve, twelve, twelve])
        options = dict(greyscale=False)
    elif planes == "LA":
        samples = np.dstack([twelve, np.full_like(twelve, 4095)])
        options = dict(greyscale=True, alpha=True)
    else:
        samples, options = twelve, dict(greyscale=True)
    path = tmp_path / "scan.png"
    _write_png(path, samples, bitdepth=12, **options)
    assert b"sBIT" in path.read_bytes()

    decoded = decode(path)
    gray = decoded.data if decoded.is_gray else decoded.data[..., 0]
    expected = twelve[0] / 4095
    assert decoded.bits == 16 and np.allclose(gray[0] / 65535, expected, atol=1 / 4095), (gray[0], expected)
    if planes == "LA":
        assert decoded.alpha.min() == 65535, f"opaque alpha read as {decoded.alpha.min()} of 65535"


# ---------------------------------------------------------------- tRNS


@pytest.mark.parametrize("bitdepth", [16, 8])
@pytest.mark.parametrize("greyscale", [True, False])
def test_png_trns_colour_becomes_transparent_alpha_in_the_output(tmp_path, bitdepth, greyscale):
    top = 2**bitdepth - 1
    key = 1000 if bitdepth == 16 else 100
    gray = np.array([[0, key], [top // 2, top]], np.uint16)
    samples = gray if greyscale else np.dstack([gray, gray, gray])
    path = tmp_path / "keyed.png"
    _write_png(path, samples, greyscale=greyscale, bitdepth=bitdepth, transparent=key if greyscale else (key,) * 3)

    decoded = decode(path)
    assert decoded.alpha is not None, f"{bitdepth}-bit {'gray' if greyscale else 'RGB'} tRNS: no alpha decoded"
    opaque = np.iinfo(decoded.alpha.dtype).max
    assert decoded.alpha.tolist() == [[opaque, 0], [opaque, opaque]], decoded.alpha.tolist()

    out = tmp_path / "out.png"
    encode(np.dstack([decoded.pixels] * 3) if decoded.is_gray else decoded.pixels, decoded, out)
    written = decode(out)
    assert written.alpha is not None and written.alpha[0, 1] == 0 and written.alpha[0, 0] > 0, written.alpha


# ---------------------------------------------------------------- TIFF sample formats


def test_float_tiff_of_values_0_to_1_is_decoded_at_16_bits(tmp_path):
    values = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, values)
    decoded = decode(path)
    assert decoded.bits == 16 and np.allclose(decoded.pixels, values, atol=1 / 65535), decoded.pixels.tolist()


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        (np.array([[0.0, 30000.0], [65535.0, 100.0]], np.float32), "floating-point"),
        (np.array([[0.0, 0.5], [np.nan, 1.0]], np.float32), "floating-point"),
        (np.array([[0, 70000], [1, 2]], np.int32), "signed"),
        (np.array([[0, 70000], [1, 2]], np.uint32), "32-bit"),
        (np.array([[-3, 0], [100, 30000]], np.int16), "signed"),
        (np.array([[-3, 0], [100, 127]], np.int8), "signed"),
    ],
    ids=["float-0-65535", "float-nan", "int32", "uint32", "int16", "int8"],
)
def test_tiff_samples_colorize_cannot_scale_are_refused_in_one_line(tmp_path, samples, reason):
    path = tmp_path / "samples.tif"
    tifffile.imwrite(path, samples)
    with pytest.raises(ImageError, match=reason) as refused:
        decoded = decode(path)
        pytest.fail(f"{samples.dtype} decoded as {decoded.data.dtype} {decoded.data.tolist()} instead of refused")
    assert "\n" not in str(refused.value)


# ---------------------------------------------------------------- our marker only


@pytest.mark.parametrize("software", ["colorizer 2.1", "colorize.cc online", "colorize"])
def test_other_software_named_colorize_is_not_taken_for_our_output(tmp_path, software):
    exif = Image.Exif()
    exif[0x0131] = software
    path = tmp_path / "theirs.jpg"
    Image.new("L", (8, 8), 100).save(path, exif=exif.tobytes())
    assert decode(path).marker is None and read_marker(path) is None, f"{software!r} read as our marker"


@pytest.mark.parametrize("suffix", ["jpg", "tif", "png"])
def test_our_own_output_is_still_recognised(tmp_path, suffix):
    source = tmp_path / f"gray.{suffix}"
    Image.new("L", (8, 8), 100).save(source)
    out = tmp_path / f"out.{suffix}"
    encode(np.full((8, 8, 3), 0.5, np.float32), decode(source), out, note="colorized by expert people (forced)")
    assert "colorized by expert people" in (read_marker(out) or ""), read_marker(out)
    assert decode(out).marker == read_marker(out)


# ---------------------------------------------------------------- photos wider than a tile


@pytest.mark.needs_torch
def test_lab_planes_to_rgb_fills_a_strided_view():
    # Training's torch colour code (experts/color.py) fills tiles of a wider image in place.
    import torch

    from colorize.experts.color import lab_planes_to_rgb

    lightness = torch.linspace(0, 100, 6 * 5).reshape(6, 5)
    a, b = torch.full((6, 5), 20.0), torch.full((6, 5), -30.0)
    whole = torch.zeros(6, 9, 3)
    lab_planes_to_rgb(lightness, a, b, out=whole[:, 2:7])
    expected = lab_planes_to_rgb(lightness, a, b)
    assert torch.equal(whole[:, 2:7], expected), float((whole[:, 2:7] - expected).abs().max())
    assert not whole[:, :2].any() and not whole[:, 7:].any(), "wrote outside the view"


@pytest.mark.parametrize("width", [8193, 8200, 12000])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_photos_wider_than_a_tile_compose_like_the_whole_photo(width, dtype):
    rng = np.random.default_rng(width)
    lightness = rng.random((1, 40, width), np.float32) * 100
    small_ab = rng.standard_normal((2, 16, 16), np.float32) * 30
    tiled = compose_upsampled(lightness, small_ab, dtype)
    ab = resize_bilinear(small_ab, (40, width), antialias=False)
    whole = lab_to_rgb(np.stack([lightness[0], ab[0], ab[1]], axis=-1))
    if dtype == np.uint8:
        whole = (whole * 255 + 0.5).astype(np.uint8)
    difference = np.abs(tiled.astype(np.float32) - whole.astype(np.float32)).max()
    assert tiled.shape == (40, width, 3) and difference <= (1 if dtype == np.uint8 else 1e-3), difference


def test_a_12000_pixel_wide_photo_is_colorized(tmp_path):
    from colorize.pipelines.inference import Pipeline

    path = tmp_path / "wide.png"
    Image.fromarray((np.arange(12000 * 40) % 251).astype(np.uint8).reshape(40, 12000)).save(path)
    result = Pipeline.from_config(home=tmp_path / "no-home", expert="general").colorize(path)
    assert result.rgb.shape == (40, 12000, 3), result.rgb.shape
