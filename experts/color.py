"""CIE LAB <-> sRGB in batched torch (D65 white, 2° observer), matching scikit-image.

Shapes are ``(*, 3, H, W)``. RGB is float in [0, 1]; LAB has L in [0, 100] and a, b
roughly in [-110, 110]. Every function is differentiable, so losses can use them.

Inference on the CPU takes a second, fused path (float32, no gradient): a 12-megapixel
photo is 36 M values per channel set, and the formula-by-formula version spends seconds
allocating full-size temporaries and evaluating ``pow``. The fused path works in chunks
that stay in cache and reads the sRGB gamma and gray -> L curves from tables; it agrees
with the reference formulas (and so with scikit-image) to about 1e-4.
"""

from __future__ import annotations

import functools

import numpy as np
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
    linear = _linearize(rgb)
    xyz = _matmul_channels(_XYZ_FROM_RGB, linear) / _per_channel(_WHITE_D65, rgb)
    f = torch.where(xyz > _EPSILON, xyz.clamp(min=_EPSILON) ** (1 / 3), _KAPPA * xyz + 16 / 116)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """LAB, shape (*, 3, H, W) -> sRGB in [0, 1] (out-of-gamut colours are clipped).

    On the fused path (CPU float32, no gradient) the result is channels-last in memory,
    so ``.movedim(-3, -1)`` to (*, H, W, 3) costs nothing.
    """
    _check(lab, "lab_to_rgb")
    if _fused_path(lab):
        *lead, _, height, width = lab.shape
        planes = lab.reshape(-1, 3, height * width)
        out = torch.empty(planes.shape[0], height * width, 3)
        for image, target in zip(planes, out):
            lab_planes_to_rgb(image[0], image[1], image[2], out=target)
        return out.view(*lead, height, width, 3).movedim(-1, -3)
    return _lab_to_rgb_formula(lab)


def _lab_to_rgb_formula(lab: torch.Tensor) -> torch.Tensor:
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16) / 116
    # skimage clips negative z (colours far outside the gamut); we do the same to agree with it.
    f = torch.stack((fy + a / 500, fy, (fy - b / 200).clamp(min=0)), dim=-3)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / _KAPPA) * _per_channel(_WHITE_D65, lab)
    linear = _matmul_channels(_RGB_FROM_XYZ, xyz)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0, 1)


def rgb_to_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], (*, 3, H, W) -> L in [0, 100], (*, 1, H, W).

    L depends on the luminance Y alone, so only Y is computed (a third of the work and
    memory of a whole LAB conversion, whose a and b would be thrown away)."""
    _check(rgb, "rgb_to_lightness")
    linear = _linearize(rgb)
    weights = _XYZ_FROM_RGB[1].to(dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return _luminance_to_lightness((linear * weights).sum(dim=-3, keepdim=True))


def _linearize(srgb: torch.Tensor) -> torch.Tensor:
    return torch.where(srgb > 0.04045, ((srgb.clamp(min=0) + 0.055) / 1.055) ** 2.4, srgb / 12.92)


def _luminance_to_lightness(luminance: torch.Tensor) -> torch.Tensor:
    f = torch.where(luminance > _EPSILON, luminance.clamp(min=_EPSILON) ** (1 / 3), _KAPPA * luminance + 16 / 116)
    return 116 * f - 16


def gray_to_lightness(gray: torch.Tensor) -> torch.Tensor:
    """Gray intensity in [0, 1] read as R = G = B, shape (*, 1, H, W) -> L in [0, 100].

    For a neutral colour X/Xn = Y = Z/Zn, so L depends on Y alone; this is the cheap path
    for black-and-white inputs (no 3-channel conversion at full resolution). ``gray`` may
    also be uint8 or uint16 (0..255 or 0..65535, straight from an image file): then L is
    read from a table of every possible value, with no float image in between.
    """
    if gray.dtype in (torch.uint8, torch.uint16):
        table = _gray_integer_table(gray.dtype, str(gray.device))
        if gray.device.type == "cpu":
            # numpy indexes with the integers as they are; torch would first widen them.
            return torch.from_numpy(table.numpy()[gray.numpy()])
        return table[gray.to(torch.int32)]
    if _fused_path(gray):
        return _fused_gray_to_lightness(gray)
    return _gray_to_lightness_formula(gray)


def _gray_to_lightness_formula(gray: torch.Tensor) -> torch.Tensor:
    return _luminance_to_lightness(_linearize(gray))  # gray is R = G = B, so Y is its linear value


def join_lab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(*, 1, H, W) L and (*, 2, H, W) ab -> (*, 3, H, W) LAB."""
    return torch.cat((lightness, ab), dim=-3)


