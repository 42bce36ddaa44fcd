"""scripts/split_by_source.py: whole sources go to the held-out side, nothing else does."""

import csv
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "split_by_source.py"


def _data(root: Path) -> Path:
    rows = []
    for category, source, count in (
        ("landscape", "a/one", 3),
        ("landscape", "b/two", 2),
        ("people", "b/two", 2),
        ("people", "c/three", 1),
    ):
        for i in range(count):
            file = f"train/{category}/{source.replace('/', '_')}_{i}.jpg"
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            (root / file).write_bytes(b"photo")
            rows.append({"category": category, "file": file, "source_repo_or_package": source})
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["category", "file", "source_repo_or_package"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def _names(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*.jpg")}


def test_held_out_sources_are_whole_and_disjoint_from_training(tmp_path):
    data, out = _data(tmp_path / "data"), tmp_path / "split"
    result = subprocess.run([sys.executable, SCRIPT, data, out, "--hold", "b/two"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _names(out / "heldout") == {
        "landscape/b_two_0.jpg",
        "landscape/b_two_1.jpg",
        "people/b_two_0.jpg",
        "people/b_two_1.jpg",
    }
    assert _names(out / "train") == {
        "landscape/a_one_0.jpg",
        "landscape/a_one_1.jpg",
        "landscape/a_one_2.jpg",
        "people/c_three_0.jpg",
    }
    link = out / "train" / "people" / "c_three_0.jpg"
    assert link.is_symlink() and link.read_bytes() == b"photo"
    # A second split into the same folder would mix stale links into it: refused.
    again = subprocess.run([sys.executable, SCRIPT, data, out, "--hold", "a/one"], capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert _names(out / "heldout") == {
        "landscape/b_two_0.jpg",
        "landscape/b_two_1.jpg",
        "people/b_two_0.jpg",
        "people/b_two_1.jpg",
    }


def test_an_unknown_source_is_refused(tmp_path):
    data = _data(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, SCRIPT, data, tmp_path / "split", "--hold", "nope/none"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "not a source in the manifest: nope/none" in result.stderr
    assert not (tmp_path / "split").exists()


def test_sample_caps_each_held_out_source_per_category_and_leaves_training_whole(tmp_path):
    data, out = _data(tmp_path / "data"), tmp_path / "split"
    command = [sys.executable, SCRIPT, data, out, "--hold", "a/one", "--hold", "b/two", "--sample", "1"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    held = _names(out / "heldout")
    # One photo of each (category, source) pair: landscape a/one, landscape b/two, people b/two.
    assert len(held) == 3 and {name.split("/")[0] + "/" + name.split("/")[1][:5] for name in held} == {
        "landscape/a_one",
        "landscape/b_two",
        "people/b_two",
    }
    assert _names(out / "train") == {"people/c_three_0.jpg"}
    again = subprocess.run([*command[:3], tmp_path / "split2", *command[4:]], capture_output=True, text=True)
    assert again.returncode == 0 and _names(tmp_path / "split2" / "heldout") == held, "the sample is not a fixed choice"
