"""The end-to-end colorization ``Pipeline``: L in, routed expert, chroma joined with the original L.

A Python API that never prints. Chroma is predicted at the expert's (small, square) work
size, upsampled once to the photo's full size and joined with the photo's own full-resolution
L, so every detail of the input survives and the output's L equals the input's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from colorize.classifier.model import SceneClassifier, find_classifier
from colorize.configs import load_config
from colorize.experts.color import join_lab, lab_to_rgb
from colorize.experts.store import Expert, ExpertStore
from colorize.pipelines.imageio import lightness_from_array, pixels_from_image
from colorize.router import Route, RoutingPolicy, route
from colorize.router.policy import check_forced


class PipelineError(RuntimeError):
    """The pipeline cannot run as configured (no classifier, no experts, ...)."""


@dataclass
class Result:
    """``rgb``: float32 (H, W, 3) in [0, 1]; ``route``: which expert and why."""

    rgb: np.ndarray
    route: Route


def lightness_of(image) -> torch.Tensor:
    """A PIL image, or a float array (H, W) / (H, W, 3) in [0, 1] -> L in [0, 100], (1, H, W)."""
    if isinstance(image, Image.Image):
        image = pixels_from_image(image)[0]
    return lightness_from_array(np.asarray(image))


def compose_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """L (1, H, W) and ab (2, H, W) -> float32 RGB (H, W, 3) in [0, 1] (out-of-gamut clipped)."""
    return lab_to_rgb(join_lab(lightness, ab.to(lightness.device))).permute(1, 2, 0).cpu().numpy()


def _resize(lightness: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(lightness[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class Pipeline:
    def __init__(
        self,
        classifier: SceneClassifier | None,
        store: ExpertStore,
        policy: RoutingPolicy,
        forced_expert: str | None = None,
        device: str = "cpu",
        work_size: int | None = None,
        saturation: float = 1.0,
    ):
        self.classifier = classifier
        self.store = store
        self.policy = policy
        self.forced_expert = forced_expert
        self.device = torch.device(device)
        self.work_size = work_size
        self.saturation = saturation
        self.available = store.names()
        self._experts: dict[str, Expert] = {}
        if not self.available:
            raise PipelineError("no expert weights found (bundled, user folder or --weights)")
        if forced_expert is not None:
            check_forced(forced_expert, self.available)
        elif classifier is None:
            raise PipelineError("no classifier weights found; force an expert with --expert NAME")

    @classmethod
    def from_config(
        cls,
        weights: Mapping[str, Path] | None = None,
        classifier_weights: Path | None = None,
        home: Path | None = None,
        threshold: float | None = None,
        expert: str | None = None,
        device: str = "cpu",
        work_size: int | None = None,
        saturation: float = 1.0,
    ) -> "Pipeline":
        """Build from the packaged configs, the user's model folder and optional explicit files.

        ``weights`` maps expert names to explicit files (highest precedence); ``home`` is
        the user's model folder (default ``$COLORIZE_HOME`` or the platform cache dir).
        """
        store = ExpertStore(home=home, files=weights)
        config = load_config("routing")
        user_routing = store.home / "routing.toml"
        if user_routing.is_file():
            import tomllib

            config = {**config, **tomllib.loads(user_routing.read_text(encoding="utf-8"))}
        policy = RoutingPolicy.from_config(config, threshold)
        classifier = None
        if expert is None:
            found = find_classifier(classifier_weights, store.home)
            if found is not None:
                classifier = SceneClassifier.from_file(found[0], device=device)
        return cls(classifier, store, policy, expert, device, work_size, saturation)

    def expert(self, name: str) -> Expert:
        if name not in self._experts:
            self._experts[name] = self.store.load(name, device=self.device)
        return self._experts[name]

    def route(self, lightness: Sequence[torch.Tensor]) -> list[Route]:
        """One ``Route`` per L image (1, H, W); forced routes skip the classifier."""
        if self.forced_expert is not None:
            return [route({}, self.available, self.policy, self.forced_expert) for _ in lightness]
        size = self.classifier.preprocessing.input_size
        batch = torch.cat([_resize(l.to(self.device), size) for l in lightness])
        return [route(p, self.available, self.policy) for p in self.classifier.probabilities(batch)]

    def predict_ab(self, lightness: Sequence[torch.Tensor], routes: Sequence[Route]) -> list[torch.Tensor]:
        """Full-resolution ab (2, H, W) for each L (1, H, W), from its routed expert, batched per expert."""
        out: list[torch.Tensor | None] = [None] * len(lightness)
        for name in dict.fromkeys(r.expert for r in routes):
            members = [i for i, r in enumerate(routes) if r.expert == name]
            expert = self.expert(name)
            size = self.work_size or expert.work_size
            batch = torch.cat([_resize(lightness[i].to(self.device), size) for i in members])
            small_ab = expert.predict_ab(batch) * self.saturation
            for row, i in enumerate(members):
                full = F.interpolate(small_ab[row : row + 1], size=lightness[i].shape[-2:], mode="bilinear", align_corners=False)
                out[i] = full[0]
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def colorize_lightness(self, lightness: Sequence[torch.Tensor]) -> list[Result]:
        """Colorize a batch of L images, each (1, H, W) in [0, 100] (sizes may differ)."""
        routes = self.route(lightness)
        abs_ = self.predict_ab(lightness, routes)
        return [Result(compose_rgb(l.to(self.device), ab), r) for l, ab, r in zip(lightness, abs_, routes)]

    def colorize(self, image) -> Result:
        """Colorize one PIL image or array (gray or colour; only its luminance is used)."""
        return self.colorize_lightness([lightness_of(image)])[0]