# ---------------------------------------------------------------------------------------
# The fused CPU path. Why each choice was kept is measured in benchmarks/README.md.

_CHUNK = 1 << 17  # pixels per step: measured fastest here (the working set, ~5 MB, stays in L3)
_DELTA = 6 / 29  # where f^-1(t) = t^3 meets its linear segment
# Linear RGB from f(X/Xn), f(Y), f(Z/Zn) after f^-1: the white point folded into the matrix.
_RGB_FROM_F = (_RGB_FROM_XYZ * _WHITE_D65.view(1, 3)).tolist()
# Tables indexed by a float32's top bits (exponent and leading mantissa bits) have a
# constant *relative* step, which suits power curves: 2^-12 here, so a value read from a
# table is within ~5e-5 of the formula's over the whole range. Inputs are clamped to
# [_TABLE_FLOOR, 1] first; below the floor both curves are within 2e-5 of zero.
_TABLE_SHIFT = 11
_TABLE_FLOOR = 2.0**-20


def _fused_path(tensor: torch.Tensor) -> bool:
    return (
        tensor.dtype == torch.float32
        and tensor.device.type == "cpu"
        and not (torch.is_grad_enabled() and tensor.requires_grad)
    )


def _float_bits(value: float) -> int:
    return int(np.array(value, np.float32).view(np.int32))


