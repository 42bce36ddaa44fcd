"""The base install has no PyTorch: colorizing, classifying, listing experts and serving run on
numpy and onnxruntime alone, and the commands that do need torch say which extra brings it.

Each test runs colorize in a fresh interpreter whose first import hook refuses ``torch`` and
records every attempt with the code that made it, so the tests mean the same in the full test
venv (torch installed) as in CI's venv without it. An attempt fails the test even when the code
that made it would have carried on without torch: the inference path must not reach for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SAFETY_TIMEOUT
from PIL import Image

EXAMPLES = Path(__file__).parents[1] / "examples"

# Runs ``colorize ARGS...`` (or imports MODULES) with torch refused; argv[1] is a JSON file
# for the attempts to import torch, each with the innermost frames outside importlib.
RUNNER = r"""
import importlib.abc, json, sys, traceback

attempts = []


class RefuseTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            frames = [f for f in traceback.extract_stack() if "importlib" not in f.filename][:-1]
            attempts.append({"module": name, "from": [f"{f.filename}:{f.lineno} {f.line}" for f in frames[-4:]]})
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, RefuseTorch())
record, mode, *rest = sys.argv[1:]
code = 0
try:
    if mode == "import":
        import importlib
        for module in rest:
            importlib.import_module(module)
    else:
        from colorize.pipelines.cli import main

        sys.argv = ["colorize", *rest]
        try:
            main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (stop.code is not None)
finally:
    with open(record, "w") as file:
        json.dump({"attempts": attempts, "loaded": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}, file)
sys.exit(code)
"""


def run_without_torch(tmp_path: Path, mode: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    record = tmp_path / "torch_attempts.json"
    home = tmp_path / "home"  # no user models: only the bundled ones
    env = {**os.environ, "COLORIZE_HOME": str(home), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(record), mode, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=SAFETY_TIMEOUT,
    )
    return result, json.loads(record.read_text())


def assert_torch_untouched(result: subprocess.CompletedProcess, record: dict) -> None:
    where = "\n".join(
        f"  import {attempt['module']} from\n    " + "\n    ".join(attempt["from"]) for attempt in record["attempts"]
    )
    assert not record["attempts"], f"torch was reached for:\n{where}\n{result.stdout}{result.stderr}"
    assert not record["loaded"], record["loaded"]


def inference_modules() -> list[str]:
    """Every module that running the tool loads: all of core/ and router/, and the rest by name."""
    root = Path(__file__).parents[1]
    found = [f"colorize.{path.parent.name}.{path.stem}" for path in sorted(root.glob("core/*.py"))]
    found += [f"colorize.{path.parent.name}.{path.stem}" for path in sorted(root.glob("router/*.py"))]
    return found + [
        "colorize.experts.store",
        "colorize.experts.normalization",
        "colorize.classifier.model",
        "colorize.pipelines.inference",
        "colorize.pipelines.batch",
        "colorize.pipelines.shards",
        "colorize.pipelines.cli",
    ]


def test_every_inference_module_imports_without_torch(tmp_path):
    result, record = run_without_torch(tmp_path, "import", *inference_modules())
    assert_torch_untouched(result, record)
    assert result.returncode == 0, result.stderr


def test_the_web_server_module_imports_without_torch(tmp_path):
    pytest.importorskip("fastapi")  # colorize-experts[web]
    result, record = run_without_torch(tmp_path, "import", "colorize.pipelines.serve")
    assert_torch_untouched(result, record)
    assert result.returncode == 0, result.stderr


def test_auto_colorizes_real_photos_without_torch(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    # A close-up face (the people expert) and a man in a scene (general): two experts load.
    for name in ("astronaut_face.jpg", "camera.jpg"):
        shutil.copy(EXAMPLES / name, photos)
    out, report = tmp_path / "out", tmp_path / "run.jsonl"
    result, record = run_without_torch(tmp_path, "cli", "auto", str(photos), "-o", str(out), "--report", str(report))
    assert_torch_untouched(result, record)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(Path(row["input"]).name for row in rows) == ["astronaut_face.jpg", "camera.jpg"]
    assert all(row["status"] == "ok" for row in rows), rows
    for name in ("astronaut_face.jpg", "camera.jpg"):
        gray = Image.open(photos / name)
        colour = np.asarray(Image.open(out / name).convert("RGB"), dtype=np.int16)
        assert colour.shape[:2] == (gray.height, gray.width)
        # Colour, not the gray photo written back: the channels differ somewhere.
        assert np.abs(colour[..., 0] - colour[..., 2]).max() > 10, name


def test_classify_routes_the_examples_without_torch(tmp_path):
    result, record = run_without_torch(tmp_path, "cli", "classify", str(EXAMPLES))
    assert_torch_untouched(result, record)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "astronaut_face.jpg" in result.stdout and "camera.jpg" in result.stdout, result.stdout
    assert "people" in result.stdout, result.stdout


def test_experts_lists_the_bundled_models_without_torch(tmp_path):
    result, record = run_without_torch(tmp_path, "cli", "experts")
    assert_torch_untouched(result, record)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("general", "landscape", "people"):
        assert name in result.stdout, result.stdout


def test_eval_without_its_judge_scores_real_photos_without_torch(tmp_path, photos):
    pytest.importorskip("skimage")  # eval's metrics: colorize-experts[eval]
    truths = tmp_path / "truths"
    truths.mkdir()
    for name in ("astronaut", "coffee"):
        Image.fromarray(photos[name]).save(truths / f"{name}.png")
    result, record = run_without_torch(
        tmp_path, "cli", "eval", str(truths), "--no-recognition", "--json", "--work-size", "64"
    )
    assert_torch_untouched(result, record)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "astronaut" in result.stdout and "coffee" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "command, extra",
    [
        (["train", "expert", "mine", "{photos}"], "train"),
        (["train", "classifier", "{photos}"], "train"),
        (["export", "{model}", "-o", "{tmp}/general.onnx"], "train"),
        (["eval", "{photos}"], "eval"),
    ],
    ids=["train expert", "train classifier", "export", "eval"],
)
def test_a_command_that_needs_torch_says_in_one_line_which_extra_brings_it(tmp_path, command, extra):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(EXAMPLES / "camera.jpg", photos)
    model = Path(__file__).parents[1] / "experts" / "weights" / "general.onnx"
    args = [part.format(photos=photos, model=model, tmp=tmp_path) for part in command]
    result, _ = run_without_torch(tmp_path, "cli", *args)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert f"colorize-experts[{extra}]" in output, output
