"""Running the pipeline over many files: planning outputs, overlapping I/O with compute.

A library layer under the CLI: it never prints; it yields one ``Outcome`` per input,
in input order, whatever happened to the file. Inputs are only ever read: every write
goes to a planned output path that is neither an input nor another job's output.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import json
import os
import time
from collections import Counter, deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from colorize.core.color import is_colour_photo
from colorize.core.errors import ColorizeError
from colorize.core.files import remove_stale_temporaries
from colorize.core.images import (
    DEFAULT_MAX_PIXELS,
    FORMAT_OF_EXTENSION,
    DecodedImage,
    ImageError,
    decode,
    encode,
    output_bits,
    read_marker,
)
from colorize.core.modelfile import ModelFileError
from colorize.experts.hints import Hint
from colorize.pipelines.inference import (
    MadeFrom,
    Pipeline,
    Prediction,
    made_from_note,
    provenance_note,
    route_from_note,
)
from colorize.pipelines.photo_folders import IMAGE_SUFFIXES, is_image_candidate, walk_files
from colorize.router import Route
from colorize.router.policy import NoFallbackExpertError

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
ON_EXISTS = ("skip", "overwrite", "error")
OUTPUT_EXISTS, ALREADY_COLOUR, EARLIER_OUTPUT = (
    "output exists",
    "already colour (--force to colorize it)",
    "a colorize output (from an earlier run)",
)
FAILED_KEPT = 10  # failed inputs a tally keeps by name (a summary names them; the report has all)
# Problems of the setup rather than of one photo: every later photo would fail the same way.
FATAL_ERRORS = (ModelFileError, NoFallbackExpertError)


class PlanError(ColorizeError, ValueError):
    """The command line asks for something unsafe or impossible (one-line message)."""

    exit_code = 2  # a usage error: the command line, a file named on it or the set-up


# What an output file name's extension says to write: ``-o NAME.EXT`` for one photo, and
# ``--format`` (its choices are the short names: jpg, png, tif, webp).
OUTPUT_FORMATS = FORMAT_OF_EXTENSION


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path
    format: str | None = None  # the format to write (a PIL name, e.g. "PNG"); None: the input's own
    hints: tuple[Hint, ...] = ()  # colours a person gave for places of this photo


def path_text(path: Path) -> str:
    """A path as text that can always be written out: bytes of a name that are not UTF-8
    (a Latin-1 name from an old disk) appear as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass
class Outcome:
    input: Path
    output: Path | None
    status: str  # ok | skipped | failed
    reason: str | None = None  # why skipped or failed (one line)
    route: Route | None = None
    seconds: float = 0.0
    rank: int = 0  # the process that did it, in a run split across processes (torchrun)

    def as_record(self) -> dict:
        route = self.route.as_dict() if self.route else {}
        has_output = self.status == OK or self.reason == OUTPUT_EXISTS
        return {
            "input": path_text(self.input),
            "output": path_text(self.output) if self.output and has_output else None,
            "status": self.status,
            "expert": route.get("expert"),
            "confidence": route.get("confidence"),
            "reason": route.get("reason"),
            "top_class": route.get("top_class"),
            "probabilities": route.get("probabilities"),
            "error": self.reason if self.status == FAILED else None,
            "skip_reason": self.reason if self.status == SKIPPED else None,
            "seconds": round(self.seconds, 4),
            "rank": self.rank,
        }

    @classmethod
    def from_record(cls, record: dict) -> "Outcome":
        """The outcome ``as_record`` wrote (paths as text: a name that was not UTF-8 stays escaped)."""
        route = None
        if record["expert"] is not None:
            route = Route(
                record["expert"], record["confidence"], record["probabilities"], record["reason"], record["top_class"]
            )
        return cls(
            Path(record["input"]),
            Path(record["output"]) if record["output"] else None,
            record["status"],
            record["error"] or record["skip_reason"],
            route,
            record["seconds"],
            record["rank"],
        )


