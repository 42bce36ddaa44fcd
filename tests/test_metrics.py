"""Quality metrics: checked against scikit-image, and against numbers worked out by hand."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorize.pipelines import metrics


def _small(image: np.ndarray, side: int = 64) -> np.ndarray:
    thumb = Image.fromarray(image)
    thumb.thumbnail((side, side))
    return np.asarray(thumb)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo (truth) and a plausible wrong colorization of it: hue-shifted, noisy, odd-sized."""
    truth = _small(data.coffee())  # 64 x 43: an odd height on purpose
    rng = np.random.default_rng(0)
    pred = np.clip(truth[..., [1, 2, 0]].astype(int) + rng.integers(-20, 21, truth.shape), 0, 255).astype(np.uint8)
    return pred, truth


def test_psnr_matches_scikit_image(pair):
    pred, truth = pair
    expected = peak_signal_noise_ratio(truth, pred, data_range=255)
    assert metrics.psnr(pred, truth) == pytest.approx(expected, rel=1e-12), (metrics.psnr(pred, truth), expected)


def test_psnr_of_float_input_is_the_psnr_of_its_8_bit_file(pair):
    pred, truth = pair
    as_float = pred / 255.0 + 0.001  # within half a level: quantises back to pred exactly
    assert metrics.psnr(as_float, truth) == metrics.psnr(pred, truth)


def test_psnr_of_identical_images_is_infinite_without_a_warning(pair):
    _, truth = pair
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.psnr(truth, truth) == float("inf")


def test_ssim_matches_scikit_image_with_channels_averaged(pair):
    pred, truth = pair
    expected = structural_similarity(truth, pred, channel_axis=-1, data_range=255)
    assert metrics.ssim(pred, truth) == pytest.approx(expected, rel=1e-12), (metrics.ssim(pred, truth), expected)


def test_ssim_of_an_image_smaller_than_the_window_uses_the_largest_odd_window_that_fits(pair):
    pred, truth = (x[:5, :6] for x in pair)
    expected = structural_similarity(truth, pred, channel_axis=-1, data_range=255, win_size=5)
    assert metrics.ssim(pred, truth) == pytest.approx(expected, rel=1e-12)


def test_rmse_of_a_constant_offset_is_the_offset():
    truth = np.full((4, 5, 3), 100, np.uint8)
    pred = truth + np.uint8(3)
    assert metrics.rmse(pred, truth) == pytest.approx(3.0), metrics.rmse(pred, truth)


def test_delta_e_is_the_mean_ciede2000_of_scikit_image(pair):
    pred, truth = pair
    expected = np.mean(deltaE_ciede2000(rgb2lab(truth), rgb2lab(pred)))
    assert metrics.delta_e(pred, truth) == pytest.approx(expected, rel=1e-12), (metrics.delta_e(pred, truth), expected)
    assert metrics.delta_e(truth, truth) == 0.0


def test_colorfulness_of_two_pixels_worked_out_by_hand():
    # Pixel 1 = (R, G, B) = (110, 50, 0): rg = R - G = 60, yb = (R + G) / 2 - B = 80 - 0 = 80.
    # Pixel 2 = (0, 0, 0):                 rg = 0,          yb = 0.
    # mean(rg) = 30, std(rg) = 30 (population std: both values 30 from the mean); likewise
    # mean(yb) = 40, std(yb) = 40. So sigma_rgyb = sqrt(30^2 + 40^2) = 50, mu_rgyb = 50, and
    # M = sigma_rgyb + 0.3 * mu_rgyb = 50 + 15 = 65.
    image = np.array([[[110, 50, 0], [0, 0, 0]]], np.uint8)
    assert metrics.colorfulness(image) == pytest.approx(65.0), metrics.colorfulness(image)


def test_colorfulness_of_any_gray_image_is_zero():
    ramp = np.repeat(np.linspace(0, 255, 30).astype(np.uint8)[None, :, None], 3, axis=2)
    assert metrics.colorfulness(ramp) == 0.0


