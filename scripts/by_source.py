"""Break a `colorize eval --json` result down by photo source.

A category's mean hides what it is made of: in the training data, a *general* photo can be a
scene, a pet or a garment on a plain background, and how much colour luminance gives away
differs a lot between them. This reads the manifest (columns `category`, `file`,
`source_repo_or_package`) and prints, for every category and source, each mode's PSNR over
gray, ΔE as a share of gray's and colourfulness ratio, summarised as `colorize eval` does.

    colorize eval DATA --holdout 0.1 --compare auto,general --json > E.json
    python scripts/by_source.py E.json DATA/manifest.csv
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from colorize.pipelines.evaluate import GRAY
from colorize.pipelines.metrics import summarize


def source_of(manifest: Path) -> dict[tuple[str, str], str]:
    """(category, file name) -> source. File names repeat across categories, never within one."""
    with open(manifest, newline="") as f:
        return {(row["category"], Path(row["file"]).name): row["source_repo_or_package"] for row in csv.DictReader(f)}


def by_source(report: dict, sources: dict[tuple[str, str], str]) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """{(category, source): {gray | mode: summary}} over the photos scored ok."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for image in report["images"]:
        if image["status"] != "ok":
            continue
        category = image["category"]
        groups[category, sources.get((category, Path(image["path"]).name), "(not in the manifest)")].append(image)
    return {
        key: {mode: summarize([image[mode] for image in images]) for mode in (GRAY, *report["modes"])}
        for key, images in sorted(groups.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_json", type=Path, help="written by colorize eval --json")
    parser.add_argument("manifest", type=Path, help="CSV with category, file and source_repo_or_package columns")
    args = parser.parse_args()
    for path in (args.eval_json, args.manifest):
        if not path.is_file():
            parser.error(f"no such file: {path}")
    report = json.loads(args.eval_json.read_text())
    print("| category | source | photos | mode | PSNR over gray | ΔE × gray | colourfulness ratio |")
    print("|---|---|---|---|---|---|---|")
    for (category, source), table in by_source(report, source_of(args.manifest)).items():
        gray = table[GRAY]
        for i, mode in enumerate(report["modes"]):
            row = table[mode]
            head = f"| {category} | {source} | {row['images']} |" if i == 0 else "| | | |"
            print(
                f"{head} {mode} | {row['psnr'] - gray['psnr']:+.2f} dB | {row['delta_e'] / gray['delta_e']:.3f} "
                f"| {row['colorfulness_ratio']:.2f} |"
            )


if __name__ == "__main__":
    main()
