"""colorize speed benchmark: where the time goes on this CPU, and whether the targets are met.

    python benchmarks/run.py            # the full run (a few minutes on a quiet 2-core CPU)
    python benchmarks/run.py --quick    # a smaller folder, fewer repetitions, no pix2pix

Prints tables and writes JSON (``--json``). Every measurement runs in a fresh child
process, so process-wide settings (onnxruntime's threads, malloc tuning) and peak memory
are per configuration. Inference is numpy and onnxruntime (no torch); the architecture
comparison and the parity check against the former torch engine need torch (the ``train``
extra). See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, when run as a script

import cli_runs  # noqa: E402
import photos as photo_maker  # noqa: E402
import report  # noqa: E402

# Process configurations compared on the per-image stages (the first is the default).
# "networks": onnxruntime's threads for the classifier and the experts; "full-resolution
# work": the threads composing the output photo (measure.py --threads / --network-threads);
# the environment is the worker's (OpenBLAS reads it when numpy is first imported).
CONFIGS = {
    "default (every core for both)": ({}, []),
    "no malloc tuning": ({}, ["--no-malloc-tuning"]),
    "1 thread for everything": ({}, ["--threads", "1"]),
    "networks 1 thread, full-resolution work every core": ({}, ["--network-threads", "1"]),
    "networks every core, full-resolution work 1 thread": ({}, ["--threads", "1", "--network-threads", "all"]),
    "networks not spinning between calls": ({}, ["--no-spinning"]),
    # numpy's matrix products (the antialiased resizes) on OpenBLAS's own threads, or on one.
    "numpy BLAS 1 thread": ({"OPENBLAS_NUM_THREADS": "1"}, []),
    "networks not spinning, numpy BLAS 1 thread": ({"OPENBLAS_NUM_THREADS": "1"}, ["--no-spinning"]),
}
DEFAULT = next(iter(CONFIGS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="colorize speed benchmark", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="40-photo folder, 2 repetitions, no ablations of 0.25 MP, no pix2pix, no 12 MP parity",
    )
    parser.add_argument(
        "--folder-images", type=int, default=None, help="photos in the folder test (default 200; 40 with --quick)"
    )
    parser.add_argument("--reps", type=int, default=None, help="timed passes per photo (default 3; 2 with --quick)")
    parser.add_argument(
        "--configs", nargs="*", default=None, help=f"configurations to compare (default: all): {', '.join(CONFIGS)}"
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "colorize-benchmark")
    parser.add_argument("--json", type=Path, default=Path("benchmark-results.json"))
    args = parser.parse_args(argv)
    folder_images = args.folder_images or (40 if args.quick else 200)
    reps = args.reps or (2 if args.quick else 3)
    configs = args.configs if args.configs is not None else list(CONFIGS)
    unknown = [name for name in configs if name not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from: {', '.join(CONFIGS)}")

    load = cli_runs.LoadMeter()
    results: dict = {
        "machine": _machine(),
        "settings": {"folder_images": folder_images, "reps": reps, "quick": args.quick},
    }
    photos = photo_maker.photo_set(args.workdir)
    _step("start-up")
    results["startup"] = cli_runs.startup()
    _step("cold start: colorize auto on one 2 MP photo, fresh processes")
    results["cold_start"] = _worker(
        "cold_start.py",
        ["--photo", str(photos["2MP"][0]), "--reps", str(3 if args.quick else 5), "--quiet"],
        {},
        args.workdir,
    )
    _step("stages per photo, by configuration")
    results["stages"] = {}
    for name in configs:
        env, flags = CONFIGS[name]
        sizes = list(photos) if name == DEFAULT else [s for s in photos if s != "0.25MP" or not args.quick]
        results["stages"][name] = {size: _stages(photos[size], reps, flags, env, args.workdir) for size in sizes}
    _step("kernels at 12 MP")
    results["kernels"] = _worker(
        "kernels.py", ["--photo", str(photos["12MP"][0]), "--reps", str(reps)], {}, args.workdir
    )
    _step("networks")
    skip = ["--skip", "unet_pix2pix"] if args.quick else []
    results["networks"] = _worker(
        "networks.py",
        ["--photos", *map(str, photos["0.25MP"]), "--reps", str(max(3, reps)), *skip],
        {},
        args.workdir,
    )
    _step("output against the former torch engine")
    checked = [*photos["0.25MP"], *photos["2MP"], *([] if args.quick else photos["12MP"])]
    results["parity"] = _worker("parity.py", ["--photos", *map(str, checked)], {}, args.workdir)
    _step(f"command line: a folder of {folder_images} x 2 MP photos")
    results["cli"] = _cli(photos, folder_images, args.workdir)
    results["load"] = load.stop()
    results["targets"] = report.targets(results)
    report.render(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nJSON: {args.json}")
    return 0


def _stages(paths, reps: int, flags: list[str], env: dict, workdir: Path) -> dict:
    outdir = workdir / "out-stages"
    outdir.mkdir(parents=True, exist_ok=True)
    raw = _worker(
        "measure.py", ["--photos", *map(str, paths), "--reps", str(reps), "--outdir", str(outdir), *flags], env, workdir
    )
    per_photo = list(raw["photos"].values())
    keys = [k for k in per_photo[0] if k != "runs"]
    # The median photo of the set for each quantity (photos differ a little in content).
    merged = {k: sorted(p[k] for p in per_photo)[len(per_photo) // 2] for k in keys}
    return {
        "median": merged,
        "per_photo": raw["photos"],
        "settings": raw["settings"],
        "peak_rss_mb": raw["peak_rss_mb"],
        "torch_imported": raw["torch_imported"],
    }


def _worker(script: str, arguments: list[str], env: dict, workdir: Path) -> dict:
    out = workdir / f"{script}.json"
    out.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, str(HERE / script), *arguments, "--json", str(out)], env={**os.environ, **env}
    )
    if completed.returncode != 0:
        raise SystemExit(f"benchmark worker {script} failed (exit code {completed.returncode})")
    return json.loads(out.read_text())


def _cli(photos, folder_images: int, workdir: Path) -> dict:
    folder = photo_maker.folder_of(photos["2MP"], folder_images, workdir / "folder-2MP")
    single = photo_maker.folder_of(photos["2MP"][:1], 1, workdir / "folder-one")
    large = photo_maker.folder_of(photos["12MP"], len(photos["12MP"]), workdir / "folder-12MP")
    one = cli_runs.folder_run(single, workdir / "out-one")
    # Memory is judged flat after the time the 1-photo run took (start-up and a first batch).
    many = cli_runs.folder_run(folder, workdir / "out-folder", settled_after=one["wall_s"])
    # Start-up and model loading are paid once per run: the 1-photo run measures them.
    extra = many["wall_s"] - one["wall_s"]
    many["steady_images_per_s"] = (many["images"] - 1) / extra if extra > 0 else None
    big = cli_runs.folder_run(large, workdir / "out-12MP")
    for run in (one, many, big):
        run["rss_samples"] = run["rss_samples"][:: max(1, len(run["rss_samples"]) // 200)]
    return {"one_2MP": one, "folder_2MP": many, "three_12MP": big}


def _machine() -> dict:
    import numpy
    import onnxruntime

    from colorize import __version__
    from colorize.core.cpu import available_cores

    model = platform.processor()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model,
        "cores": available_cores(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
        "colorize": __version__,
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text} ...", flush=True)


if __name__ == "__main__":
    sys.exit(main())
