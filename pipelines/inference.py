"""The end-to-end colorization ``Pipeline``: L in, routed expert, chroma joined with the original L.

A Python API that never prints, and the one path every front end takes (``colorize auto``,
``classify``, ``serve``, ``eval``). Chroma is predicted at the expert's (small, square) work
size, upsampled once to the photo's full size and joined with the photo's own full-resolution
L, so every detail of the input survives and the output's L equals the input's.

Numpy and onnxruntime only: the networks are ONNX graphs (experts/store.py,
classifier/model.py), the colour maths and resizes are core/color.py. No torch.
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
from PIL import Image

from colorize.classifier.model import SceneClassifier
from colorize.configs import load_config
from colorize.core.color import (
    compose_upsampled,
    gray_to_lightness,
    lightness_from_array,
    resize_bilinear,
    resize_square,
)
from colorize.core.cpu import available_cores, keep_freed_memory
from colorize.core.errors import ColorizeError
from colorize.core.images import DecodedImage, atomic_save, decode, encode, pixels_from_image, to_8bit
from colorize.core.modelfile import ModelFileError, read_metadata
from colorize.experts.hints import Hint, placed_planes, spread_hints
from colorize.experts.store import Expert, ModelStore
from colorize.router import Route, RoutingPolicy, merge_routing, route
from colorize.router.policy import check_forced, read_routing


class PipelineError(ColorizeError):
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
    lightness: np.ndarray  # float32 (1, H, W) in [0, 100]
    small_ab: np.ndarray  # float32 (2, h, w) at the expert's output resolution

    def compose(self, map_bands: Callable = map, dtype=np.float32) -> np.ndarray:
        """RGB (H, W, 3): float32 in [0, 1], or uint8 ready for an 8-bit file (see ``compose_upsampled``)."""
        return compose_upsampled(self.lightness, self.small_ab, dtype, map_bands)


def lightness_of(image) -> np.ndarray:
    """A PIL image, or an array (H, W) / (H, W, 3), float in [0, 1] or uint8 / uint16 -> L in
    [0, 100], float32 (1, H, W)."""
    if isinstance(image, Image.Image):
        if image.mode == "L":  # 8-bit gray: L straight from a 256-entry table
            return gray_to_lightness(np.asarray(image))[None]
        image = pixels_from_image(image)[0]
    return lightness_from_array(np.asarray(image))


class Pipeline:
    def __init__(
        self,
        classifier: SceneClassifier | None,
        store: ModelStore,
        policy: RoutingPolicy,
        forced_expert: str | None = None,
        work_size: int | None = None,
        saturation: float = 1.0,
        threads: int | None = None,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
    ):
        self.classifier = classifier
        self.store = store
        self.policy = policy
        self.forced_expert = forced_expert
        self.work_size = work_size
        self.saturation = saturation
        self.providers = providers
        self.available = store.names()
        self._experts: dict[str, Expert] = {}
        self._sizes: list[int] | None = None  # every network input side, for shrink
        # Threads for the networks and the full-resolution work; the pool is made on first use.
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
        work_size: int | None = None,
        saturation: float = 1.0,
        threads: int | None = None,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        tune: bool = False,
    ) -> "Pipeline":
        """Build from the packaged configs, the user's model folder and optional explicit files.

        ``weights`` maps expert names to explicit files (highest precedence); ``home`` is
        the user's model folder (default ``$COLORIZE_HOME`` or the platform cache dir).
        ``threads``: threads for the networks and the full-resolution work (default: every
        available core). ``providers``: onnxruntime's execution providers, in order of
        preference. ``tune``: ask glibc to keep freed memory (``core.cpu.keep_freed_memory``):
        process-wide, so only a program that owns its process (the CLI) asks for it; a
        library call leaves the caller's process as it was.
        """
        if tune:
            keep_freed_memory()
        store = ModelStore(home=home, files=weights, classifier_file=classifier_weights)
        config = load_config("routing")
        user_routing = store.home / "routing.toml"
        if user_routing.is_file():
            config = merge_routing(config, read_routing(user_routing), str(user_routing), experts=store.names())
        policy = RoutingPolicy.from_config(config, threshold)
        classifier = None
        pipeline_threads = threads or available_cores()
        if expert is None:
            found = store.classifier_source()
            if found is not None:
                classifier = SceneClassifier.from_file(found.path, pipeline_threads, providers)
        return cls(classifier, store, policy, expert, work_size, saturation, pipeline_threads, providers)

    def expert(self, name: str) -> Expert:
        if name not in self._experts:
            self._experts[name] = self.store.load(name, self.threads, self.providers)
        return self._experts[name]

    def map_bands(self, function: Callable, items: Iterable) -> Iterable:
        """``map`` over the pipeline's worker threads (in order)."""
        if self.threads <= 1:
            return map(function, items)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="colorize-compose")
        return self._pool.map(function, items)

    def shrink(self, lightness: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each L larger than every network input, downsampled once to the largest of them.

        The classifier's and the experts' inputs are then taken from this small copy: an
        antialiased resize of a 12 MP image costs more than the classifier itself, and
        doing it once instead of twice changes an expert's input not at all (it is taken
        at exactly this size) and the classifier's only by resampling noise.
        """
        side = max(self._network_sizes())
        return [resize_square(light, side)[0] if min(light.shape[-2:]) > side else light for light in lightness]

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

    def route(self, lightness: Sequence[np.ndarray]) -> list[Route]:
        """One ``Route`` per L image (1, H, W); forced routes skip the classifier.

        The classifier's input is always made the one way: ``shrink`` (a no-op on what it
        already shrank), then the classifier's own size, so a photo routes the same whether it
        comes through ``predict`` or alone (``colorize classify``)."""
        if self.forced_expert is not None:
            return [route({}, self.available, self.policy, self.forced_expert) for _ in lightness]
        if self.classifier is None:
            raise PipelineError("routing needs the scene classifier, and none is installed: force an expert")
        probabilities = self.classifier.probabilities(self.shrink(lightness))
        return [route(p, self.available, self.policy) for p in probabilities]

    def predict_small_ab(
        self,
        lightness: Sequence[np.ndarray],
        routes: Sequence[Route],
        hints: Sequence[Sequence[Hint]] | None = None,
        shapes: Sequence[tuple[int, int]] | None = None,
        saturation: float | None = None,
    ) -> list[np.ndarray]:
        """ab (2, h, w) at each expert's output resolution for each L (1, H, W), batched per expert.

        ``hints``: for each photo, the colours a person gave (experts/hints.py; an empty list for
        none): spread over the expert's output (``spread_hints``), and given to a network that
        reads them. ``shapes``: each photo's own (height, width), where ``lightness`` holds copies
        already shrunk (``shrink``): the hints' places refer to the photo. ``saturation``: this
        call's, instead of the pipeline's (hints keep their own colour whatever it is)."""
        shapes = shapes or [light.shape[-2:] for light in lightness]
        given: Sequence[Sequence[Hint]] = hints if hints is not None else [()] * len(lightness)
        saturation = self.saturation if saturation is None else saturation
        out: list[np.ndarray | None] = [None] * len(lightness)
        for name in dict.fromkeys(r.expert for r in routes):
            members = [i for i, r in enumerate(routes) if r.expert == name]
            expert = self.expert(name)
            size = self.work_size or expert.work_size
            batch = np.concatenate([resize_square(lightness[i], size) for i in members])
            hinted = [row for row, i in enumerate(members) if given[i]]
            planes = None
            if hinted and expert.reads_hints:
                planes = np.stack([placed_planes(given[i], *shapes[i], size) for i in members])
            small_ab = expert.predict_ab(batch, planes)
            if saturation != 1.0:
                small_ab = small_ab * np.float32(saturation)
            if hinted:
                grid = small_ab.shape[-1]  # square, as the input
                small_light = resize_bilinear(batch[hinted], (grid, grid))[:, 0]
                for light, row in zip(small_light, hinted):
                    placed = [hint.place(*shapes[members[row]], grid) for hint in given[members[row]]]
                    small_ab[row] = spread_hints(small_ab[row], light, placed)
            for row, i in enumerate(members):
                out[i] = small_ab[row]
        return out  # type: ignore[return-value]

    def predict(
        self,
        lightness: Sequence[np.ndarray],
        hints: Sequence[Sequence[Hint]] | None = None,
        expert: str | None = None,
        saturation: float | None = None,
    ) -> list[Prediction]:
        """Route and run the networks for a batch of L images, each (1, H, W); compose later.

        ``hints``: for each photo, a list of ``Hint`` (possibly empty). ``expert``: route every
        photo of this call to that expert, as a pipeline forced to it would. ``saturation``:
        this call's, instead of the pipeline's."""
        shrunk = self.shrink(lightness)
        if expert is None:
            routes = self.route(shrunk)
        else:
            check_forced(expert, self.available)
            routes = [route({}, self.available, self.policy, expert) for _ in shrunk]
        shapes = [light.shape[-2:] for light in lightness]
        small = self.predict_small_ab(shrunk, routes, hints, shapes, saturation)
        return [Prediction(r, light, ab) for light, ab, r in zip(lightness, small, routes)]

    def colorize_lightness(
        self, lightness: Sequence[np.ndarray], hints: Sequence[Sequence[Hint]] | None = None
    ) -> list[Result]:
        """Colorize a batch of L images, each (1, H, W) in [0, 100] (sizes may differ)."""
        return [Result(p.compose(self.map_bands), p.route) for p in self.predict(lightness, hints)]

    def colorize(self, image, hints: Sequence[Hint] = ()) -> Result:
        """Colorize one photo: a path (decoded as ``colorize auto`` decodes it: upright, any
        supported format and depth), a PIL image or an array (only the luminance is used).

        ``hints``: colours a person knows at places of the photo (``Hint``), which the result
        keeps at those places and spreads over what lies around them:
        ``pipeline.colorize("photo.jpg", [Hint(120, 80, "#b22222")])``."""
        given = [list(hints)] if hints else None
        if isinstance(image, (str, os.PathLike)):
            decoded = decode(Path(image))
            return replace(self.colorize_lightness([decoded.lightness()], given)[0], source=decoded)
        return self.colorize_lightness([lightness_of(image)], given)[0]
