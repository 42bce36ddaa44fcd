"""Class folders for a classifier whose *people* class means close-up portraits.

The people expert beats the general expert on close-up faces from sources it never saw, and
loses to it on people in scenes (MODELS.md, "Routing only close-up faces to the people
expert"). A classifier trained on the photo folders as they are calls both *people*. This
script builds its training folders from a photo folder (``DATA/{category}/``, e.g. the
training side of ``split_by_source.py``) and the manifest: ``OUT/people/`` holds only the
photos of the named portrait sources, every other photo of ``people/`` goes to
``OUT/general/``, and landscapes stay landscapes. Symbolic links; the photos are not copied.

    python scripts/portrait_classes.py SPLIT/train DATA/manifest.csv OUT \
        --portrait-source logicdeveloperTR/Manually-Created-Face-Recognition-Model
    colorize train classifier OUT --epochs 2
"""

from __future__ import annotations

import argparse
import collections
import os
from pathlib import Path

from by_source import source_of

CATEGORIES = ("landscape", "people", "general")


def portrait_class(category: str, source: str, portrait_sources: set[str]) -> str:
    """The class a photo of ``category`` from ``source`` gets in the classifier's folders."""
    if category == "people" and source not in portrait_sources:
        return "general"
    return category


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="folder of {landscape,people,general}/ photos (or links to them)")
    parser.add_argument("manifest", type=Path, help="manifest.csv naming each photo's category, file and source")
    parser.add_argument("out", type=Path, help="new folder for the class folders")
    parser.add_argument(
        "--portrait-source", action="append", required=True, help="a source of close-up portraits (repeatable)"
    )
    args = parser.parse_args()

    if args.out.exists():
        parser.error(f"{args.out} already exists; choose a new folder")
    portrait_sources = set(args.portrait_source)
    sources = source_of(args.manifest)
    unknown = portrait_sources - set(sources.values())
    if unknown:
        parser.error(f"not a source in the manifest: {', '.join(sorted(unknown))}")

    # Every photo's class is decided before the first link, so that a refusal leaves no folder behind.
    plan: dict[Path, Path] = {}
    for category in CATEGORIES:
        folder = args.photos / category
        for photo in sorted(folder.iterdir()) if folder.is_dir() else ():
            source = sources.get((category, photo.name))
            if source is None:
                parser.error(f"{photo}: not in the manifest")
            link = args.out / portrait_class(category, source, portrait_sources) / photo.name
            if link in plan:
                parser.error(f"{link}: two photos of that name")
            plan[link] = photo.resolve()
    counts = collections.Counter(link.parent.name for link in plan)
    if not counts["people"]:
        parser.error("no photo of the portrait sources in the people folder")
    for link, photo in plan.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(photo, link)
    for label in CATEGORIES:
        print(f"{label:10s} {counts[label]:5d}")


if __name__ == "__main__":
    main()
