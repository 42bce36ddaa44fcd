"""Scoring colorization against colour ground truth, always beside the gray baseline.

A library under ``colorize eval``: it never prints. Each colour photo is its own test case:
its L is the grayscale input, its RGB the truth. Every photo is scored for the gray
baseline (L alone, a = b = 0) and for each *mode*: ``auto`` (the classifier routes) or an
expert's name (forced). A number without the baseline beside it says little: a model that
predicts nothing already scores a good PSNR, because L carries most of the signal.

Work is shared between modes: a photo is decoded, classified and baseline-scored once,
and each (photo, expert) pair is predicted and scored once, so ``auto`` costs nothing
extra when ``landscape``, ``people`` and ``general`` are also compared.
"""

from __future__ import annotations

import heapq
import json
import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from colorize.core.color import compose_upsampled, is_colour_photo, lightness_from_array
from colorize.core.errors import ColorizeError
from colorize.core.images import DEFAULT_MAX_PIXELS, ImageError, decode
from colorize.experts.hints import Hint, hints_from_truth
from colorize.pipelines import metrics
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.photo_folders import HELD_OUT_PARTS, held_out_part, is_held_out, list_images
from colorize.pipelines.sheets import contact_sheet
from colorize.router import Route, route

if TYPE_CHECKING:
    from colorize.pipelines.recognition import Recognizer

GRAY = "gray"  # the baseline: the photo's own L with a = b = 0
AUTO = "auto"  # the classifier routes each photo
ALL = "(all)"  # the summary over every category; in parentheses so no folder name clashes with it
TOP_LEVEL = "(top level)"  # photos directly in DATA_DIR, in no category sub-folder


class EvaluationError(ColorizeError, ValueError):
    """The evaluation cannot run as asked; the message is one line."""


@dataclass(frozen=True)
class Sample:
    """One ground-truth photo. ``category``: its top-level sub-folder of DATA_DIR, or None."""

    path: Path
    category: str | None


def find_samples(
    data_dir: Path, holdout: float | None = None, limit: int | None = None, part: str = "test"
) -> list[Sample]:
    """The photos below ``data_dir``, grouped by top-level sub-folder, sorted.

    ``holdout``: keep only photos that training held out at this fraction (``is_held_out``,
    the rule training uses), and of those only ``part``: "test" (never used to choose
    anything), "validation" (where training chose its epoch and decoding), or "all".
    ``limit``: the first N photos of each category after sorting (applied after
    ``holdout``). Raises ``DataError`` for a missing or empty folder, ``EvaluationError``
    when nothing is left after filtering.
    """
    data_dir = Path(data_dir)
    if holdout is not None and not 0 < holdout <= 1:
        raise EvaluationError(f"--holdout must be in (0, 1], got {holdout}")
    if part not in (*HELD_OUT_PARTS, "all"):
        raise EvaluationError(f"--part must be one of {', '.join(HELD_OUT_PARTS)}, all; got {part!r}")
    if limit is not None and limit < 1:
        raise EvaluationError(f"--limit must be at least 1, got {limit}")
    found = list_images(data_dir)
    per_category: dict[str | None, list[Sample]] = defaultdict(list)
    for path in found:
        parts = path.relative_to(data_dir).parts
        if any(part.startswith(".") for part in parts):
            continue  # hidden files and folders, our own temporaries included
        if holdout is not None and not (is_held_out(path, holdout) and part in ("all", held_out_part(path))):
            continue
        category = parts[0] if len(parts) > 1 else None
        per_category[category].append(Sample(path, category))
    samples = [s for group in per_category.values() for s in (group[:limit] if limit else group)]
    if not samples:
        what = f"none of the {len(found)} photos in {data_dir} is in the {part} part held out at --holdout {holdout}"
        raise EvaluationError(what if holdout is not None else f"{data_dir}: no usable photos")
    return sorted(samples, key=lambda s: (s.category is not None, s.category or "", s.path))


def check_modes(modes: Sequence[str], pipeline: Pipeline) -> list[str]:
    """Validate mode names (``auto`` or expert names) against what the pipeline can run."""
    if not modes:
        raise EvaluationError("nothing to evaluate: give at least one of auto or an expert name")
    if len(set(modes)) != len(modes):
        raise EvaluationError(f"a mode is named twice: {', '.join(modes)}")
    choices = ", ".join([AUTO, *pipeline.available])
    for mode in modes:
        if mode == AUTO:
            if pipeline.classifier is None:
                raise EvaluationError("mode auto needs the scene classifier, and no classifier weights were found")
        elif mode not in pipeline.available:
            extra = " (the gray baseline is always shown)" if mode == GRAY else ""
            raise EvaluationError(f"unknown expert {mode!r}; choose from: {choices}{extra}")
    return list(modes)


