"""Building, preprocessing and loading the scene classifier.

The network is any timm model created with ``in_chans=1`` (it sees only luminance) and
one output per label. Its preprocessing — input size and one-channel mean/std — is
derived from timm's own config for the architecture and stored in the weights file,
so inference never repeats those numbers as constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from colorize.core.modelfile import ModelFile, ModelFileError, checked_side
from colorize.experts.architectures import create_timm_model
from colorize.experts.networks import load_model

LABELS = ("landscape", "people", "general")


@dataclass(frozen=True)
class Preprocessing:
    """What the network expects: a square gray image of ``input_size``, normalised."""

    input_size: int
    mean: float  # on gray in [0, 1]
    std: float


def build_network(architecture: str, num_classes: int, drop_rate: float = 0.0) -> torch.nn.Module:
    return create_timm_model(architecture, in_chans=1, num_classes=num_classes, drop_rate=drop_rate)


def default_preprocessing(network: torch.nn.Module, input_size: int) -> Preprocessing:
    """One-channel mean/std from the architecture's own RGB config (their averages)."""
    config = getattr(network, "pretrained_cfg", {}) or {}
    mean = config.get("mean", (0.5, 0.5, 0.5))
    std = config.get("std", (0.5, 0.5, 0.5))
    return Preprocessing(input_size, float(sum(mean) / len(mean)), float(sum(std) / len(std)))


class SceneClassifier:
    def __init__(self, model_file: ModelFile, network: torch.nn.Module):
        meta = model_file.metadata
        self.model_file = model_file
        self.network = network
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.preprocessing = Preprocessing(**meta["preprocessing"])
        checked_side(model_file.path, "input size", self.preprocessing.input_size)

    @classmethod
    def from_file(cls, path: Path, device: str | torch.device = "cpu") -> "SceneClassifier":
        model_file, network = load_model(
            path, "classifier", lambda m: build_network(m["architecture"], **m["arguments"])
        )
        try:
            return cls(model_file, network.to(device))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(
                f"{path}: not a usable colorize classifier ({type(error).__name__}: {error})"
            ) from None

    def prepare(self, lightness: torch.Tensor) -> torch.Tensor:
        """L in [0, 100], (B, 1, H, W), any size -> the network's normalised input."""
        size = self.preprocessing.input_size
        gray = F.interpolate(lightness / 100.0, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return (gray - self.preprocessing.mean) / self.preprocessing.std

    @torch.inference_mode()
    def predict_proba(self, lightness: torch.Tensor) -> torch.Tensor:
        """L in [0, 100], (B, 1, H, W) -> class probabilities (B, len(labels))."""
        return self.network(self.prepare(lightness)).softmax(dim=-1)

    def probabilities(self, lightness: torch.Tensor) -> list[dict[str, float]]:
        return [dict(zip(self.labels, row.tolist())) for row in self.predict_proba(lightness)]


def classifier_metadata(
    architecture: str, drop_rate: float, labels: tuple[str, ...], preprocessing: Preprocessing
) -> dict:
    return {
        "kind": "classifier",
        "architecture": architecture,
        "arguments": {"num_classes": len(labels), "drop_rate": drop_rate},
        "labels": list(labels),
        "preprocessing": asdict(preprocessing),
        "normalization": {"input": "gray = L / 100", "mean": preprocessing.mean, "std": preprocessing.std},
    }
