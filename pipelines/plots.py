"""Box plots of per-photo metrics, one panel per metric and one box per method, drawn with PIL.

A mean hides whether a method is a little better on every photo or much better on a few and
worse on the rest; a box per method, beside the gray baseline's, shows which. Each box spans
the quartiles; the black line is the median, the diamond the mean (the number the eval table
shows), the whiskers reach the furthest photo within 1.5 box heights, and rings mark photos
beyond. Drawn with PIL alone, so that a picture of the numbers adds no plotting library to
the dependencies.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from colorize.core.files import atomic_write

# (row key, panel title). ASCII only: PIL's default font may lack "Δ".
PANELS = (
    ("psnr", "PSNR (dB), higher is better"),
    ("snr", "SNR (dB), higher is better"),
    ("ssim", "SSIM, higher is better"),
    ("rmse", "RMSE (8-bit levels), lower is better"),
    ("delta_e", "dE 2000, lower is better"),
    ("ab_auc", "ab AuC, higher is better"),
    ("colorfulness_ratio", "colourfulness / truth's, 1 is the truth's"),
)
_BASELINE = "gray"
_BASELINE_COLOUR = (150, 150, 150)
_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
# Room around a panel's plot area for its title (top), tick labels (left) and method names (bottom).
_MARGINS = {"left": 58, "right": 14, "top": 30, "bottom": 34}


def metric_plots(
    rows_by_method: dict[str, list[dict[str, float]]],
    path: Path,
    columns: int = 3,
    panel_size: tuple[int, int] = (360, 280),
) -> Path:
    """Write a PNG of box plots: one panel per metric in ``PANELS`` that any row has, one box per method.

    ``rows_by_method``: {method: one dict per photo, keyed as ``metrics.compare`` returns},
    methods drawn left to right in the dict's order. A row's colourfulness ratio is
    ``colorfulness / colorfulness_truth`` unless the row has ``colorfulness_ratio`` itself.
    Values that are not finite (the PSNR of a perfect photo) are left out of the boxes.
    The image is ``columns * panel_width`` wide (fewer columns if there are fewer panels) and
    one ``panel_height`` per row of panels. Raises ``ValueError`` when there is nothing to draw.
    """
    if not rows_by_method:
        raise ValueError("no methods to plot")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    values = {key: {m: _values(rows, key) for m, rows in rows_by_method.items()} for key, _ in PANELS}
    panels = [(key, title) for key, title in PANELS if any(len(v) for v in values[key].values())]
    if not panels:
        raise ValueError(f"none of the rows has a finite {', '.join(key for key, _ in PANELS)}")
    width, height = panel_size
    columns = min(columns, len(panels))
    image = Image.new("RGB", (columns * width, math.ceil(len(panels) / columns) * height), "white")
    draw = ImageDraw.Draw(image)
    fonts = (_font(15), _font(12))
    colours = _method_colours(list(rows_by_method))
    for i, (key, title) in enumerate(panels):
        origin = ((i % columns) * width, (i // columns) * height)
        _draw_panel(draw, origin, panel_size, title, values[key], colours, fonts)
    return atomic_write(Path(path), lambda handle: image.save(handle, format="PNG"))


def _values(rows: list[dict[str, float]], key: str) -> np.ndarray:
    found = []
    for row in rows:
        if key in row:
            found.append(row[key])
        elif key == "colorfulness_ratio" and "colorfulness" in row and row.get("colorfulness_truth", 0) > 0:
            found.append(row["colorfulness"] / row["colorfulness_truth"])
    array = np.asarray(found, dtype=np.float64)
    return array[np.isfinite(array)]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # Pillow 10.1 and later ship a scalable default font
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _method_colours(methods: list[str]) -> dict[str, tuple[int, int, int]]:
    others = iter([m for m in methods if m != _BASELINE])
    colours = {m: _COLOURS[i % len(_COLOURS)] for i, m in enumerate(others)}
    return {m: _BASELINE_COLOUR if m == _BASELINE else colours[m] for m in methods}


def _ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:  # every value the same: centre it in a unit-sized range
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return np.arange(first, last + 1) * step


def _label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{decimals}f}"


def _draw_panel(draw, origin, size, title, values_by_method, colours, fonts) -> None:
    (ox, oy), (width, height) = origin, size
    title_font, small_font = fonts
    left, right = ox + _MARGINS["left"], ox + width - _MARGINS["right"]
    top, bottom = oy + _MARGINS["top"], oy + height - _MARGINS["bottom"]
    _centred_text(draw, (ox + width / 2, oy + 6), title, title_font, width - 8)

    present = [v for v in values_by_method.values() if len(v)]
    ticks = _ticks(min(v.min() for v in present), max(v.max() for v in present))
    low, high = float(ticks[0]), float(ticks[-1])

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    step = float(ticks[1] - ticks[0])
    for tick in ticks:
        y = y_of(float(tick))
        draw.line([(left, y), (right, y)], fill=(230, 230, 230))
        draw.line([(left - 4, y), (left, y)], fill="black")
        text = _label(float(tick), step)
        box = draw.textbbox((0, 0), text, font=small_font)
        draw.text(
            (left - 7 - (box[2] - box[0]), y - (box[3] - box[1]) / 2 - box[1]), text, fill="black", font=small_font
        )
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")

    slot = (right - left) / len(values_by_method)
    for i, (method, values) in enumerate(values_by_method.items()):
        centre = left + (i + 0.5) * slot
        _centred_text(draw, (centre, bottom + 6), method, small_font, slot - 4)
        if len(values):
            _draw_box(draw, centre, min(0.5 * slot, 60), values, y_of, colours[method])


def _draw_box(draw, centre, box_width, values, y_of, colour) -> None:
    """Tukey's box: quartiles, median, whiskers to the furthest value within 1.5 IQR, outliers as rings."""
    q1, median, q3 = np.percentile(values, (25, 50, 75))
    reach = 1.5 * (q3 - q1)
    inside = values[(values >= q1 - reach) & (values <= q3 + reach)]
    half = box_width / 2
    for end in (inside.min(), inside.max()):
        draw.line([(centre, y_of(end)), (centre, y_of(q1 if end <= q1 else q3))], fill=colour, width=2)
        draw.line([(centre - half / 2, y_of(end)), (centre + half / 2, y_of(end))], fill=colour, width=2)
    draw.rectangle([(centre - half, y_of(q3)), (centre + half, y_of(q1))], fill=_tint(colour), outline=colour, width=2)
    draw.line([(centre - half, y_of(median)), (centre + half, y_of(median))], fill="black", width=2)
    mean_y = y_of(float(values.mean()))
    draw.polygon([(centre, mean_y - 4), (centre + 4, mean_y), (centre, mean_y + 4), (centre - 4, mean_y)], fill="black")
    for value in values[(values < q1 - reach) | (values > q3 + reach)]:
        y = y_of(float(value))
        draw.ellipse([(centre - 3, y - 3), (centre + 3, y + 3)], outline=colour, width=1)


def _tint(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    red, green, blue = (round(255 - (255 - c) * 0.35) for c in colour)
    return red, green, blue


def _centred_text(draw, anchor, text, font, max_width) -> None:
    """Draw ``text`` centred below ``anchor``, shortened with "..." to fit ``max_width``."""
    shown = text
    while len(shown) > 1 and draw.textlength(shown, font=font) > max_width:
        shown = shown[:-1]
    if shown != text:
        shown = shown[:-3] + "..." if len(shown) > 4 else shown
    draw.text((anchor[0] - draw.textlength(shown, font=font) / 2, anchor[1]), shown, fill="black", font=font)
