"""scripts/shift_trial.py and scripts/calibrate_shift.py: a colour shift chosen on new sources,
bounded on the training sources, written into a copy that explains itself."""

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from conftest import SAFETY_TIMEOUT
from PIL import Image

from colorize.core.modelfile import read_metadata
from colorize.experts.architectures import create_architecture
from colorize.experts.networks import save_model

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
from calibrate_shift import BASE, choose_shift  # noqa: E402
from model_copy import write_copy  # noqa: E402
from shift_trial import variant  # noqa: E402


def _rows(values: dict[tuple[float, float], float]) -> list[dict]:
    return [{variant(a, b): v for (a, b), v in values.items()}]


def test_the_rule_takes_the_best_shift_on_new_sources_that_the_training_sources_can_afford():
    shifts = [(0, 0), (-1, 0), (-2, 0)]
    choosing = _rows({(0, 0): 10.0, (-1, 0): 9.5, (-2, 0): 9.0})
    guard = _rows({(0, 0): 8.0, (-1, 0): 8.07, (-2, 0): 8.5})  # -2 costs the training sources 6 %
    assert choose_shift(choosing, guard, shifts, budget=0.01) == "a-1 b+0 x1"
    assert choose_shift(choosing, guard, shifts, budget=0.10) == "a-2 b+0 x1"
    no_budget = choose_shift(choosing, guard, shifts, budget=0.0)
    assert no_budget == BASE, "no shift unless the training sources lose nothing"
    level = _rows({(0, 0): 9.0, (-1, 0): 9.0})
    assert choose_shift(level, level, shifts[:2], budget=0.01) == BASE, "a tie keeps the file as it was"


def _photos(folder: Path, photos: dict, names) -> Path:
    (folder / "general").mkdir(parents=True)
    for name in names:
        Image.fromarray(photos[name]).save(folder / "general" / f"{name}.png")
    return folder


def _run(*args, home: Path) -> subprocess.CompletedProcess:
    env = {"COLORIZE_HOME": str(home), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=SAFETY_TIMEOUT
    )


