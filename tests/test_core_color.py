"""core.color, the numpy inference kernels, against the torch code they replace and scikit-image.

Each numpy function is compared with its torch original on real photos (scikit-image's
samples) and on the shapes that break tiled code: odd sizes, 1 x N and N x 1 strips, tiles
cut across columns, 16-bit inputs, out-of-gamut chroma.
"""

from __future__ import annotations

import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import SAMPLES, sample_rgb
from skimage import color as skcolor

from colorize.core import color
from colorize.core import images as imageio

try:
    import torch
    from torch.nn import functional as F

    from colorize.experts import color as torch_color
except ImportError:  # the base install: the comparisons with torch are left out (needs_torch)
    torch = F = torch_color = None

TOLERANCE = 1e-4


def _worst(ours: np.ndarray, reference) -> float:
    reference = reference.numpy() if torch is not None and isinstance(reference, torch.Tensor) else reference
    assert ours.shape == reference.shape, f"shape {ours.shape} != {reference.shape}"
    return float(np.abs(ours.astype(np.float64) - reference).max()) if ours.size else 0.0


def _chw(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


# --- the torch references: the inference kernels as they were before numpy replaced them,
# from torch's own operations and the torch colour code training still uses (experts/color.py).


def _torch_lightness(pixels: np.ndarray) -> torch.Tensor:
    """(H, W) gray or (H, W, 3) RGB, float in [0, 1] or uint8 / uint16 -> L (1, H, W)."""
    if pixels.ndim == 2 and pixels.dtype in (np.uint8, np.uint16):
        return torch_color.gray_to_lightness(torch.from_numpy(np.require(pixels, requirements=("W", "C")))[None])
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype, 1.0)
    values = torch.from_numpy(np.multiply(pixels, np.float32(1 / scale), dtype=np.float32))
    if values.dim() == 2:
        return torch_color.gray_to_lightness(values[None])
    return torch_color.rgb_to_lightness(values.permute(2, 0, 1))


