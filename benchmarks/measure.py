"""Worker: per-image wall time by stage through the real ``Pipeline`` API, and the I/O floor.

Run by ``run.py`` in a fresh process per configuration (onnxruntime's threads are fixed when
a network is loaded, malloc tuning is process-wide), e.g.::

    python benchmarks/measure.py --photos a.jpg b.jpg --reps 3 --outdir out --json out.json
    python benchmarks/measure.py --photos a.jpg --network-threads 1 --threads all ...

Stages of one photo, in the order the CLI runs them: decode (core.images.decode), lightness
(DecodedImage.lightness), classify (Pipeline.shrink, the one downsample of L that both
networks read, + Pipeline.route), expert (Pipeline.predict_small_ab: resize to the work
size when it differs + the ONNX network), compose (chroma upsample + LAB -> RGB at full
size, straight to 8 bits for an 8-bit output, as ``colorize auto`` does), encode
(core.images.encode: JPEG, atomic write). The I/O floor is measured in the same loop:
decoding the same file and writing the same output pixels as a JPEG with encode's settings
— no model, no colour maths.
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
JPEG_SETTINGS = {"quality": 95, "subsampling": 0}  # what core.images.encode writes for a JPEG source


def thread_count(text: str) -> int:
    """``all`` (every core this process may use) or a positive number."""
    from colorize.core.cpu import available_cores

    if text == "all":
        return available_cores()
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected 'all' or a positive number, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3, help="timed passes over the photos (after one warm-up pass)")
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        help="the pipeline's threads, as `colorize auto --threads` ('all' or N; default every core)",
    )
    parser.add_argument(
        "--network-threads",
        type=thread_count,
        default=None,
        help="onnxruntime's threads for the classifier and experts alone ('all' or N; default: --threads); "
        "the full-resolution work keeps --threads",
    )
    parser.add_argument(
        "--no-spinning",
        action="store_true",
        help="onnxruntime's threads sleep between calls instead of spinning (session.intra_op.allow_spinning=0)",
    )
    parser.add_argument("--no-malloc-tuning", action="store_true", help="leave glibc's malloc at its defaults")
    parser.add_argument("--expert", default=None, help="force this installed expert (default: routed)")
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    pipeline, settings = build_pipeline(
        args.threads, args.network_threads, not args.no_malloc_tuning, args.expert, not args.no_spinning
    )
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = {"settings": settings, "photos": {}}
    for path in args.photos:
        runs = [time_one(pipeline, path, args.outdir) for _ in range(args.reps + 1)][1:]  # first: warm-up
        results["photos"][str(path)] = summarise(runs)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["torch_imported"] = "torch" in sys.modules
    args.json.write_text(json.dumps(results, indent=1))


def build_pipeline(
    threads: int | None,
    network_threads: int | None,
    malloc: bool,
    expert: str | None = None,
    spinning: bool = True,
):
    """The pipeline as the CLI builds it (``tune`` as the CLI asks), with this run's threads.

    The networks take their thread count when they are loaded, from ``Pipeline.threads``, and
    the full-resolution work reads it at every call: so the networks are loaded with
    ``network_threads`` first, then the pipeline is given ``threads``. Every expert is loaded
    up front, so that each configuration holds the same models whatever the photos route to."""
    import onnxruntime

    from colorize.core.cpu import available_cores
    from colorize.pipelines.inference import Pipeline

    threads = threads or available_cores()  # as Pipeline and `colorize auto` default
    pipeline = Pipeline.from_config(threads=network_threads or threads, expert=expert, tune=malloc)
    experts = [expert] if expert else pipeline.available
    for name in experts:
        pipeline.expert(name)
    pipeline.threads = threads
    if not spinning:
        networks = [pipeline.expert(name).network for name in experts]
        if pipeline.classifier is not None:
            networks.append(pipeline.classifier.network)
        for network in networks:
            _without_spinning(network)
    settings = {
        "threads": pipeline.threads,
        "network_threads": network_threads or threads,
        "onnxruntime_spinning": spinning,
        "malloc_tuned": malloc,
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "(unset: every core)"),
        "onnxruntime": onnxruntime.__version__,
        "providers": list(pipeline.providers),
        "experts_loaded": experts,
    }
    return pipeline, settings


def _without_spinning(network) -> None:
    """The same ONNX session again, with its intra-op threads sleeping between calls."""
    import onnxruntime

    old = network.session
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = old.get_session_options().intra_op_num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    data = network.path.read_bytes() if network.path.suffix == ".onnx" else None
    if data is None:
        raise SystemExit(f"--no-spinning needs ONNX model files; {network.path} is not one")
    network.session = onnxruntime.InferenceSession(data, options, providers=old.get_providers())


def time_one(pipeline, path: Path, outdir: Path) -> dict[str, float]:
    from PIL import Image

    from colorize.core.color import compose_upsampled
    from colorize.core.images import decode, encode, output_bits

    times: dict[str, float] = {}
    cpu_start = time.process_time()

    def timed(stage, function, *args):
        start = time.perf_counter()
        value = function(*args)
        times[stage] = time.perf_counter() - start
        return value

    decoded = timed("decode", decode, path)
    lightness = timed("lightness", decoded.lightness)

    # As Pipeline.predict does it: one shared downsample (counted in classify), then both networks.
    def classify(images):
        shrunk = pipeline.shrink(images)
        return pipeline.route(shrunk), shrunk

    routes, shrunk = timed("classify", classify, [lightness])
    small = timed("expert", pipeline.predict_small_ab, shrunk, routes)
    dtype = np.uint8 if output_bits(decoded) == 8 else np.float32
    rgb = timed("compose", compose_upsampled, lightness, small[0], dtype, pipeline.map_bands)
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