@dataclass
class Tally:
    """What a run did, outcome by outcome: counts by status, photos per expert, skips by reason,
    the first failed inputs, and a report row (JSON lines) for each when a report file is open.

    The report holds whole rows only: when one cannot be written (a full disk), the file is cut
    back to the rows before it, the report stops there, and ``report_error`` says why; the
    tally itself goes on counting."""

    report: IO[bytes] | None = None
    counts: Counter = field(default_factory=Counter)
    experts: Counter = field(default_factory=Counter)
    skips: Counter = field(default_factory=Counter)
    failed: list[Path] = field(default_factory=list)  # the first FAILED_KEPT failed inputs, to name them
    report_error: str | None = None  # why the report stopped short of the run (one line)
    _written: int = 0  # bytes of whole rows in the report

    @classmethod
    def writing(cls, report: Path | None) -> "Tally":
        """A tally that writes ``report`` (raises OSError when it cannot be created)."""
        if report is None:
            return cls()
        report.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: a row leaves in one write of its own, so no buffer can cut it in two.
        return cls(open(report, "wb", buffering=0))

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status] += 1
        if outcome.status == OK and outcome.route is not None:  # an ok photo was routed
            self.experts[outcome.route.expert] += 1
        elif outcome.status == SKIPPED:
            self.skips[outcome.reason] += 1
        elif len(self.failed) < FAILED_KEPT:
            self.failed.append(outcome.input)
        if self.report is not None:
            self._write_row(outcome.as_record())

    def _write_row(self, record: dict) -> None:
        assert self.report is not None  # add() writes rows only while there is a report
        # A reason can quote a file name that is not UTF-8: escaped, never a crash mid-run.
        row = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
        try:
            written = 0
            while written < len(row):  # a disk filling up first takes part of a write
                written += self.report.write(row[written:])
        except OSError as error:
            with contextlib.suppress(OSError):  # a pipe or a device cannot be cut back
                os.ftruncate(self.report.fileno(), self._written)
            self.report_error = f"cannot write report {self.report.name}: {error.strerror or error}"
            self.close()
            return
        self._written += written

    def close(self) -> None:
        if self.report is not None:
            self.report.close()
            self.report = None

    @property
    def done(self) -> int:
        return sum(self.counts.values())


def is_report(path: Path) -> bool:
    """Whether ``path`` may become a report: it is not a regular file, or one that is empty or
    begins with a report row (an earlier run's report). Any other file may be a photo or
    someone's data, which a report must never replace. Only the first line is read."""
    if not path.is_file():
        return True  # missing, or a device or pipe (/dev/stdout): nothing to lose
    with open(path, "rb") as handle:
        first = handle.readline(_ROW_LIMIT)
    if not first:
        return True
    try:
        row = json.loads(first)
    except ValueError:  # not JSON, or not UTF-8
        return False
    return isinstance(row, dict) and {"input", "status"} <= row.keys()


_ROW_LIMIT = 1 << 20  # a report row is a few hundred bytes; a line longer is no row of ours


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    # Inputs refused before any decoding, each with its reason: unreadable folders, outputs whose
    # name is taken, outputs that would land outside the output folder.
    refused: list[Outcome] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)  # non-image files in given folders and globs
    earlier_outputs: list[Path] = field(default_factory=list)  # our own outputs met as inputs; never re-ingested
    into_file: bool = False  # the output is one file that the command line named, not a folder
    # Photos (by name) in sub-folders of given folders, passed over without -r; and whether a
    # huge tree was counted only in part (see _photos_in_subfolders).
    in_subfolders: int = 0
    in_subfolders_partial: bool = False


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _output_name(path: Path, suffix: str, extension: str | None) -> str:
    return f"{path.stem}{suffix}{extension or path.suffix}"


# The longest file name, in bytes, that ext4, XFS, Btrfs, APFS and NTFS all allow.
NAME_MAX = 255


def _too_long(name: str) -> int | None:
    """The length in bytes of a file name too long to be made, or None."""
    size = len(os.fsencode(name))
    return size if size > NAME_MAX else None