def _torch_resize_square(lightness: torch.Tensor, size: int) -> torch.Tensor:
    """(1, H, W) -> (1, 1, size, size), antialiased; sides over 64 x size area-averaged first."""
    height, width = lightness.shape[-2:]
    limit = size * 64
    if height > limit or width > limit:
        lightness = F.adaptive_avg_pool2d(lightness[None], (min(height, limit), min(width, limit)))[0]
    return F.interpolate(lightness[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def _torch_compose(lightness: np.ndarray, small_ab: np.ndarray, dtype) -> np.ndarray:
    """L joined with ab upsampled by F.interpolate, through torch's gamma table (uint8: the bytes of a file)."""
    height, width = lightness.shape[1:]
    out = torch.empty(height, width, 3, dtype=torch.uint8 if np.dtype(dtype) == np.uint8 else torch.float32)
    if not out.numel():
        return out.numpy()
    ab = F.interpolate(torch.from_numpy(small_ab)[None], size=(height, width), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        torch_color.lab_planes_to_rgb(torch.from_numpy(lightness[0]), ab[0, 0], ab[0, 1], out=out)
    return out.numpy()


def _torch_is_colour_photo(pixels: np.ndarray, chroma_threshold: float, min_fraction: float) -> bool:
    """The colour-photo rule in torch: pixels far from the mean ab of their L, and off its hue."""
    if pixels.ndim == 2:
        return False
    factor = max(4, max(pixels.shape[:2]) // 64)
    small = torch.from_numpy(color._box_reduce(imageio.to_float(pixels), factor)).permute(2, 0, 1)
    lab = torch_color.rgb_to_lab(small).reshape(3, -1)
    lightness, ab = lab[0], lab[1:]
    bins = 16
    index = (lightness * (bins / 100)).long().clamp(0, bins - 1)
    totals = torch.zeros(2, bins).index_add_(1, index, ab)
    counts = torch.zeros(bins).index_add_(0, index, torch.ones_like(lightness)).clamp(min=1)
    mean = (totals / counts)[:, index]
    offset = ab - mean
    strength = mean.norm(dim=0)
    direction = mean / strength.clamp(min=1e-6)
    along = (offset * direction).sum(dim=0)
    across = offset[0] * -direction[1] + offset[1] * direction[0]
    slope = float(np.tan(np.radians(10.0)))
    same_hue = (strength > chroma_threshold) & (across.abs() < slope * (strength + along).clamp(min=0))
    evidence = (offset.norm(dim=0) > chroma_threshold) & ~same_hue
    return bool(evidence.float().mean() > min_fraction)


def _lab_of(rgb: np.ndarray) -> np.ndarray:
    return skcolor.rgb2lab(rgb).astype(np.float32)


def _small_ab(name: str, size: int) -> np.ndarray:
    """A photo's own chroma at a network's size: (2, h, w) float32, a smooth field like an expert's."""
    return np.ascontiguousarray(_lab_of(sample_rgb(name, size))[..., 1:].transpose(2, 0, 1))


# --- colour conversions --------------------------------------------------------------


@pytest.mark.needs_torch
@pytest.mark.parametrize("name", SAMPLES)
def test_rgb_to_lab_matches_torch_and_skimage(name):
    rgb = sample_rgb(name, 256)
    unit = rgb.astype(np.float32) / 255
    ours = color.rgb_to_lab(unit)
    assert ours.dtype == np.float32
    worst_torch = _worst(ours, torch_color.rgb_to_lab(_chw(unit)).permute(1, 2, 0))
    worst_skimage = _worst(ours, skcolor.rgb2lab(rgb))
    assert worst_torch < TOLERANCE and worst_skimage < TOLERANCE, (
        f"torch {worst_torch:.2e}, skimage {worst_skimage:.2e}"
    )
    assert np.array_equal(color.rgb_to_lab(rgb), ours), "uint8 pixels must give what their float values give"
    sixteen = color.rgb_to_lab(rgb.astype(np.uint16) * 257)
    assert _worst(sixteen, ours) < TOLERANCE


@pytest.mark.needs_torch
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_lab_to_rgb_matches_torch_and_skimage(name):
    lab = _lab_of(sample_rgb(name, 256))
    ours = color.lab_to_rgb(lab)
    fused = torch_color.lab_to_rgb(_chw(lab)).permute(1, 2, 0)  # float32: torch's table path
    formula = torch_color.lab_to_rgb(_chw(lab).double()).permute(1, 2, 0)
    worst = {
        "torch float32": _worst(ours, fused),
        "torch formula": _worst(ours, formula),
        "skimage": _worst(ours, skcolor.lab2rgb(lab.astype(np.float64))),
    }
    assert max(worst.values()) < TOLERANCE, worst


@pytest.mark.needs_torch
def test_out_of_gamut_lab_clips_like_torch_and_skimage():
    rng = np.random.default_rng(0)
    lab = np.stack(
        [rng.uniform(0, 100, (64, 64)), rng.uniform(-127, 127, (64, 64)), rng.uniform(-127, 127, (64, 64))], -1
    )
    ours = color.lab_to_rgb(lab)
    assert ours.dtype == np.float64 and ours.min() >= 0 and ours.max() <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about the negative z it clips
        reference = skcolor.lab2rgb(lab)
    worst = {
        "torch": _worst(ours, torch_color.lab_to_rgb(_chw(lab)).permute(1, 2, 0)),
        "skimage": _worst(ours, reference),
    }
    assert max(worst.values()) < TOLERANCE, worst


def test_round_trip_keeps_the_photo(photos):
    rgb = photos["chelsea"].astype(np.float32) / 255
    assert _worst(color.lab_to_rgb(color.rgb_to_lab(rgb)), rgb) < TOLERANCE


@pytest.mark.needs_torch
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_rgb_lightness_matches_torch(photos, dtype):
    rgb = np.concatenate([photos[name][:64, :64] for name in SAMPLES], axis=1)  # (64, 256, 3)
    pixels = {np.uint8: rgb, np.uint16: rgb.astype(np.uint16) * 257 + 100}.get(dtype, rgb.astype(dtype) / 255)
    ours = color.lightness_from_array(pixels)
    assert ours.shape == (1, *rgb.shape[:2]) and ours.dtype == (np.float64 if dtype == np.float64 else np.float32)
    worst = _worst(ours, _torch_lightness(pixels))
    assert worst < TOLERANCE, f"max |L numpy - L torch| = {worst:.2e}"
    via_lab = color.rgb_to_lab(pixels)[..., 0]
    assert _worst(ours[0], via_lab) < TOLERANCE, "L alone must equal the L of a whole LAB conversion"


@pytest.mark.needs_torch
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_lightness_of_every_integer_level_matches_torch(dtype):
    levels = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(-1, 256)
    ours = color.gray_to_lightness(levels)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, torch_color.gray_to_lightness(torch.from_numpy(levels)[None])[0].numpy())
    neutral = color.rgb_to_lab(np.repeat(levels[..., None], 3, axis=-1))[..., 0]
    assert _worst(ours, neutral) < TOLERANCE


@pytest.mark.needs_torch
def test_gray_lightness_of_floats_matches_torch():
    # Dense near black, where L is steepest (torch's float32 path reads an interpolated table there).
    gray = np.concatenate([np.geomspace(1e-7, 0.05, 5000), np.linspace(0, 1, 5001)]).astype(np.float32)
    ours = color.gray_to_lightness(gray)
    worst = {
        "float32": _worst(ours, torch_color.gray_to_lightness(torch.from_numpy(gray)[None])[0]),
        "formula": _worst(ours, torch_color.gray_to_lightness(torch.from_numpy(gray).double()[None])[0]),
    }
    assert max(worst.values()) < TOLERANCE, worst


@pytest.mark.needs_torch
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 70_001), (70_001, 1), (37, 51), (3, 9001), (0, 5)], ids=lambda s: "x".join(map(str, s))
)
def test_lightness_of_odd_shapes_matches_torch(photos, shape):
    tiled = np.resize(photos["coffee"], (*shape, 3))  # the photo's pixels, repeated to fill the shape
    for pixels in (tiled, tiled[..., 1], tiled.astype(np.uint16) * 257, tiled[::-1, ::-1]):
        worst = _worst(color.lightness_from_array(pixels), _torch_lightness(pixels))
        assert worst < TOLERANCE, f"{pixels.dtype} {pixels.shape}: {worst:.2e}"


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((4, 4, 4)), np.zeros((4, 4, 1))], ids=["2d", "rgba", "1ch"])
def test_channels_last_is_required(bad):
    for function in (color.rgb_to_lab, color.lab_to_rgb, color.rgb_to_lightness):
        with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
            function(bad)


