"""Is an expert's colour biased (a brown or red wash) on photos from sources it never saw?

For each colour photo (made gray, as ``colorize eval`` does) the expert's ab is predicted
once, then scored by CIEDE2000, PSNR and colourfulness against the truth for every
combination of a constant shift of a and b (LAB units, after the shipped gain) and a chroma
scale, so that a calibration can be chosen from the JSON afterwards without running a network
again. The photo's and the output's mean a and b are recorded too, and the weights file
scored (its sha256), so that ``scripts/calibrate_shift.py`` can check it calibrates that file.

    python scripts/shift_trial.py PHOTOS_DIR --expert general --json shift.json
    python scripts/shift_trial.py PHOTOS_DIR --json wide.json --b-shifts=-2,-3,-4 --scales 0.85,1,1.3
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

A_SHIFTS = (0.0, -1.0, -2.0, -3.0)
B_SHIFTS = (1.0, 0.0, -1.0)
SCALES = (1.0, 1.15)


def variant(da: float, db: float, scale: float = 1.0) -> str:
    """A row's key for the output shifted by (da, db) and scaled by ``scale``."""
    return f"a{da:+g} b{db:+g} x{scale:g}"


def _numbers(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="colour photos, optionally in category sub-folders")
    parser.add_argument("--expert", default="general")
    parser.add_argument("--holdout", type=float, help="only photos training held out at this fraction (as eval's)")
    parser.add_argument("--part", default="test", help="with --holdout: test, validation or all (as eval's)")
    parser.add_argument("--json", type=Path, required=True)
    for name, default in (("a-shifts", A_SHIFTS), ("b-shifts", B_SHIFTS), ("scales", SCALES)):
        parser.add_argument(f"--{name}", type=_numbers, default=default, help=f"comma-separated (default {default})")
    args = parser.parse_args()

    from colorize.core.color import compose_upsampled, resize_bilinear
    from colorize.core.modelfile import file_sha256
    from colorize.pipelines import metrics
    from colorize.pipelines.evaluate import colour_photos
    from colorize.pipelines.inference import Pipeline
    from colorize.router import Route

    pipeline = Pipeline.from_config(tune=True)
    route = [Route(args.expert, None, {}, "trial")]
    rows = []
    for sample, pixels, lightness in colour_photos(args.data_dir, args.holdout, args.part):
        # ab at the network's size: a shift and a scale commute with upsampling (it is linear),
        # so each variant is composed from it straight to the 8 bits a file stores.
        small_ab = pipeline.predict_small_ab(pipeline.shrink([lightness]), route)[0]
        truth = metrics.prepare_truth(pixels)
        mean_ab = resize_bilinear(small_ab, lightness.shape[-2:], antialias=False).mean(axis=(-2, -1))
        row = {
            "path": str(sample.path),
            "category": sample.category,
            "output_a": float(mean_ab[0]),
            "output_b": float(mean_ab[1]),
            "truth_a": float(truth.lab[..., 1].mean()),
            "truth_b": float(truth.lab[..., 2].mean()),
            "truth colour": truth.colorfulness,
        }
        for da, db, scale in itertools.product(args.a_shifts, args.b_shifts, args.scales):
            shift = np.array([da, db], np.float32).reshape(2, 1, 1)
            rgb = compose_upsampled(lightness, small_ab * np.float32(scale) + shift, np.uint8, pipeline.map_bands)
            scores = metrics.compare(rgb, truth, names=("delta_e", "psnr", "colorfulness"))
            key = variant(da, db, scale)
            row[key] = scores["delta_e"]
            row[f"{key} psnr"], row[f"{key} colour"] = scores["psnr"], scores["colorfulness"]
        rows.append(row)
        if len(rows) % 50 == 0:
            print(len(rows), "photos", flush=True)
    pipeline.expert(args.expert)
    # The file that stands for the expert once loaded: a .safetensors in the user's folder has
    # its ONNX export beside it by then, so every trial of the same weights names the same file.
    model = pipeline.store.source(args.expert).path
    trial = {
        "expert": args.expert,
        "path": str(model),
        "sha256": file_sha256(model),
        "saturation": pipeline.saturation,
        "shifts": [[da, db] for da, db in itertools.product(args.a_shifts, args.b_shifts)],
        "scales": list(args.scales),
        "rows": rows,
    }
    args.json.write_text(json.dumps(trial))
    print(f"{len(rows)} photos -> {args.json}")


if __name__ == "__main__":
    main()
