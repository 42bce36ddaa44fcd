"""Would blending experts by the classifier's probability route better than choosing one?

For each colour photo (made gray, as ``colorize eval`` does), the general, people and
landscape experts' ab are blended and scored by CIEDE2000 against the truth:
``w * people + (1 - w) * general`` for w on a grid (0, 0.25, 0.5, 0.75, 1), so that any rule
mapping the classifier's probabilities to w can be scored afterwards from the JSON without
running a network again; plus the three experts' mean and general+landscape halves. The
classifier's probabilities and the routed expert are recorded with each photo. Nothing here
is built into colorize: this measures first.

    python scripts/blend_trial.py HELD_OUT_DIR --json blend.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

PEOPLE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
MIXES = {
    **{f"people {w}": {"people": w, "general": 1 - w} for w in PEOPLE_WEIGHTS},
    "mean of 3": {"people": 1 / 3, "general": 1 / 3, "landscape": 1 / 3},
    "landscape 0.5": {"landscape": 0.5, "general": 0.5},
}
# Averaging two guesses at a colour mutes it, and muted colour alone lowers ΔE (MODELS.md: every
# step of colour costs ΔE). So the blends are also scored with their chroma scaled back up, to
# compare them with the general expert at the same colourfulness, not along its curve.
GAINS = {"people 0.5": (1.15, 1.3), "mean of 3": (1.15, 1.3), "people 0.0": (0.85,)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="colour photos in category sub-folders")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    from colorize.core.color import compose_upsampled
    from colorize.pipelines import metrics
    from colorize.pipelines.evaluate import colour_photos
    from colorize.pipelines.inference import Pipeline
    from colorize.router import Route

    pipeline = Pipeline.from_config(tune=True)
    forced = {name: [Route(name, None, {}, "trial")] for name in ("general", "people", "landscape")}
    rows = []
    for sample, pixels, lightness in colour_photos(args.data_dir):
        shrunk = pipeline.shrink([lightness])
        route = pipeline.route(shrunk)[0]
        # ab at the network's size: blends and gains commute with upsampling (it is linear).
        ab = {name: pipeline.predict_small_ab(shrunk, r)[0] for name, r in forced.items()}
        truth = metrics.prepare_truth(pixels)
        probabilities = {label: float(p) for label, p in route.probabilities.items()}
        row = {"path": str(sample.path), "category": sample.category, "routed": route.expert, **probabilities}
        for mix, weights in MIXES.items():
            blended = sum(np.float32(w) * ab[name] for name, w in weights.items())
            for gain in (1.0, *GAINS.get(mix, ())):
                rgb = compose_upsampled(lightness, blended * np.float32(gain), np.uint8, pipeline.map_bands)
                scores = metrics.compare(rgb, truth)
                key = mix if gain == 1.0 else f"{mix} x{gain}"
                row[key] = scores["delta_e"]
                row[f"{key} colour"] = scores["colorfulness"]
        row["truth colour"] = scores["colorfulness_truth"]
        rows.append(row)
        if len(rows) % 50 == 0:
            print(len(rows), "photos", flush=True)
    args.json.write_text(json.dumps(rows))
    for category in sorted({r["category"] for r in rows}) + ["(all)"]:
        chosen = [r for r in rows if category in ("(all)", r["category"])]
        general = statistics.fmean(r["people 0.0"] for r in chosen)
        truth = statistics.fmean(r["truth colour"] for r in chosen)
        print(f"{category} ({len(chosen)} photos): ΔE / the general expert's, colourfulness / the truth's")
        for key in [k for k in chosen[0] if f"{k} colour" in chosen[0]]:
            delta_e = statistics.fmean(r[key] for r in chosen) / general
            colour = statistics.fmean(r[f"{key} colour"] for r in chosen) / truth
            print(f"  {key:<20} {delta_e:.4f}  {colour:.3f}")


if __name__ == "__main__":
    main()
