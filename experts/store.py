"""The model store: where each expert's weights come from, and the loaded ``Expert``.

Lookup order for an expert name: an explicit file (``--weights``), then the user's model
folder (``$COLORIZE_HOME/experts/NAME.safetensors``; default the platform cache dir, e.g.
``~/.cache/colorize``), then the weights bundled with the package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from colorize.experts.architectures import create_architecture
from colorize.experts.color import AB_SCALE, CHROMA_REFERENCE, chroma_curve
from colorize.experts.modelfile import (
    ModelFile,
    ModelFileError,
    bundled_weights_dir,
    load_network,
    model_home,
    read_metadata,
)

WEIGHTS_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class ExpertSource:
    name: str
    source: str  # "file", "user" or "bundled"
    path: Path


class ExpertStore:
    """Finds experts by name across the three sources; later sources never shadow earlier ones."""

    def __init__(self, home: Path | None = None, files: Mapping[str, Path] | None = None):
        self.home = Path(home) if home is not None else model_home()
        self.files = {name: Path(path) for name, path in (files or {}).items()}

    def sources(self) -> dict[str, ExpertSource]:
        found: dict[str, ExpertSource] = {}
        for source, folder in (("bundled", bundled_weights_dir()), ("user", self.home / "experts")):
            if folder.is_dir():
                for path in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
                    name = path.name[: -len(WEIGHTS_SUFFIX)]
                    found[name] = ExpertSource(name, source, path)
        for name, path in self.files.items():
            found[name] = ExpertSource(name, "file", path)
        return dict(sorted(found.items()))

    def names(self) -> list[str]:
        return list(self.sources())

    def user_path(self, name: str) -> Path:
        return self.home / "experts" / f"{name}{WEIGHTS_SUFFIX}"

    def load(self, name: str, device: str | torch.device = "cpu") -> "Expert":
        try:
            source = self.sources()[name]
        except KeyError:
            raise KeyError(f"no expert named {name!r}; available: {', '.join(self.names())}") from None
        return Expert.from_file(source.path, name=name, device=device)


class Expert:
    """A colorization network with the metadata that says how to feed it."""

    def __init__(self, name: str, model_file: ModelFile, network: torch.nn.Module):
        self.name = name
        self.model_file = model_file
        self.network = network
        meta = model_file.metadata
        self.work_size = int(meta["work_size"])
        norm = meta.get("normalization", {})
        self.l_center = float(norm.get("l_center", 50.0))
        self.l_scale = float(norm.get("l_scale", 50.0))
        self.ab_scale = float(norm.get("ab_scale", AB_SCALE))
        # A fixed per-channel boost applied after the network (the original paper used a x1.6,
        # b x2 to fight desaturation); 1, 1 for models that need none.
        self.ab_gain = torch.tensor(norm.get("ab_gain", [1.0, 1.0]), dtype=torch.float32).view(1, 2, 1, 1)
        # Above 0, the gain grows with the predicted chroma (experts/color.py: chroma_curve).
        self.chroma_exponent = float(norm.get("chroma_exponent", 0.0))
        self.chroma_reference = float(norm.get("chroma_reference", CHROMA_REFERENCE))

    @classmethod
    def from_file(cls, path: Path, name: str | None = None, device: str | torch.device = "cpu") -> "Expert":
        model_file = read_metadata(path)
        if model_file.kind != "expert":
            raise ModelFileError(f"{path}: holds a {model_file.kind!r} model, expected an expert")
        meta = model_file.metadata
        network = load_network(model_file, lambda: create_architecture(meta["architecture"], **meta["arguments"]))
        try:
            expert = cls(name or meta.get("category") or Path(path).stem, model_file, network.to(device))
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
            raise ModelFileError(f"{path}: not a usable colorize expert ({type(error).__name__}: {error})") from None
        numbers = (
            expert.work_size,
            expert.l_center,
            expert.l_scale,
            expert.ab_scale,
            expert.chroma_exponent,
            expert.chroma_reference,
            *expert.ab_gain.flatten().tolist(),
        )
        if not all(math.isfinite(x) for x in numbers) or expert.work_size < 1 or expert.l_scale == 0:
            raise ModelFileError(
                f"{path}: work size or normalization in the metadata is out of range (NaN, infinite or 0)"
            )
        return expert

    def normalize(self, lightness: torch.Tensor) -> torch.Tensor:
        return (lightness - self.l_center) / self.l_scale

    @torch.inference_mode()
    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        """L in [0, 100], (B, 1, h, w) at the work size -> ab in LAB units at the network's resolution."""
        ab = self.network(self.normalize(lightness)) * self.ab_scale
        return chroma_curve(ab, self.ab_gain.to(ab.device), self.chroma_exponent, self.chroma_reference)
