"""Would blending two experts by the classifier's probability route better than choosing one?

For each colour photo (made gray, as ``colorize eval`` does), the general and people experts'
ab are blended, ``w * people + (1 - w) * general``, with w from each rule below, and scored
by CIEDE2000 against the truth. No rule is built into colorize: this measures first.

    python scripts/blend_trial.py HELD_OUT_DIR --json blend.json

Rules: ``general`` (w = 0), ``routed`` (w = 1 when the classifier's top class is people at or
above the routing threshold, as ``colorize auto`` routes), ``soft`` (w = p_people), ``half``
(w = 0.5 everywhere: the plain two-expert ensemble) and ``soft-sq`` (w = p_people ** 2).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

RULES = {
    "general": lambda p, routed: 0.0,
    "routed": lambda p, routed: 1.0 if routed else 0.0,
    "soft": lambda p, routed: p,
    "soft-sq": lambda p, routed: p**2,
    "half": lambda p, routed: 0.5,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="colour photos in category sub-folders")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    from colorize.pipelines import metrics
    from colorize.pipelines._cpu import compose_rgb
    from colorize.pipelines.evaluate import find_samples
    from colorize.pipelines.imageio import decode, is_colour_photo, lightness_from_array
    from colorize.pipelines.inference import Pipeline
    from colorize.router import Route

    pipeline = Pipeline.from_config(tune=True)
    forced = {name: [Route(name, None, {}, "trial")] for name in ("general", "people")}
    rows = []
    with torch.inference_mode():
        for sample in find_samples(args.data_dir):
            pixels = decode(sample.path).pixels
            if not is_colour_photo(pixels):
                continue
            lightness = lightness_from_array(pixels)
            route = pipeline.route([lightness])[0]
            ab = {name: pipeline.predict_ab([lightness], r)[0] for name, r in forced.items()}
            truth = metrics.prepare_truth(pixels)
            p_people = float(route.probabilities["people"])
            row = {"path": str(sample.path), "category": sample.category, "p_people": p_people}
            for rule, weight in RULES.items():
                w = weight(p_people, route.expert == "people")
                blended = w * ab["people"] + (1 - w) * ab["general"]
                rgb = metrics.to_uint8(compose_rgb(lightness, blended))
                row[rule] = metrics.compare(rgb, truth)["delta_e"]
            rows.append(row)
            if len(rows) % 50 == 0:
                print(len(rows), "photos", flush=True)
    args.json.write_text(json.dumps(rows))
    for category in sorted({r["category"] for r in rows}) + ["(all)"]:
        chosen = [r for r in rows if category in ("(all)", r["category"])]
        general = statistics.fmean(r["general"] for r in chosen)
        ratios = "  ".join(f"{rule} {statistics.fmean(r[rule] for r in chosen) / general:.4f}" for rule in RULES)
        print(f"{category:<10} {len(chosen):5d}  ΔE / general's: {ratios}")


if __name__ == "__main__":
    main()
