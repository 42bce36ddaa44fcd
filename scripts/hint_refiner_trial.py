"""The hint-refiner trial (MODELS.md, *Hints: a refiner beside each expert*): cache, train, export.

A hint refiner is a small network beside an expert: it reads L, the hint planes and the
expert's own ab (before its output gain and shift) at the expert's work size and gives a
correction of that ab; it runs only for photos with hints (experts/store.py, ``HintRefiner``).
Training needs the expert's output once per photo, so it is cached first:

    python scripts/hint_refiner_trial.py cache TRAIN_DIR cache.npz             # ~10 min, 1.9 GB for 5,380 photos
    python scripts/hint_refiner_trial.py train cache.npz RUN --epochs 6        # resumable: add --resume
    python scripts/hint_refiner_trial.py export RUN/best.pt HOME/experts/hints/general.onnx

The cache holds, per photo, L, the true ab and the expert's ab at its work size (float16) and
the expert's output gain and shift, so that training feeds the refiner the expert's own ab.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def cache(photos: Path, out: Path, expert_name: str) -> None:
    from PIL import Image

    from colorize.core.color import lightness_from_array, resize_bilinear, resize_square, rgb_to_lab
    from colorize.experts.store import ModelStore
    from colorize.pipelines.photo_folders import list_images

    files = list_images(photos)
    expert = ModelStore().load(expert_name, threads=1)
    size = expert.work_size
    lightness = np.zeros((len(files), 1, size, size), np.float16)
    truth = np.zeros((len(files), 2, size, size), np.float16)
    base = None
    for index, path in enumerate(files):
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
        light = resize_square(lightness_from_array(rgb), size)
        ab = resize_bilinear(np.ascontiguousarray(rgb_to_lab(rgb).transpose(2, 0, 1)[1:]), (size, size))
        predicted = expert.predict_ab(light)[0]
        if base is None:
            base = np.zeros((len(files), 2, *predicted.shape[-2:]), np.float16)
        lightness[index], truth[index], base[index] = light[0], ab, predicted
        if index % 500 == 0:
            print(f"{index} of {len(files)}", flush=True)
    norm = expert.normalization
    np.savez(out, lightness=lightness, ab=truth, base=base, gain=np.array(norm.ab_gain), shift=np.array(norm.ab_shift))


def refiner_network(width: int = 32):
    import torch
    from torch import nn
    from torch.nn import functional as F

    from colorize.experts.unet_seed import ResidualBlock

    def step(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            ResidualBlock(cout),
        )

    class HintRefiner(nn.Module):
        """Six planes at the work size in (L, hint a, b, mask, the expert's ab upsampled); an ab
        correction at half the work size out (ab / AB_SCALE units), starting at zero."""

        def __init__(self, w: int):
            super().__init__()
            self.stem, self.mix = step(6, w, 2), step(w, w, 1)
            self.d1, self.d2, self.d3 = step(w, 2 * w, 2), step(2 * w, 4 * w, 2), step(4 * w, 4 * w, 2)
            self.u3, self.u2, self.u1 = step(8 * w, 4 * w, 1), step(6 * w, 2 * w, 1), step(3 * w, w, 1)
            self.head = nn.Conv2d(w, 2, 1)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            def up(t, like):
                return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)

            s0 = self.mix(self.stem(x))
            s1 = self.d1(s0)
            s2 = self.d2(s1)
            s3 = self.d3(s2)
            y = self.u3(torch.cat((up(s3, s2), s2), 1))
            y = self.u2(torch.cat((up(y, s1), s1), 1))
            y = self.u1(torch.cat((up(y, s0), s0), 1))
            return self.head(y)

    return HintRefiner(width)


def train(args) -> None:
    import torch
    from torch.nn import functional as F

    from colorize.experts.hints import hint_planes, simulate_hints
    from colorize.experts.normalization import AB_SCALE

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    data = np.load(args.cache)
    lightness, truth, base_ab = data["lightness"], data["ab"], data["base"]
    # The expert's own ab: its calibrated output with the gain and shift taken off again.
    gain, shift = float(data["gain"][0]), float(data["shift"][0]) if "shift" in data else args.shift
    order = np.random.default_rng(0).permutation(len(lightness))
    held = max(200, len(lightness) // 20)
    val_idx, train_idx = order[:held], order[held:]
    out_size = base_ab.shape[-1]

    def batch(indices, rng, count=None):
        light = torch.from_numpy(lightness[indices].astype(np.float32))
        true_ab = truth[indices].astype(np.float32)
        planes = []
        for ab in true_ab:
            k = count if count is not None else min(int(rng.geometric(1 / args.mean_hints)), 40)
            planes.append(hint_planes(simulate_hints(ab, k, rng), ab.shape[1], ab.shape[2]))
        planes = torch.from_numpy(np.stack(planes))
        base = (torch.from_numpy(base_ab[indices].astype(np.float32)) - shift) / gain / AB_SCALE
        base_up = F.interpolate(base, size=light.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat(((light - 50) / 50, planes[:, :2] / AB_SCALE, planes[:, 2:], base_up), 1)
        target = F.adaptive_avg_pool2d(torch.from_numpy(true_ab), out_size) / AB_SCALE
        return x, base, target

    model = refiner_network(args.width)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = len(train_idx) // args.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.epochs * steps, pct_start=0.1)
    start, best = 0, math.inf
    if args.resume and (run / "checkpoint.pt").exists():
        saved = torch.load(run / "checkpoint.pt", weights_only=True)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["opt"])
        schedule.load_state_dict(saved["sched"])
        start, best = saved["epoch"] + 1, saved["best"]

    @torch.no_grad()
    def validate():
        model.eval()
        rng, scores = np.random.default_rng(1), {}
        for count in (0, 1, 5, 10):
            error = base_error = 0.0
            for i in range(0, len(val_idx), 64):
                x, base, target = batch(val_idx[i : i + 64], rng, count=count)
                predicted = base + (model(x) if count else 0)
                error += (predicted - target).abs().mean().item() * len(x)
                base_error += (base - target).abs().mean().item() * len(x)
            scores[count] = round(error / len(val_idx) * AB_SCALE, 3)
        scores["base"] = round(base_error / len(val_idx) * AB_SCALE, 3)
        model.train()
        return scores

    for epoch in range(start, args.epochs):
        model.train()
        rng = np.random.default_rng(100 + epoch)
        shuffled, began, total = rng.permutation(train_idx), time.time(), 0.0
        for s in range(steps):
            x, base, target = batch(np.sort(shuffled[s * args.batch : (s + 1) * args.batch]), rng)
            loss = F.smooth_l1_loss(base + model(x), target, beta=0.02)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        scores = validate()
        line = {"epoch": epoch, "loss": total / steps, "val_mean_abs_ab": scores, "seconds": round(time.time() - began)}
        print(json.dumps(line), flush=True)
        with open(run / "epochs.jsonl", "a") as log:
            log.write(json.dumps(line) + "\n")
        if scores[5] < best:
            best = scores[5]
            torch.save(model.state_dict(), run / "best.pt")
        state = {"model": model.state_dict(), "opt": optimiser.state_dict(), "sched": schedule.state_dict()}
        torch.save({**state, "epoch": epoch, "best": best}, run / "checkpoint.pt")


def export(checkpoint: Path, out: Path, width: int, note: str) -> None:
    import torch

    from colorize.core.files import atomic_write
    from colorize.core.modelfile import FORMAT_VERSION
    from colorize.experts.onnx_export import onnx_bytes

    model = refiner_network(width)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": "hint_refiner",
        "architecture": "hint_refiner_trial",
        "arguments": {"width": width},
        "normalization": {"l_center": 50.0, "l_scale": 50.0, "ab_scale": 110.0},
        "work_size": 224,
        "training": {"note": note},
    }
    data = onnx_bytes(model, 6, metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda handle: handle.write(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("cache")
    c.add_argument("photos", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--expert", default="general")
    t = commands.add_parser("train")
    t.add_argument("cache")
    t.add_argument("run")
    t.add_argument("--epochs", type=int, default=6)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--mean-hints", type=float, default=6.0)
    t.add_argument("--width", type=int, default=32)
    t.add_argument("--shift", type=float, default=-1.0, help="the expert's shift, for caches that did not record it")
    t.add_argument("--resume", action="store_true")
    e = commands.add_parser("export")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("out", type=Path)
    e.add_argument("--width", type=int, default=32)
    e.add_argument("--note", default="hint refiner trial")
    args = parser.parse_args()
    if args.command == "cache":
        cache(args.photos, args.out, args.expert)
    elif args.command == "train":
        train(args)
    else:
        export(args.checkpoint, args.out, args.width, args.note)


if __name__ == "__main__":
    main()
