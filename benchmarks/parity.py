"""Worker: the numpy/onnxruntime pipeline's output photos against the torch path it replaced.

    python benchmarks/parity.py --photos a.jpg b.jpg --json parity.json

For each photo, the 8-bit RGB that ``colorize auto`` writes (``Pipeline.predict``, then
``Prediction.compose`` straight to 8 bits) beside the same photo through the torch engine's
steps: L from the 256-entry table of experts/color.py, ``F.interpolate`` (antialiased
bilinear) for the one shared downsample and each network's input, the classifier and the
routed expert as torch networks with the same weights (experts/networks.py reads them back
from the bundled ONNX files), then ab upsampled to full size by ``F.interpolate`` and
``lab_to_rgb`` of experts/color.py, quantised as a file stores it. Reported: the largest
difference in 8-bit levels, the share of values that differ at all, and whether both
routed the photo to the same expert. Needs torch (the ``train`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    from colorize.core.images import decode
    from colorize.pipelines.inference import Pipeline

    torch.set_num_threads(1)
    pipeline = Pipeline.from_config(threads=1)
    reference = TorchPath(pipeline)
    photos = {}
    for path in args.photos:
        decoded = decode(path)
        prediction = pipeline.predict([decoded.lightness()])[0]
        ours = prediction.compose(dtype=np.uint8)
        theirs, expert = reference.colorize(decoded.data)
        difference = np.abs(ours.astype(np.int16) - theirs)
        photos[str(path)] = {
            "max_levels": int(difference.max()),
            "share_differing": float((difference > 0).mean()),
            "expert": prediction.route.expert,
            "torch_expert": expert,
            "same_route": expert == prediction.route.expert,
        }
    args.json.write_text(
        json.dumps(
            {
                "photos": photos,
                "max_levels": max(p["max_levels"] for p in photos.values()),
                "routes_equal": all(p["same_route"] for p in photos.values()),
            },
            indent=1,
        )
    )


class TorchPath:
    """The torch engine's steps, with ``pipeline``'s models, routing policy and sizes."""

    def __init__(self, pipeline):
        from colorize.experts.networks import load_model_file

        self.pipeline = pipeline
        self.classifier = None
        if pipeline.classifier is not None:
            self.classifier = load_model_file(pipeline.classifier.model_file.path)[1]
        self.experts: dict = {}
        self.load = load_model_file
        # The one shared downsample goes to the largest network input, as Pipeline.shrink does.
        sizes = [pipeline.classifier.preprocessing.input_size] if pipeline.classifier is not None else []
        sizes += [pipeline.work_size or pipeline.expert(name).work_size for name in pipeline.available]
        self.side = max(sizes)

    def colorize(self, gray: np.ndarray) -> tuple[np.ndarray, str]:
        """8-bit gray (H, W) -> (8-bit RGB (H, W, 3), the expert it was routed to)."""
        import torch
        from torch.nn import functional as F

        from colorize.experts.color import gray_to_lightness, lab_to_rgb
        from colorize.router import route

        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise SystemExit("parity.py compares 8-bit gray photos (as benchmarks/photos.py makes them)")
        pipeline = self.pipeline
        with torch.inference_mode():
            lightness = gray_to_lightness(torch.from_numpy(np.require(gray, requirements=("W", "C")))[None])
            shrunk = _resize(lightness, self.side) if min(lightness.shape[-2:]) > self.side else lightness[None]
            if pipeline.forced_expert is None:
                preprocessing = pipeline.classifier.preprocessing
                gray_in = _resize(shrunk[0] / 100.0, preprocessing.input_size)
                logits = self.classifier((gray_in - preprocessing.mean) / preprocessing.std)
                probabilities = dict(zip(pipeline.classifier.labels, logits.softmax(dim=-1)[0].tolist()))
                name = route(probabilities, pipeline.available, pipeline.policy).expert
            else:
                name = pipeline.forced_expert
            expert = pipeline.expert(name)
            if name not in self.experts:
                self.experts[name] = self.load(expert.model_file.path)[1]
            network, norm = self.experts[name], expert.normalization
            size = pipeline.work_size or expert.work_size
            small = _resize(shrunk[0], size)
            planes = norm.network_input(small)
            if expert.reads_hints:
                planes = norm.network_input(small, torch.zeros(1, 3, size, size))
            small_ab = norm.chroma(network(planes)) * pipeline.saturation
            ab = F.interpolate(small_ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False)[0]
            rgb = lab_to_rgb(torch.cat((lightness, ab))).permute(1, 2, 0)
            return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy(), name


def _resize(lightness, size: int):
    """(1, H, W) -> (1, 1, size, size), antialiased bilinear, as the torch engine's resize_square."""
    from torch.nn import functional as F

    if lightness.shape[-2:] == (size, size):
        return lightness[None]
    return F.interpolate(lightness[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)


if __name__ == "__main__":
    sys.exit(main())
