"""Real black-and-white prints through colorize: a contact sheet and how much colour each got.

    python scripts/bw_sheet.py PRINTS_FOLDER .data/bw_sheet.png [--weights NAME=FILE ...]

Every photo in the folder is colorized as ``colorize auto`` would (routed, its own L kept)
and drawn as print | colorized, captioned with its route. The table printed beside it gives
each output's colourfulness (Hasler and Süsstrunk; a colour photo scores about 30-50, gray 0),
so "visibly coloured" is a number, not an impression. Prints whose licence forbids
redistribution stay out of the repository: write the sheet into an ignored folder.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from colorize.core.images import ImageError, decode, to_8bit
from colorize.pipelines import metrics
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.photo_folders import list_images
from colorize.pipelines.sheets import contact_sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("sheet", type=Path)
    parser.add_argument("--weights", action="append", default=[], metavar="NAME=FILE")
    args = parser.parse_args()
    weights = dict(item.split("=", 1) for item in args.weights)
    pipeline = Pipeline.from_config(weights={k: Path(v) for k, v in weights.items()})
    rows, captions, scores = [], [], []
    for path in list_images(args.folder):
        try:
            decoded = decode(path)
        except ImageError as error:
            print(f"{path.name}: skipped ({error})")
            continue
        result = pipeline.colorize_lightness([decoded.lightness()])[0]
        colour = to_8bit(result.rgb)
        gray = np.repeat(metrics.to_uint8(result.rgb.mean(axis=2, keepdims=True)), 3, axis=2)
        original = decoded.pixels if decoded.pixels.ndim == 3 else gray
        score = metrics.colorfulness(colour)
        scores.append(score)
        rows.append([metrics.to_uint8(original), colour])
        captions.append(f"{path.stem[:16]} {result.route.expert} {score:.0f}")
        print(f"{path.name:24} {result.route.describe():40} colourfulness {score:5.1f}")
    contact_sheet(rows, captions, args.sheet, tile=192, headers=["print", "colorized"])
    print(
        f"{len(scores)} prints: colourfulness median {statistics.median(scores):.1f}, "
        f"min {min(scores):.1f}, max {max(scores):.1f}; sheet in {args.sheet}"
    )


if __name__ == "__main__":
    main()
