"""The seed systems' training recipes and ours, each given the same CPU budget.

"The same budget" means the same minutes of one CPU core, turned into optimiser steps before
any run starts: each recipe's training-step time is measured here on one thread (its real
network, batch and crop size, loss and optimiser, on random pixels: a step costs the same
whatever the pixels), and the budget is that many steps. Runs then train by step count, so
a busy machine makes them slower but not different.

    python benchmarks/recipes.py --minutes 30 DATA/landscape DATA/people DATA/general

prints each recipe's measured speed, its step budget, and the ``colorize train expert``
command that spends it (validation and the final scoring are not counted: they are the
same for every recipe's photos and are not training).
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    report: str
    arch: str
    loss: str
    size: int
    batch: int
    lr: float
    init: str
    ab_gain: str | None  # a fixed boost after the network; None: the gain is chosen on validation


# As each report trained its network, scaled to a CPU where the report gives no size: every
# crop is 128 px but pix2pix's, whose eight halvings need 256 (smaller sizes are padded to it).
RECIPES = {
    "seed-unet": Recipe("category-expert paper (U-Net)", "unet_seed", "mse", 128, 32, 2e-3, "scratch", "1.6,2"),
    "seed-cunet": Recipe("face report (CU-net)", "unet_dilated", "mse", 128, 32, 2e-3, "scratch", "1,1"),
    "seed-zhang": Recipe("landscape report (Zhang CNN)", "cnn_zhang", "mse", 128, 32, 2e-3, "scratch", "1,1"),
    "seed-pix2pix": Recipe("DIP report (pix2pix)", "unet_pix2pix", "l1", 256, 8, 2e-4, "scratch", "1,1"),
    "ours": Recipe("colorize (unet_lite, ImageNet encoder)", "unet_lite", "l1", 128, 32, 2e-3, "imagenet", None),
}


def seconds_per_step(model, inputs, loss_of, lr: float, steps: int, *, channels_last=True, bf16=False) -> float:
    """Median seconds of one AdamW step of ``model`` on ``inputs``, taken as ``colorize train``
    takes it: convolution weights channels-last unless told otherwise; ``bf16``: the forward
    pass under bfloat16 autocast. The first two steps allocate and pick kernels, and are not
    counted."""
    import torch

    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    times = []
    for step in range(steps + 2):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = model(inputs)
        loss = loss_of(output.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def random_batch(recipe: Recipe):
    """A batch of the recipe's size on random pixels (a step costs the same whatever the
    pixels): the network's input, and the recipe's loss of an output against a random target."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(0)
    lightness = torch.rand(recipe.batch, 1, recipe.size, recipe.size) * 2 - 1
    target = torch.rand(recipe.batch, 2, recipe.size, recipe.size) - 0.5

    def loss_of(output):
        error = F.interpolate(output, size=target.shape[-2:], mode="bilinear", align_corners=False) - target
        return (error.abs() if recipe.loss == "l1" else error**2).mean()

    return lightness, loss_of


def recipe_seconds_per_step(recipe: Recipe, steps: int, **layout) -> float:
    """``seconds_per_step`` of a recipe's real network, batch, crop, loss and optimiser."""
    from colorize.experts.architectures import create_architecture

    lightness, loss_of = random_batch(recipe)
    model = create_architecture(recipe.arch).train()
    return seconds_per_step(model, lightness, loss_of, recipe.lr, steps, **layout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="training folders, as for colorize train expert")
    parser.add_argument("--minutes", type=float, default=45.0, help="training budget per recipe, one core")
    parser.add_argument("--photos", type=int, required=True, help="training photos after the validation split")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per recipe")
    parser.add_argument("--only", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--no-malloc-tuning", action="store_true", help="leave glibc's malloc at its defaults")
    args = parser.parse_args()

    import torch

    from colorize.core.cpu import keep_freed_memory

    # As colorize train runs on the CPU (glibc keeping freed memory), on one thread.
    torch.set_num_threads(1)
    if not args.no_malloc_tuning:
        keep_freed_memory()
    print(f"{'recipe':<14} {'img/s':>6} {'steps':>6} {'epochs':>6}  command")
    for name in args.only:
        recipe = RECIPES[name]
        rate = recipe.batch / recipe_seconds_per_step(recipe, args.steps)
        steps = max(1, round(args.minutes * 60 * rate / recipe.batch))
        steps_per_epoch = math.ceil(args.photos / recipe.batch)
        epochs = math.ceil(steps / steps_per_epoch)
        command = [
            "colorize", "train", "expert", name, *map(str, args.data),
            "--arch", recipe.arch, "--init", recipe.init, "--loss", recipe.loss,
            "--size", str(recipe.size), "--batch-size", str(recipe.batch), "--lr", str(recipe.lr),
            "--epochs", str(epochs), "--max-steps", str(math.ceil(steps / epochs)),
        ]  # fmt: skip
        if recipe.ab_gain:
            command += ["--ab-gain", recipe.ab_gain]
        print(f"{name:<14} {rate:6.2f} {steps:6d} {epochs:6d}  {shlex.join(command)}", flush=True)


if __name__ == "__main__":
    main()
