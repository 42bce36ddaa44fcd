"""The end-to-end colorization ``Pipeline``: L in, routed expert, chroma joined with the original L.

A Python API that never prints. Chroma is predicted at the expert's (small, square) work
size, upsampled once to the photo's full size and joined with the photo's own full-resolution
L, so every detail of the input survives and the output's L equals the input's.

The full-resolution work (upsampling ab, LAB -> RGB) and the CPU settings live in
``pipelines/_cpu.py``: this module is the flow of a photo.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from colorize.classifier.model import SceneClassifier
from colorize.configs import load_config
from colorize.core.images import (
    DecodedImage,
    atomic_save,
    decode,
    encode,
    lightness_from_array,
    pixels_from_image,
    to_8bit,
)
from colorize.core.modelfile import ModelFileError, read_metadata
from colorize.experts.color import gray_to_lightness
from colorize.experts.store import Expert, ModelStore
from colorize.pipelines._cpu import (
    available_cores,
    compose_upsampled,
    is_cpu,
    resize_square,
    tune_cpu,
    upsample,
)
from colorize.router import Route, RoutingPolicy, merge_routing, route
from colorize.router.policy import check_forced, read_routing


class PipelineError(RuntimeError):
    """The pipeline cannot run as configured (no classifier, no experts, ...)."""


@dataclass
class Result:
    """``rgb``: float32 (H, W, 3) in [0, 1]; ``route``: which expert and why; ``source``: the
    decoded file, when the photo came as a path (its format and metadata go to ``save``)."""

    rgb: np.ndarray
    route: Route
    source: DecodedImage | None = None

    def to_image(self) -> Image.Image:
        """The result as an 8-bit RGB PIL image."""
        return Image.fromarray(to_8bit(self.rgb), "RGB")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result atomically. From a path, as ``colorize auto`` writes it: the input's
        format, bit depth, alpha and metadata, with colorize's marker; otherwise in the format
        the file name's extension names."""
        path = Path(path)
        if self.source is not None:
            return encode(self.rgb, self.source, path, note=provenance_note(self.route))
        extension = path.suffix.lower()
        if extension not in Image.registered_extensions():
            raise ValueError(f"{path}: name a format with the extension (.jpg, .png, .tif, ...)")
        return atomic_save(self.to_image(), path, Image.registered_extensions()[extension])


class MadeFrom(NamedTuple):
    """The input an output was made from, as its marker records it: the path as given (for
    people) and the first 16 hex digits of the file's sha256 (what tells two photos apart)."""

    path: str
    digest: str


def provenance_note(route: Route, made_from: MadeFrom | None = None) -> str:
    """What an output file records about how it was made (EXIF/TIFF Software, PNG text): the
    route, colorize's version and, from a file, the input (which a later run into the same
    folder compares with its own photo of that name)."""
    from colorize import __version__

    note = f"colorized by expert {route.expert} ({route.ascii_reason}), colorize {__version__}"
    return note if made_from is None else f"{note}; from sha256:{made_from.digest} {made_from.path}"


# An expert's name and the input's path are free text: the fixed parts around them are
# matched from the ends (the reason holds no parentheses, the version no space).
_NOTE = re.compile(
    r"colorized by expert (?P<expert>.+?) \((?P<reason>[^()]+)\), colorize \S+?"
    r"(?:; from sha256:(?P<digest>[0-9a-f]{16}) (?P<path>.*))?$",
    re.DOTALL,
)


def route_from_note(note: str | None) -> Route | None:
    """The expert and reason that ``provenance_note`` recorded in an output (confidence and
    probabilities are not recorded), or None when ``note`` is not such a record."""
    found = _NOTE.search(note or "")
    if found is None:
        return None
    return Route(found["expert"], None, {}, found["reason"].replace("->", "→"))


def made_from_note(note: str | None) -> MadeFrom | None:
    """The input that ``provenance_note`` recorded, or None (an earlier release recorded none)."""
    found = _NOTE.search(note or "")
    if found is None or found["digest"] is None:
        return None
    return MadeFrom(found["path"], found["digest"])


