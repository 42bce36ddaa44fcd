"""Cold start: one 2 MP photo, from the command to the written file, and where the time goes.

    python benchmarks/cold_start.py                    # 5 runs of each, medians
    python benchmarks/cold_start.py --reps 9 --photo my_2mp.jpg --json cold.json

Every run is a fresh Python process, so every import and every model load is paid as a
first run pays it (the files themselves are in the OS cache after the first run: the first
run is shown apart). Measured:

- ``colorize auto photo_2mp.jpg -o out.jpg``, the whole command with the output written:
  wall time and peak resident memory (the kernel's, ``wait4``), median and worst of ``--reps``;
- stages, each in its own process and each including the ones above it: ``python`` (the
  interpreter alone), ``numpy``, ``the command line's imports`` (what ``colorize`` imports
  before parsing), ``onnx, onnxruntime`` (the graph check and the runtime, imported when the
  first model is read), ``models loaded`` (the CLI's Pipeline with the classifier and the
  general expert); the differences are what each stage adds;
- imports of the whole command (``python -X importtime``), summed by top-level package, and
  whether torch was imported at all: the inference path must never import it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, when run as a script

from cli_runs import colorize_command, run_child  # noqa: E402

STAGES = {
    "python": "pass",
    "numpy": "import numpy",
    "the command line's imports": "import numpy, colorize.pipelines.cli",
    "onnx, onnxruntime": "import numpy, colorize.pipelines.cli, onnx, onnxruntime",
    "models loaded": (
        "import colorize.pipelines.cli\n"
        "from colorize.pipelines.inference import Pipeline\n"
        "pipeline = Pipeline.from_config(tune=True)\n"
        "pipeline.expert('general')"
    ),
}
SIZE = (1632, 1224)  # 4:3, 2.0 MP, as benchmarks/photos.py makes its 2 MP photos


def _photo(folder: Path) -> Path:
    """A 2 MP test photo, made by a child process: a child's peak RSS starts from its parent's
    (the kernel carries the high-water mark across fork and exec), so this process stays small."""
    path = folder / "photo_2mp.jpg"
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import photos; "
        f"photos.make_photo('astronaut', {SIZE}, {str(path)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return path


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def command_runs(photo: Path, output: Path, reps: int) -> dict:
    """``colorize auto PHOTO -o OUTPUT`` ``reps + 1`` times, each into a fresh output file."""
    runs = []
    for _ in range(reps + 1):
        output.unlink(missing_ok=True)
        run = run_child([*colorize_command(), "auto", str(photo), "-o", str(output)])
        if run["exit_code"] != 0 or not output.is_file():
            raise SystemExit(f"colorize auto failed (exit code {run['exit_code']}): {run['stderr_tail']}")
        runs.append(run)
    first, timed = runs[0], runs[1:]
    walls = [run["wall_s"] for run in timed]
    return {
        "median_s": statistics.median(walls),
        "max_s": max(walls),
        "first_s": first["wall_s"],
        "cpu_s": statistics.median(run["cpu_s"] for run in timed),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "runs": len(timed),
    }


def import_times(photo: Path, output: Path) -> dict:
    """``python -X importtime`` of the whole command: seconds by top-level package, and whether torch came in."""
    output.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "colorize", "auto", str(photo), "-o", str(output)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"colorize auto under -X importtime failed: {done.stderr[-400:]}")
    by_package: dict[str, float] = {}
    modules = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        module = name.strip()
        modules.add(module)
        # Nesting shows as indentation: a top-level import's cumulative time holds its children's.
        if len(name) - len(name.lstrip()) <= 1:
            root = module.split(".")[0]
            by_package[root] = by_package.get(root, 0.0) + int(cumulative) / 1e6
    ranked = dict(sorted(by_package.items(), key=lambda item: -item[1]))
    return {
        "total_s": sum(ranked.values()),
        "by_package_s": ranked,
        "modules": len(modules),
        "torch_imported": any(m == "torch" or m.startswith("torch.") for m in modules),
    }


def measure(photo: Path, scratch: Path, reps: int) -> dict:
    stages = {
        name: statistics.median(_seconds([sys.executable, "-c", code]) for _ in range(reps))
        for name, code in STAGES.items()
    }
    return {
        "photo": str(photo),
        "command": command_runs(photo, scratch / "out.jpg", reps),
        "stages_s": stages,
        "imports": import_times(photo, scratch / "out-importtime.jpg"),
    }


def render(result: dict) -> None:
    command = result["command"]
    print(
        f"colorize auto {Path(result['photo']).name} -o out.jpg: median {command['median_s']:.2f} s "
        f"(max {command['max_s']:.2f} s, first run {command['first_s']:.2f} s, {command['runs']} runs), "
        f"peak RSS {command['peak_rss_mb']:.0f} MB"
    )
    previous = 0.0
    print(f"\n{'stage':30} {'total s':>8} {'adds s':>8}")
    for name, seconds in result["stages_s"].items():
        print(f"{name:30} {seconds:8.2f} {seconds - previous:8.2f}")
        previous = seconds
    print(f"{'colorize auto (whole command)':30} {command['median_s']:8.2f} {command['median_s'] - previous:8.2f}")
    imports = result["imports"]
    print(
        f"\nimports of the command (-X importtime): {imports['total_s']:.2f} s, {imports['modules']} modules; "
        f"torch {'IMPORTED' if imports['torch_imported'] else 'not imported'}"
    )
    for package, seconds in list(imports["by_package_s"].items())[:12]:
        print(f"  {package:28} {seconds:6.3f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed runs of each (after one untimed first run)")
    parser.add_argument("--photo", type=Path, default=None, help="a 2 MP photo (default: one made here)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--quiet", action="store_true", help="print nothing (with --json)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        photo = args.photo
        if photo is None:
            photo = _photo(scratch)
        elif not photo.is_file():
            raise SystemExit(f"{photo}: no such file")
        result = measure(photo, scratch, args.reps)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if not args.quiet:
        render(result)


if __name__ == "__main__":
    main()
