"""Colorization quality metrics, as pure functions of two RGB images.

Every function takes ``pred`` and ``truth`` as arrays of shape (H, W, 3): uint8, or float
in [0, 1] (quantised to 8 bits first, so numbers match what is written to disk).
When one truth is compared with several predictions (the gray baseline and each expert),
``prepare_truth`` once and ``compare`` each prediction: the truth's LAB is computed once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorize.core.images import to_8bit

AB_MAX_ERROR = 150.0  # Zhang et al. 2016: AuC of the per-pixel ab-error CDF over thresholds 0..150
SNR_CAP_DB = 100.0  # snr of identical images: a finite stand-in for infinity, so means and JSON stay numbers
# "recognised" is scored by colorize eval when its judge is installed (pipelines/recognition.py).
METRIC_NAMES = (
    "psnr",
    "snr",
    "ssim",
    "rmse",
    "delta_e",
    "ab_auc",
    "colorfulness",
    "colorfulness_truth",
    "recognised",
    "hints_honoured",
)
HONOURED_DELTA_E = 5.0  # a hint is honoured where the output is this close to it (the hints issue's bar)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """The 8 bits a file stores: the same conversion core/images.py writes with."""
    return to_8bit(rgb)


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over 8-bit RGB (peak 255); infinite for identical images."""
    with np.errstate(divide="ignore"):  # identical images: inf is the answer, not a warning
        return float(peak_signal_noise_ratio(to_uint8(truth), to_uint8(pred), data_range=255))


def snr(pred: np.ndarray, truth: np.ndarray) -> float:
    """Signal-to-noise ratio in dB over RGB in [0, 1]: 10 log10(mean(truth²) / mean((pred - truth)²)).

    Unlike PSNR it measures the error against the truth's own power rather than the peak
    value, so the same error counts for more on a dark photo. Clipped to ±``SNR_CAP_DB``:
    identical images give ``SNR_CAP_DB`` (not infinity), an error on a black truth ``-SNR_CAP_DB``.
    """
    truth, pred = to_uint8(truth).astype(np.float64) / 255, to_uint8(pred).astype(np.float64) / 255
    signal, error = np.mean(truth**2), np.mean((pred - truth) ** 2)
    if error == 0:
        return SNR_CAP_DB
    if signal == 0:
        return -SNR_CAP_DB
    return float(np.clip(10 * np.log10(signal / error), -SNR_CAP_DB, SNR_CAP_DB))


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    """Structural similarity over 8-bit RGB, channels averaged (scikit-image defaults, 7x7 window)."""
    truth, pred = to_uint8(truth), to_uint8(pred)
    window = min(7, *truth.shape[:2])
    window -= 1 - window % 2  # odd, and no larger than the image
    return float(structural_similarity(truth, pred, channel_axis=-1, data_range=255, win_size=window))


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root-mean-square error in 8-bit levels."""
    diff = to_uint8(pred).astype(np.float64) - to_uint8(truth).astype(np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(to_uint8(rgb).astype(np.float64) / 255)


def _delta_e_lab(lab_pred: np.ndarray, lab_truth: np.ndarray) -> float:
    return float(np.mean(deltaE_ciede2000(lab_truth, lab_pred)))


def ab_auc_from_lab(lab_pred: np.ndarray, lab_truth: np.ndarray) -> float:
    """``ab_auc`` of two LAB arrays (H, W, 3): the same number, without the RGB round trip."""
    # The area under the CDF F(t) = P(error <= t) over [0, T], divided by T, is exactly
    # mean(max(0, 1 - error / T)) (integrate the step 1[error <= t] over t). This closed form
    # needs no sort and no threshold grid, whose sum over 151 integer steps is biased by up to 1/151.
    error = np.linalg.norm(lab_pred[..., 1:] - lab_truth[..., 1:], axis=-1)
    return float(np.mean(np.clip(1.0 - error / AB_MAX_ERROR, 0.0, 1.0)))


def delta_e(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (D65) over all pixels."""
    return _delta_e_lab(_lab(pred), _lab(truth))


