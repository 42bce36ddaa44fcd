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
import torch

from colorize.core.images import decode, lightness_from_array
from colorize.pipelines import metrics
from colorize.pipelines._cpu import compose_rgb
from colorize.pipelines.data import list_images
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.sheets import contact_sheet
from colorize.router import Route


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
    rows = [[metrics.to_uint8(compose_rgb(light, torch.zeros_like(light).repeat(2, 1, 1))) for light in lightness]]
    captions = ["gray input"]
    with torch.inference_mode():
        for name in args.experts:
            abs_ = pipeline.predict_ab(lightness, [Route(name, None, {}, "forced")] * len(lightness))
            outputs = [metrics.to_uint8(compose_rgb(light, ab)) for light, ab in zip(lightness, abs_)]
            delta_e = statistics.fmean(metrics.compare(out, truth)["delta_e"] for out, truth in zip(outputs, truths))
            rows.append(outputs)
            captions.append(f"{name}: mean dE {delta_e:.2f}")
    rows.append([np.asarray(truth.rgb) for truth in truths])
    captions.append("truth")
    print(contact_sheet(rows, captions, args.sheet))


if __name__ == "__main__":
    main()
