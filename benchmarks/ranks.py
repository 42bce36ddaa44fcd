"""Photos per second of `colorize auto` split across processes: 1 rank, then 2 (torchrun).

    python benchmarks/ranks.py                      # 20 photos of 1 MP, ranks 1 and 2, 2 repeats
    python benchmarks/ranks.py --photos 60 --ranks 1 2 4 --repeats 3 --json ranks.json

Every rank gets an equal share of the cores (``colorize auto --threads``: onnxruntime's threads
and the full-resolution work's), as many ranks as the machine has cores being the sensible most;
torchrun itself needs torch (the ``train`` extra), the ranks' inference does not. Each setting
colorizes the same folder (the classifier and the experts, as shipped) into a fresh output
folder. Two rates are printed: the run's own, from its summary line (models loaded, first
photo to last, rank 0 waiting for every rank), and the whole command's, start-up included
(Python and the models in every rank, and torchrun's rendezvous). The best of the
repeats is kept. A busy machine makes every number pessimistic and two ranks suffer most:
the report's first line says how many cores other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, when run as a script

import cli_runs  # noqa: E402
import photos as photo_maker  # noqa: E402

SIZE = (1152, 864)  # 4:3, about 1 MP
# The one-line summary of `colorize auto -q`: "20 ok, 0 skipped, 0 failed in 4.1 s (4.88 photos/s); ..."
SUMMARY = re.compile(r"(\d+) ok, \d+ skipped, (\d+) failed in ([0-9.]+) s \(([0-9.]+) photos/s\)")


def command(ranks: int, folder: Path, output: Path) -> list[str]:
    from colorize.core.cpu import available_cores

    threads = max(1, available_cores() // ranks)
    run = ["auto", str(folder), "-o", str(output), "-q", "--threads", str(threads)]
    if ranks == 1:
        return [*cli_runs.colorize_command(), *run]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    return [*torchrun, "-m", "colorize", *run]


def measure(ranks: int, folder: Path, output: Path) -> dict:
    if output.exists():
        shutil.rmtree(output)
    started = time.perf_counter()
    done = subprocess.run(
        command(ranks, folder, output),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    found = SUMMARY.findall(done.stderr + done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{ranks} rank(s): exit {done.returncode}: {(done.stderr + done.stdout)[-1500:]}")
    ok, failed, seconds, _ = found[-1]
    photos = int(ok) + int(failed)
    return {"run_s": float(seconds), "command_s": wall, "photos": photos}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "colorize-benchmark-ranks")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    sources = []
    for name in photo_maker.SOURCES:  # made once, then reused from the work folder
        path = args.workdir / "photos" / f"{name}.jpg"
        sources.append(path if path.is_file() else photo_maker.make_photo(name, SIZE, path))
    folder = photo_maker.folder_of(sources, args.photos, args.workdir / "folder")
    load = cli_runs.LoadMeter()
    results = {}
    for ranks in args.ranks:
        runs = [measure(ranks, folder, args.workdir / f"out-{ranks}") for _ in range(args.repeats)]
        best = min(runs, key=lambda run: run["run_s"])
        results[ranks] = {
            **best,
            "photos_per_s": best["photos"] / best["run_s"],
            "photos_per_s_with_start_up": best["photos"] / min(run["command_s"] for run in runs),
            "repeats": runs,
        }
    machine = load.stop()

    print(
        f"{args.photos} photos of {SIZE[0] * SIZE[1] / 1e6:.1f} MP, cores shared out among the ranks, "
        f"best of {args.repeats}; "
        f"other processes used {machine.get('other_processes_cores', float('nan')):.2f} cores meanwhile"
    )
    base = results[args.ranks[0]]
    print(f"{'ranks':>5s} {'run s':>7s} {'photos/s':>9s} {'scaling':>8s} {'per rank':>9s} {'with start-up':>14s}")
    for ranks, row in results.items():
        scaling = row["photos_per_s"] / base["photos_per_s"]
        print(
            f"{ranks:5d} {row['run_s']:7.2f} {row['photos_per_s']:9.2f} {scaling:7.2f}x "
            f"{row['photos_per_s'] / ranks:9.2f} {row['photos_per_s_with_start_up']:10.2f} /s"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "ranks": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
