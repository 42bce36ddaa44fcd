"""One contact-sheet row per expert over the same colour photos: gray, each expert, the truth.

    python scripts/sample_truths.py TRUTHS
    python scripts/recipe_sheet.py TRUTHS docs/recipes_sheet.png seed-unet seed-cunet ours [--weights NAME=FILE ...]

Each photo is made gray (its own L) and colorized by every named expert, forced, as
``colorize auto --expert NAME`` would. Captions give each row's mean CIEDE2000 over the photos.
Use photos that may be shared (scikit-image's samples are public domain / CC0).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from colorize.core.color import compose_upsampled, lightness_from_array
from colorize.core.images import decode
from colorize.pipelines import metrics
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.photo_folders import list_images
from colorize.pipelines.sheets import contact_sheet
from colorize.router import Route

NO_COLOUR = np.zeros((2, 1, 1), np.float32)  # a = b = 0 at any size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("sheet", type=Path)
    parser.add_argument("experts", nargs="+")
    parser.add_argument("--weights", action="append", default=[], metavar="NAME=FILE")
    args = parser.parse_args()
    weights = {name: Path(file) for name, file in (item.split("=", 1) for item in args.weights)}
    pipeline = Pipeline.from_config(weights=weights)
    photos = [decode(path).pixels for path in list_images(args.folder)]
    lightness = [lightness_from_array(pixels) for pixels in photos]
    truths = [metrics.prepare_truth(pixels) for pixels in photos]
    rows = [[compose_upsampled(light, NO_COLOUR, np.uint8) for light in lightness]]
    captions = ["gray input"]
    shrunk = pipeline.shrink(lightness)
    for name in args.experts:
        small = pipeline.predict_small_ab(shrunk, [Route(name, None, {}, "forced")] * len(lightness))
        outputs = [compose_upsampled(light, ab, np.uint8, pipeline.map_bands) for light, ab in zip(lightness, small)]
        delta_e = statistics.fmean(metrics.compare(out, truth)["delta_e"] for out, truth in zip(outputs, truths))
        rows.append(outputs)
        captions.append(f"{name}: mean dE {delta_e:.2f}")
    rows.append([np.asarray(truth.rgb) for truth in truths])
    captions.append("truth")
    print(contact_sheet(rows, captions, args.sheet))


if __name__ == "__main__":
    main()