@dataclass
class Prediction:
    """A routed photo whose chroma is predicted but not yet joined with its L.

    Holds L (4 bytes a pixel) and the small ab instead of the full RGB (12 bytes a pixel),
    so a batch runner can keep many waiting and ``compose`` each in the thread that writes it.
    """

    route: Route
    lightness: torch.Tensor  # (1, H, W) in [0, 100]
    small_ab: torch.Tensor  # (2, h, w) at the expert's output resolution

    def compose(self, map_bands: Callable = map, dtype=np.float32) -> np.ndarray:
        """RGB (H, W, 3): float32 in [0, 1], or uint8 ready for an 8-bit file (see ``compose_upsampled``)."""
        return compose_upsampled(self.lightness, self.small_ab, map_bands, dtype)


def lightness_of(image) -> torch.Tensor:
    """A PIL image, or a float array (H, W) / (H, W, 3) in [0, 1] -> L in [0, 100], (1, H, W)."""
    if isinstance(image, Image.Image):
        if image.mode == "L":  # 8-bit gray: L straight from a 256-entry table
            return gray_to_lightness(torch.from_numpy(np.array(image))[None])  # a writable copy, as torch wants
        image = pixels_from_image(image)[0]
    return lightness_from_array(np.asarray(image))


class Pipeline:
    def __init__(
        self,
        classifier: SceneClassifier | None,
        store: ModelStore,
        policy: RoutingPolicy,
        forced_expert: str | None = None,
        device: str = "cpu",
        work_size: int | None = None,
        saturation: float = 1.0,
        threads: int | None = None,
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
        self._sizes: list[int] | None = None  # every network input side, for shrink
        # Threads for the full-resolution work; created on first use, shared by all photos.
        self.threads = threads or available_cores()
        self._pool: ThreadPoolExecutor | None = None
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
        threads: int | None = None,
        tune: bool = False,
    ) -> "Pipeline":
        """Build from the packaged configs, the user's model folder and optional explicit files.

        ``weights`` maps expert names to explicit files (highest precedence); ``home`` is
        the user's model folder (default ``$COLORIZE_HOME`` or the platform cache dir).
        ``threads``: worker threads for full-resolution work (default: every available
        core). ``tune``: on the CPU, apply ``tune_cpu()``: process-wide settings (torch's
        thread count, glibc's memory policy), so only a program that owns its process (the
        CLI) asks for them; a library call leaves the caller's process as it was.
        """
        if tune and torch.device(device).type == "cpu":
            tune_cpu()
        store = ModelStore(home=home, files=weights, classifier_file=classifier_weights)
        config = load_config("routing")
        user_routing = store.home / "routing.toml"
        if user_routing.is_file():
            config = merge_routing(config, read_routing(user_routing), str(user_routing), experts=store.names())
        policy = RoutingPolicy.from_config(config, threshold)
        classifier = None
        if expert is None:
            found = store.classifier_source()
            if found is not None:
                classifier = SceneClassifier.from_file(found.path, device=device)
        if classifier is not None and is_cpu(device):
            classifier.network.to(memory_format=torch.channels_last)
        return cls(classifier, store, policy, expert, device, work_size, saturation, threads)

    def expert(self, name: str) -> Expert:
        if name not in self._experts:
            expert = self.store.load(name, device=self.device)
            if is_cpu(self.device):
                # oneDNN's channels-last convolutions: 15% faster here, same numbers.
                expert.network.to(memory_format=torch.channels_last)
            self._experts[name] = expert
        return self._experts[name]

    def map_bands(self, function: Callable, items: Iterable) -> Iterable:
        """``map`` over the pipeline's worker threads (in order)."""
        if self.threads <= 1:
            return map(function, items)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="colorize-compose")
        return self._pool.map(function, items)

    def shrink(self, lightness: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each L larger than every network input, downsampled once to the largest of them.

        The classifier's and the experts' inputs are then taken from this small copy: an
        antialiased resize of a 12 MP image costs more than the classifier itself, and
        doing it once instead of twice changes an expert's input not at all (it is taken
        at exactly this size) and the classifier's only by resampling noise.
        """
        side = max(self._network_sizes())
        return [
            resize_square(light.to(self.device), side)[0] if min(light.shape[-2:]) > side else light.to(self.device)
            for light in lightness
        ]

    def _network_sizes(self) -> list[int]:
        if self._sizes is None:
            sizes = [self.classifier.preprocessing.input_size] if self.classifier is not None else []
            if self.work_size:
                sizes.append(self.work_size)
            else:
                for name in self.available:
                    try:
                        sizes.append(int(read_metadata(self.store.sources()[name].path).metadata["work_size"]))
                    except (ModelFileError, KeyError, TypeError, ValueError):
                        pass  # a broken file fails clearly when (and if) it is loaded
            self._sizes = sizes or [1]
        return self._sizes

    def route(self, lightness: Sequence[torch.Tensor]) -> list[Route]:
        """One ``Route`` per L image (1, H, W); forced routes skip the classifier.

        The classifier's input is always made the one way: ``shrink`` (a no-op on what it
        already shrank), then the classifier's own size, so a photo routes the same whether it
        comes through ``predict`` or alone (``colorize classify``)."""
        if self.forced_expert is not None:
            return [route({}, self.available, self.policy, self.forced_expert) for _ in lightness]
        size = self.classifier.preprocessing.input_size
        batch = torch.cat([resize_square(light, size) for light in self.shrink(lightness)])
        return [route(p, self.available, self.policy) for p in self.classifier.probabilities(batch)]

    def predict_ab(self, lightness: Sequence[torch.Tensor], routes: Sequence[Route]) -> list[torch.Tensor]:
        """Full-resolution ab (2, H, W) for each L (1, H, W), from its routed expert, batched per expert."""
        small = self.predict_small_ab(lightness, routes)
        return [upsample(ab, light.shape[-2:]) for light, ab in zip(lightness, small)]

    def predict_small_ab(self, lightness: Sequence[torch.Tensor], routes: Sequence[Route]) -> list[torch.Tensor]:
        """ab (2, h, w) at each expert's output resolution for each L (1, H, W), batched per expert."""
        out: list[torch.Tensor | None] = [None] * len(lightness)
        for name in dict.fromkeys(r.expert for r in routes):
            members = [i for i, r in enumerate(routes) if r.expert == name]
            expert = self.expert(name)
            size = self.work_size or expert.work_size
            batch = torch.cat([resize_square(lightness[i].to(self.device), size) for i in members])
            small_ab = expert.predict_ab(batch) * self.saturation
            for row, i in enumerate(members):
                out[i] = small_ab[row]
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def predict(self, lightness: Sequence[torch.Tensor]) -> list[Prediction]:
        """Route and run the networks for a batch of L images, each (1, H, W); compose later."""
        shrunk = self.shrink(lightness)
        routes = self.route(shrunk)
        small = self.predict_small_ab(shrunk, routes)
        return [Prediction(r, light.to(self.device), ab) for light, ab, r in zip(lightness, small, routes)]

    def colorize_lightness(self, lightness: Sequence[torch.Tensor]) -> list[Result]:
        """Colorize a batch of L images, each (1, H, W) in [0, 100] (sizes may differ)."""
        return [Result(p.compose(self.map_bands), p.route) for p in self.predict(lightness)]

    def colorize(self, image) -> Result:
        """Colorize one photo: a path (decoded as ``colorize auto`` decodes it: upright, any
        supported format and depth), a PIL image or an array (only the luminance is used)."""
        if isinstance(image, (str, os.PathLike)):
            decoded = decode(Path(image))
            return replace(self.colorize_lightness([decoded.lightness()])[0], source=decoded)
        return self.colorize_lightness([lightness_of(image)])[0]