def names_a_file(output: Path) -> bool:
    """Whether ``-o output`` names an image file (``photo_colour.jpg``) rather than a folder:
    its extension is an image format's, and no folder of that name exists."""
    return Path(output).suffix.lower() in OUTPUT_FORMATS and not Path(output).is_dir()


def _walk(folder: Path, recursive: bool, problems: list[Outcome]) -> Iterator[Path]:
    """``walk_files``, with each unreadable sub-folder as a failed outcome."""

    def unreadable(error: OSError) -> None:
        problems.append(Outcome(Path(error.filename or folder), None, FAILED, f"cannot read folder ({error.strerror})"))

    return walk_files(folder, recursive, unreadable)


def expand_glob(pattern: str, recursive: bool) -> list[Path]:
    """The files a glob pattern names, sorted. With ``recursive``, ``**`` matches any depth of
    folders, but links to folders are not followed (as folder walking does): Python's glob
    follows them, and two links back to ``.`` made the expansion grow exponentially."""
    if not (recursive and "**" in pattern):
        return sorted(Path(m) for m in glob.glob(pattern))
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    wanted = parts[fixed:]
    return sorted(path for path in walk_files(root, recursive=True) if _matches(path.relative_to(root).parts, wanted))


def _matches(names: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether the path ``names`` matches the pattern ``parts``, ``**`` being any number of folders."""
    if not parts:
        return not names
    if parts[0] == "**":
        return any(_matches(names[skip:], parts[1:]) for skip in range(len(names) + 1))
    # Hidden names never get here: walk_files leaves them out.
    return bool(names) and fnmatch.fnmatchcase(names[0], parts[0]) and _matches(names[1:], parts[1:])


@dataclass(frozen=True)
class Found:
    """A photo an input names: ``relative`` is its place below the folder it was found in
    (its name alone when it was named, or matched by a glob), which an output tree mirrors."""

    path: Path
    relative: Path


@dataclass
class Listing:
    """The photos that files, folders and globs name (``list_photos``)."""

    photos: list[Found] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)  # unreadable folders
    ignored: list[Path] = field(default_factory=list)  # non-image files in given folders and globs
    earlier_outputs: list[Path] = field(default_factory=list)  # files in the output tree, left out
    in_subfolders: int = 0  # see Plan
    in_subfolders_partial: bool = False


def list_photos(inputs: Iterable[str], recursive: bool = False, outputs: Path | None = None) -> Listing:
    """Expand files, folders and globs into the photos they name, each once, in order: what
    every command that reads photos (``colorize auto``, ``classify``) goes through.

    ``outputs``: a run's output folder. Files found in it by walking a given folder are left
    out (as ``earlier_outputs``), as is its tree from the count of photos in sub-folders.
    Raises ``PlanError`` when an input does not exist or a pattern matches nothing.
    """
    result = Listing()
    seen: set[Path] = set()

    def add(path: Path, relative: Path, root: Path | None) -> None:
        key = path.resolve()
        if key in seen:
            return
        # A separate output tree inside a walked folder: anything in it is ours. (When the
        # folder itself lies in the output folder, this would drop every input; and files
        # named one by one are the user's choice. The name and marker tests cover those.)
        if outputs is not None and root is not None and _within(path, outputs) and not _within(root, outputs):
            result.earlier_outputs.append(path)
            return
        seen.add(key)
        result.photos.append(Found(path, relative))

    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            if not recursive:
                count, whole = _photos_in_subfolders(path, outputs)
                result.in_subfolders += count
                result.in_subfolders_partial |= not whole
            for child in _walk(path, recursive, result.refused):
                if is_image_candidate(child):
                    add(child, child.relative_to(path), path)
                else:
                    result.ignored.append(child)
        elif os.path.lexists(path):  # a file, or a broken link that decoding will name as such
            add(path, Path(path.name), None)
        elif glob.has_magic(raw):
            matches = expand_glob(raw, recursive)
            if not matches:
                raise PlanError(f"{raw}: no file matches this pattern")
            for match in matches:
                if match.is_file():
                    if is_image_candidate(match):
                        add(match, Path(match.name), None)
                    else:
                        result.ignored.append(match)
        else:
            raise PlanError(f"{raw}: no such file or folder")
    return result


def plan(
    inputs: Iterable[str],
    output_dir: Path,
    recursive: bool = False,
    suffix: str = "",
    own_output_dir: bool = False,
    extension: str | None = None,
) -> Plan:
    """Expand files, folders and globs into jobs; the output tree mirrors each given folder.

    Raises ``PlanError`` when an input does not exist (or a pattern matches nothing), and when
    the outputs would land on or among the inputs: an output folder inside an input folder
    needs a ``suffix`` to keep names distinct, unless it is ``own_output_dir`` (colorize's
    default folder, which holds only its outputs and is left out of the photos it finds); when
    ``output_dir`` names an image file in a format colorize does not write; and when the
    ``suffix`` makes every output name too long for a file name. All are the user's mistakes,
    told before any model is loaded. An output name too long for one photo fails that photo.

    ``extension`` (".png", a key of ``OUTPUT_FORMATS``) writes every output in that format,
    named so; by default each keeps its input's. One photo and an ``output_dir`` that
    ``names_a_file`` write that file, in the format its extension names.
    """
    output_dir = Path(output_dir)
    inputs = list(inputs)
    if sizes := [size for size in map(_too_long, output_dir.parts) if size]:
        raise PlanError(
            f"--output {output_dir}: a name in it is {sizes[0]} bytes long; names may have at most {NAME_MAX}"
        )
    if names_a_file(output_dir):
        return _plan_one_file(inputs, output_dir, suffix, extension)
    _refuse_unwritten_format(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise PlanError(f"--output {output_dir} is a file, not a folder")
    if any(c in suffix for c in ("/", "\\", "\0")) or (os.altsep and os.altsep in suffix):
        raise PlanError(f"--suffix {suffix!r} is part of a file name: it cannot hold a path separator")
    for path in map(Path, inputs):
        if (
            path.is_dir()
            and _within(output_dir, path)
            and not suffix
            and not (own_output_dir and not _within(path, output_dir))
        ):
            raise PlanError(
                f"output folder {output_dir} is inside input folder {path}: outputs would sit among "
                "the originals; choose another --output or add --suffix (e.g. --suffix _color)"
            )
    found = list_photos(inputs, recursive, outputs=output_dir)
    result = Plan(
        refused=found.refused,
        ignored=found.ignored,
        earlier_outputs=found.earlier_outputs,
        in_subfolders=found.in_subfolders,
        in_subfolders_partial=found.in_subfolders_partial,
    )
    for photo in found.photos:
        name = _output_name(photo.path, suffix, extension)
        output_format = OUTPUT_FORMATS.get(extension) if extension else None
        result.jobs.append(Job(photo.path, output_dir / photo.relative.parent / name, output_format))
    _refuse_long_names(result, suffix)
    for job in result.jobs:
        if job.output.resolve() == job.input.resolve():
            raise PlanError(f"{job.input}: output would overwrite the input; choose another --output or a --suffix")
    _refuse_escaping_outputs(result, output_dir, [Path(raw) for raw in inputs if Path(raw).is_dir()])
    _settle_names(result)
    return result


# Names a count of the photos passed over without -r looks at, at most: a whole disk given as
# a folder would otherwise be walked to the end for a hint.
_LOOKED_AT_MOST = 100_000


def _photos_in_subfolders(folder: Path, output_dir: Path | None) -> tuple[int, bool]:
    """How many photos (by name) the sub-folders of ``folder`` hold, the output tree (if any)
    and hidden folders left out as -r leaves them; and whether that is all of them (see
    _LOOKED_AT_MOST)."""
    outputs = output_dir.resolve() if output_dir is not None else None
    found = looked = 0
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".") and Path(root, name).resolve() != outputs]
        if root != os.fspath(folder):  # the folder's own photos are the run's
            found += sum(not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES for name in names)
        looked += len(names)
        if looked > _LOOKED_AT_MOST:
            return found, False
    return found, True


def _plan_one_file(inputs: list[str], output: Path, suffix: str, extension: str | None) -> Plan:
    """One photo written to the file ``output`` names (``colorize auto photo.jpg -o photo_colour.jpg``)."""
    fmt = OUTPUT_FORMATS[output.suffix.lower()]
    if len(inputs) == 1 and not os.path.lexists(inputs[0]) and not glob.has_magic(inputs[0]):
        raise PlanError(f"{inputs[0]}: no such file or folder")
    if len(inputs) != 1 or Path(inputs[0]).is_dir() or not os.path.lexists(inputs[0]):
        raise PlanError(
            f"--output {output} names an image file, but there is more than one photo to write (a folder or "
            f"several inputs); give a folder, e.g. -o {output.with_suffix('')}"
        )
    if suffix:
        raise PlanError(f"--suffix names outputs in a folder; --output {output} is already a file name")
    if extension is not None and OUTPUT_FORMATS[extension] != fmt:
        raise PlanError(f"--format {extension[1:]}, but -o {output} names a {fmt} file; give one or the other")
    job = Job(Path(inputs[0]), output, fmt)
    if job.output.resolve() == job.input.resolve():
        raise PlanError(f"{job.input}: output would overwrite the input; choose another --output")
    return Plan(jobs=[job], into_file=True)


def _refuse_unwritten_format(output: Path) -> None:
    """``-o hem.gif`` names an image file in a format colorize does not write: made into a
    folder, it would only hide the mistake."""
    from PIL import Image

    extension = output.suffix.lower()
    if extension in Image.registered_extensions() and not output.is_dir():
        raise PlanError(
            f"--output {output} names a {extension} file, which colorize does not write; name a "
            f"{' '.join(OUTPUT_FORMATS)} file (one photo) or a folder"
        )


def _refuse_long_names(result: Plan, suffix: str) -> None:
    """Fail each job whose output name is too long for a file name (a long name and its
    ``suffix``); when that is every job, the suffix is the mistake: a usage error."""
    kept = []
    for job in result.jobs:
        if size := _too_long(job.output.name):
            reason = f"output name too long ({size} bytes; a file name may have at most {NAME_MAX})"
            result.refused.append(Outcome(job.input, job.output, FAILED, reason))
        else:
            kept.append(job)
    if suffix and result.jobs and not kept:
        raise PlanError(
            f"--suffix of {len(suffix)} characters makes every output name longer than a file name may be "
            f"({NAME_MAX} bytes); choose a shorter suffix"
        )
    result.jobs = kept


def _refuse_escaping_outputs(result: Plan, output_dir: Path, input_folders: list[Path]) -> None:
    """Fail each job whose output, links followed, leaves the output folder or lands in an
    input folder the output folder is not itself in (``out/sub -> ../photos`` would
    otherwise write among, or over, the originals)."""
    real_output_dir = output_dir.resolve()
    real_input_folders = [folder.resolve() for folder in input_folders]
    # An output folder inside an input folder (with --suffix) is the user's explicit choice.
    allowed = [folder for folder in real_input_folders if real_output_dir.is_relative_to(folder)]
    kept = []
    for job in result.jobs:
        target = job.output.resolve()
        if not target.is_relative_to(real_output_dir):
            reason = f"output {job.output} leads out of the output folder through a symbolic link"
        elif any(target.is_relative_to(folder) for folder in real_input_folders if folder not in allowed):
            reason = f"output {job.output} leads into an input folder through a symbolic link"
        else:
            kept.append(job)
            continue
        result.refused.append(Outcome(job.input, job.output, FAILED, reason))
    result.jobs = kept


def _settle_names(result: Plan) -> None:
    """Make sure no job writes over an input or over another job's output.

    An input whose path is another job's output is either that job's output from an
    earlier run (it carries our marker): it is dropped, so it is never colorized again;
    or an original that merely has that name: it stays an input, and the job that would
    overwrite it fails instead.
    """
    producers: dict[Path, Job] = {}
    clashes: dict[Job, Job] = {}
    for job in result.jobs:
        key = job.output.resolve()
        if key in producers:
            clashes[job] = producers[key]
        else:
            producers[key] = job
    refused: dict[Job, str] = {}
    earlier: set[Job] = set()
    for job in result.jobs:
        producer = producers.get(job.input.resolve())
        if producer is None or producer is job:
            continue
        if _is_earlier_output(job.input, producer.input):
            earlier.add(job)
        else:
            refused[producer] = (
                f"output name {producer.output.name} is taken by another input photo; choose another --suffix"
            )
    for job, first in clashes.items():
        refused.setdefault(job, f"same output file as {first.input} ({job.output}); colorize these folders separately")
    kept = []
    for job in result.jobs:
        if job in earlier:
            result.earlier_outputs.append(job.input)
        elif job in refused:
            result.refused.append(Outcome(job.input, job.output, FAILED, refused[job]))
        else:
            kept.append(job)
    result.jobs = kept


def _is_earlier_output(path: Path, source: Path) -> bool:
    if read_marker(path) is not None:
        return True
    # BMP has no metadata to carry our marker: an output-named BMP of its source's size is taken as ours.
    from PIL import Image

    try:
        with Image.open(path) as candidate, Image.open(source) as original:
            return candidate.format == "BMP" and candidate.size == original.size
    except Exception:
        return False


@dataclass
class RunOptions:
    on_exists: str = "skip"
    force: bool = False  # colorize photos that are already in colour (their luminance)
    max_pixels: int = DEFAULT_MAX_PIXELS
    keep_metadata: bool = True
    fail_fast: bool = False
    batch_size: int = 8
    quality: int = 95  # of JPEG and WebP outputs
    batch_pixels: int = 16_000_000  # a batch closes early past this many pixels, to bound memory
    io_threads: int = 2


def kept_output(job: Job, options: RunOptions) -> bool:
    """Whether the job's output exists and is to stay as it is: the job is settled (skipped, or
    failed) without any model."""
    return options.on_exists != "overwrite" and job.output.exists()


def existing_output(job: Job) -> Outcome:
    """A job skipped because its output exists, with the route that output was made by (read
    from the marker in its header: no pixels are decoded; a BMP has none); or failed, when the
    marker names another input than this one (hashed to tell): the output is another photo's
    (one of the same name from another folder, or this one before it changed), which a skip
    would pass off as this one's."""
    note = read_marker(job.output)
    other = _made_from_another(job, note)
    if other is None:
        return Outcome(job.input, job.output, SKIPPED, OUTPUT_EXISTS, route_from_note(note))
    if other.path == path_text(job.input):
        whose = f"this photo before it changed (sha256 {other.digest})"
    else:
        whose = f"another photo, {other.path} (sha256 {other.digest})"
    reason = (
        f"output {job.output} exists and was made from {whose}; write this one elsewhere (-o, --suffix), "
        "or --on-exists overwrite to replace it"
    )
    return Outcome(job.input, job.output, FAILED, reason)


