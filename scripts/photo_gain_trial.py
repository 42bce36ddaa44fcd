"""Could the general expert's output gain be chosen per photo instead of once for all?

``measure``: for each photo of a folder (at most N per category and source), the expert's
ab at gain 1, features of L and of that ab, and the mean CIEDE2000 to the truth at the
expert's output size (112 x 112, the photo squashed as the network sees it) for every gain
of a grid, the file's shift applied as it ships. A proxy of ``colorize eval``: no RGB round
trip, no full-size composition; good enough to tell whether a per-photo gain is worth
building.

``fit``: on the training-side file, a linear model of the gain from a set of features,
fitted to the ΔE curves themselves (each category and source weighing the same), then
scored on the choosing-side file by the macro mean of the protocol (the faces routed to
the people expert left out), beside fixed gains and the per-photo best gain. Then the same
from what the expert itself sees: the mean and spread over the photo of each of its
encoder's last 320 channels (a head on the network, fitted with torch, at a few
regularisations).

    python scripts/photo_gain_trial.py measure .data/protocol/train train.npz --per-source 250
    python scripts/photo_gain_trial.py measure .data/protocol/choosing choosing.npz
    python scripts/photo_gain_trial.py fit train.npz choosing.npz
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

import numpy as np

from colorize.pipelines.evaluate import GRAY

sys.path.insert(0, str(Path(__file__).parent))
from protocol import SEPARATOR  # noqa: E402
from protocol import macro as protocol_macro  # noqa: E402

GAINS = np.round(np.arange(0, 1.61, 0.1), 2)
FEATURES = ("L mean", "L std", "L 5-95 % range", "L gradient", "chroma mean", "chroma 90 %", "a mean", "b mean",
            "bright share", "dark share")  # fmt: skip
FEATURE_SETS = ([1], [2], [4], [1, 4], [1, 2, 3], [4, 5], [1, 2, 3, 4, 5], list(range(len(FEATURES))))
ROUTED_ELSEWHERE = ("utkface",)  # the choosing sources' close-up faces go to the people expert


def source_of(path: Path) -> str:
    """The protocol's folders name photos SOURCE--NAME; the training folders NAME_N."""
    return path.name.split("--")[0] if "--" in path.name else re.sub(r"_\d+\.\w+$", "", path.name)


def features(lightness: np.ndarray, ab: np.ndarray) -> list[float]:
    """L (h, w) in [0, 100] and the expert's ab (2, h', w') at gain 1 -> FEATURES."""
    light = lightness / 100
    down, across = np.gradient(light)
    chroma = np.hypot(ab[0], ab[1]) / 110
    low, high = np.percentile(light, [5, 95])
    return [light.mean(), light.std(), high - low, np.hypot(down, across).mean(), chroma.mean(),
            np.percentile(chroma, 90), ab[0].mean() / 110, ab[1].mean() / 110, (light > 0.9).mean(),
            (light < 0.1).mean()]  # fmt: skip


def measure(folder: Path, out: Path, per_source: int) -> None:
    from PIL import Image
    from skimage.color import deltaE_ciede2000

    from colorize.core.color import resize_square, rgb_to_lab
    from colorize.core.locations import bundled_weights_dir
    from colorize.core.onnx import INPUT
    from colorize.experts.store import Expert

    path = bundled_weights_dir() / "general.onnx"
    expert = Expert.from_file(path)
    shift = np.array(expert.normalization.ab_shift, np.float32)[:, None, None]
    expert.normalization = expert.normalization.uncalibrated()
    encoder = _encoder_session(path)
    groups: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(folder.glob("*/*")):
        groups.setdefault((path.parent.name, source_of(path)), []).append(path)
    random.seed(0)
    chosen = [p for key in sorted(groups) for p in random.sample(groups[key], min(per_source, len(groups[key])))]
    rows = []
    for number, path in enumerate(chosen):
        lab = rgb_to_lab(np.asarray(Image.open(path).convert("RGB"), np.float32) / 255)
        small_light = resize_square(lab[..., 0][None], expert.work_size).astype(np.float32)
        ab = expert.predict_ab(small_light)[0]
        side = ab.shape[-1]
        truth = np.stack([resize_square(lab[..., c][None], side)[0, 0] for c in range(3)], -1)
        curve = [
            deltaE_ciede2000(truth, np.concatenate([truth[..., :1], np.moveaxis(g * ab + shift, 0, -1)], -1)).mean()
            for g in GAINS
        ]
        gray = truth * np.array([1, 0, 0], np.float32)
        deepest = encoder.run([ENCODER_OUTPUT], {INPUT: expert.normalization.network_input(small_light)})[0][0]
        pooled = np.concatenate([deepest.mean((1, 2)), deepest.std((1, 2))])
        rows.append((path, features(small_light[0, 0], ab), curve, deltaE_ciede2000(truth, gray).mean(), pooled))
        if number % 200 == 0:
            print(f"{number}/{len(chosen)}", flush=True)
    np.savez(
        out,
        category=[p.parent.name for p, *_ in rows],
        source=[source_of(p) for p, *_ in rows],
        features=np.array([r[1] for r in rows]),
        curve=np.array([r[2] for r in rows]),
        gray=np.array([r[3] for r in rows]),
        encoder=np.array([r[4] for r in rows]),
    )


ENCODER_OUTPUT = "/encoder/blocks.6/blocks.6.0/conv_pwl/Conv_output_0"  # unet_lite's deepest features, 7 x 7 x 320