# --- resizing ------------------------------------------------------------------------


def _torch_resize(image: np.ndarray, size, antialias: bool) -> np.ndarray:
    return F.interpolate(
        torch.from_numpy(image)[None], size=size, mode="bilinear", antialias=antialias, align_corners=False
    )[0]


@pytest.mark.needs_torch
@pytest.mark.parametrize("antialias", [True, False], ids=["antialias", "plain"])
@pytest.mark.parametrize(
    "shape, size",
    [
        ((341, 512), (224, 224)),  # shrink both, by different ratios
        ((2000, 1500), (224, 224)),  # a large photo
        ((37, 51), (224, 224)),  # enlarge both
        ((200, 51), (224, 17)),  # shrink one, enlarge the other
        ((1, 700), (5, 9)),  # a strip
        ((513, 1), (224, 224)),
        ((224, 224), (224, 224)),
    ],
    ids=lambda value: "x".join(map(str, value)),
)
def test_resize_bilinear_matches_torch(shape, size, antialias):
    lightness = color.lightness_from_array(np.resize(sample_rgb("astronaut", 512), (*shape, 3)))
    ours = color.resize_bilinear(lightness, size, antialias)
    worst = _worst(ours, _torch_resize(lightness, size, antialias))
    assert worst < TOLERANCE, f"max |numpy - torch| = {worst:.2e} L"


