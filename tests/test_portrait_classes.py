"""scripts/portrait_classes.py: only the portrait sources' people photos stay people."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "portrait_classes.py"


def _photos(root: Path) -> tuple[Path, Path]:
    """A photo folder like split_by_source's training side, and its manifest."""
    rows = []
    for category, source, names in (
        ("landscape", "m/mountains", ["peak_0.jpg"]),
        ("people", "f/faces", ["face_0.jpg", "face_1.jpg"]),
        ("people", "s/streets", ["crowd_0.jpg"]),
        ("general", "s/streets", ["car_0.jpg"]),
    ):
        for name in names:
            photo = root / "photos" / category / name
            photo.parent.mkdir(parents=True, exist_ok=True)
            photo.write_bytes(name.encode())
            rows.append({"category": category, "file": f"train/{category}/{name}", "source_repo_or_package": source})
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["category", "file", "source_repo_or_package"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "photos", manifest


def _classes(folder: Path) -> dict[str, set[str]]:
    return {sub.name: {p.name for p in sub.iterdir()} for sub in folder.iterdir()}


def test_people_from_other_sources_become_general_and_landscapes_stay(tmp_path):
    photos, manifest = _photos(tmp_path)
    out = tmp_path / "classes"
    command = [sys.executable, SCRIPT, photos, manifest, out, "--portrait-source", "f/faces"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _classes(out) == {
        "landscape": {"peak_0.jpg"},
        "people": {"face_0.jpg", "face_1.jpg"},
        "general": {"car_0.jpg", "crowd_0.jpg"},
    }
    link = out / "general" / "crowd_0.jpg"
    assert link.is_symlink() and link.read_bytes() == b"crowd_0.jpg"
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize(
    "source, message",
    [("m/mountains", "no photo of the portrait sources"), ("nope/none", "not a source in the manifest: nope/none")],
)
def test_a_source_that_gives_no_portraits_is_refused_and_nothing_is_written(tmp_path, source, message):
    photos, manifest = _photos(tmp_path)
    result = subprocess.run(
        [sys.executable, SCRIPT, photos, manifest, tmp_path / "classes", "--portrait-source", source],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "classes").exists()
