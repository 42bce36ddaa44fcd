"""The scene classifier's torch network, for training and export.

Any timm model created with ``in_chans=1`` (it sees only luminance) and one output per
label. Its preprocessing (input size and one-channel mean/std) is derived from timm's own
config for the architecture and stored in the model file, so inference (classifier/model.py)
never repeats those numbers as constants.
"""

from __future__ import annotations

import torch

from colorize.classifier.model import Preprocessing
from colorize.experts.architectures import create_timm_model


def build_network(architecture: str, num_classes: int, drop_rate: float = 0.0) -> torch.nn.Module:
    return create_timm_model(architecture, in_chans=1, num_classes=num_classes, drop_rate=drop_rate)


def default_preprocessing(network: torch.nn.Module, input_size: int) -> Preprocessing:
    """One-channel mean/std from the architecture's own RGB config (their averages)."""
    config = getattr(network, "pretrained_cfg", {}) or {}
    mean = config.get("mean", (0.5, 0.5, 0.5))
    std = config.get("std", (0.5, 0.5, 0.5))
    return Preprocessing(input_size, float(sum(mean) / len(mean)), float(sum(std) / len(std)))


def network_input(lightness: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """L in [0, 100], (B, 1, H, W), any size -> the network's normalised input, as training
    feeds it (inference makes the same input in numpy: ``SceneClassifier.prepare``)."""
    from torch.nn import functional as F

    size = preprocessing.input_size
    gray = F.interpolate(lightness / 100.0, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (gray - preprocessing.mean) / preprocessing.std