@pytest.mark.needs_torch
@pytest.mark.parametrize("antialias", [True, False], ids=["antialias", "plain"])
def test_resize_of_sharp_edges_matches_torch(antialias):
    # A photo cut to black and white (L 0 or 100): next to such an edge, a source position
    # one float32 step off moves the output by ~1e-3, so positions must be torch's own.
    lightness = np.where(color.lightness_from_array(sample_rgb("camera", 512)) > 50, np.float32(100), np.float32(0))
    for size in ((224, 224), (300, 700), (97, 61)):
        worst = _worst(color.resize_bilinear(lightness, size, antialias), _torch_resize(lightness, size, antialias))
        assert worst < TOLERANCE, f"{size}: max |numpy - torch| = {worst:.2e} L"


@pytest.mark.needs_torch
def test_classifier_batch_resize_matches_torch(photos):
    # SceneClassifier.prepare: (B, 1, H, W) L / 100, antialiased to its square input size.
    batch = np.stack([color.rgb_to_lab(photos[name][:64, :90])[..., 0][None] / 100 for name in SAMPLES])
    ours = color.resize_bilinear(batch, (48, 48))
    assert ours.shape == (len(SAMPLES), 1, 48, 48)
    reference = F.interpolate(
        torch.from_numpy(batch), size=(48, 48), mode="bilinear", antialias=True, align_corners=False
    )
    assert _worst(ours, reference) < TOLERANCE / 100


@pytest.mark.needs_torch
def test_shrinking_to_one_column_is_right_where_torch_repeats_a_row():
    # torch's antialiased kernel, shrinking the width to 1 while growing the height, returns
    # the first row over and over; on the transposed image it is right, and so are we.
    image = color.rgb_to_lab(sample_rgb("coffee", 96))[..., 0][None]  # (1, 64, 96)
    ours = color.resize_bilinear(image, (150, 1))
    transposed = _torch_resize(np.ascontiguousarray(image.transpose(0, 2, 1)), (1, 150), True).permute(0, 2, 1)
    assert _worst(ours, transposed) < TOLERANCE
    assert np.ptp(ours) > 1, "the column must vary down the photo"


@pytest.mark.needs_torch
@pytest.mark.parametrize(
    "shape", [(341, 512), (1, 1), (5000, 40), (40, 5000), (20_000, 1), (1, 20_000)], ids=lambda s: "x".join(map(str, s))
)
def test_resize_square_matches_torch(shape):
    # size 16: sides over 16 * 64 = 1024 are first averaged by area, as torch's resize_square does.
    lightness = color.lightness_from_array(np.resize(sample_rgb("rocket", 512), (*shape, 3)))
    ours = color.resize_square(lightness, 16)
    worst = _worst(ours, _torch_resize_square(torch.from_numpy(lightness), 16))
    assert ours.shape == (1, 1, 16, 16) and worst < TOLERANCE, f"max |numpy - torch| = {worst:.2e} L"


def test_resize_square_of_a_square_photo_is_the_photo():
    lightness = np.zeros((1, 16, 16), np.float32)
    assert np.shares_memory(color.resize_square(lightness, 16), lightness)


# --- composing the output ------------------------------------------------------------


