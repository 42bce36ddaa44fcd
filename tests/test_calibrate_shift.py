"""scripts/shift_trial.py and scripts/calibrate_shift.py: a colour shift chosen on new sources,
bounded on the training sources, written into a copy that explains itself."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from colorize.experts.architectures import create_architecture
from colorize.experts.modelfile import read_metadata, save_model

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
from calibrate_shift import BASE, choose_shift  # noqa: E402
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
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_a_calibrated_copy_keeps_the_tensors_and_records_its_shift_and_where_it_was_chosen(tmp_path, photos):
    home = tmp_path / "home"
    torch.manual_seed(0)
    network = create_architecture("unet_seed", widths=[8, 16, 32])
    meta = {"kind": "expert", "architecture": "unet_seed", "arguments": {"widths": [8, 16, 32]}, "work_size": 32}
    model = save_model(network, home / "experts" / "tiny.safetensors", {**meta, "category": "tiny"}, half=False)
    choosing = _photos(tmp_path / "new", photos, ["astronaut", "coffee"])
    guard = _photos(tmp_path / "old", photos, ["chelsea", "rocket"])
    for folder, out in ((choosing, "choosing.json"), (guard, "guard.json")):
        done = _run(SCRIPTS / "shift_trial.py", folder, "--expert", "tiny", "--json", tmp_path / out, home=home)
        assert done.returncode == 0, done.stderr

    calibrated = tmp_path / "calibrated.safetensors"
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
    a, b = load_file(str(model)), load_file(str(calibrated))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "only the metadata changes"

    save_model(network, model, {**meta, "category": "changed"}, half=False)  # the file the trials scored is gone
    done = _run(
        SCRIPTS / "calibrate_shift.py", tmp_path / "choosing.json", tmp_path / "guard.json", tmp_path / "x.safetensors",
        home=home,
    )  # fmt: skip
    assert done.returncode != 0 and "run the trial again" in done.stderr and not (tmp_path / "x.safetensors").exists()
