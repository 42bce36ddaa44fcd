"""Worker: forward-pass time of the expert architectures at one work size, and what the
CPU-side options (channels-last, bfloat16 autocast, torch.compile) cost or save.

The three architectures are timed with randomly initialised weights (a forward pass
costs the same whatever the weight values), in eval mode under ``torch.inference_mode``.
The options are then tried on the real default expert (its bundled weights), and their
effect on the *output photos* is measured as CIEDE2000 against the plain float32 run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ARCHITECTURES = ("unet_lite", "unet_seed", "unet_pix2pix")
DEFAULT_EXPERT = "general"  # the routing fallback; every bundled expert shares its architecture


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", type=Path, required=True, help="photos for the ΔE check")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--intra-op", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], help="architectures not to time (e.g. unet_pix2pix)")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (slow to compile)")
    parser.add_argument("--bf16", action="store_true", help="also try bfloat16 autocast")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    from colorize.experts.store import ModelStore

    torch.set_num_threads(args.intra_op)
    expert = ModelStore().load(DEFAULT_EXPERT)
    size = expert.work_size
    meta = expert.model_file.metadata
    result = {
        "work_size": size,
        "batch": args.batch,
        "intra_op_threads": args.intra_op,
        "default_expert": {"name": DEFAULT_EXPERT, "architecture": meta["architecture"]},
        "architectures": {},
    }
    for name in ARCHITECTURES:
        if name not in args.skip:
            arguments = meta["arguments"] if name == meta["architecture"] else {}
            result["architectures"][name] = time_architecture(name, arguments, size, args.batch, args.reps)
    result["options"] = try_options(expert, args.photos, args.batch, args.reps, args.bf16, args.compile)
    args.json.write_text(json.dumps(result, indent=1))


def time_architecture(name: str, arguments: dict, size: int, batch: int, reps: int) -> dict:
    import torch

    from colorize.experts.architectures import create_architecture

    torch.manual_seed(0)
    network = create_architecture(name, **arguments).eval()
    x = torch.randn(batch, 1, size, size)
    with torch.inference_mode():
        out_shape = tuple(network(x).shape)
        plain = _median_ms(lambda: network(x), reps)
        network.to(memory_format=torch.channels_last)
        channels_last = _median_ms(lambda: network(x), reps)
    return {
        "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6,
        "output": out_shape[-2:],
        "ms": plain,
        "ms_channels_last": channels_last,
        "weights": "random (speed does not depend on weight values)",
    }


def try_options(expert, photos: list[Path], batch: int, reps: int, bf16: bool, compile_: bool) -> dict:
    """Forward time of the real default expert per option, and ΔE of its photos vs plain float32."""
    import torch

    from colorize.core.images import decode
    from colorize.pipelines._cpu import compose_upsampled

    size = expert.work_size
    lights = [decode(p).lightness() for p in photos]
    smalls = torch.cat(
        [
            torch.nn.functional.interpolate(light[None], size=(size, size), mode="bilinear", antialias=True)
            for light in lights
        ]
    )
    x = smalls[:batch] if batch <= len(lights) else smalls[:1].expand(batch, -1, -1, -1).contiguous()
    network = expert.network

    def photos_with(run):
        with torch.inference_mode():
            ab = torch.cat([run(smalls[i : i + 1]) for i in range(len(lights))]).float()
            return [compose_upsampled(light, a) for light, a in zip(lights, ab)]

    def predict(inputs):
        return expert.normalization.chroma(network(expert.normalization.network_input(inputs)))

    options = {"float32": predict}

    def channels_last(inputs):
        return predict(inputs.contiguous(memory_format=torch.channels_last))

    options["channels_last"] = channels_last
    if bf16:

        def autocast(inputs):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return predict(inputs)

        options["bf16_autocast"] = autocast
    results = {}
    reference = None
    for label, run in options.items():
        if label != "float32":
            network.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            ms = _median_ms(lambda: run(x), reps if label != "bf16_autocast" else 2)
        images = photos_with(run)
        reference = reference or images
        results[label] = {"ms": ms, **_delta_e(reference, images)}
    if compile_:
        results["torch_compile"] = _try_compile(expert, x, reps, photos_with, reference)
    return results


def _try_compile(expert, x, reps, photos_with, reference) -> dict:
    import torch

    try:
        compiled = torch.compile(expert.network)

        def run(inputs):
            return expert.normalization.chroma(compiled(expert.normalization.network_input(inputs)))

        started = time.perf_counter()
        with torch.inference_mode():
            run(x)
        compile_s = time.perf_counter() - started
        with torch.inference_mode():
            ms = _median_ms(lambda: run(x), reps)
        return {"ms": ms, "compile_s": compile_s, **_delta_e(reference, photos_with(run))}
    except Exception as error:  # no compiler, unsupported platform: report, do not fail the run
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}


def _delta_e(reference: list[np.ndarray], images: list[np.ndarray]) -> dict:
    from skimage.color import deltaE_ciede2000, rgb2lab

    values = np.concatenate([deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).ravel() for a, b in zip(reference, images)])
    return {"delta_e_mean": float(values.mean()), "delta_e_max": float(values.max())}


def _median_ms(function, reps: int) -> float:
    function()  # warm-up: oneDNN picks and caches its kernels on the first call
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


if __name__ == "__main__":
    sys.exit(main())