def _compose_both(lightness: np.ndarray, small_ab: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    ours = color.compose_upsampled(lightness, small_ab, dtype=dtype)
    theirs = _torch_compose(lightness, small_ab, dtype)
    assert ours.dtype == theirs.dtype == np.dtype(dtype) and ours.shape == theirs.shape == (*lightness.shape[1:], 3)
    return ours, theirs


def _assert_close_to_torch(ours: np.ndarray, theirs: np.ndarray) -> None:
    """uint8: within one level and almost all equal; float32: within one gamma-table bin.

    A channel clipped to black is 0 here, as in scikit-image, and 1.2e-5 in torch (its gamma
    table starts at 2^-20): the same byte, and counted as equal."""
    difference = np.abs(ours.astype(np.float64) - theirs)
    difference[(ours < 1.3e-5) & (theirs < 1.3e-5)] = 0
    equal = float((difference == 0).mean()) if difference.size else 1.0
    if ours.dtype == np.uint8:
        assert difference.max(initial=0) <= 1 and equal > 0.999, f"max {difference.max()} levels, {equal:.4%} equal"
    else:
        assert difference.max(initial=0) < 2.5e-4 and equal > 0.8, f"max {difference.max():.2e}, {equal:.2%} equal"


@pytest.mark.needs_torch
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_compose_matches_torch_on_photos(name, dtype):
    lightness = np.ascontiguousarray(_lab_of(sample_rgb(name, 600))[..., 0][None])
    _assert_close_to_torch(*_compose_both(lightness, _small_ab(name, 64), dtype))


@pytest.mark.needs_torch
@pytest.mark.parametrize(
    "shape, small",
    [
        ((37, 51), (224, 224)),  # smaller than the network's output: a downsample
        ((1, 20_000), (224, 224)),
        ((20_000, 1), (224, 224)),
        ((40, 9000), (56, 224)),  # wider than a tile: tiles are cut across the columns
        ((3, 70_001), (7, 9)),
        ((301, 199), (1, 1)),
    ],
    ids=lambda value: "x".join(map(str, value)),
)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
def test_compose_matches_torch_on_odd_shapes(shape, small, dtype):
    lightness = np.ascontiguousarray(_lab_of(np.resize(sample_rgb("chelsea", 256), (*shape, 3)))[..., 0][None])
    small_ab = np.ascontiguousarray(
        _lab_of(np.resize(sample_rgb("coffee", 256), (*small, 3)))[..., 1:].transpose(2, 0, 1)
    )
    _assert_close_to_torch(*_compose_both(lightness, small_ab, dtype))


def test_compose_of_an_empty_photo_is_empty():
    # (torch's compose_upsampled divides by the height here: ZeroDivisionError)
    for shape in ((0, 7), (7, 0)):
        rgb = color.compose_upsampled(np.zeros((1, *shape), np.float32), np.zeros((2, 4, 4), np.float32))
        assert rgb.shape == (*shape, 3)


@pytest.mark.needs_torch
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
def test_compose_clips_out_of_gamut_chroma_like_torch(dtype):
    rng = np.random.default_rng(1)
    lightness = np.ascontiguousarray(_lab_of(sample_rgb("astronaut", 300))[..., 0][None])
    small_ab = rng.uniform(-127, 127, (2, 30, 30)).astype(np.float32)  # most of it outside sRGB
    _assert_close_to_torch(*_compose_both(lightness, small_ab, dtype))


@pytest.mark.needs_torch
def test_compose_is_the_exact_colour_conversion_of_upsampled_ab():
    lightness = np.ascontiguousarray(_lab_of(sample_rgb("chelsea", 400))[..., 0][None])
    small_ab = _small_ab("chelsea", 56)
    ab = F.interpolate(torch.from_numpy(small_ab)[None].double(), size=lightness.shape[1:], mode="bilinear")[0].numpy()
    exact = skcolor.lab2rgb(np.concatenate([lightness.astype(np.float64), ab]).transpose(1, 2, 0))
    assert _worst(color.compose_upsampled(lightness, small_ab), exact) < 1e-4


def test_compose_uint8_is_the_8bit_file_of_its_float32():
    # The contract with imageio: an 8-bit output is to_8bit of the float one, byte for byte.
    lightness = np.ascontiguousarray(_lab_of(sample_rgb("rocket", 300))[..., 0][None])
    small_ab = _small_ab("rocket", 48) * 1.5  # some of it out of gamut
    eight = color.compose_upsampled(lightness, small_ab, dtype=np.uint8)
    assert np.array_equal(eight, imageio.to_8bit(color.compose_upsampled(lightness, small_ab)))


def test_compose_on_worker_threads_equals_one_thread():
    lightness = np.ascontiguousarray(_lab_of(sample_rgb("coffee", 600))[..., 0][None])
    small_ab = _small_ab("coffee", 64)
    with ThreadPoolExecutor(2) as pool:
        threaded = color.compose_upsampled(lightness, small_ab, dtype=np.uint8, map_bands=pool.map)
    assert np.array_equal(threaded, color.compose_upsampled(lightness, small_ab, dtype=np.uint8))


@pytest.mark.parametrize(
    "shape", [(10_000_000, 1), (1, 10_000_000), (300_000, 1)], ids=["tall", "wide", "tall, 1300 rows a source row"]
)
def test_compose_of_a_strip_allocates_little_beyond_the_output(shape):
    lightness = np.linspace(20, 80, shape[0] * shape[1], dtype=np.float32).reshape(1, *shape)
    small_ab = _small_ab("coffee", 224)
    color.compose_upsampled(lightness[:, :1, :1], small_ab, dtype=np.uint8)  # build the tables first
    tracemalloc.start()
    try:
        rgb = color.compose_upsampled(lightness, small_ab, dtype=np.uint8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    extra = (peak - rgb.nbytes) / 2**20
    assert extra < 10, f"{extra:.1f} MiB beyond the {rgb.nbytes / 2**20:.1f} MiB output"
    # Every tile was written (an array this large starts as fresh, zeroed memory): no pixel
    # of L 20 to 80 is black, and the strip brightens from one end to the other.
    brightness = rgb.reshape(-1, 3).astype(np.int32).sum(axis=1)
    assert brightness.min() > 0 and brightness[:1000].mean() + 200 < brightness[-1000:].mean()


def test_compose_refuses_other_dtypes_and_shapes():
    lightness, small_ab = np.zeros((1, 4, 4), np.float32), np.zeros((2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="float32 or uint8"):
        color.compose_upsampled(lightness, small_ab, dtype=np.uint16)
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        color.compose_upsampled(lightness[0], small_ab)


# --- what is a colour photo ------------------------------------------------------------


def _variants(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The photo, and the black-and-white prints one could make of it."""
    gray = rgb.astype(np.float32).mean(axis=-1, keepdims=True) / 255
    sepia = np.clip(gray * np.array([1.07, 0.74, 0.43], np.float32) * 1.2, 0, 1)
    cyanotype = np.clip(0.15 + gray * np.array([0.55, 0.8, 1.0], np.float32), 0, 1)
    return {
        "colour": rgb,
        "colour 16-bit": rgb.astype(np.uint16) * 257,
        "gray": np.repeat((gray * 255 + 0.5).astype(np.uint8), 3, axis=-1),
        "gray plane": (gray[..., 0] * 255).astype(np.uint8),
        "sepia": sepia,
        "sepia 8-bit": (sepia * 255 + 0.5).astype(np.uint8),
        "cyanotype": cyanotype,
    }


@pytest.mark.needs_torch
@pytest.mark.parametrize("name", [*SAMPLES, "hubble_deep_field", "immunohistochemistry", "retina", "cat"])
def test_colour_photo_verdicts_match_torch(name):
    verdicts = {}
    for kind, pixels in _variants(sample_rgb(name, 300)).items():
        # Across thresholds, so that pixels near the rule's edges are compared too.
        for threshold in (2.0, 6.0, 12.0):
            for fraction in (0.0, 0.03, 0.1, 0.3):
                ours = color.is_colour_photo(pixels, threshold, fraction)
                assert ours == _torch_is_colour_photo(pixels, threshold, fraction), (kind, threshold, fraction)
        verdicts[kind] = color.is_colour_photo(pixels)
    toned = {kind: verdict for kind, verdict in verdicts.items() if not kind.startswith("colour")}
    assert not any(toned.values()), f"black-and-white prints called colour: {toned}"
    assert verdicts["colour"] == verdicts["colour 16-bit"]


def test_colour_photos_are_called_colour(photos):
    assert all(color.is_colour_photo(rgb) for rgb in photos.values())
