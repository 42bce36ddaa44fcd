"""Cold start: one 2 MP photo, from the command to the written file, and where the time goes.

Each stage runs in a fresh Python process, so every import is paid as a first run pays it:

    python benchmarks/cold_start.py            # 3 runs of each, medians
    python benchmarks/cold_start.py --reps 5

Stages, each including the ones before it: ``python`` (the interpreter alone), ``torch``,
``torchvision`` (timm imports it), ``timm``, ``models`` (the CLI's Pipeline with the
classifier and the general expert loaded), and ``colorize auto`` on the photo (the whole
command, output written). The differences are what each stage adds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = {
    "python": "pass",
    "torch": "import torch",
    "torchvision": "import torch, torchvision",
    "timm": "import torch, torchvision, timm",
    "models": (
        "from colorize.pipelines.inference import Pipeline\n"
        "pipeline = Pipeline.from_config(tune=True)\n"
        "pipeline.expert('general')"
    ),
}


def _photo(folder: Path) -> Path:
    import numpy as np
    from PIL import Image
    from skimage import data

    gray = Image.fromarray(data.astronaut()).convert("L").resize((1732, 1155), Image.LANCZOS)
    grain = np.random.default_rng(0).normal(0, 3, (1155, 1732))
    noisy = np.clip(np.asarray(gray, np.float32) + grain, 0, 255).astype(np.uint8)
    path = folder / "photo_2mp.jpg"
    Image.fromarray(noisy).save(path, quality=90)
    return path


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        photo = _photo(scratch)
        timings: dict[str, float] = {}
        for name, code in STAGES.items():
            timings[name] = statistics.median(_seconds([sys.executable, "-c", code]) for _ in range(args.reps))
        runs = []
        for _ in range(args.reps):
            shutil.rmtree(scratch / "out", ignore_errors=True)
            runs.append(_seconds([sys.executable, "-m", "colorize", "auto", str(photo), "-o", str(scratch / "out")]))
        timings["colorize auto (2 MP)"] = statistics.median(runs)
    previous = 0.0
    print(f"{'stage':24} {'total s':>8} {'adds s':>8}")
    for name, seconds in timings.items():
        print(f"{name:24} {seconds:8.2f} {seconds - previous:8.2f}")
        previous = seconds


if __name__ == "__main__":
    main()
