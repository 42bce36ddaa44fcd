"""The numpy kernels of core.color beside the torch ones of the former engine, at 12 MP, one thread.

    python benchmarks/numpy_kernels.py [--reps 9] [--blas-threads 1]

Times ``compose_upsampled`` (L 4000 x 3000 + ab 224 x 224 -> RGB, uint8 and float32) and
``resize_square`` (L 4000 x 3000 -> 224 x 224), numpy (colorize.core.color, what inference
runs) beside torch (the fused ``lab_planes_to_rgb`` of experts/color.py after a full-size
``F.interpolate``, and ``F.interpolate(antialias=True)``: the kernels the torch engine ran,
which training keeps), on a real photo, and checks that the two agree. Needs torch (the
``train`` extra). Each number is the median of ``--reps`` calls after one warm-up call.
numpy's BLAS (the resize's matrix products) runs on ``--blas-threads`` threads, torch on
one: the pipeline parallelises coarsely (tiles over worker threads), not inside each
kernel. The load average printed first says how busy the machine was; other programs'
load inflates both columns.
"""

from __future__ import annotations

import argparse
import os
import sys

from timing import median_ms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    # OpenBLAS reads its thread count once, when numpy is first imported.
    if "numpy" in sys.modules:
        raise SystemExit("run this as a script: numpy must not be imported before the BLAS thread count is set")
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)

    import numpy as np
    import torch
    from torch.nn import functional as F

    from colorize.core import color
    from colorize.experts.color import lab_planes_to_rgb

    torch.set_num_threads(1)
    lightness, small_ab = _photo()
    torch_lightness, torch_ab = torch.from_numpy(lightness), torch.from_numpy(small_ab)

    def torch_compose(dtype):
        with torch.inference_mode():
            ab = F.interpolate(torch_ab[None], size=lightness.shape[-2:], mode="bilinear", align_corners=False)[0]
            out = torch.empty(*lightness.shape[-2:], 3, dtype=torch.uint8 if dtype == np.uint8 else torch.float32)
            return lab_planes_to_rgb(torch_lightness[0], ab[0], ab[1], out=out).numpy()

    def torch_resize():
        with torch.inference_mode():
            return F.interpolate(
                torch_lightness[None], size=(224, 224), mode="bilinear", antialias=True, align_corners=False
            ).numpy()

    rows = [
        (
            "compose 12 MP -> uint8",
            lambda: color.compose_upsampled(lightness, small_ab, dtype=np.uint8),
            lambda: torch_compose(np.uint8),
            "levels",
        ),
        (
            "compose 12 MP -> float32",
            lambda: color.compose_upsampled(lightness, small_ab, dtype=np.float32),
            lambda: torch_compose(np.float32),
            "",
        ),
        (
            "resize_square 12 MP -> 224",
            lambda: color.resize_square(lightness, 224),
            torch_resize,
            "L",
        ),
    ]
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"numpy {np.__version__}, BLAS threads {args.blas_threads}; torch {torch.__version__}, 1 thread")
    print(f"median of {args.reps} calls, ms\n")
    print(f"{'kernel':28} {'numpy':>8} {'torch':>8} {'torch/numpy':>12}  max |numpy - torch|")
    for name, ours, theirs, unit in rows:
        difference = np.abs(ours().astype(np.float64) - theirs()).max()
        ours_ms, theirs_ms = median_ms(ours, args.reps), median_ms(theirs, args.reps)
        print(f"{name:28} {ours_ms:8.1f} {theirs_ms:8.1f} {theirs_ms / ours_ms:11.2f}x  {difference:.3g} {unit}")


def _photo():
    """L of scikit-image's astronaut at 4000 x 3000 (Lanczos), and its own ab at 224 x 224."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from colorize.core import color

    photo = Image.fromarray(data.astronaut()).crop((0, 64, 512, 448))  # 4:3
    gray = np.asarray(photo.convert("L").resize((4000, 3000), Image.LANCZOS))
    lightness = color.lightness_from_array(gray)
    small = np.asarray(photo.resize((224, 224), Image.BILINEAR))
    small_ab = np.ascontiguousarray(color.rgb_to_lab(small)[..., 1:].transpose(2, 0, 1))
    return lightness, small_ab


if __name__ == "__main__":
    main()
