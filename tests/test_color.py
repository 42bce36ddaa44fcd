"""experts.color: batched torch LAB agrees with scikit-image on real photos."""

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from colorize.experts.color import gray_to_lightness, lab_to_rgb, rgb_to_lab


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
def test_rgb_to_lab_matches_skimage(photos, name):
    rgb = photos[name]
    ours = rgb_to_lab(_to_tensor(rgb)).permute(1, 2, 0).double().numpy()
    reference = skcolor.rgb2lab(rgb)
    # 1/255 of each channel's range: L spans 100, a and b about 220.
    tolerance = np.array([100, 220, 220]) / 255
    worst = np.abs(ours - reference).reshape(-1, 3).max(axis=0)
    assert (worst < tolerance).all(), f"max |ours - skimage| per channel {worst} exceeds {tolerance}"


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_lab_to_rgb_matches_skimage(photos, name):
    lab = skcolor.rgb2lab(photos[name])
    ours = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1).float()).permute(1, 2, 0).numpy()
    reference = skcolor.lab2rgb(lab)
    worst = float(np.abs(ours - reference).max())
    assert worst < 1 / 255, f"max |ours - skimage| = {worst * 255:.3f} levels"


def test_out_of_gamut_lab_clips_like_skimage():
    rng = np.random.default_rng(0)
    lab = np.stack(
        [rng.uniform(0, 100, (16, 16)), rng.uniform(-110, 110, (16, 16)), rng.uniform(-110, 110, (16, 16))], -1
    )
    ours = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1).float()).permute(1, 2, 0).numpy()
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = skcolor.lab2rgb(lab)
    assert np.abs(ours - reference).max() < 1 / 255


def test_round_trip_is_identity(photos):
    rgb = _to_tensor(photos["chelsea"])
    back = lab_to_rgb(rgb_to_lab(rgb))
    assert torch.allclose(back, rgb, atol=1e-4), float((back - rgb).abs().max())


def test_batched_shapes_and_dtype():
    batch = torch.rand(2, 5, 3, 7, 9, dtype=torch.float64)
    lab = rgb_to_lab(batch)
    assert lab.shape == batch.shape and lab.dtype == torch.float64
    assert lab_to_rgb(lab).shape == batch.shape


def test_gray_lightness_equals_rgb_lightness_of_neutral_pixels():
    gray = torch.linspace(0, 1, 256).view(1, 16, 16)
    via_rgb = rgb_to_lab(gray.expand(3, 16, 16))[:1]
    assert torch.allclose(gray_to_lightness(gray), via_rgb, atol=1e-3)
    # skimage's matrix rows sum to a white a hair off its D65 constants, so neutral ab is ~0.005.
    assert rgb_to_lab(gray.expand(3, 16, 16))[1:].abs().max() < 0.01


def test_gradients_flow():
    rgb = torch.rand(1, 3, 4, 4, requires_grad=True)
    lab_to_rgb(rgb_to_lab(rgb)).sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()


@pytest.mark.parametrize("shape", [(4, 4), (2, 4, 4), (1, 2, 4, 4)])
def test_bad_shape_is_rejected(shape):
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
        rgb_to_lab(torch.rand(*shape))


def test_integer_input_is_rejected():
    with pytest.raises(TypeError):
        rgb_to_lab(torch.zeros(3, 2, 2, dtype=torch.uint8))