@functools.cache
def _bits_table(curve: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(means, starts, steps, offset) for x in [_TABLE_FLOOR, 1], bin k = (bits(x) >> shift) - offset.

    ``means[k]`` is the mean of the curve at bin k's two edges (for a monotonic curve
    that halves the worst error of either edge); ``starts[k]`` its value at the lower
    edge and ``steps[k]`` the rise across the bin, for linear interpolation (within a
    bin, a float's value is linear in its mantissa bits).
    """
    low = _float_bits(_TABLE_FLOOR) >> _TABLE_SHIFT
    high = _float_bits(1.0) >> _TABLE_SHIFT
    bins = np.arange(low, high + 2, dtype=np.int64) << _TABLE_SHIFT
    edges = np.minimum(bins.astype(np.int32).view(np.float32).astype(np.float64), 1.0)
    values = {"srgb_gamma": _srgb_gamma, "gray_lightness": _gray_lightness}[curve](edges)
    means = torch.from_numpy((values[:-1] + values[1:]) / 2).float()
    starts = torch.from_numpy(values[:-1]).float()
    steps = torch.from_numpy(np.diff(values)).float()
    return means, starts, steps, low


def _srgb_gamma(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB in [0, 1], in float64, exactly as scikit-image computes it."""
    curve = np.where(linear > 0.0031308, 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return np.clip(curve, 0, 1)


def _gray_lightness(gray: np.ndarray) -> np.ndarray:
    """Gray in [0, 1] -> L, in float64, by the same formula as ``gray_to_lightness``."""
    return _gray_to_lightness_formula(torch.from_numpy(gray)).numpy()


@functools.cache
def _gray_integer_table(dtype: torch.dtype, device: str) -> torch.Tensor:
    levels = 256 if dtype == torch.uint8 else 65536
    gray = torch.arange(levels, dtype=torch.float64) / (levels - 1)
    return _gray_to_lightness_formula(gray).float().to(device)


def _fused_gray_to_lightness(gray: torch.Tensor) -> torch.Tensor:
    # L(gray) is steep near black, so the table is interpolated here: the nearest entry
    # alone would be off by up to 0.006 L; interpolated, the error is below 1e-4.
    _, starts, steps, offset = _bits_table("gray_lightness")
    flat = gray.reshape(-1)
    out = torch.empty(flat.shape)
    n = min(_CHUNK, flat.numel())
    index, fraction, step = torch.empty(n, dtype=torch.int32), torch.empty(n), torch.empty(n)
    for start in range(0, flat.numel(), _CHUNK):
        piece = out[start : start + _CHUNK]
        k = piece.numel()
        bits = torch.clamp(flat[start : start + _CHUNK], _TABLE_FLOOR, 1, out=piece).view(torch.int32)
        fraction[:k].copy_(torch.bitwise_and(bits, (1 << _TABLE_SHIFT) - 1, out=index[:k]))
        torch.bitwise_right_shift(bits, _TABLE_SHIFT, out=index[:k]).sub_(offset)
        torch.index_select(steps, 0, index[:k], out=step[:k])
        torch.index_select(starts, 0, index[:k], out=piece)
        piece.addcmul_(fraction[:k], step[:k], value=2.0**-_TABLE_SHIFT)
    return out.view(gray.shape)


def lab_planes_to_rgb(
    lightness: torch.Tensor, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """L, a, b planes of one shape S, float32 on the CPU -> sRGB in [0, 1], shape (*S, 3).

    The fast inference form of ``lab_to_rgb``: channels last (the layout image files
    want), no full-size temporaries, no gradient; ``out`` is filled if given (a strided view,
    such as one tile of a wider image, is filled through a contiguous copy of its size).
    A uint8 ``out`` receives ``(rgb * 255 + 0.5)`` truncated, the 8 bits a file stores,
    straight from an 8-bit copy of the gamma table: no float RGB is made at all.
    """
    shape = lightness.shape
    if out is None:
        out = torch.empty(*shape, 3)
    if not out.is_contiguous():
        return out.copy_(
            lab_planes_to_rgb(lightness, a, b, out=torch.empty_like(out, memory_format=torch.contiguous_format))
        )
    flat_l, flat_a, flat_b = (plane.reshape(-1) for plane in (lightness, a, b))
    rgb = out.view(-1, 3)
    n = min(_CHUNK, flat_l.numel())
    scratch = (torch.empty(3, n), torch.empty(3, n), torch.empty(n, 3, dtype=torch.int32))
    with torch.inference_mode():
        for start in range(0, flat_l.numel(), _CHUNK):
            stop = start + _CHUNK
            _lab_chunk_to_rgb(flat_l[start:stop], flat_a[start:stop], flat_b[start:stop], rgb[start:stop], *scratch)
    return out


@functools.cache
def _gamma_table(dtype: torch.dtype) -> torch.Tensor:
    means = _bits_table("srgb_gamma")[0]
    if dtype == torch.uint8:
        # Truncating float -> uint8, as copy_ and astype do, so both paths give the same bytes.
        return means.mul(255).add_(0.5).to(torch.uint8)
    return means


def _lab_chunk_to_rgb(lightness, a, b, rgb, f, linear, index) -> None:
    """One chunk of n pixels: flat L, a, b -> rgb (n, 3), through the scratch buffers."""
    n = lightness.numel()
    f, linear, index = f[:, :n], linear[:, :n], index[:n]
    fy = f[1]
    torch.mul(lightness, 1 / 116, out=fy).add_(16 / 116)
    torch.add(fy, a, alpha=1 / 500, out=f[0])
    torch.sub(fy, b, alpha=1 / 200, out=f[2]).clamp_(min=0)  # skimage clips negative z too
    # f^-1 without a branch: max(t, d)^3 + 3d^2 min(t - d, 0) is t^3 above d and the
    # linear segment below it (the two meet at d), and clamps are cheaper than `where`.
    torch.sub(f, _DELTA, out=linear).clamp_(max=0)
    f.clamp_(min=_DELTA).pow_(3).add_(linear, alpha=3 * _DELTA**2)
    for channel, (m0, m1, m2) in zip(linear, _RGB_FROM_F):
        torch.mul(f[0], m0, out=channel).add_(f[1], alpha=m1).add_(f[2], alpha=m2)
    # Out-of-gamut values clip here, where the gamma table's range begins and ends.
    linear.clamp_(_TABLE_FLOOR, 1)
    # The nearest table entry is within 5e-5 (0.013 of an 8-bit level): no interpolation.
    offset = _bits_table("srgb_gamma")[3]
    bins = linear.view(torch.int32).bitwise_right_shift_(_TABLE_SHIFT).sub_(offset)
    # Interleaving to (n, 3), one channel at a time: 4x faster here than any single op
    # that reads across channels (a transposed copy, stack, or the shift on a transposed view).
    for channel in range(3):
        index[:, channel].copy_(bins[channel])
    torch.index_select(_gamma_table(rgb.dtype), 0, index.view(-1), out=rgb.view(-1))
