"""Training on the CPU: photos/s by memory layout and precision, and whether the layout that
``colorize train`` uses changes what a run learns.

    python benchmarks/training_speed.py                          # step speed, 1 and 2 threads
    python benchmarks/training_speed.py --curve DATA/landscape --steps 30

Step speed: each network we train, with the recipe's batch, crop, loss and optimiser, on random
pixels (a step costs the same whatever the pixels), in four ways: plain float32 (NCHW), weights
channels-last (NHWC, what ``colorize train`` does), bfloat16 autocast, and both; then our
expert with its encoder frozen, its features computed each step or once and kept (what a
frozen-encoder phase of training would buy).

``--curve``: ``colorize train expert`` twice on the same photos with the same seed, once with
the weights in the plain layout and once channels-last (the default); prints each step's loss
side by side, the largest relative difference and each run's validation ΔE. Channels-last
changes the order of the sums inside each convolution, so the two curves agree closely, not
bit for bit.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from recipes import RECIPES, random_batch, recipe_seconds_per_step, seconds_per_step

LAYOUTS = {
    "float32": {"channels_last": False, "bf16": False},
    "channels-last": {"channels_last": True, "bf16": False},
    "bf16 autocast": {"channels_last": False, "bf16": True},
    "bf16 + channels-last": {"channels_last": True, "bf16": True},
}


def classifier_seconds_per_step(config: dict, steps: int, **layout) -> float:
    """The scene classifier as ``config`` (configs/classifier.toml) trains it, on random pixels."""
    import torch
    from torch.nn import functional as F

    from colorize.classifier.network import build_network

    model, training = config["model"], config["training"]
    torch.manual_seed(0)
    network = build_network(model["architecture"], len(model["labels"]), model["drop_rate"]).train()
    size, batch = model["input_size"], training["batch_size"]
    inputs = torch.randn(batch, 1, size, size)
    targets = torch.randint(0, len(model["labels"]), (batch,))
    loss_of = lambda logits: F.cross_entropy(logits, targets)  # noqa: E731
    return seconds_per_step(network, inputs, loss_of, training["lr"], steps, **layout)


def frozen_encoder_seconds_per_step(steps: int, cached: bool) -> float:
    """Our expert with its encoder frozen (``colorize train expert --freeze-encoder``): the
    decoder's step with the encoder's features computed each step, or, ``cached``, computed once
    and kept, as a run could keep them per photo and crop."""
    import torch

    from colorize.experts.architectures import create_architecture

    ours = RECIPES["ours"]
    lightness, loss_of = random_batch(ours)
    unet = create_architecture(ours.arch)
    unet.freeze_encoder()
    if not cached:
        return seconds_per_step(unet.train(), lightness, loss_of, ours.lr, steps)

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unet = unet

        def forward(self, features):
            return self.unet.decode(features)

    with torch.no_grad():
        features = unet.encoder(lightness.contiguous(memory_format=torch.channels_last))
    return seconds_per_step(Decoder().train(), features, loss_of, ours.lr, steps)


def step_speed(threads: list[int], steps: int) -> None:
    import torch

    from colorize.configs import load_config

    ours = RECIPES["ours"]
    classifier = load_config("classifier")
    networks = {
        f"expert {ours.arch}, batch {ours.batch} at {ours.size} px": (
            ours.batch,
            lambda **layout: recipe_seconds_per_step(ours, steps, **layout),
        ),
        f"classifier {classifier['model']['architecture']}, batch {classifier['training']['batch_size']} "
        f"at {classifier['model']['input_size']} px": (
            classifier["training"]["batch_size"],
            lambda **layout: classifier_seconds_per_step(classifier, steps, **layout),
        ),
    }
    print(f"{'network':<50} {'threads':>7} " + " ".join(f"{name:>21}" for name in LAYOUTS))
    for count in threads:
        torch.set_num_threads(count)
        for name, (batch, seconds) in networks.items():
            rates = [batch / seconds(**layout) for layout in LAYOUTS.values()]
            print(f"{name:<50} {count:>7} " + " ".join(f"{rate:15.1f} img/s" for rate in rates), flush=True)
        frozen = {
            "each step": ours.batch / frozen_encoder_seconds_per_step(steps, cached=False),
            "cached": ours.batch / frozen_encoder_seconds_per_step(steps, cached=True),
        }
        print(
            f"{'expert, encoder frozen (channels-last)':<50} {count:>7} "
            + ", ".join(f"features {how}: {rate:.1f} img/s" for how, rate in frozen.items()),
            flush=True,
        )


def curve(data: list[Path], steps: int, photos_limit: int) -> None:
    from colorize.pipelines.train_expert import ExpertTrainConfig, train_expert

    runs = {}
    for channels_last in (False, True):
        losses: list[float] = []
        times: list[float] = []

        def collect(event: str, **info) -> None:
            if event == "step" and info["loss"] is not None:
                losses.append(info["loss"])
                times.append(time.perf_counter())

        with tempfile.TemporaryDirectory() as scratch:
            config = ExpertTrainConfig.from_defaults(
                "speed-curve",
                data,
                init="imagenet",
                epochs=1,
                max_steps_per_epoch=steps,
                val_limit=photos_limit,
                channels_last=channels_last,
                out=Path(scratch) / "expert.safetensors",
                run_dir=Path(scratch) / "run",
                force=True,
            )
            installed = train_expert(config, callback=collect)
        metrics = installed.metadata["metrics"]
        # Steady state: the median interval between steps (data loading included), not the
        # epoch's average, which counts starting the loader and the first steps' allocations.
        seconds = statistics.median(b - a for a, b in itertools.pairwise(times))
        layout = "channels-last" if channels_last else "float32"
        runs[layout] = (losses, config.fit.batch_size / seconds, metrics["val_delta_e"])
    (plain, plain_rate, plain_delta_e), (nhwc, nhwc_rate, nhwc_delta_e) = runs.values()
    print(f"{'step':>4} {'float32':>9} {'channels-last':>13}")
    for step, (a, b) in enumerate(zip(plain, nhwc, strict=True), 1):
        print(f"{step:>4} {a:9.5f} {b:13.5f}")
    worst = max(abs(a - b) / abs(a) for a, b in zip(plain, nhwc, strict=True))
    print(f"largest relative difference of a step's loss: {worst:.2e}")
    print(f"photos/s, median step: float32 {plain_rate:.1f}, channels-last {nhwc_rate:.1f}")
    print(f"validation ΔE after {steps} steps: float32 {plain_delta_e:.3f}, channels-last {nhwc_delta_e:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts to time")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (with --curve: training steps)")
    parser.add_argument("--curve", type=Path, nargs="+", metavar="DATA", help="colour photo folders to train on")
    parser.add_argument("--val-photos", type=int, default=40, help="with --curve: validation photos scored")
    args = parser.parse_args()

    from colorize.core.cpu import keep_freed_memory

    keep_freed_memory()  # as colorize train runs on the CPU
    if args.curve:
        curve(args.curve, args.steps, args.val_photos)
    else:
        step_speed(args.threads, args.steps)


if __name__ == "__main__":
    main()