def _made_from_another(job: Job, note: str | None) -> MadeFrom | None:
    """The input an existing output's marker names, when it is not this job's (another digest)."""
    made_from = made_from_note(note)
    if made_from is None:  # an earlier release's output, or not ours: skipped as it always was
        return None
    try:
        digest = input_digest(job.input)
    except OSError:  # an input that cannot be read cannot be told apart: its output stays
        return None
    return None if digest == made_from.digest else made_from


def input_digest(path: Path) -> str:
    """What an output's marker records of its input's content: the first 16 hex digits of its sha256."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


class _Read(NamedTuple):
    """A job's input read: decoded for the networks, or the outcome that ends the job already."""

    decoded: DecodedImage | None
    outcome: Outcome | None
    seconds: float
    made_from: MadeFrom | None = None  # what the output's marker records of the input


def _decode_job(job: Job, options: RunOptions) -> _Read:
    started = time.perf_counter()
    if kept_output(job, options):
        # Checked before decoding, so resuming a long run decodes nothing it finished (each
        # input is read once more, to hash it: see existing_output).
        if options.on_exists == "skip":
            return _Read(None, existing_output(job), 0.0)
        refused = Outcome(job.input, job.output, FAILED, f"output exists: {job.output} (--on-exists error)")
        return _Read(None, refused, 0.0)
    try:
        decoded = decode(job.input, options.max_pixels)
        if decoded.marker is not None:
            reason = EARLIER_OUTPUT
        elif not options.force and is_colour_photo(decoded.data):
            reason = ALREADY_COLOUR
        else:
            # Hashed after decoding, from the page cache: one more pass over bytes just read.
            made_from = MadeFrom(path_text(job.input), input_digest(job.input))
            return _Read(decoded, None, time.perf_counter() - started, made_from)
    except ImageError as error:
        return _Read(None, Outcome(job.input, job.output, FAILED, str(error)), time.perf_counter() - started)
    except Exception as error:  # a bug met on one file must not end a run of thousands
        failed = Outcome(job.input, job.output, FAILED, f"cannot read ({_one_line(error)})")
        return _Read(None, failed, time.perf_counter() - started)
    return _Read(None, Outcome(job.input, job.output, SKIPPED, reason), time.perf_counter() - started)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _ComposeError(Exception):
    """Joining chroma with L failed (as opposed to writing the file)."""


