"""Split a DATA/{category}/ folder by photo source, for validation on sources never trained on.

A random split flatters: photos from one source share cameras, subjects and processing, so a
model scores better on a held-out tenth of a source it trained on than on a new source.
This script reads the manifest (columns `category`, `file`, `source_repo_or_package`) and
builds two folders of symbolic links, `OUT/train/{category}/` and `OUT/heldout/{category}/`,
the second holding every photo of the named sources.

    python scripts/split_by_source.py DATA .data/by_source \
        --hold nhantd/CMU16720-Scene-Classification \
        --hold logicdeveloperTR/Manually-Created-Face-Recognition-Model
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder holding manifest.csv and the photos it lists")
    parser.add_argument("out", type=Path, help="folder to create train/ and heldout/ in")
    parser.add_argument("--hold", action="append", required=True, help="a source to hold out (repeatable)")
    parser.add_argument(
        "--sample",
        type=int,
        default=None,
        help="keep at most this many held-out photos per category and source (a fixed choice by a hash of "
        "the file name), so that scoring takes minutes and no one source outweighs the others",
    )
    args = parser.parse_args()

    if args.out.exists():
        # Links left by an earlier split with other sources would leak into this one.
        parser.error(f"{args.out} already exists; choose a new folder")
    held = set(args.hold)
    with open(args.data / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    unknown = held - {row["source_repo_or_package"] for row in rows}
    if unknown:
        parser.error(f"not a source in the manifest: {', '.join(sorted(unknown))}")

    if args.sample is not None:
        rows = _sample_held_out(rows, held, args.sample)
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for row in rows:
        part = "heldout" if row["source_repo_or_package"] in held else "train"
        source = (args.data / row["file"]).resolve()
        link = args.out / part / row["category"] / source.name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, link)
        counts[part, row["category"]] += 1
    for (part, category), n in sorted(counts.items()):
        print(f"{part:8s} {category:10s} {n:5d}")


def _sample_held_out(rows: list[dict], held: set[str], per_source: int) -> list[dict]:
    """Every training row, and of the held-out ones the first ``per_source`` of each category
    and source in the order of a hash of the file name (not the name, which groups photos)."""
    groups: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    kept = []
    for row in rows:
        if row["source_repo_or_package"] in held:
            groups[row["category"], row["source_repo_or_package"]].append(row)
        else:
            kept.append(row)
    for group in groups.values():
        group.sort(key=lambda row: hashlib.sha256(Path(row["file"]).name.encode()).hexdigest())
        kept.extend(group[:per_source])
    return kept


if __name__ == "__main__":
    main()