@dataclass
class ModeScore:
    """One mode's result on one photo: the route it took and the metrics of its output."""

    route: Route
    metrics: dict[str, float]


@dataclass
class Scored:
    """One photo's outcome. ``error`` is set (and nothing else) when it was skipped."""

    sample: Sample
    error: str | None = None
    failed: bool = False  # True: unreadable; False with an error: skipped on purpose (gray truth)
    size: tuple[int, int] | None = None  # (width, height)
    gray: dict[str, float] = field(default_factory=dict)
    modes: dict[str, ModeScore] = field(default_factory=dict)
    # uint8 (H, W, 3) images keyed GRAY, each mode and "truth"; ``Evaluation.add`` keeps only
    # thumbnails for the sheet, so memory stays at one batch of photos.
    images: dict[str, np.ndarray] | None = None

    def as_record(self) -> dict:
        record: dict = {"path": str(self.sample.path), "category": self.sample.category}
        if self.error is not None:
            return {**record, "status": "failed" if self.failed else "skipped", "reason": self.error}
        record.update(status="ok", size=list(self.size or ()), gray=self.gray)
        for mode, score in self.modes.items():
            r = score.route
            record[mode] = {"expert": r.expert, "reason": r.reason, "confidence": r.confidence, **score.metrics}
            if r.probabilities:
                record[mode]["probabilities"] = dict(r.probabilities)
        return record


