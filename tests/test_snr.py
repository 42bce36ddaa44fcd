"""pipelines.metrics.snr: signal-to-noise ratio in dB, against numbers worked out by hand."""

import numpy as np
import pytest

from colorize.pipelines import metrics


def _flat(level: int, shape=(4, 6)) -> np.ndarray:
    return np.full((*shape, 3), level, dtype=np.uint8)


def test_a_constant_error_against_a_constant_truth():
    # truth 100/255, error 20/255: signal / error = 100² / 20² = 25, and 10 log10(25) = 13.979 dB.
    assert metrics.snr(_flat(120), _flat(100)) == pytest.approx(13.9794, abs=1e-4)


def test_float_input_is_scored_as_its_8_bit_file():
    # 0.4 and 0.6 are 102 and 153 of 255 exactly: signal 0.16, error 0.04, 10 log10(4) = 6.0206 dB.
    truth, pred = np.full((3, 5, 3), 0.4), np.full((3, 5, 3), 0.6)
    assert metrics.snr(pred, truth) == pytest.approx(6.0206, abs=1e-4)


def test_signal_and_error_are_means_over_every_pixel_and_channel():
    # Half the truth is white, half black: signal 0.5. Each half is off by 0.2 (51/255): error 0.04.
    # 10 log10(0.5 / 0.04) = 10 log10(12.5) = 10.9691 dB.
    truth = np.zeros((4, 4, 3), dtype=np.uint8)
    truth[:2] = 255
    pred = np.where(truth == 255, 204, 51).astype(np.uint8)
    assert metrics.snr(pred, truth) == pytest.approx(10.9691, abs=1e-4)


def test_the_same_error_costs_more_on_a_darker_truth():
    bright = metrics.snr(_flat(220), _flat(200))
    dark = metrics.snr(_flat(70), _flat(50))
    # Both are 20 levels off; the ratio of signals is (200 / 50)², 12.04 dB.
    assert bright - dark == pytest.approx(20 * np.log10(4), abs=1e-9)


def test_identical_images_give_the_finite_cap():
    image = _flat(77)
    assert metrics.snr(image, image) == 100.0


def test_an_error_on_a_black_truth_gives_the_negative_cap():
    assert metrics.snr(_flat(10), _flat(0)) == -100.0


def test_compare_reports_snr_beside_psnr():
    truth, pred = _flat(100, (8, 8)), _flat(120, (8, 8))
    row = metrics.compare(pred, metrics.prepare_truth(truth))
    names = list(row)
    assert names.index("snr") == names.index("psnr") + 1
    assert row["snr"] == pytest.approx(13.9794, abs=1e-4)
    assert "snr" in metrics.METRIC_NAMES
    assert metrics.summarize([row, row])["snr"] == pytest.approx(13.9794, abs=1e-4)


def test_rows_written_before_snr_existed_still_summarise():
    old = {"psnr": 20.0, "ssim": 0.5, "rmse": 10.0, "delta_e": 4.0, "ab_auc": 0.9, "colorfulness": 10.0}
    summary = metrics.summarize([{**old, "colorfulness_truth": 40.0}, {**old, "colorfulness_truth": 10.0}])
    assert "snr" not in summary
    assert summary["psnr"] == 20.0 and summary["colorfulness_ratio"] == pytest.approx(10 / 25)
