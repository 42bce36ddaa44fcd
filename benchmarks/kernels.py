"""Worker: the full-resolution kernels at 12 MP, before and after each optimisation.

Each row times one step of the pipeline on the same real photo, the way it was computed
before (the plain formula path, which training still uses for its gradients) and the
way it is computed now, and checks that the answers agree. ``run.py`` runs this in a
fresh process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-malloc-tuning", action="store_true")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    from colorize.pipelines._cpu import available_cores, tune_cpu

    tune_cpu(1, keep_freed_memory=not args.no_malloc_tuning)
    rows = []
    with torch.inference_mode():
        for row in _rows(args.photo, available_cores()):
            name, variants, check = row
            timings = {label: _median_time(function, args.reps) for label, function in variants.items()}
            rows.append({"kernel": name, "ms": {k: v * 1000 for k, v in timings.items()}, "check": check()})
    args.json.write_text(json.dumps({"rows": rows, "photo": str(args.photo)}, indent=1))


def _median_time(function, reps: int) -> float:
    function()  # warm-up: lazy tables, first-touch of memory
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rows(photo: Path, cores: int):
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from PIL import Image
    from skimage import color as skcolor
    from torch.nn import functional as F

    from colorize.experts import color
    from colorize.pipelines._cpu import compose_upsampled

    gray8 = np.array(Image.open(photo).convert("L"))
    gray_u8 = torch.from_numpy(gray8)[None]
    gray_float = gray_u8.float() / 255
    lightness = color.gray_to_lightness(gray_u8)
    height, width = gray8.shape
    # A smooth, saturated chroma field like a network's, at the expert's output size.
    small_ab = torch.from_numpy(np.random.default_rng(0).normal(0, 25, (2, 14, 14)).astype(np.float32))
    small_ab = F.interpolate(small_ab[None], size=(112, 112), mode="bicubic", align_corners=False)[0]
    full_ab = F.interpolate(small_ab[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    lab = torch.cat((lightness, full_ab))

    def before_compose():
        ab = F.interpolate(small_ab[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        return color._lab_to_rgb_formula(torch.cat((lightness, ab))).permute(1, 2, 0).numpy()

    pool = ThreadPoolExecutor(cores)

    def lab_check():
        crop = lab[:, :512, :512].permute(1, 2, 0).double().numpy()
        ours = color.lab_to_rgb(lab[:, :512, :512]).permute(1, 2, 0).numpy()
        with warnings.catch_warnings():  # skimage warns when it clips out-of-gamut z, as we do too
            warnings.simplefilter("ignore")
            reference = skcolor.lab2rgb(crop)
        return {"max_diff_vs_skimage_levels": float(np.abs(ours - reference).max() * 255)}

    def compose_check():
        diff = np.abs(compose_upsampled(lightness, small_ab, pool.map) - before_compose()).max()
        return {"max_diff_levels": float(diff * 255)}

    def gray_check():
        reference = skcolor.rgb2lab(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, -1))[0, :, 0]
        table = color.gray_to_lightness(torch.arange(256, dtype=torch.uint8)[None]).numpy()[0]
        fused = color.gray_to_lightness(torch.arange(256)[None].float() / 255).numpy()[0]
        return {
            "table_max_diff_L": float(np.abs(table - reference).max()),
            "fused_max_diff_L": float(np.abs(fused - reference).max()),
        }

    def to_8bit_check():
        rgb = rgb_out
        return {"identical": bool((_to_8bit_now(rgb) == _to_8bit_banded(rgb)).all())}

    rgb_out = compose_upsampled(lightness, small_ab)  # contiguous (H, W, 3), as the pipeline hands it over
    yield (
        "gray -> L (12 MP)",
        {
            "formula (float)": lambda: color._gray_to_lightness_formula(gray_float),
            "fused (float, as imageio calls it)": lambda: color.gray_to_lightness(gray_u8.float() / 255),
            "256-entry table (uint8)": lambda: color.gray_to_lightness(gray_u8),
        },
        gray_check,
    )
    yield (
        "LAB -> RGB (12 MP)",
        {
            "formula": lambda: color._lab_to_rgb_formula(lab),
            "fused": lambda: color.lab_to_rgb(lab),
        },
        lab_check,
    )
    yield (
        "ab upsample + LAB -> RGB (H, W, 3) (12 MP)",
        {
            "before: full-size ab + formula": before_compose,
            "banded, 1 thread": lambda: compose_upsampled(lightness, small_ab),
            f"banded, {cores} threads": lambda: compose_upsampled(lightness, small_ab, pool.map),
        },
        compose_check,
    )
    yield (
        "float RGB -> 8 bit for the encoder (12 MP)",
        {
            "plain expression": lambda: _to_8bit_now(rgb_out),
            "by bands (imageio)": lambda: _to_8bit_banded(rgb_out),
        },
        to_8bit_check,
    )


def _to_8bit_banded(rgb: np.ndarray) -> np.ndarray:
    from colorize.core.images import to_8bit  # what imageio writes with now

    return to_8bit(rgb)


def _to_8bit_now(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)  # the plain expression it replaced


if __name__ == "__main__":
    sys.exit(main())
