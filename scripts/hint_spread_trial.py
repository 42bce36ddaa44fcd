"""How far a hint's colour should spread (MODELS.md, *Hints*): ``spread_hints``'s reach and
lightness fall-off scored on the protocol's choosing sources, for N simulated hints.

    python scripts/hint_spread_trial.py .data/protocol/choosing --hints 1,2,5,10 \
        --reach 16,24,32 --lightness 8,12 --step 2

Each photo is routed and its expert run once (the automatic result, as ``colorize eval``
makes it); then, for each setting, the hints ``colorize eval --hints N`` would draw for it are
spread over that output with ``colorize.experts.hints.spread_hints`` (its constants set to the
setting), and the result is scored by the protocol's macro mean (``scripts/protocol.py``).
``--step K`` takes every K-th photo of each category, for a quicker look.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from colorize.core.color import lightness_from_array, resize_bilinear, resize_square
from colorize.core.images import decode
from colorize.experts import hints as hints_module
from colorize.pipelines import metrics
from colorize.pipelines.evaluate import _NO_COLOUR, GRAY, _simulated_hints, _to_rgb8
from colorize.pipelines.inference import Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from protocol import macro  # noqa: E402

SCORED = ("delta_e", "psnr", "colorfulness", "colorfulness_truth")


def prepared(folder: Path, step: int, counts: list[int]) -> tuple[Pipeline, list[dict]]:
    pipeline = Pipeline.from_config(threads=1)
    photos = []
    for category in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        for path in sorted((folder / category).iterdir())[::step]:
            pixels = decode(path).pixels
            lightness = lightness_from_array(pixels)
            truth = metrics.prepare_truth(pixels)
            shrunk = pipeline.shrink([lightness])
            route = pipeline.route(shrunk)[0]
            small_ab = pipeline.predict_small_ab(shrunk, [route])[0]
            grid = small_ab.shape[-1]
            work = resize_square(shrunk[0], pipeline.expert(route.expert).work_size)
            photos.append(
                {
                    "path": path,
                    "category": category,
                    "lightness": lightness,
                    "truth": truth,
                    "small_ab": small_ab,
                    "small_lightness": resize_bilinear(work, (grid, grid))[0, 0],
                    "gray": metrics.compare(_to_rgb8(pipeline, lightness, _NO_COLOUR), truth, SCORED),
                    "hints": {n: _simulated_hints(SimpleNamespace(path=path), truth, n, 0) for n in counts},
                }
            )
    return pipeline, photos


def scored(pipeline: Pipeline, photos: list[dict], count: int) -> tuple[dict, float]:
    images, honoured = [], []
    for photo in photos:
        grid = photo["small_ab"].shape[-1]
        placed = [hint.place(*photo["lightness"].shape[-2:], grid) for hint in photo["hints"][count]]
        ab = hints_module.spread_hints(photo["small_ab"], photo["small_lightness"], placed)
        output = _to_rgb8(pipeline, photo["lightness"], ab)
        images.append(
            {
                "status": "ok",
                "path": str(photo["path"]),
                "category": photo["category"],
                GRAY: photo["gray"],
                "spread": metrics.compare(output, photo["truth"], SCORED),
            }
        )
        honoured.append(metrics.hints_honoured(output, photo["hints"][count]))
    return macro({"images": images, "modes": ["spread"]}, "spread"), float(np.mean(honoured))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the choosing photos: FOLDER/{category}/SOURCE--NAME")
    parser.add_argument("--hints", default="1,2,5,10", help="hint counts, comma-separated")
    parser.add_argument("--reach", default="16,24,32", help="spread reach, in pixels of a 112-pixel side")
    parser.add_argument("--lightness", default="8,12", help="lightness fall-off, LAB L units")
    parser.add_argument("--step", type=int, default=1, help="every K-th photo of each category")
    args = parser.parse_args()
    counts = [int(n) for n in args.hints.split(",")]
    pipeline, photos = prepared(args.folder, args.step, counts)
    print(f"{len(photos)} photos", flush=True)
    settings = itertools.product(
        (float(r) for r in args.reach.split(",")), (float(v) for v in args.lightness.split(","))
    )
    for reach, lightness in settings:
        hints_module.SPREAD_REACH, hints_module.SPREAD_LIGHTNESS = reach / 112, lightness
        for count in counts:
            scores, honoured = scored(pipeline, photos, count)
            cells = " ".join(f"{k} {v['delta_e']:.3f}" for k, v in scores.items() if k != "overall")
            overall = scores["overall"]
            print(
                f"reach {reach:g} lightness {lightness:g} hints {count}: overall {overall['delta_e']:.3f} x gray "
                f"({cells}), PSNR {overall['psnr']:+.2f} dB, colour {overall['colour']:.2f}, honoured {honoured:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