def colour_photos(
    data_dir: Path, holdout: float | None = None, part: str = "test", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
    """Each colour photo ``find_samples`` gives, with its pixels and its L (float32 (1, H, W)),
    the grayscale input ``evaluate`` scores; gray, toned and unreadable files are passed over.
    For trials that score something of their own on the same photos."""
    for sample in find_samples(data_dir, holdout=holdout, part=part):
        pixels = _decode(sample, max_pixels)
        if not isinstance(pixels, Scored):
            yield sample, pixels, lightness_from_array(pixels)


def _to_rgb8(pipeline: Pipeline, lightness: np.ndarray, small_ab: np.ndarray) -> np.ndarray:
    """The 8-bit output ``colorize auto`` would write: L joined with ab upsampled from the network's size."""
    return compose_upsampled(lightness, small_ab, np.uint8, pipeline.map_bands)


_NO_COLOUR = np.zeros((2, 1, 1), np.float32)  # a = b = 0, upsampled to any size


def _decode(sample: Sample, max_pixels: int) -> np.ndarray | Scored:
    """The photo's pixels, or the ``Scored`` of a photo passed over (unreadable, or with no colour)."""
    try:
        decoded = decode(sample.path, max_pixels)
    except ImageError as error:
        return Scored(sample, str(error), failed=True)
    if not is_colour_photo(decoded.data):
        return Scored(sample, "no colour to score (a gray or toned photo)")
    return decoded.pixels


def _simulated_hints(sample: Sample, truth: metrics.Truth, count: int, seed: int) -> list[Hint]:
    if count <= 0:
        return []
    rng = np.random.default_rng([seed, zlib.crc32(sample.path.name.encode("utf-8", "surrogateescape"))])
    return hints_from_truth(np.moveaxis(truth.lab[..., 1:], -1, 0), count, rng)


def _score_batch(
    pipeline: Pipeline,
    batch: list[tuple[Sample, np.ndarray]],
    modes: Sequence[str],
    keep_images: bool,
    recognizer: Recognizer | None = None,
    hint_count: int = 0,
    hint_seed: int = 0,
) -> list[Scored]:
    # The ground truth's own L is the grayscale input: what a black-and-white print of it would hold.
    lightness = [lightness_from_array(pixels) for _, pixels in batch]
    # The networks' inputs come from one small copy of each L, as ``Pipeline.predict`` takes them.
    shrunk = pipeline.shrink(lightness)
    routes: dict[str, list[Route]] = {}
    for mode in modes:
        if mode == AUTO:
            routes[mode] = pipeline.route(shrunk)
        else:
            routes[mode] = [route({}, pipeline.available, pipeline.policy, forced=mode)] * len(batch)
    # An expert's output for a photo does not depend on how it was chosen: predict and score
    # each (photo, expert) pair once, whichever modes share it.
    pairs = list(dict.fromkeys((i, r.expert) for mode_routes in routes.values() for i, r in enumerate(mode_routes)))
    pair_routes = [Route(expert, None, {}, "evaluation") for _, expert in pairs]
    truths = [metrics.prepare_truth(pixels) for _, pixels in batch]
    # Simulated hints: drawn from each photo's truth with a seed of its own, the same for every expert.
    hints = [_simulated_hints(sample, truth, hint_count, hint_seed) for (sample, _), truth in zip(batch, truths)]
    small = pipeline.predict_small_ab(
        [shrunk[i] for i, _ in pairs],
        pair_routes,
        [hints[i] for i, _ in pairs] if hint_count else None,
        [lightness[i].shape[-2:] for i, _ in pairs],
    )
    outputs = {(i, expert): _to_rgb8(pipeline, lightness[i], ab) for (i, expert), ab in zip(pairs, small)}
    grays = [_to_rgb8(pipeline, light, _NO_COLOUR) for light in lightness]
    recognised: dict = {}
    if recognizer is not None:
        # Same top-1 class as on the true colour photo: 1, else 0 (a mean over photos is a rate).
        keys = [*((i, GRAY) for i in range(len(batch))), *outputs]
        images = [grays[i] if expert == GRAY else outputs[(i, expert)] for i, expert in keys]
        truth_classes = recognizer.top1([truth.rgb for truth in truths])
        for (i, expert), cls in zip(keys, recognizer.top1(images)):
            recognised[(i, expert)] = {"recognised": float(cls == truth_classes[i])}
    results = []
    for i, (sample, _) in enumerate(batch):
        truth, gray_rgb = truths[i], grays[i]
        gray_scores = {**metrics.compare(gray_rgb, truth), **recognised.get((i, GRAY), {})}
        scored = Scored(sample, size=(truth.rgb.shape[1], truth.rgb.shape[0]), gray=gray_scores)
        per_expert: dict[str, dict[str, float]] = {}
        for mode in modes:
            expert = routes[mode][i].expert
            if expert not in per_expert:
                per_expert[expert] = {**metrics.compare(outputs[(i, expert)], truth), **recognised.get((i, expert), {})}
                if hints[i]:
                    per_expert[expert]["hints_honoured"] = metrics.hints_honoured(outputs[(i, expert)], hints[i])
            scored.modes[mode] = ModeScore(routes[mode][i], per_expert[expert])
        if keep_images:
            scored.images = {
                GRAY: gray_rgb,
                "truth": truth.rgb,
                **{m: outputs[(i, routes[m][i].expert)] for m in modes},
            }
        results.append(scored)
    return results


def score(
    pipeline: Pipeline,
    samples: Iterable[Sample],
    modes: Sequence[str],
    batch_size: int = 8,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_images: bool = False,
    batch_pixels: int = 16_000_000,
    recognizer: Recognizer | None = None,
    hints: int = 0,
    hint_seed: int = 0,
) -> Iterator[Scored]:
    """Score each sample for the gray baseline and every mode; yields one ``Scored`` per sample, in order.

    The networks run on batches of ``batch_size`` photos; a batch closes early past
    ``batch_pixels`` (full-resolution copies of a batch are held while it is scored).
    ``keep_images``: attach the uint8 outputs to each ``Scored`` (for a contact sheet).
    ``recognizer``: also score recognisability (``pipelines.recognition``) as ``recognised``.
    ``hints``: give every expert this many colour hints per photo, drawn from its truth
    (``hints_from_truth``, seeded by ``hint_seed`` and the file's name, so every run and every
    expert gets the same points), and score how many it honours (``hints_honoured``).
    """
    modes = check_modes(modes, pipeline)
    pending: list[Scored | tuple[Sample, np.ndarray]] = []

    def flush() -> Iterator[Scored]:
        batch = [item for item in pending if not isinstance(item, Scored)]
        scored = iter(_score_batch(pipeline, batch, modes, keep_images, recognizer, hints, hint_seed) if batch else [])
        for item in pending:  # skipped photos keep their place in the order
            yield item if isinstance(item, Scored) else next(scored)
        pending.clear()

    ready = size = 0
    for sample in samples:
        pixels = _decode(sample, max_pixels)
        if isinstance(pixels, Scored):  # passed over
            pending.append(pixels)
        else:
            pending.append((sample, pixels))
            ready, size = ready + 1, size + pixels.shape[0] * pixels.shape[1]
        if ready == batch_size or size >= batch_pixels:
            yield from flush()
            ready = size = 0
    yield from flush()


class _SheetPicker:
    """Keeps thumbnails of the best and worst ``count`` photos by ΔE of the first mode."""

    def __init__(self, count: int, modes: Sequence[str], tile: int):
        self.count, self.modes, self.tile = count, list(modes), tile
        self._best: list = []  # max-heap by ΔE (negated): the smallest ΔE seen so far
        self._worst: list = []  # min-heap by ΔE: the largest ΔE seen so far
        self._seen = 0

    def offer(self, scored: Scored) -> None:
        if self.count <= 0 or scored.images is None:
            return
        delta_e = scored.modes[self.modes[0]].metrics["delta_e"]
        self._seen += 1
        entry = None
        # The arrival index breaks ties (the earlier photo stays), so thumbnails are never
        # compared and the sheet is deterministic. Thumbnails are made only for photos kept.
        for heap, key in ((self._best, (-delta_e, -self._seen)), (self._worst, (delta_e, -self._seen))):
            if len(heap) < self.count:
                entry = entry or self._thumbnails(scored)
                heapq.heappush(heap, (key, entry))
            elif key > heap[0][0]:
                entry = entry or self._thumbnails(scored)
                heapq.heapreplace(heap, (key, entry))

    def _thumbnails(self, scored: Scored) -> tuple[Scored, list[np.ndarray]]:
        assert scored.images is not None  # offer() passes over photos without images
        columns = [GRAY, *self.modes, "truth"]
        thumbs = []
        for name in columns:
            image = Image.fromarray(scored.images[name])
            image.thumbnail((self.tile, self.tile))
            thumbs.append(np.asarray(image))
        return replace(scored, images=None), thumbs  # the full-size images are not kept

    def rows(self) -> list[tuple[str, Scored, list[np.ndarray]]]:
        """('best k' / 'worst k', scored, [gray, modes..., truth]); best first, then worst from the worst."""
        best = [entry for _, entry in sorted(self._best, reverse=True)]
        worst = [entry for _, entry in sorted(self._worst, reverse=True)]
        shown = {id(s) for s, _ in best}
        rows = [(f"best {k}", s, t) for k, (s, t) in enumerate(best, 1)]
        rows += [(f"worst {k}", s, t) for k, (s, t) in enumerate(worst, 1) if id(s) not in shown]
        return rows


class Evaluation:
    """Collects ``Scored`` photos and summarises them per category, per mode, beside the baseline."""

    def __init__(self, modes: Sequence[str], pipeline: Pipeline | None = None, sheet_count: int = 0, tile: int = 160):
        self.modes = list(modes)
        self.scored: list[Scored] = []
        # Routing is scored against folders named like the classifier's classes.
        classifier = pipeline.classifier if pipeline is not None else None
        self.labels: tuple[str, ...] = tuple(classifier.labels) if classifier is not None else ()
        self.policy = pipeline.policy if pipeline is not None else None
        self._sheet = _SheetPicker(sheet_count, self.modes, tile)

    def add(self, scored: Scored) -> None:
        """Record one photo; of its images only the sheet's thumbnails are kept."""
        self._sheet.offer(scored)
        self.scored.append(replace(scored, images=None))

    @property
    def ok(self) -> list[Scored]:
        return [s for s in self.scored if s.error is None]

    @property
    def failed(self) -> list[Scored]:
        return [s for s in self.scored if s.error is not None and s.failed]

    @property
    def skipped(self) -> list[Scored]:
        return [s for s in self.scored if s.error is not None and not s.failed]

    def categories(self) -> list[str]:
        """Category names in display order; ``ALL`` last (alone when there are no sub-folders)."""
        names = sorted({s.sample.category or TOP_LEVEL for s in self.ok})
        return [*names, ALL] if len(names) > 1 or names[:1] != [TOP_LEVEL] else [ALL]

    def summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """{category: {GRAY | mode: metrics.summarize(...)}}, every mode beside the baseline;
        ``auto``'s also counts the photos each expert was routed ("experts": {name: count})."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for category in self.categories():
            members = [s for s in self.ok if category == ALL or (s.sample.category or TOP_LEVEL) == category]
            table: dict[str, dict[str, Any]] = {GRAY: metrics.summarize([s.gray for s in members])}
            for mode in self.modes:
                table[mode] = metrics.summarize([s.modes[mode].metrics for s in members])
                if mode == AUTO:
                    table[mode]["experts"] = dict(sorted(Counter(s.modes[mode].route.expert for s in members).items()))
            out[category] = table
        return out

    def routing(self) -> dict | None:
        """Routing accuracy and confusion (folder class -> routed expert) for ``auto``, or None.

        Scored only on photos whose top-level folder is named like a classifier class; the
        expected expert is the routing policy's expert for that class. ``classifier_accuracy``
        is the classifier's top-1 alone, before the confidence threshold and fallback.
        """
        if AUTO not in self.modes or not self.labels or self.policy is None:
            return None
        members = [s for s in self.ok if s.sample.category in self.labels]
        if not members:
            return None
        confusion: dict[str, Counter] = {
            label: Counter() for label in self.labels if any(s.sample.category == label for s in members)
        }
        routed_right = top1_right = 0
        for s in members:
            category = s.sample.category
            assert category is not None  # one of the labels
            r = s.modes[AUTO].route
            confusion[category][r.expert] += 1
            routed_right += r.expert == self.policy.expert_for(category)
            top1_right += max(r.probabilities, key=r.probabilities.__getitem__) == category
        experts = sorted({e for row in confusion.values() for e in row})
        return {
            "images": len(members),
            "accuracy": routed_right / len(members),
            "classifier_accuracy": top1_right / len(members),
            "experts": experts,
            "expected": {label: self.policy.expert_for(label) for label in confusion},
            "confusion": {label: {e: row[e] for e in experts} for label, row in confusion.items()},
            "reasons": dict(sorted(Counter(s.modes[AUTO].route.reason for s in members).items())),
        }

    def as_json(self, settings: dict | None = None) -> dict:
        """Every number: settings, counts, summary, routing, and one record per photo."""
        return {
            "settings": settings or {},
            "modes": self.modes,
            "baseline": f"{GRAY}: the photo's own L with a = b = 0",
            "counts": {"ok": len(self.ok), "skipped": len(self.skipped), "failed": len(self.failed)},
            "summary": self.summary(),
            "routing": self.routing(),
            "images": [s.as_record() for s in self.scored],
        }

    def sheet_rows(self) -> list[tuple[str, Scored]]:
        """What the sheet shows, in order: ('best 1', photo), ... then ('worst 1', photo), ..."""
        return [(label, scored) for label, scored, _ in self._sheet.rows()]

    def write_sheet(self, path: Path) -> Path | None:
        """Contact sheet: best then worst photos by ΔE of the first mode (gray | modes... | truth)."""
        rows = self._sheet.rows()
        if not rows:
            return None
        captions = [_caption(label, s, self.modes) for label, s, _ in rows]
        headers = [GRAY, *self.modes, "truth"]
        return contact_sheet([thumbs for _, _, thumbs in rows], captions, path, tile=self._sheet.tile, headers=headers)


def _caption(label: str, scored: Scored, modes: Sequence[str]) -> str:
    # ASCII only: PIL's default font may lack 'Δ'.
    name = scored.sample.path.name
    name = name if len(name) <= 28 else name[:12] + "..." + name[-13:]
    parts = [f"{label}: {name}", f"gray dE {scored.gray['delta_e']:.1f}"]
    for mode in modes:
        score_ = scored.modes[mode]
        via = f">{score_.route.expert}" if mode == AUTO else ""
        parts.append(f"{mode}{via} dE {score_.metrics['delta_e']:.1f}")
    return "  ".join(parts)


def model_provenance(pipeline: Pipeline, modes: Sequence[str]) -> dict[str, dict[str, str]]:
    """Which weights files produced the numbers: {name: {source, path, sha256}} for every model the modes can use."""
    from colorize.core.modelfile import file_sha256

    sources = pipeline.store.sources()
    names = sources if AUTO in modes else [m for m in modes if m in sources]
    out = {name: {"source": sources[name].source, "path": str(sources[name].path)} for name in names}
    if AUTO in modes and pipeline.classifier is not None:
        out["(classifier)"] = {"path": str(pipeline.classifier.model_file.path)}
    for entry in out.values():
        entry["sha256"] = file_sha256(Path(entry["path"]))
    return out


def _finite(value):
    """JSON has no inf/nan: write them as null (PSNR of identical images is infinite)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_text(data: dict) -> str:
    """``data`` as strict JSON: infinities and NaN (a PSNR of identical images) become null."""
    return json.dumps(_finite(data), indent=1, ensure_ascii=False, allow_nan=False)
