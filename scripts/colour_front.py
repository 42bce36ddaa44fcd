"""Compare experts by their ΔE/colourfulness curves, each at its own best shift and scale.

Reads ``scripts/shift_trial.py`` JSON files of the same photos; files that scored the same
weights (same sha256) are one candidate, so a grid can be widened by a second trial. For each
level of colourfulness (output / truth, photo means as ``colorize eval``), prints the lowest
mean ΔE2000 among the variants at least that colourful, with its PSNR, variant and
colourfulness: a model that moves the curve wins at every level; a gain or shift only slides.

    python scripts/colour_front.py shipped.json run-g.json run-g-wider.json --levels 0.5,0.6,0.7
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def variants(trial: dict) -> list[dict]:
    """Each variant of a trial: its key, mean ΔE, PSNR and colourfulness ratio over the photos."""
    rows = trial["rows"]
    truth = statistics.fmean(row["truth colour"] for row in rows)
    keys = [key for key in rows[0] if f"{key} colour" in rows[0]]
    return [
        {
            "variant": key,
            "delta_e": statistics.fmean(row[key] for row in rows),
            "psnr": statistics.fmean(row[f"{key} psnr"] for row in rows),
            "colour": statistics.fmean(row[f"{key} colour"] for row in rows) / truth,
        }
        for key in keys
    ]


def front(points: list[dict], levels: list[float]) -> list[dict | None]:
    """Per level, the most accurate variant at least that colourful (None when none is)."""
    return [
        min((p for p in points if p["colour"] >= level), key=lambda p: p["delta_e"], default=None) for level in levels
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials", type=Path, nargs="+", help="shift_trial.py JSON files")
    parser.add_argument("--levels", default="0.5,0.55,0.6,0.65,0.7,0.75,0.8", help="colourfulness ratios")
    args = parser.parse_args()
    levels = [float(level) for level in args.levels.split(",")]
    candidates: dict[str, tuple[str, list[dict]]] = {}
    photos = None
    for path in args.trials:
        trial = json.loads(path.read_text())
        names = sorted(row["path"] for row in trial["rows"])
        if photos is not None and names != photos:
            raise SystemExit(f"{path}: scored other photos than {args.trials[0]}; curves need the same photos")
        photos = names
        label, points = candidates.setdefault(trial["sha256"], (path.stem, []))
        points.extend(variants(trial))
    print(f"{len(photos)} photos; best ΔE / PSNR (variant, colourfulness) among variants at least this colourful")
    print("| colourfulness ≥ | " + " | ".join(label for label, _ in candidates.values()) + " |")
    print("|---" * (len(candidates) + 1) + "|")
    for level, *best in zip(levels, *(front(points, levels) for _, points in candidates.values())):
        cells = [
            f"{b['delta_e']:.3f} / {b['psnr']:.2f} ({b['variant']}, {b['colour']:.2f})" if b else "—" for b in best
        ]
        print(f"| {level:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
