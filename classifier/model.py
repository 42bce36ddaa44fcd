"""The scene classifier at inference: its ONNX graph, its preprocessing in numpy, its labels.

The network and its training live in classifier/network.py and pipelines/train_classifier.py;
the model file carries the preprocessing (input size, one-channel mean and std) and the
labels, so nothing here repeats them as constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from colorize.core.color import resize_square
from colorize.core.modelfile import ModelFile, ModelFileError, check_kind, checked_side


@dataclass(frozen=True)
class Preprocessing:
    """What the network expects: a square gray image of ``input_size``, normalised."""

    input_size: int
    mean: float  # on gray in [0, 1]
    std: float


class SceneClassifier:
    """``network``: an ``OnnxNetwork`` (or any callable from the normalised input (B, 1, s, s)
    to logits (B, len(labels)) as numpy)."""

    def __init__(self, model_file: ModelFile, network):
        meta = check_kind(model_file, "classifier").metadata
        self.model_file = model_file
        self.network = network
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.preprocessing = Preprocessing(**meta["preprocessing"])
        checked_side(model_file.path, "input size", self.preprocessing.input_size)

    @classmethod
    def from_file(cls, path: Path, threads: int = 1, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        """The classifier in ``path`` (ONNX, or safetensors exported where torch is installed)."""
        from colorize.core.onnx import OnnxNetwork
        from colorize.experts.store import ModelSource, onnx_model

        data, metadata = onnx_model(ModelSource("classifier", "file", Path(path)), channels=(1,))
        model_file = ModelFile(Path(path), metadata)
        try:
            return cls(model_file, OnnxNetwork(data, path, threads, providers))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(
                f"{path}: not a usable colorize classifier ({type(error).__name__}: {error})"
            ) from None

    def prepare(self, lightness: np.ndarray) -> np.ndarray:
        """L in [0, 100], (1, H, W), any size -> the network's normalised input (1, 1, s, s)."""
        gray = resize_square(lightness, self.preprocessing.input_size) / np.float32(100)
        return (gray - np.float32(self.preprocessing.mean)) / np.float32(self.preprocessing.std)

    def probabilities(self, lightness: list[np.ndarray]) -> list[dict[str, float]]:
        """Class probabilities for each L (1, H, W)."""
        logits = self.network(np.concatenate([self.prepare(light) for light in lightness]))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        rows = exp / exp.sum(axis=1, keepdims=True)
        return [dict(zip(self.labels, map(float, row))) for row in rows]


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
