"""A contact sheet of colour hints (MODELS.md, *Hints*): for each colour photo, the truth, gray,
and the automatic result with 0, 1, 5 and 10 points drawn from the truth as
``colorize eval --hints N`` draws them (same seed), each point marked with a ring.

    python scripts/hints_sheet.py examples/chelsea.jpg examples/coffee.jpg -o hints-sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageDraw

from colorize.core.color import lightness_from_array
from colorize.core.images import decode
from colorize.pipelines import metrics
from colorize.pipelines.evaluate import _NO_COLOUR, _simulated_hints, _to_rgb8
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.sheets import contact_sheet

TILE = 240


def marked(rgb: np.ndarray, hints) -> np.ndarray:
    """``rgb`` with a black-and-white ring around each hint's place, drawn at the tile's scale."""
    image = Image.fromarray(rgb)
    scale = max(image.size) / TILE
    draw = ImageDraw.Draw(image)
    for hint in hints:
        x, y = hint.x * image.width, hint.y * image.height
        for radius, colour in ((5 * scale, "white"), (4 * scale, "black")):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=max(1, round(scale)))
    return np.asarray(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", type=Path, help="colour photos (their truth makes the hints)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the sheet, PNG")
    parser.add_argument("--hints", default="0,1,5,10", help="hint counts, comma-separated")
    args = parser.parse_args()
    counts = [int(n) for n in args.hints.split(",")]
    pipeline = Pipeline.from_config()
    rows, captions = [], []
    for path in args.photos:
        pixels = decode(path).pixels
        lightness = lightness_from_array(pixels)
        truth = metrics.prepare_truth(pixels)
        row = [truth.rgb, _to_rgb8(pipeline, lightness, _NO_COLOUR)]  # gray, as eval scores it
        scores = []
        for count in counts:
            hints = _simulated_hints(SimpleNamespace(path=path), truth, count, 0)
            prediction = pipeline.predict([lightness], [hints])[0]  # routing reads the photo alone
            output = prediction.compose(dtype=np.uint8)
            row.append(marked(output, hints))
            scores.append(f"{count}: {metrics.compare(output, truth, ('delta_e',))['delta_e']:.1f}")
        rows.append(row)
        expert = prediction.route.expert
        captions.append(f"{path.name} ({expert}), CIEDE2000 to the truth, N points: " + ", ".join(scores))
    headers = ["truth", "gray", *(f"{n} point{'s' if n != 1 else ''}" for n in counts)]
    print(contact_sheet(rows, captions, args.output, tile=TILE, headers=headers))


if __name__ == "__main__":
    main()
