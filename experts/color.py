"""CIE LAB <-> sRGB in batched torch (D65 white, 2° observer), matching scikit-image.

Shapes are ``(*, 3, H, W)``. RGB is float in [0, 1]; LAB has L in [0, 100] and a, b
roughly in [-110, 110]. Every function is differentiable, so losses can use them.
"""

from __future__ import annotations

import torch

# The same constants as skimage.color, so that outputs agree with it to float precision.
_XYZ_FROM_RGB = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPSILON = 0.008856  # (6/29)^3, where the cube root is replaced by a line
_KAPPA = 7.787

L_RANGE = (0.0, 100.0)
AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay below this; networks predict ab / AB_SCALE


def _check(image: torch.Tensor, name: str) -> None:
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"{name} expects a tensor of shape (*, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} expects a floating-point tensor, got {image.dtype}")


def _matmul_channels(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    matrix = matrix.to(dtype=image.dtype, device=image.device)
    return torch.einsum("ij,...jhw->...ihw", matrix, image)


def _per_channel(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return vector.to(dtype=like.dtype, device=like.device).view(3, 1, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (*, 3, H, W) -> LAB, same shape."""
    _check(rgb, "rgb_to_lab")
    linear = torch.where(rgb > 0.04045, ((rgb.clamp(min=0) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _matmul_channels(_XYZ_FROM_RGB, linear) / _per_channel(_WHITE_D65, rgb)
    f = torch.where(xyz > _EPSILON, xyz.clamp(min=_EPSILON) ** (1 / 3), _KAPPA * xyz + 16 / 116)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """LAB, shape (*, 3, H, W) -> sRGB in [0, 1] (out-of-gamut colours are clipped)."""
    _check(lab, "lab_to_rgb")
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16) / 116
    # skimage clips negative z (colours far outside the gamut); we do the same to agree with it.
    f = torch.stack((fy + a / 500, fy, (fy - b / 200).clamp(min=0)), dim=-3)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / _KAPPA) * _per_channel(_WHITE_D65, lab)
    linear = _matmul_channels(_RGB_FROM_XYZ, xyz)
    rgb = torch.where(
        linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear
    )
    return rgb.clamp(0, 1)


def rgb_to_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], (*, 3, H, W) -> L in [0, 100], (*, 1, H, W)."""
    return rgb_to_lab(rgb)[..., :1, :, :]


def gray_to_lightness(gray: torch.Tensor) -> torch.Tensor:
    """Gray intensity in [0, 1] read as R = G = B, shape (*, 1, H, W) -> L in [0, 100].

    For a neutral colour X/Xn = Y = Z/Zn, so L depends on Y alone; this is the cheap path
    for black-and-white inputs (no 3-channel conversion at full resolution).
    """
    linear = torch.where(gray > 0.04045, ((gray.clamp(min=0) + 0.055) / 1.055) ** 2.4, gray / 12.92)
    f = torch.where(linear > _EPSILON, linear.clamp(min=_EPSILON) ** (1 / 3), _KAPPA * linear + 16 / 116)
    return 116 * f - 16


def join_lab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(*, 1, H, W) L and (*, 2, H, W) ab -> (*, 3, H, W) LAB."""
    return torch.cat((lightness, ab), dim=-3)
