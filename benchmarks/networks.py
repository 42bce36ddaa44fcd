"""Worker: forward-pass time of the expert architectures at one work size, in torch (where
they are trained) and in onnxruntime (where colorize runs them), and the bundled models' time.

- Architectures: timed with randomly initialised weights (a forward pass costs the same
  whatever the weight values): in torch (eval mode, ``torch.inference_mode``, plain and
  channels-last, ``--intra-op`` threads), then exported (experts/onnx_export.py, as
  ``colorize export`` writes them) and run by onnxruntime on one thread.
- Bundled models: the three experts and the classifier, as ``Pipeline`` loads them
  (experts/store.py, classifier/model.py), on one thread and on every core; the input is a
  real photo's L at the network's size.
- Hint planes: an expert that reads colour hints has four input planes (L, a, b, mask)
  instead of one. A randomly initialised ``unet_lite`` of the default expert's arguments is
  exported both ways and the two called in turn in onnxruntime: the hint planes enter the
  network through its first convolution only, so a photo with hints should cost what one
  without does.
- Spread hints: every expert follows colour hints by spreading them over its output
  (experts/hints.py). ``Pipeline.predict`` on a real photo with 0, 5 and 20 points, in turn:
  the spreading works at the expert's output size, so its cost should not depend on the photo.
- Engines: the default expert's real weights in onnxruntime beside the same weights in torch
  (the former engine; experts/networks.py reads them back from the ONNX file), and the change
  that makes to the output photos (CIEDE2000, and 8-bit levels of the composed photo).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from timing import median_ms

ARCHITECTURES = ("unet_lite", "unet_seed", "unet_pix2pix")
DEFAULT_EXPERT = "general"  # the routing fallback; every bundled expert shares its architecture


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", type=Path, required=True, help="photos for the inputs and the ΔE check")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--intra-op", type=int, default=1, help="torch's threads for the architectures")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], help="architectures not to time (e.g. unet_pix2pix)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    from colorize.core.cpu import available_cores
    from colorize.core.modelfile import read_metadata
    from colorize.experts.store import ModelStore

    torch.set_num_threads(args.intra_op)
    store = ModelStore()
    meta = read_metadata(store.source(DEFAULT_EXPERT).path).metadata
    size = int(meta["work_size"])
    cores = available_cores()
    result = {
        "work_size": size,
        "batch": args.batch,
        "intra_op_threads": args.intra_op,
        "cores": cores,
        "default_expert": {"name": DEFAULT_EXPERT, "architecture": meta["architecture"]},
        "architectures": {},
    }
    for name in ARCHITECTURES:
        if name not in args.skip:
            arguments = meta["arguments"] if name == meta["architecture"] else {}
            result["architectures"][name] = time_architecture(name, arguments, size, args.batch, args.reps)
    lights = [_lightness(path) for path in args.photos]
    result["bundled"] = time_bundled(store, lights, args.batch, args.reps, cores)
    result["hint_planes"] = time_hint_planes(meta, size, args.batch, args.reps, cores)
    result["spread_hints"] = time_spread_hints(lights, args.reps)
    result["engines"] = compare_engines(store, lights, args.batch, args.reps)
    args.json.write_text(json.dumps(result, indent=1))


def _lightness(path: Path) -> np.ndarray:
    from colorize.core.images import decode

    return decode(path).lightness()


def _onnx_network(network, channels: int, metadata: dict, threads: int, square: int | None = None):
    """A torch network as colorize exports it, loaded as Pipeline loads a model."""
    from colorize.core.onnx import OnnxNetwork
    from colorize.experts.onnx_export import onnx_bytes

    data = onnx_bytes(network, channels, metadata, square)
    return OnnxNetwork(data, Path(f"{metadata['architecture']}.onnx"), threads), len(data)


def time_architecture(name: str, arguments: dict, size: int, batch: int, reps: int) -> dict:
    import torch

    from colorize.experts.architectures import create_architecture

    torch.manual_seed(0)
    network = create_architecture(name, **arguments).eval()
    x = torch.randn(batch, 1, size, size)
    with torch.inference_mode():
        out_shape = tuple(network(x).shape)
        plain = median_ms(lambda: network(x), reps)
        network.to(memory_format=torch.channels_last)
        channels_last = median_ms(lambda: network(x), reps)
    network.to(memory_format=torch.contiguous_format)
    metadata = {"kind": "expert", "architecture": name, "arguments": arguments, "work_size": size}
    square = size if getattr(network, "exports_at_one_size", False) else None
    onnx, onnx_bytes = _onnx_network(network, 1, metadata, threads=1, square=square)
    inputs = x.numpy()
    return {
        "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6,
        "output": out_shape[-2:],
        "ms": plain,
        "ms_channels_last": channels_last,
        "ms_onnx_1_thread": median_ms(lambda: onnx(inputs), reps),
        "onnx_mb": onnx_bytes / 1e6,
        "weights": "random (speed does not depend on weight values)",
    }


def time_bundled(store, lights: list[np.ndarray], batch: int, reps: int, cores: int) -> dict:
    """Forward ms of each bundled expert and the classifier in onnxruntime, 1 thread and every core."""
    from colorize.classifier.model import SceneClassifier
    from colorize.core.color import resize_square

    rows = {}
    thread_counts = sorted({1, cores})
    for name in store.names():
        row = {}
        for threads in thread_counts:
            expert = store.load(name, threads)
            lightness = _batch(lights, expert.work_size, batch, resize_square)
            # A network that reads hint planes gets empty ones, as a photo without hints does.
            hints = np.zeros((batch, 3, *lightness.shape[2:]), np.float32) if expert.reads_hints else None
            inputs = expert.normalization.network_input(lightness, hints)
            row[f"ms_{threads}_thread"] = median_ms(lambda: expert.network(inputs), reps)
        row["work_size"] = expert.work_size
        row["architecture"] = expert.model_file.metadata["architecture"]
        rows[f"expert {name}"] = row
    source = store.classifier_source()
    if source is not None:
        row = {}
        for threads in thread_counts:
            classifier = SceneClassifier.from_file(source.path, threads)
            inputs = np.concatenate([classifier.prepare(light) for light in _repeat(lights, batch)])
            row[f"ms_{threads}_thread"] = median_ms(lambda: classifier.network(inputs), reps)
        row["work_size"] = classifier.preprocessing.input_size
        row["architecture"] = classifier.model_file.metadata["architecture"]
        rows["classifier"] = row
    return rows


def _repeat(lights: list[np.ndarray], batch: int) -> list[np.ndarray]:
    return [lights[i % len(lights)] for i in range(batch)]


def _batch(lights: list[np.ndarray], size: int, batch: int, resize_square) -> np.ndarray:
    return np.concatenate([resize_square(light, size) for light in _repeat(lights, batch)])


def time_hint_planes(meta: dict, size: int, batch: int, reps: int, cores: int) -> dict:
    """ONNX forward ms of the default expert's architecture with 4 input planes (hints) and with 1.

    The two are called in turn, call after call, so that a change in the machine's load
    meanwhile weighs on both alike."""
    import torch

    from colorize.experts.architectures import create_architecture

    inputs = np.random.default_rng(0).normal(0, 1, (batch, 4, size, size)).astype(np.float32)
    variants = {"without": False, "with hint planes": True}
    rows = {label: {"input_planes": 4 if hints else 1} for label, hints in variants.items()}
    for threads in sorted({1, cores}):
        runs = {}
        for label, hints in variants.items():
            arguments = {**meta["arguments"], "hints": hints}
            torch.manual_seed(0)
            network = create_architecture(meta["architecture"], **arguments).eval()
            metadata = {
                "kind": "expert",
                "architecture": meta["architecture"],
                "arguments": arguments,
                "work_size": size,
            }
            channels = rows[label]["input_planes"]
            onnx, _ = _onnx_network(network, channels, metadata, threads)
            planes = np.ascontiguousarray(inputs[:, :channels])
            runs[label] = lambda onnx=onnx, planes=planes: onnx(planes)
        for label, ms in _interleaved_ms(runs, max(10, 3 * reps)).items():
            rows[label][f"ms_{threads}_thread"] = ms
    return rows


def time_spread_hints(lights: list[np.ndarray], reps: int) -> dict:
    """``Pipeline.predict`` ms (route, expert, spreading) for the largest photo, with 0, 5 and 20
    points placed at random, called in turn."""
    from colorize.experts.hints import Hint
    from colorize.pipelines.inference import Pipeline

    pipeline = Pipeline.from_config()
    light = max(lights, key=lambda plane: plane.size)
    places = np.random.default_rng(0).random((20, 2))
    runs = {}
    for count in (0, 5, 20):
        hints = [[Hint(float(x), float(y), "#b22222", radius=4, relative=True) for x, y in places[:count]]]
        runs[f"{count} hints"] = lambda hints=hints: pipeline.predict([light], hints)
    return {"megapixels": light[0].size / 1e6, "ms": _interleaved_ms(runs, max(10, 3 * reps))}


def compare_engines(store, lights: list[np.ndarray], batch: int, reps: int) -> dict:
    """The default expert's real weights in onnxruntime (1 thread) and in torch (1 thread, plain
    and channels-last): forward ms, and how far the photos composed from each lie from torch's."""
    import torch

    from colorize.core.color import compose_upsampled, resize_square
    from colorize.experts.networks import load_model_file

    expert = store.load(DEFAULT_EXPERT, 1)
    _, torch_network = load_model_file(expert.model_file.path)
    norm = expert.normalization
    size = expert.work_size
    smalls = [resize_square(light, size) for light in lights]
    x = np.concatenate(_repeat(smalls, batch))

    def onnx_run(inputs: np.ndarray) -> np.ndarray:
        return norm.chroma(expert.network(norm.network_input(inputs)))

    def torch_run(inputs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return norm.chroma(torch_network(norm.network_input(torch.from_numpy(inputs)))).numpy()

    def channels_last_run(inputs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            planes = norm.network_input(torch.from_numpy(inputs)).contiguous(memory_format=torch.channels_last)
            return norm.chroma(torch_network(planes)).numpy()

    def photos_with(run, dtype) -> list[np.ndarray]:
        return [compose_upsampled(light, run(small)[0], dtype) for light, small in zip(lights, smalls)]

    reference = photos_with(torch_run, np.float32)
    reference_8bit = photos_with(torch_run, np.uint8)
    results = {}
    for label, run in (
        ("torch float32 (former engine)", torch_run),
        ("torch channels-last", channels_last_run),
        ("onnxruntime (colorize)", onnx_run),
    ):
        if label == "torch channels-last":
            torch_network.to(memory_format=torch.channels_last)
        ms = median_ms(lambda: run(x), reps)
        levels = max(
            int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(reference_8bit, photos_with(run, np.uint8))
        )
        results[label] = {"ms": ms, **_delta_e(reference, photos_with(run, np.float32)), "max_levels": levels}
    return results


def _delta_e(reference: list[np.ndarray], images: list[np.ndarray]) -> dict:
    from skimage.color import deltaE_ciede2000, rgb2lab

    values = np.concatenate([deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).ravel() for a, b in zip(reference, images)])
    return {"delta_e_mean": float(values.mean()), "delta_e_max": float(values.max())}


def _interleaved_ms(functions: dict, reps: int) -> dict[str, float]:
    """Median ms of each function, called in turn ``reps`` times after one warm-up call each."""
    times: dict[str, list[float]] = {label: [] for label in functions}
    for function in functions.values():
        function()
    for _ in range(reps):
        for label, function in functions.items():
            start = time.perf_counter()
            function()
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) * 1000 for label, values in times.items()}


if __name__ == "__main__":
    sys.exit(main())
