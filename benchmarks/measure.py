"""Worker: per-image wall time by stage through the real ``Pipeline`` API, and the I/O floor.

Run by ``run.py`` in a fresh process per configuration (threads, malloc tuning are
process-wide), e.g.::

    python benchmarks/measure.py --photos a.jpg b.jpg --reps 3 --json out.json

Stages of one photo, in the order the CLI runs them: decode (imageio.decode), lightness
(DecodedImage.lightness), classify (Pipeline.shrink, the one downsample of L that both
networks read, + Pipeline.route), expert (Pipeline.predict_small_ab: resize to the work
size when it differs + network), compose (chroma upsample + LAB -> RGB at full size,
straight to 8 bits for an 8-bit output, as ``colorize auto`` does), encode (imageio.encode:
JPEG, atomic write). The I/O floor is measured in
the same loop: decoding the same file and writing the same output pixels (already 8-bit)
as a JPEG with imageio's settings — no model, no colour maths.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

STAGES = ("decode", "lightness", "classify", "expert", "compose", "encode")
JPEG_SETTINGS = {"quality": 95, "subsampling": 0}  # what imageio.encode writes for a JPEG source


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3, help="timed passes over the photos (after one warm-up pass)")
    parser.add_argument(
        "--intra-op", type=int, default=None, help="torch intra-op threads (default: the pipeline's own)"
    )
    parser.add_argument("--workers", type=int, default=None, help="pipeline worker threads (default: every core)")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="leave glibc's malloc at its defaults")
    parser.add_argument("--expert", default=None, help="force this installed expert (default: routed)")
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    pipeline, settings = build_pipeline(args.intra_op, args.workers, not args.no_malloc_tuning, args.expert)
    results = {"settings": settings, "photos": {}}
    for path in args.photos:
        runs = [time_one(pipeline, path, args.outdir) for _ in range(args.reps + 1)][1:]  # first: warm-up
        results["photos"][str(path)] = summarise(runs)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.json.write_text(json.dumps(results, indent=1))


def build_pipeline(intra_op: int | None, workers: int | None, malloc: bool, expert: str | None = None):
    """The pipeline as the CLI builds it, with the process settings this run asks for."""
    import torch

    from colorize.pipelines._cpu import tune_cpu
    from colorize.pipelines.inference import Pipeline

    pipeline = Pipeline.from_config(threads=workers, expert=expert)
    settings = tune_cpu(intra_op_threads=intra_op or 1, keep_freed_memory=malloc)
    settings.update(
        workers=pipeline.threads,
        torch_threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    )
    return pipeline, settings


def time_one(pipeline, path: Path, outdir: Path) -> dict[str, float]:
    import torch
    from PIL import Image

    from colorize.core.images import decode, encode, output_bits
    from colorize.pipelines._cpu import compose_upsampled

    times: dict[str, float] = {}
    cpu_start = time.process_time()

    def timed(stage, function, *args):
        start = time.perf_counter()
        value = function(*args)
        times[stage] = time.perf_counter() - start
        return value

    decoded = timed("decode", decode, path)
    lightness = timed("lightness", decoded.lightness)
    with torch.inference_mode():
        # As Pipeline.predict does it: one shared downsample (counted in classify), then both networks.
        def classify(images):
            shrunk = pipeline.shrink(images)
            return pipeline.route(shrunk), shrunk

        routes, shrunk = timed("classify", classify, [lightness])
        small = timed("expert", pipeline.predict_small_ab, shrunk, routes)
        dtype = np.uint8 if output_bits(decoded) == 8 else np.float32
        rgb = timed("compose", compose_upsampled, lightness, small[0], pipeline.map_bands, dtype)
    output = outdir / f"{path.parent.name}_{path.name}"
    timed("encode", encode, rgb, decoded, output, True, f"benchmark, expert {routes[0].expert}")
    times["total"] = sum(times[s] for s in STAGES)
    times["cpu"] = time.process_time() - cpu_start
    # The I/O floor, on the same photo and the same output pixels, under the same load.
    pixels = rgb if rgb.dtype == np.uint8 else (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    del rgb, small, lightness
    start = time.perf_counter()
    decode(path)
    times["floor_decode"] = time.perf_counter() - start
    start = time.perf_counter()
    Image.fromarray(pixels, "RGB").save(outdir / f"floor_{path.name}", "JPEG", **JPEG_SETTINGS)
    times["floor_encode"] = time.perf_counter() - start
    times["floor"] = times["floor_decode"] + times["floor_encode"]
    return times


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median of each quantity over the timed passes."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {"runs": len(runs)}


if __name__ == "__main__":
    sys.exit(main())