def _lab_with_ab_error(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truth: neutral gray; prediction: the same L with ab displaced by ``errors`` (a 3-4-5 direction)."""
    truth = np.zeros((*errors.shape, 3))
    truth[..., 0] = 50
    pred = truth.copy()
    pred[..., 1], pred[..., 2] = 0.6 * errors, 0.8 * errors  # |(0.6 e, 0.8 e)| = e
    return pred, truth


@pytest.mark.parametrize(
    "errors, expected",
    [
        (np.full((3, 4), 30.0), 0.8),  # constant error e: the CDF steps from 0 to 1 at t = e; area (150 - e) / 150
        (np.zeros((3, 4)), 1.0),  # exact colour: within every threshold
        (np.full((3, 4), 200.0), 0.0),  # beyond the last threshold: never within
        (np.array([[0.0, 300.0]]), 0.5),  # half exact, half hopeless
        (np.array([[15.0, 75.0]]), (0.9 + 0.5) / 2),  # (150-15)/150 and (150-75)/150, averaged
    ],
)
def test_ab_auc_of_known_ab_errors(errors, expected):
    pred, truth = _lab_with_ab_error(errors)
    assert metrics.ab_auc_from_lab(pred, truth) == pytest.approx(expected, abs=1e-12)


def test_ab_auc_is_the_area_under_the_share_within_threshold_curve():
    # The closed form against the definition, integrated numerically on a fine threshold grid.
    errors = np.random.default_rng(1).gamma(2.0, 30.0, size=(20, 20))
    pred, truth = _lab_with_ab_error(errors)
    thresholds = np.linspace(0, 150, 30001)
    within = (errors.ravel()[None, :] <= thresholds[:, None]).mean(axis=1)
    area = np.sum((within[1:] + within[:-1]) / 2 * np.diff(thresholds)) / 150
    assert metrics.ab_auc_from_lab(pred, truth) == pytest.approx(area, abs=1e-3)


def test_ab_auc_of_rgb_images_uses_their_lab(pair):
    pred, truth = pair
    expected = metrics.ab_auc_from_lab(rgb2lab(pred), rgb2lab(truth))
    assert metrics.ab_auc(pred, truth) == pytest.approx(expected, rel=1e-12)
    assert 0.0 < expected < 1.0


def test_image_metrics_agree_with_each_metric_alone(pair):
    pred, truth = pair
    row = metrics.image_metrics(pred, truth)
    # "recognised" comes from colorize eval's judge, not from a pair of images.
    # Recognisability and honoured hints are scored beside the image pair, not from it.
    assert tuple(row) == tuple(n for n in metrics.METRIC_NAMES if n not in ("recognised", "hints_honoured"))
    singles = {
        "psnr": metrics.psnr(pred, truth),
        "snr": metrics.snr(pred, truth),
        "ssim": metrics.ssim(pred, truth),
        "rmse": metrics.rmse(pred, truth),
        "delta_e": metrics.delta_e(pred, truth),
        "ab_auc": metrics.ab_auc(pred, truth),
        "colorfulness": metrics.colorfulness(pred),
        "colorfulness_truth": metrics.colorfulness(truth),
    }
    assert row == pytest.approx(singles, rel=1e-12)


def test_a_prepared_truth_scores_like_the_raw_truth(pair):
    pred, truth = pair
    prepared = metrics.prepare_truth(truth / 255.0)
    assert metrics.compare(pred, prepared) == metrics.image_metrics(pred, truth)


def test_compare_scores_only_the_metrics_asked_for_and_the_same_values(pair):
    pred, truth = pair
    prepared = metrics.prepare_truth(truth)
    some = metrics.compare(pred, prepared, names=("psnr", "colorfulness"))
    assert some == {"psnr": metrics.psnr(pred, truth), "colorfulness": metrics.colorfulness(pred)}
    assert metrics.compare(pred, prepared, names=("delta_e",)) == {"delta_e": metrics.delta_e(pred, truth)}


def test_compare_refuses_images_of_different_sizes(pair):
    pred, truth = pair
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.compare(pred[:-1], metrics.prepare_truth(truth))


def test_summarize_averages_images_and_takes_the_ratio_of_mean_colourfulness():
    rows = [
        {
            "psnr": 20,
            "ssim": 0.5,
            "rmse": 10,
            "delta_e": 4,
            "ab_auc": 0.9,
            "colorfulness": 10,
            "colorfulness_truth": 40,
        },
        {
            "psnr": 30,
            "ssim": 0.7,
            "rmse": 20,
            "delta_e": 6,
            "ab_auc": 0.7,
            "colorfulness": 30,
            "colorfulness_truth": 40,
        },
    ]
    summary = metrics.summarize(rows)
    assert summary["psnr"] == 25 and summary["delta_e"] == 5 and summary["images"] == 2
    assert summary["colorfulness_ratio"] == pytest.approx(20 / 40)
    json.dumps(summary)  # plain numbers only
