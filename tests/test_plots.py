"""pipelines.plots.metric_plots: a real PNG, one panel per metric, boxes that follow the data."""

import numpy as np
import pytest
from PIL import Image

from colorize.pipelines.plots import metric_plots

PANEL = (300, 240)


def _rows(centre: float, count: int = 12, keys=("psnr", "snr", "ssim")) -> list[dict[str, float]]:
    spread = np.linspace(-1.0, 1.0, count)
    return [{key: centre + s for key in keys} for s in spread]


def _draw(rows_by_method, path, columns=3) -> np.ndarray:
    written = metric_plots(rows_by_method, path, columns=columns, panel_size=PANEL)
    assert written == path
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(int)


def _panel(image: np.ndarray, index: int, columns: int = 3) -> np.ndarray:
    row, column = divmod(index, columns)
    return image[row * PANEL[1] : (row + 1) * PANEL[1], column * PANEL[0] : (column + 1) * PANEL[0]]


def test_one_panel_per_metric_the_rows_have(tmp_path):
    three = _draw({"gray": _rows(20), "auto": _rows(22)}, tmp_path / "three.png")
    assert three.shape == (240, 900, 3)  # psnr, snr, ssim side by side

    every = {"psnr": 20, "snr": 14, "ssim": 0.8, "rmse": 12, "delta_e": 9, "ab_auc": 0.9}
    rows = [{**every, "colorfulness": 10.0 + i, "colorfulness_truth": 30.0} for i in range(5)]
    assert _draw({"gray": rows}, tmp_path / "seven.png").shape == (720, 900, 3)  # 7 panels: 3 + 3 + 1
    no_ratio = [{k: v for k, v in row.items() if k != "colorfulness_truth"} for row in rows]
    assert _draw({"gray": no_ratio}, tmp_path / "six.png").shape == (480, 900, 3)
    assert _draw({"gray": no_ratio}, tmp_path / "two_columns.png", columns=2).shape == (720, 600, 3)


def test_a_panel_changes_with_its_own_data_and_no_other(tmp_path):
    base = {"gray": _rows(20), "auto": _rows(22)}
    before = _draw(base, tmp_path / "before.png")
    moved = {"gray": base["gray"], "auto": [{**row, "psnr": row["psnr"] + 5} for row in base["auto"]]}
    after = _draw(moved, tmp_path / "after.png")
    assert (_panel(before, 0) != _panel(after, 0)).any(), "the PSNR panel did not change"
    assert np.array_equal(_panel(before, 1), _panel(after, 1)), "the SNR panel changed with PSNR data"
    assert np.array_equal(_panel(before, 2), _panel(after, 2)), "the SSIM panel changed with PSNR data"


def _ink_height(image: np.ndarray) -> float:
    """Mean row of the drawn pixels (neither white nor light grid gray) in the first of two methods' slots."""
    region = _panel(image, 0)[:, 70:150]
    ink = (region < 200).any(axis=-1)
    return float(np.nonzero(ink)[0].mean())


def test_higher_values_draw_the_box_higher(tmp_path):
    # The second method spans 0..100 in both plots, so the axis is the same and only the first box moves.
    wide = [{"psnr": v} for v in np.linspace(0, 100, 11)]
    low = _draw({"gray": [{"psnr": 20 + s} for s in (-2, -1, 0, 1, 2)], "auto": wide}, tmp_path / "low.png")
    high = _draw({"gray": [{"psnr": 80 + s} for s in (-2, -1, 0, 1, 2)], "auto": wide}, tmp_path / "high.png")
    # Image rows grow downwards: a higher box has a smaller mean row.
    assert _ink_height(high) < _ink_height(low) - 30, (_ink_height(high), _ink_height(low))


def test_colourfulness_ratio_is_taken_per_photo_when_rows_lack_it(tmp_path):
    measured = [{"colorfulness": c, "colorfulness_truth": 40.0} for c in (10.0, 20.0, 30.0)]
    given = [{"colorfulness_ratio": r} for r in (0.25, 0.5, 0.75)]
    assert np.array_equal(_draw({"gray": measured}, tmp_path / "a.png"), _draw({"gray": given}, tmp_path / "b.png"))


def test_values_that_are_not_finite_are_left_out(tmp_path):
    rows = _rows(20, keys=("psnr", "ssim"))
    with_inf = [*rows, {"psnr": float("inf"), "ssim": 20.0}]
    without = [*rows, {"ssim": 20.0}]
    assert np.array_equal(_draw({"gray": with_inf}, tmp_path / "a.png"), _draw({"gray": without}, tmp_path / "b.png"))


def test_the_file_is_replaced_whole_and_no_temporary_is_left(tmp_path):
    path = tmp_path / "plots" / "eval.png"
    _draw({"gray": _rows(20)}, path)
    _draw({"gray": _rows(20), "auto": _rows(25)}, path)
    assert [p.name for p in path.parent.iterdir()] == ["eval.png"]


@pytest.mark.parametrize("rows_by_method", [{}, {"gray": []}, {"gray": [{"images": 3.0}]}])
def test_nothing_to_plot_is_an_error(rows_by_method, tmp_path):
    with pytest.raises(ValueError):
        metric_plots(rows_by_method, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
