"""Write a copy of a model file whose metadata names the held-out sources it was scored on, and its scores.

A weights file should explain itself: which photos of which sources, never trained on, it
was measured on, and how it did there, beside the gray baseline and the other modes of the
same run. This reads a ``colorize eval --json`` result and the manifest, and stores under the
metadata key ``heldout``: every (category, source) with its photo count and each mode's ΔE,
PSNR and colourfulness ratio (and gray's), the run's routing summary, and the eval settings.

    colorize eval SPLIT/heldout --compare auto,general --json > E.json
    python scripts/record_heldout.py E.json DATA/manifest.csv classifier.onnx OUT.onnx

The copy is in the scored file's format (.onnx or .safetensors): only its metadata differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from by_source import by_source, source_of
from model_copy import write_copy

from colorize.core.modelfile import file_sha256, read_metadata
from colorize.pipelines.evaluate import GRAY

SCORES = ("delta_e", "psnr", "colorfulness_ratio")


def heldout_record(report: dict, sources: dict[tuple[str, str], str]) -> dict:
    """The ``heldout`` metadata record for an eval report: per category and source, per mode."""
    groups: dict[str, dict] = {}
    for (category, source), table in by_source(report, sources).items():
        groups.setdefault(category, {})[source] = {
            "photos": table[GRAY]["images"],
            **{mode: {name: round(table[mode][name], 4) for name in SCORES} for mode in (GRAY, *report["modes"])},
        }
    return {
        "sources": sorted({source for per_source in groups.values() for source in per_source}),
        "by_category_and_source": groups,
        "routing": report.get("routing"),
        "eval_settings": report.get("settings", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_json", type=Path, help="written by colorize eval --json")
    parser.add_argument("manifest", type=Path, help="CSV with category, file and source_repo_or_package columns")
    parser.add_argument("model", type=Path, help="the weights file the eval scored (expert or classifier)")
    parser.add_argument("out", type=Path, help="the copy to write, with the record in its metadata")
    args = parser.parse_args()
    for path in (args.eval_json, args.manifest, args.model):
        if not path.is_file():
            parser.error(f"no such file: {path}")
    if args.out.resolve() == args.model.resolve():
        sys.exit(f"{args.out}: is the file scored; write the copy elsewhere")
    if args.out.suffix.lower() != args.model.suffix.lower():
        sys.exit(f"{args.out}: write the copy in the scored file's format ({args.model.suffix})")
    report = json.loads(args.eval_json.read_text())
    metadata = dict(read_metadata(args.model).metadata)
    metadata["heldout"] = {
        **heldout_record(report, source_of(args.manifest)),
        "scored_file_sha256": file_sha256(args.model),
    }
    write_copy(args.model, metadata, args.out)
    print(f"{args.out}: held-out record of {len(metadata['heldout']['sources'])} sources")


if __name__ == "__main__":
    main()
