"""Running the pipeline over many files: planning outputs, overlapping I/O with compute.

A library layer under the CLI: it never prints; it yields one ``Outcome`` per input,
in input order, whatever happened to the file.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from colorize.pipelines.data import IMAGE_SUFFIXES
from colorize.pipelines.imageio import DEFAULT_MAX_PIXELS, DecodedImage, ImageError, decode, encode, is_colour_photo
from colorize.pipelines.inference import Pipeline
from colorize.router import Route

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
ON_EXISTS = ("skip", "overwrite", "error")


class PlanError(ValueError):
    """The command line asks for something unsafe or impossible (one-line message)."""


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path


@dataclass
class Outcome:
    input: Path
    output: Path | None
    status: str  # ok | skipped | failed
    reason: str | None = None  # why skipped or failed
    route: Route | None = None
    seconds: float = 0.0

    def as_record(self) -> dict:
        route = self.route.as_dict() if self.route else {}
        return {
            "input": str(self.input),
            "output": str(self.output) if self.output and self.status == OK else None,
            "status": self.status,
            "expert": route.get("expert"),
            "confidence": route.get("confidence"),
            "reason": route.get("reason"),
            "probabilities": route.get("probabilities"),
            "error": self.reason if self.status == FAILED else None,
            "skip_reason": self.reason if self.status == SKIPPED else None,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    missing: list[Outcome] = field(default_factory=list)  # inputs named on the command line that do not exist
    ignored: list[Path] = field(default_factory=list)  # non-image files in given folders


def _is_candidate(path: Path) -> bool:
    # Hidden files include our own in-flight temporaries (".name.xxxx.tmp").
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _output_name(path: Path, suffix: str) -> str:
    return f"{path.stem}{suffix}{path.suffix}"


def plan(inputs: Iterable[str], output_dir: Path, recursive: bool = False, suffix: str = "") -> Plan:
    """Expand files, folders and globs into jobs; the output tree mirrors each given folder."""
    output_dir = Path(output_dir)
    result = Plan()
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key in seen or _within(path, output_dir):
            return  # never re-ingest outputs of an earlier run
        seen.add(key)
        result.jobs.append(Job(path, output_dir / relative.parent / _output_name(path, suffix)))

    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            if _within(output_dir, path) and not suffix:
                raise PlanError(
                    f"output folder {output_dir} is inside input folder {path}: outputs would sit beside "
                    "the originals; choose another --output or add --suffix (e.g. --suffix _color)"
                )
            walker = sorted(path.rglob("*") if recursive else path.iterdir())
            for child in walker:
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts):
                    if _is_candidate(child):
                        add(child, child.relative_to(path))
                    else:
                        result.ignored.append(child)
        elif path.exists() or os.path.lexists(path):
            add(path, Path(path.name))
        elif glob.has_magic(raw):
            matches = sorted(Path(m) for m in glob.glob(raw, recursive=recursive))
            if not matches:
                result.missing.append(Outcome(path, None, FAILED, "no file matches this pattern"))
            for match in matches:
                if match.is_file() and _is_candidate(match):
                    add(match, Path(match.name))
        else:
            result.missing.append(Outcome(path, None, FAILED, "no such file or folder"))
    for job in result.jobs:
        if job.output.resolve() == job.input.resolve():
            raise PlanError(f"{job.input}: output would overwrite the input; choose another --output or a --suffix")
    return result


@dataclass
class RunOptions:
    on_exists: str = "skip"
    force: bool = False  # colorize photos that are already in colour (their luminance)
    max_pixels: int = DEFAULT_MAX_PIXELS
    keep_metadata: bool = True
    fail_fast: bool = False
    batch_size: int = 8
    batch_pixels: int = 16_000_000  # a batch closes early past this many pixels, to bound memory
    io_threads: int = 2


def _decode_job(job: Job, options: RunOptions) -> tuple[DecodedImage | None, Outcome | None, float]:
    started = time.perf_counter()
    if job.output.exists() and options.on_exists != "overwrite":
        if options.on_exists == "skip":
            return None, Outcome(job.input, job.output, SKIPPED, "output exists"), 0.0
        return None, Outcome(job.input, job.output, FAILED, f"output exists: {job.output} (--on-exists error)"), 0.0
    try:
        decoded = decode(job.input, options.max_pixels)
    except ImageError as error:
        return None, Outcome(job.input, job.output, FAILED, str(error)), time.perf_counter() - started
    if not options.force and is_colour_photo(decoded.pixels):
        return None, Outcome(job.input, job.output, SKIPPED, "already colour"), time.perf_counter() - started
    return decoded, None, time.perf_counter() - started


def _encode_job(rgb, decoded: DecodedImage, job: Job, route: Route, options: RunOptions) -> None:
    note = f"colorized by expert {route.expert} ({route.reason})"
    encode(rgb, decoded, job.output, keep_metadata=options.keep_metadata, note=note)


def run(pipeline: Pipeline, jobs: list[Job], options: RunOptions) -> Iterator[Outcome]:
    """Colorize ``jobs``; yields one Outcome per job, in order.

    Decoding of the next images and encoding of finished ones run in threads while the
    networks work on the current batch (PIL and torch release the GIL).
    """
    if options.on_exists not in ON_EXISTS:
        raise PlanError(f"--on-exists must be one of {', '.join(ON_EXISTS)}")
    with ThreadPoolExecutor(options.io_threads, thread_name_prefix="colorize-io") as pool:
        lookahead = options.batch_size + 2  # decoded images waiting: bounds memory on big photos
        pending: list[tuple[Job, Future]] = []
        writes: list[tuple[Outcome, Future]] = []
        queue = iter(jobs)

        def refill() -> None:
            while len(pending) < lookahead and (job := next(queue, None)) is not None:
                pending.append((job, pool.submit(_decode_job, job, options)))

        def drain_writes(block: bool) -> Iterator[Outcome]:
            while writes and (block or writes[0][1].done()):
                outcome, future = writes.pop(0)
                try:
                    future.result()
                except Exception as error:  # a write failure fails this file only
                    outcome.status, outcome.reason = FAILED, f"cannot write output ({error})"
                yield outcome

        refill()
        while pending:
            batch: list[tuple[Job, DecodedImage, float]] = []
            pixels = 0
            while pending and len(batch) < options.batch_size and pixels < options.batch_pixels:
                job, future = pending.pop(0)
                decoded, early, seconds = future.result()
                refill()
                if early is not None:
                    yield from drain_writes(block=True)  # keep outcomes in input order
                    yield early
                    if early.status == FAILED and options.fail_fast:
                        return
                    continue
                batch.append((job, decoded, seconds))
                pixels += decoded.pixels.shape[0] * decoded.pixels.shape[1]
            if not batch:
                continue
            started = time.perf_counter()
            results = pipeline.colorize_lightness([decoded.lightness() for _, decoded, _ in batch])
            share = (time.perf_counter() - started) / len(batch)
            yield from drain_writes(block=True)
            for (job, decoded, seconds), result in zip(batch, results):
                outcome = Outcome(job.input, job.output, OK, None, result.route, seconds + share)
                writes.append((outcome, pool.submit(_encode_job, result.rgb, decoded, job, result.route, options)))
            yield from drain_writes(block=False)
            if options.fail_fast and any(o.status == FAILED for o, f in writes if f.done() and f.exception()):
                yield from drain_writes(block=True)
                return
        yield from drain_writes(block=True)