def _encode_job(prediction: Prediction, read: _Read, job: Job, options: RunOptions) -> None:
    # Composing here, in an I/O thread, keeps the second core busy while the networks run,
    # and a waiting job holds L and a small ab rather than a full-size float RGB image.
    decoded = read.decoded
    assert decoded is not None  # only a photo that was read gets a prediction
    try:
        rgb = prediction.compose(dtype=np.uint8 if output_bits(decoded, job.format) == 8 else np.float32)
    except Exception as error:
        raise _ComposeError(_one_line(error)) from error
    note = provenance_note(prediction.route, read.made_from)
    encode(rgb, decoded, job.output, options.keep_metadata, note, options.quality, job.format)


@dataclass
class _Slot:
    """One job's place in the output order; filled in when its result is known."""

    outcome: Outcome | None = None
    write: Future | None = None
    pixels: int = 0  # of the image its write holds


def run(pipeline: Pipeline | None, jobs: list[Job], options: RunOptions) -> Generator[Outcome, None, None]:
    """Colorize ``jobs``; yields one Outcome per job, in order. ``pipeline`` may be None when
    no job needs it (each ``kept_output``): then no model need be loaded.

    Decoding of the next images and encoding of finished ones run in threads while the
    networks work on the current batch (PIL, numpy and onnxruntime release the GIL). With
    ``fail_fast`` the run stops after the first failure; what was already written is still
    reported. Raises only for problems of the setup (``FATAL_ERRORS``), never for one file.
    """
    if options.on_exists not in ON_EXISTS:
        raise PlanError(f"--on-exists must be one of {', '.join(ON_EXISTS)}")
    for folder in sorted({job.output.parent for job in jobs}):
        remove_stale_temporaries(folder)  # what a killed run was writing when it died
    pool = ThreadPoolExecutor(options.io_threads, thread_name_prefix="colorize-io")
    try:
        yield from _run(pool, pipeline, jobs, options)
    finally:
        # Reached on normal completion, --fail-fast, Ctrl-C or a fatal error: queued decodes
        # are dropped; writes already running finish (each is atomic, so none is left partial).
        pool.shutdown(wait=True, cancel_futures=True)


