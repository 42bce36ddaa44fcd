"""Shared fixtures: real photos (scikit-image's bundled samples), small enough to be fast."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, NoReturn

import numpy as np
import pytest
from PIL import Image
from skimage import data

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")
EXAMPLES = Path(__file__).parents[1] / "examples"  # the sample photos the README colorizes


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


# Seconds a test waits for a child process, a server or a page before it gives up. Only a guard
# that keeps a hang from stalling CI: tests wait on events (a line printed, a file written, an
# answer), never on a time, so a slow machine takes longer and still passes.
SAFETY_TIMEOUT = 600


class Child:
    """``command`` in a child process whose output (stdout and stderr together) is read as it
    comes, so that a test can wait for a sign of the state it needs (``wait_for``) and then act.
    Use it in a ``with``: the child never outlives the block. ``group``: the child leads a
    process group (a session) of its own, which ``send`` signals and the end kills whole."""

    def __init__(self, command: list[str], *, group: bool = False, **popen):
        self.command, self.group = command, group
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=group, **popen
        )
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with self.process.stdout as stream:
            while chunk := os.read(stream.fileno(), 65536):
                with self._lock:
                    self._chunks.append(chunk)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        """All the child has printed so far."""
        with self._lock:
            return b"".join(self._chunks).decode(errors="replace")

    def fail(self, why: str) -> NoReturn:
        pytest.fail(f"{' '.join(map(str, self.command))}\n{why}; its output:\n{self.output[-6000:]}", pytrace=False)

    def wait_for(self, ready: Callable[[str], bool], what: str) -> None:
        """Until ``ready(the output so far)`` holds while the child runs; ``what`` names the state
        waited for. Fails the test, with the child's output, when the child exits first."""
        deadline = time.monotonic() + SAFETY_TIMEOUT
        while True:
            running = self.process.poll() is None  # before ready(): the state was reached while it ran
            if not running:
                self._reader.join(SAFETY_TIMEOUT)
                self.fail(f"exited (code {self.process.returncode}) before {what}")
            if ready(self.output):
                return
            if time.monotonic() > deadline:
                self.fail(f"no sign in {SAFETY_TIMEOUT} s that {what}")
            time.sleep(0.01)

    def send(self, sig: int) -> None:
        """``sig`` to the child (to its whole group with ``group``); fails the test, with the
        output, when the child has exited: a signal then would reach nothing."""
        if self.process.poll() is not None:
            self._reader.join(SAFETY_TIMEOUT)
            self.fail(f"exited (code {self.process.returncode}) before {signal.Signals(sig).name} was sent")
        # Not yet reaped (only poll and wait reap it), so the number is still this child's.
        if self.group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def finish(self) -> tuple[int, str]:
        """The exit code and the whole output, once the child has exited."""
        try:
            self.process.wait(timeout=SAFETY_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail(f"still running after {SAFETY_TIMEOUT} s")
        self._reader.join(SAFETY_TIMEOUT)
        return self.process.returncode, self.output

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exception) -> None:
        if self.group:
            try:  # the leader is not yet reaped, or its number is still the group's: no other process has it
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def interrupt_when(command: list[str], ready: Callable[[str], bool], sig: int, what: str) -> tuple[int, str]:
    """Run ``command`` and send it ``sig`` once ``ready(its output so far)`` holds (``what``
    names that state); returns the exit code and the combined output. Fails the test, showing
    the output, when the command exits before that. The process never outlives the call."""
    with Child(
        command,
        env={**os.environ, "COLUMNS": "200"},
        # A shell's background job starts with SIGINT ignored, and a child inherits that; a
        # user's Ctrl-C reaches a program that has it at the default, so the child starts so too.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as child:
        child.wait_for(ready, what)
        child.send(sig)
        return child.finish()


def bundled_expert(name: str = "people") -> Path:
    """A bundled expert's ONNX file (the bundled models ship as ONNX only)."""
    from colorize.core.locations import bundled_weights_dir

    return bundled_weights_dir() / f"{name}.onnx"


def tiny_expert(path: Path, category: str = "tiny", seed: int = 0) -> Path:
    """A tiny trained-by-torch expert (unet_seed, 32 px) written as training writes one: a
    .safetensors file. A training-side fixture: it needs torch; colorize exports it to ONNX
    on first use."""
    import torch

    from colorize.experts.architectures import create_architecture
    from colorize.experts.networks import save_model

    torch.manual_seed(seed)
    network = create_architecture("unet_seed", widths=[8, 16, 32])
    metadata = {
        "kind": "expert",
        "architecture": "unet_seed",
        "arguments": {"widths": [8, 16, 32]},
        "work_size": 32,
        "category": category,
    }
    return save_model(network, Path(path), metadata, half=False)


def old_style_expert(path: Path, like: str = "people") -> Path:
    """A bundled expert as an earlier release installed it: NAME.safetensors alone, its tensors
    under their torch names and its metadata as they are in the ONNX file. Made with onnx,
    numpy and safetensors only (the base install's), so a test without torch can have one."""
    import json

    import onnx
    from onnx import numpy_helper
    from safetensors.numpy import save_file

    from colorize.core.modelfile import METADATA_KEY, read_metadata
    from colorize.core.onnx import HALF_SUFFIX

    source = bundled_expert(like)
    tensors = {
        initializer.name.removesuffix(HALF_SUFFIX): numpy_helper.to_array(initializer)
        for initializer in onnx.load(str(source)).graph.initializer
        if "::" not in initializer.name  # the exporter's own constants, not weights
    }
    # Batch norm's step counters are no weights: the ONNX file leaves them out, torch's state has them.
    for name in [name for name in tensors if name.endswith(".running_mean")]:
        tensors[name.removesuffix("running_mean") + "num_batches_tracked"] = np.zeros((), np.int64)
    metadata = json.dumps(read_metadata(source).metadata, sort_keys=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={METADATA_KEY: metadata})
    return Path(path)


# Runs ``colorize ARGS...`` in an interpreter whose first import hook refuses torch, as an
# install without it would: what the base install (no [train] extra) does, in any test venv.
_WITHOUT_TORCH = r"""
import importlib.abc, sys


class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
from colorize.pipelines.cli import main

sys.argv = ["colorize", *sys.argv[1:]]
try:
    main()
finally:
    if any(module.split(".")[0] == "torch" for module in sys.modules):
        print("torch was loaded", file=sys.stderr)
"""


def colorize_without_torch(*args: str, home: Path) -> subprocess.CompletedProcess:
    """``colorize ARGS...`` with torch unimportable and ``home`` as the user's model folder."""
    env = {**os.environ, "COLORIZE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=SAFETY_TIMEOUT,
    )