@pytest.mark.needs_torch
def test_a_calibrated_copy_keeps_the_tensors_and_records_its_shift_and_where_it_was_chosen(tmp_path, photos):
    home = tmp_path / "home"
    torch.manual_seed(0)
    network = create_architecture("unet_seed", widths=[8, 16, 32])
    meta = {"kind": "expert", "architecture": "unet_seed", "arguments": {"widths": [8, 16, 32]}, "work_size": 32}
    save_model(network, home / "experts" / "tiny.safetensors", {**meta, "category": "tiny"}, half=False)
    choosing = _photos(tmp_path / "new", photos, ["astronaut", "coffee"])
    guard = _photos(tmp_path / "old", photos, ["chelsea", "rocket"])
    for folder, out in ((choosing, "choosing.json"), (guard, "guard.json")):
        done = _run(SCRIPTS / "shift_trial.py", folder, "--expert", "tiny", "--json", tmp_path / out, home=home)
        assert done.returncode == 0, done.stderr
    # Training wrote .safetensors; the first run exported the ONNX file beside it, which stands
    # for the expert from then on: both trials name it, so they scored the same file.
    model = home / "experts" / "tiny.onnx"
    assert {json.loads((tmp_path / out).read_text())["path"] for out in ("choosing.json", "guard.json")} == {str(model)}

    calibrated = tmp_path / "calibrated.onnx"
    done = _run(
        SCRIPTS / "calibrate_shift.py", tmp_path / "choosing.json", tmp_path / "guard.json", calibrated,
        "--budget", "1", "--test", tmp_path / "guard.json", home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trial = json.loads((tmp_path / "choosing.json").read_text())
    written = read_metadata(calibrated).metadata
    record = written["calibration"]
    shift = written["normalization"]["ab_shift"]
    assert shift == record["ab_shift"] and shift in record["candidates"]
    assert record["candidates"] == trial["shifts"]
    key = variant(*shift)
    best = min(sum(row[variant(a, b)] for row in trial["rows"]) for a, b in record["candidates"])
    assert sum(row[key] for row in trial["rows"]) == pytest.approx(best), "with a loose budget, the best shift"
    assert (
        record["choosing"]["photos"] == 2 and record["choosing"]["delta_e"] <= record["choosing"]["delta_e_unshifted"]
    )
    assert record["uncalibrated_sha256"] == trial["sha256"]
    assert record["test"]["photos"] == 2 and record["test"]["delta_e"] == record["guard"]["delta_e"]
    assert onnx.load(model).graph == onnx.load(calibrated).graph, "only the metadata changes"
    other_format = _run(
        SCRIPTS / "calibrate_shift.py", tmp_path / "choosing.json", tmp_path / "guard.json", tmp_path / "x.safetensors",
        home=home,
    )  # fmt: skip
    assert other_format.returncode != 0 and "in its format (.onnx)" in other_format.stderr
    assert not (tmp_path / "x.safetensors").exists()

    write_copy(model, {**read_metadata(model).metadata, "category": "changed"}, model)  # not the file scored
    done = _run(
        SCRIPTS / "calibrate_shift.py", tmp_path / "choosing.json", tmp_path / "guard.json", tmp_path / "x.onnx",
        home=home,
    )  # fmt: skip
    assert done.returncode != 0 and "run the trial again" in done.stderr and not (tmp_path / "x.onnx").exists()


@pytest.mark.needs_torch
def test_a_wider_grid_and_the_colour_front_read_each_expert_at_its_own_best_variant(tmp_path, photos):
    home = tmp_path / "home"
    torch.manual_seed(0)
    network = create_architecture("unet_seed", widths=[8, 16, 32])
    meta = {"kind": "expert", "architecture": "unet_seed", "arguments": {"widths": [8, 16, 32]}, "work_size": 32}
    save_model(network, home / "experts" / "tiny.safetensors", {**meta, "category": "tiny"}, half=False)
    folder = _photos(tmp_path / "new", photos, ["astronaut", "coffee"])
    grid = ["--a-shifts=-4", "--b-shifts=2,-2", "--scales", "0.5,2"]
    done = _run(SCRIPTS / "shift_trial.py", folder, "--expert", "tiny", "--json", tmp_path / "t.json", *grid, home=home)
    assert done.returncode == 0, done.stderr
    trial = json.loads((tmp_path / "t.json").read_text())
    assert trial["shifts"] == [[-4, 2], [-4, -2]] and trial["scales"] == [0.5, 2]
    assert {k for k in trial["rows"][0] if f"{k} colour" in trial["rows"][0]} == {
        "a-4 b+2 x0.5", "a-4 b+2 x2", "a-4 b-2 x0.5", "a-4 b-2 x2"
    }  # fmt: skip

    # Hand-made trials of the same two photos: each variant's ΔE, PSNR and colour per photo.
    def trial_of(sha, variants):
        rows = [{"path": p, "truth colour": 10.0} for p in ("one.png", "two.png")]
        for key, per_photo in variants.items():
            for row, (delta_e, colour) in zip(rows, per_photo):
                row.update({key: delta_e, f"{key} psnr": 30 - delta_e, f"{key} colour": colour})
        return {"sha256": sha, "rows": rows}

    files = {
        "plain": trial_of("aaa", {"muted": [(8, 4), (10, 6)], "vivid": [(11, 8), (13, 8)]}),
        "plain-wider": trial_of("aaa", {"bolder": [(12, 9), (12, 9)]}),  # same weights: one candidate
        "better": trial_of("bbb", {"muted": [(7, 5), (9, 5)]}),
    }
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    trials = [tmp_path / f"{name}.json" for name in files]
    done = subprocess.run(
        [sys.executable, SCRIPTS / "colour_front.py", *trials, "--levels", "0.5,0.8,0.9"],
        capture_output=True, text=True, timeout=SAFETY_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("| 0.")]
    # plain: muted ΔE 9 at colour 0.5, vivid 12 at 0.8, bolder 12 at 0.9; better: muted 8 at 0.5, none above.
    assert table == [
        "| 0.50 | 9.000 / 21.00 (muted, 0.50) | 8.000 / 22.00 (muted, 0.50) |",
        "| 0.80 | 12.000 / 18.00 (vivid, 0.80) | — |",
        "| 0.90 | 12.000 / 18.00 (bolder, 0.90) | — |",
    ]
    (tmp_path / "other.json").write_text(json.dumps({"sha256": "ccc", "rows": [{"path": "three.png"}]}))
    refused = subprocess.run(
        [sys.executable, SCRIPTS / "colour_front.py", tmp_path / "plain.json", tmp_path / "other.json"],
        capture_output=True, text=True, timeout=SAFETY_TIMEOUT,
    )  # fmt: skip
    assert refused.returncode != 0 and "other photos" in refused.stderr