def _encoder_session(path: Path):
    """The expert's graph with its encoder's last block as an output."""
    import onnx
    import onnxruntime

    model = onnx.load(str(path))
    model.graph.output.append(onnx.helper.make_tensor_value_info(ENCODER_OUTPUT, onnx.TensorProto.FLOAT, None))
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def at_gain(curves: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Each photo's ΔE at its gain, read from its curve by linear interpolation."""
    position = (np.clip(gains, GAINS[0], GAINS[-1]) - GAINS[0]) / (GAINS[1] - GAINS[0])
    low = np.minimum(position.astype(int), len(GAINS) - 2)
    rows = np.arange(len(curves))
    return curves[rows, low] + (position - low) * (curves[rows, low + 1] - curves[rows, low])


def macro(data, gains: np.ndarray, skip=ROUTED_ELSEWHERE) -> tuple[float, dict[str, float]]:
    """The protocol's macro mean (scripts/protocol.py) of ΔE as a share of gray's, overall and
    per category, each photo at its gain."""
    images = [
        {
            "status": "ok",
            "path": f"{category}/{source}{SEPARATOR}{number}",
            "category": str(category),
            GRAY: _scores(gray),
            "gained": _scores(error),
        }
        for number, (category, source, error, gray) in enumerate(
            zip(data["category"], data["source"], at_gain(data["curve"], gains), data["gray"])
        )
        if source not in skip
    ]
    means = protocol_macro({"images": images, "modes": ["gained"]}, "gained")
    return means["overall"]["delta_e"], {c: v["delta_e"] for c, v in means.items() if c != "overall"}


def _scores(delta_e: float) -> dict[str, float]:
    """An eval row of ΔE alone: the proxy scores nothing else."""
    return {"delta_e": float(delta_e), "psnr": 0.0, "colorfulness": 0.0, "colorfulness_truth": 1.0}


def fit(train, keep: list[int]):
    """A linear gain of standardised features, fitted to the training photos' ΔE curves."""
    from scipy.optimize import minimize

    x = train["features"][:, keep]
    center, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - center) / scale
    shares = train["curve"] / train["gray"][:, None]
    keys = list(zip(train["category"], train["source"]))
    weights = np.array([1 / keys.count(k) for k in keys])
    weights /= weights.sum()

    def loss(p):
        return float((weights * at_gain(shares, z @ p[:-1] + p[-1])).sum() + 1e-3 * (p[:-1] ** 2).sum())

    start = np.r_[np.zeros(len(keep)), 0.78]
    p = minimize(loss, start, method="Powell", options={"maxiter": 20000, "xtol": 1e-4, "ftol": 1e-7}).x
    return lambda data: ((data["features"][:, keep] - center) / scale) @ p[:-1] + p[-1]


def fit_head(train, regularisation: float, steps: int = 1500):
    """A linear gain of the standardised encoder features, fitted by Adam to the ΔE curves."""
    import torch

    center, scale = train["encoder"].mean(0), train["encoder"].std(0) + 1e-6
    z = torch.tensor((train["encoder"] - center) / scale, dtype=torch.float32)
    shares = torch.tensor(train["curve"] / train["gray"][:, None], dtype=torch.float32)
    keys = list(zip(train["category"], train["source"]))
    weights = torch.tensor([1 / keys.count(k) for k in keys], dtype=torch.float32)
    weights /= weights.sum()
    rows = torch.arange(len(shares))
    slope = torch.zeros(z.shape[1], requires_grad=True)
    offset = torch.tensor(0.78, requires_grad=True)
    optimiser = torch.optim.Adam([slope, offset], lr=0.01)
    for _ in range(steps):
        position = ((z @ slope + offset).clamp(GAINS[0], GAINS[-1]) - GAINS[0]) / (GAINS[1] - GAINS[0])
        low = position.floor().clamp(max=len(GAINS) - 2).long()
        error = shares[rows, low] + (position - low) * (shares[rows, low + 1] - shares[rows, low])
        loss = (weights * error).sum() + regularisation * (slope**2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    slope_, offset_ = slope.detach().numpy(), float(offset.detach())
    return lambda data: ((data["encoder"] - center) / scale) @ slope_ + offset_


def report(train_path: Path, choosing_path: Path) -> None:
    train, choosing = np.load(train_path), np.load(choosing_path)

    def line(name: str, gains: np.ndarray) -> None:
        overall, means = macro(choosing, gains)
        cells = " ".join(f"{c} {means[c]:.3f}" for c in sorted(means))
        print(f"{name:<58} {overall:.4f}  {cells}  gain 5/50/95 %: {np.percentile(gains, [5, 50, 95]).round(2)}")

    for gain in (0.6, 0.78, 0.9, 1.0):
        line(f"fixed {gain}", np.full(len(choosing["curve"]), gain))
    line("per-photo best (oracle)", GAINS[np.argmin(choosing["curve"], 1)])
    for keep in FEATURE_SETS:
        line("fitted on " + ", ".join(FEATURES[k] for k in keep), fit(train, keep)(choosing))
    for regularisation in (1e-1, 3e-2, 1e-2, 3e-3, 1e-3):
        line(f"a head on the encoder's features, L2 {regularisation:g}", fit_head(train, regularisation)(choosing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    measuring = commands.add_parser("measure")
    measuring.add_argument("folder", type=Path)
    measuring.add_argument("out", type=Path)
    measuring.add_argument("--per-source", type=int, default=1000)
    fitting = commands.add_parser("fit")
    fitting.add_argument("train", type=Path)
    fitting.add_argument("choosing", type=Path)
    args = parser.parse_args()
    if args.command == "measure":
        measure(args.folder, args.out, args.per_source)
    else:
        report(args.train, args.choosing)


if __name__ == "__main__":
    main()
