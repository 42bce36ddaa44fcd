"""Worker: the full-resolution numpy kernels at 12 MP, the plain way beside the way the pipeline runs them.

Each row times one step of the pipeline on the same real photo: computed by the reference
formulas of core/color.py (a full-size array per step), then as the pipeline computes it
(tables, tiles that stay in cache, straight to 8 bits, on one thread and on every core),
and checks that the answers agree. ``run.py`` runs this in a fresh process.
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

    from colorize.core.cpu import available_cores, keep_freed_memory

    if not args.no_malloc_tuning:
        keep_freed_memory()  # as the command line runs
    rows = []
    for name, variants, check in _rows(args.photo, available_cores()):
        timings = {label: _median_time(function, args.reps) for label, function in variants.items()}
        rows.append({"kernel": name, "ms": {k: v * 1000 for k, v in timings.items()}, "check": check()})
    args.json.write_text(json.dumps({"rows": rows, "photo": str(args.photo)}, indent=1))


def _median_time(function, reps: int) -> float:
    function()  # warm-up: lazy tables, first touch of memory
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rows(photo: Path, cores: int):
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image
    from skimage import color as skcolor

    from colorize.core import color
    from colorize.core.images import to_8bit

    gray8 = np.array(Image.open(photo).convert("L"))
    gray_float = gray8.astype(np.float32) / np.float32(255)
    lightness = color.gray_to_lightness(gray8)[None]
    height, width = gray8.shape
    # A smooth, saturated chroma field like a network's, at the expert's output size.
    noise = np.random.default_rng(0).normal(0, 25, (2, 14, 14)).astype(np.float32)
    small_ab = color.resize_bilinear(noise, (112, 112), antialias=False)
    pool = ThreadPoolExecutor(cores)

    def formulas_compose() -> np.ndarray:
        ab = color.resize_bilinear(small_ab, (height, width), antialias=False)
        return color.lab_to_rgb(np.concatenate((lightness, ab)).transpose(1, 2, 0))

    def gray_check():
        reference = skcolor.rgb2lab(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, -1))[0, :, 0]
        table = color.gray_to_lightness(np.arange(256, dtype=np.uint8))
        formula = color.gray_to_lightness(np.arange(256, dtype=np.float32) / np.float32(255))
        return {
            "table_max_diff_L": float(np.abs(table - reference).max()),
            "formula_max_diff_L": float(np.abs(formula - reference).max()),
        }

    def compose_check():
        reference = formulas_compose()
        crop = np.concatenate(
            (lightness[:, :512, :512], color.resize_bilinear(small_ab, (height, width))[:, :512, :512])
        )
        with warnings.catch_warnings():  # skimage warns when it clips out-of-gamut z, as we do too
            warnings.simplefilter("ignore")
            skimage_rgb = skcolor.lab2rgb(crop.transpose(1, 2, 0).astype(np.float64))
        fused = color.compose_upsampled(lightness, small_ab, np.float32, pool.map)
        eight = color.compose_upsampled(lightness, small_ab, np.uint8, pool.map)
        return {
            "formulas_vs_skimage_levels": float(
                np.abs(color.lab_to_rgb(crop.transpose(1, 2, 0)) - skimage_rgb).max() * 255
            ),
            "float32_vs_formulas_levels": float(np.abs(fused - reference).max() * 255),
            "uint8_vs_formulas_levels": int(np.abs(eight.astype(np.int16) - _to_8bit_plain(reference)).max()),
        }

    rgb_out = color.compose_upsampled(lightness, small_ab)  # float32 (H, W, 3), as an encoder may get it

    yield (
        "gray -> L (12 MP)",
        {
            "formula (float input)": lambda: color.gray_to_lightness(gray_float),
            "256-entry table (uint8 input, as decode gives)": lambda: color.gray_to_lightness(gray8),
        },
        gray_check,
    )
    yield (
        "ab upsample + LAB -> RGB (H, W, 3) (12 MP)",
        {
            "formulas: full-size ab + lab_to_rgb": formulas_compose,
            "compose_upsampled float32, 1 thread": lambda: color.compose_upsampled(lightness, small_ab),
            f"compose_upsampled float32, {cores} threads": lambda: color.compose_upsampled(
                lightness, small_ab, np.float32, pool.map
            ),
            "compose_upsampled uint8, 1 thread": lambda: color.compose_upsampled(lightness, small_ab, np.uint8),
            f"compose_upsampled uint8, {cores} threads (colorize auto)": lambda: color.compose_upsampled(
                lightness, small_ab, np.uint8, pool.map
            ),
        },
        compose_check,
    )
    yield (
        "L -> 224 x 224 antialiased (12 MP; Pipeline.shrink)",
        {"resize_square": lambda: color.resize_square(lightness, 224)},
        lambda: {"mean_L_change": float(abs(color.resize_square(lightness, 224).mean() - lightness.mean()))},
    )
    yield (
        "float RGB -> 8 bit for the encoder (12 MP)",
        {
            "plain expression": lambda: _to_8bit_plain(rgb_out),
            "by bands (core.images.to_8bit)": lambda: to_8bit(rgb_out),
        },
        lambda: {"identical": bool((_to_8bit_plain(rgb_out) == to_8bit(rgb_out)).all())},
    )


def _to_8bit_plain(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


if __name__ == "__main__":
    sys.exit(main())