def _run(
    pool: ThreadPoolExecutor, pipeline: Pipeline | None, jobs: list[Job], options: RunOptions
) -> Iterator[Outcome]:
    lookahead = options.batch_size + 2  # decoded images waiting: bounds memory on big photos
    pending: deque[tuple[Job, Future]] = deque()
    order: deque[_Slot] = deque()
    queue = iter(jobs)
    failed = False

    def refill() -> None:
        while len(pending) < lookahead and (job := next(queue, None)) is not None:
            pending.append((job, pool.submit(_decode_job, job, options)))

    def flush(block: bool) -> Iterator[Outcome]:
        nonlocal failed
        while order and order[0].outcome is not None:
            slot = order[0]
            outcome = slot.outcome
            assert outcome is not None  # the loop's condition
            if slot.write is not None:
                if not block and not slot.write.done():
                    return
                try:
                    slot.write.result()
                except _ComposeError as error:
                    outcome.status, outcome.reason = FAILED, f"cannot colorize ({error})"
                except Exception as error:  # a write failure fails this file only
                    outcome.status, outcome.reason = FAILED, f"cannot write output ({_one_line(error)})"
            order.popleft()
            failed = failed or outcome.status == FAILED
            yield outcome

    refill()
    while pending and not (failed and options.fail_fast):
        batch: list[tuple[Job, _Read, _Slot]] = []
        pixels = 0
        while pending and len(batch) < options.batch_size and pixels < options.batch_pixels:
            job, future = pending.popleft()
            read = future.result()
            slot = _Slot(read.outcome)
            order.append(slot)
            if read.outcome is not None:
                if read.outcome.status == FAILED and options.fail_fast:
                    failed = True
                    break
                refill()
                continue
            refill()
            batch.append((job, read, slot))
            pixels += read.decoded.data.shape[0] * read.decoded.data.shape[1]
        if batch:
            _colorize_batch(pool, pipeline, batch, options)
        # Block when writes fall behind: each queued write holds a full-size image.
        waiting = sum(slot.pixels for slot in order if slot.write is not None and not slot.write.done())
        yield from flush(block=(failed and options.fail_fast) or waiting > 2 * options.batch_pixels)
    yield from flush(block=True)