def ab_auc(pred: np.ndarray, truth: np.ndarray) -> float:
    """Normalised area under the curve 'share of pixels whose ab error is <= t', t from 0 to 150.

    In [0, 1]: 1 when every pixel's ab is exact, 0 when every pixel is off by 150 or more;
    a constant ab error e gives 1 - e / 150.
    """
    return ab_auc_from_lab(_lab(pred), _lab(truth))


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M, on 8-bit RGB.

    rg = R - G, yb = (R + G) / 2 - B; M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2).
    0 is gray; about 33 is 'moderately', 59 'quite' and 82 'highly' colourful.
    """
    r, g, b = np.moveaxis(to_uint8(rgb).astype(np.float64), -1, 0)
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


@dataclass(frozen=True)
class Truth:
    """A ground-truth image prepared once for many comparisons."""

    rgb: np.ndarray  # uint8 (H, W, 3)
    lab: np.ndarray  # float64 (H, W, 3), scikit-image's rgb2lab of ``rgb``
    colorfulness: float


def prepare_truth(truth: np.ndarray) -> Truth:
    """Quantise, convert to LAB and measure colourfulness of a ground truth, once."""
    rgb = to_uint8(truth)
    return Truth(rgb, _lab(rgb), colorfulness(rgb))


def compare(pred: np.ndarray, truth: Truth, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """Every metric for ``pred`` against a prepared truth, keyed as in ``METRIC_NAMES``; only
    ``names`` when given (SSIM and ΔE dominate the cost, and a trial scoring many variants of
    one output may need neither)."""
    pred = to_uint8(pred)
    if pred.shape != truth.rgb.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.rgb.shape} differ in shape")

    @functools.cache
    def lab_pred() -> np.ndarray:  # once for ΔE and AUC both, and only when either is asked for
        return _lab(pred)

    scores = {
        "psnr": lambda: psnr(pred, truth.rgb),
        "snr": lambda: snr(pred, truth.rgb),
        "ssim": lambda: ssim(pred, truth.rgb),
        "rmse": lambda: rmse(pred, truth.rgb),
        "delta_e": lambda: _delta_e_lab(lab_pred(), truth.lab),
        "ab_auc": lambda: ab_auc_from_lab(lab_pred(), truth.lab),
        "colorfulness": lambda: colorfulness(pred),
        "colorfulness_truth": lambda: truth.colorfulness,
    }
    return {name: score() for name, score in scores.items() if names is None or name in names}


def hints_honoured(pred: np.ndarray, hints) -> float:
    """The share of ``hints`` (experts/hints.py, their places as fractions) that the output
    ``pred`` (uint8 (H, W, 3)) honours: at the hint's centre pixel, CIEDE2000 between the output
    and the output's own lightness with the hint's a and b at most ``HONOURED_DELTA_E``."""
    height, width = pred.shape[:2]
    rows = [min(int(hint.y * height), height - 1) for hint in hints]
    cols = [min(int(hint.x * width), width - 1) for hint in hints]
    lab = _lab(to_uint8(pred)[rows, cols][None])[0]
    wanted = lab.copy()
    wanted[:, 1:] = [hint.ab for hint in hints]
    return float(np.mean(deltaE_ciede2000(wanted, lab) <= HONOURED_DELTA_E))


def image_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Every metric for one image pair, keyed as in ``METRIC_NAMES``."""
    return compare(pred, prepare_truth(truth))


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over images, plus the ratio of mean colourfulness (ours / truth).

    A metric some row lacks is left out rather than refused: eval JSON written before that
    metric existed (``snr``) still summarises.
    """
    if not rows:
        return {}
    names = [name for name in METRIC_NAMES if all(name in row for row in rows)]
    summary = {name: float(np.mean([row[name] for row in rows])) for name in names}
    truth = summary["colorfulness_truth"]
    summary["colorfulness_ratio"] = summary["colorfulness"] / truth if truth > 0 else float("nan")
    summary["images"] = len(rows)
    return summary
