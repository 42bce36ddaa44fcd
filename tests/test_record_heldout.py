"""scripts/record_heldout.py: a model file's copy carries the held-out scores it was measured on."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from PIL import Image
from skimage import data

from colorize.core.modelfile import read_metadata

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "record_heldout.py"
CLASSIFIER = ROOT / "classifier" / "weights" / "classifier.onnx"
# (category, file, source): two sources, one of them in two categories.
PHOTOS = [
    ("general", "coffee", "a/cups"),
    ("general", "chelsea", "b/pets"),
    ("people", "astronaut", "b/pets"),
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A real `colorize eval --json` run on three small photos, and their manifest."""
    root = tmp_path_factory.mktemp("heldout")
    rows = []
    for category, name, source in PHOTOS:
        image = Image.fromarray(getattr(data, name)())
        image.thumbnail((48, 48))
        (root / "photos" / category).mkdir(parents=True, exist_ok=True)
        image.save(root / "photos" / category / f"{name}.png")
        rows.append({"category": category, "file": f"train/{category}/{name}.png", "source_repo_or_package": source})
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["category", "file", "source_repo_or_package"])
        writer.writeheader()
        writer.writerows(rows)
    command = [
        Path(sys.executable).parent / "colorize",
        "eval",
        root / "photos",
        "--compare",
        "auto,general",
        "--json",
        "--no-recognition",
    ]
    home = {**os.environ, "COLORIZE_HOME": str(root / "home")}
    result = subprocess.run(command, capture_output=True, text=True, env=home)
    assert result.returncode == 0, result.stderr
    (root / "eval.json").write_text(result.stdout)
    return root


def test_the_copy_holds_each_source_s_scores_and_the_same_tensors(scored, tmp_path):
    out = tmp_path / "classifier.onnx"
    command = [sys.executable, SCRIPT, scored / "eval.json", scored / "manifest.csv", CLASSIFIER, out]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    record = read_metadata(out).metadata["heldout"]
    assert record["sources"] == ["a/cups", "b/pets"]
    groups = record["by_category_and_source"]
    assert {category: sorted(groups[category]) for category in groups} == {
        "general": ["a/cups", "b/pets"],
        "people": ["b/pets"],
    }
    images = {Path(image["path"]).stem: image for image in json.loads((scored / "eval.json").read_text())["images"]}
    for category, name, source in PHOTOS:
        row = groups[category][source]
        assert row["photos"] == 1
        for mode in ("gray", "auto", "general"):
            assert row[mode]["delta_e"] == pytest.approx(images[name][mode]["delta_e"], abs=1e-4)
    assert record["routing"]["images"] == 3
    assert onnx.load(CLASSIFIER).graph == onnx.load(out).graph, "the same network"
    assert read_metadata(out).metadata["labels"] == read_metadata(CLASSIFIER).metadata["labels"]


def test_writing_over_the_scored_file_is_refused(scored, tmp_path):
    model = tmp_path / "classifier.onnx"
    model.write_bytes(CLASSIFIER.read_bytes())
    command = [sys.executable, SCRIPT, scored / "eval.json", scored / "manifest.csv", model, model]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1 and "write the copy elsewhere" in result.stderr
    assert model.read_bytes() == CLASSIFIER.read_bytes()


def test_the_copy_is_written_in_the_scored_file_s_format(scored, tmp_path):
    out = tmp_path / "classifier.safetensors"
    command = [sys.executable, SCRIPT, scored / "eval.json", scored / "manifest.csv", CLASSIFIER, out]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1 and "format (.onnx)" in result.stderr and not out.exists()