def _colorize_batch(pool: ThreadPoolExecutor, pipeline: Pipeline | None, batch, options: RunOptions) -> None:
    """Run the networks on ``batch`` and queue the writes; fills each job's slot."""
    started = time.perf_counter()
    results = _predictions(pipeline, [read.decoded for _, read, _ in batch], [job.hints for job, _, _ in batch])
    share = (time.perf_counter() - started) / len(batch)
    for (job, read, slot), result in zip(batch, results):
        seconds = read.seconds + share
        if isinstance(result, Exception):
            reason = f"cannot colorize ({_one_line(result)})"
            slot.outcome = Outcome(job.input, job.output, FAILED, reason, None, seconds)
            continue
        slot.outcome = Outcome(job.input, job.output, OK, None, result.route, seconds)
        slot.write = pool.submit(_encode_job, result, read, job, options)
        slot.pixels = read.decoded.data.shape[0] * read.decoded.data.shape[1]


def _predictions(
    pipeline: Pipeline | None, images: list[DecodedImage], hints: list[tuple[Hint, ...]]
) -> list[Prediction | Exception]:
    """Each image's prediction (with its hints), or the error that kept it from being made."""
    if pipeline is None:  # every output existed as the run began; this one has been removed since
        gone = RuntimeError("no model was loaded, its output having existed as the run began; run again")
        return [gone] * len(images)
    try:
        lightness = [image.lightness() for image in images]
        predictions: list[Prediction | Exception] = list(pipeline.predict(lightness, hints))
        return predictions
    except FATAL_ERRORS:
        raise
    except Exception:
        # One bad image (or one batch too big for memory) must not fail its neighbours:
        # try each alone, and fail only those that fail alone.
        results: list[Prediction | Exception] = []
        for image, given in zip(images, hints):
            try:
                results.extend(pipeline.predict([image.lightness()], [given]))
            except FATAL_ERRORS:
                raise
            except Exception as error:
                results.append(error)
        return results
