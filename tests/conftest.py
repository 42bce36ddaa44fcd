"""Shared fixtures: real photos (scikit-image's bundled samples), small enough to be fast."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable

import numpy as np
import pytest
from PIL import Image
from skimage import data

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def sample_rgb(name: str, size: int = 96) -> np.ndarray:
    """A real colour photo from scikit-image, longest side ``size``, uint8 (H, W, 3)."""
    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    image.thumbnail((size, size), Image.BILINEAR)
    return np.asarray(image)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    return {name: sample_rgb(name) for name in SAMPLES}


def close_up_face_rgb(size: int = 96) -> np.ndarray:
    """The astronaut's head, cropped close: the bundled classifier's *people* class means a
    face filling the frame (the whole astronaut photo, a person in a scene, is *general*)."""
    image = Image.fromarray(data.astronaut()[0:260, 130:330])
    image.thumbnail((size, size), Image.BILINEAR)
    return np.asarray(image)


@pytest.fixture
def gray_folder(tmp_path, photos):
    """A folder of grayscale JPEGs made from real photos, one of odd size. The astronaut is
    cropped to her face: the one photo here the bundled classifier calls *people*."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, rgb in {**photos, "astronaut": close_up_face_rgb()}.items():
        Image.fromarray(rgb).convert("L").save(folder / f"{name}.jpg", quality=95)
    Image.fromarray(photos["coffee"][:37, :51]).convert("L").save(folder / "odd.png")
    return folder


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """An empty user model folder, so only bundled weights are found."""
    home = tmp_path / "home"
    monkeypatch.setenv("COLORIZE_HOME", str(home))
    return home


@pytest.fixture
def ctrl_c_reaches_python():
    """SIGINT at Python's own handler (KeyboardInterrupt) for the test, as at a terminal.

    A test runner started as a shell's background job inherits SIGINT ignored; a Ctrl-C
    sent in-process would then vanish and a test of what it does would fail for nothing."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def interrupt_when(command: list[str], ready: Callable[[], bool], sig: int, settle: float = 0.0) -> tuple[int, str]:
    """Run ``command``, send ``sig`` once ``ready()`` holds (and ``settle`` seconds more);
    returns the exit code and the combined output. The process never outlives the call."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
        # A shell's background job starts with SIGINT ignored, and a child inherits that; a
        # user's Ctrl-C reaches a program that has it at the default, so the child starts so too.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not ready():
            time.sleep(0.02)
        time.sleep(settle)
        process.send_signal(sig)
        output = process.communicate(timeout=120)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output
