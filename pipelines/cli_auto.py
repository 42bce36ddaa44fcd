"""``colorize auto``: colorize photos, each routed to the best expert, into an output folder.

One run may be split: ``--shard K/N`` does part K of N (job arrays), and under torchrun every
process does its share while rank 0 lists the photos, holds the output folder, and writes the
report and the summary for all (``shards.py`` says how photos are dealt out).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated, Callable, Literal, Optional, TypeVar, cast

import typer
from rich.progress import Progress
from rich.table import Table

from colorize.pipelines import cli_options as options
from colorize.pipelines.cli_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    build_pipeline,
    console,
    fail,
    installed_expert_names,
    onnx_providers,
    parse_weights,
    progress_bar,
    refuse_output_among_inputs,
    shown,
    subfolder_hint,
)
from colorize.pipelines.shards import Shard, Workers, collect, unfinished, work_through
from colorize.pipelines.signals import interrupted_once, interrupts_ignored

DEFAULT_OUTPUT = Path("colorized")
T = TypeVar("T")


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


EXPERT_HELP = f"Force this expert for every photo (skips the classifier). {installed_expert_names()}"


def auto(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Photos, folders or glob patterns (quote globs).", show_default=False),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output folder (the tree below each given folder is mirrored); for one photo, "
            "a file name (e.g. photo_colour.jpg: its extension names the format).",
        ),
    ] = DEFAULT_OUTPUT,
    recursive: options.Recursive = False,
    expert: Annotated[Optional[str], typer.Option("--expert", "-e", metavar="NAME", help=EXPERT_HELP)] = None,
    hint: Annotated[
        Optional[list[str]],
        typer.Option(
            "--hint",
            metavar="X,Y=COLOR",
            help="A colour the photo had at a place: pixels (120,80=#b22222) or fractions of its sides "
            "(0.4,0.7=red); X,Y,RADIUS=COLOR for a patch. Repeat for more. One photo only.",
            show_default=False,
        ),
    ] = None,
    hints_file: Annotated[
        Optional[Path],
        typer.Option(
            "--hints",
            metavar="FILE.json",
            help='Hints from a JSON file: a list of points [{"x": 120, "y": 80, "color": "red"}, ...] for one photo, '
            "or an object of file names to such lists for several (the web page downloads this file).",
            show_default=False,
        ),
    ] = None,
    threshold: options.Threshold = None,
    report: Annotated[
        Optional[Path],
        typer.Option(
            "--report",
            help="Write one JSON line per input (status, expert, confidence, reason, probabilities, error).",
        ),
    ] = None,
    on_exists: Annotated[
        Literal["skip", "overwrite", "error"],
        typer.Option("--on-exists", help="When an output exists: skip (resume a run), overwrite, or error."),
    ] = "skip",
    suffix: Annotated[
        str,
        typer.Option(
            "--suffix",
            metavar="TEXT",
            help="Add to output names (e.g. _color); needed to write inside the input folder.",
        ),
    ] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Also colorize photos that are already in colour (from their luminance).")
    ] = False,
    output_format: Annotated[
        Optional[Literal["jpg", "png", "tif", "webp"]],
        typer.Option("--format", help="Write every output in this format.  \\[default: each input's own]"),
    ] = None,
    quality: Annotated[
        int,
        typer.Option("--quality", min=1, max=100, help="Quality of JPEG and WebP outputs (PNG and TIFF are lossless)."),
    ] = 95,
    strip_metadata: Annotated[
        bool, typer.Option("--strip-metadata", help="Do not copy ICC profile and EXIF to the outputs.")
    ] = False,
    max_pixels: options.MaxPixels = 100.0,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed file.")] = False,
    weights: options.Weights = [],
    classifier_weights: options.ClassifierWeights = None,
    device: options.InferenceDevice = "auto",
    threads: options.Threads = None,
    work_size: options.WorkSize = None,
    saturation: options.Saturation = 1.0,
    batch_size: options.BatchSize = 8,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print each photo's route and any ignored files.")
    ] = False,
    shard: Annotated[
        Optional[Shard],
        typer.Option(
            "--shard",
            metavar="K/N",
            parser=_shard,
            help="Do only part K of N of this run, e.g. as task K of a job array: photo i goes to part i mod N, "
            "so the N parts together do every photo once.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar: only failures and a one-line summary.")
    ] = False,
) -> None:
    """Colorize photos, routing each to the best expert. Exit code 1 if any file failed, 130 if interrupted.

    Under torchrun (torchrun --nproc-per-node N -m colorize auto ...) the photos are shared out; rank 0 reports.

    Examples:  colorize auto old_photos/ ·
    colorize auto scan.tif -o scan_colour.jpg ·
    colorize auto "albums/*.jpg" --expert people --report run.jsonl ·
    colorize auto photos/ -r -o out/ --on-exists overwrite --threshold 0.8 ·
    colorize auto wedding.jpg --hint 120,80=#b22222 --hint 0.4,0.7=navy
    """
    from colorize.pipelines.batch import FAILED, FATAL_ERRORS, RunOptions, kept_output, run

    began = time.perf_counter()
    options = RunOptions(
        on_exists=on_exists,
        force=force,
        max_pixels=int(max_pixels * 1_000_000),
        keep_metadata=not strip_metadata,
        fail_fast=fail_fast,
        batch_size=batch_size,
        quality=quality,
    )
    extension = f".{output_format}" if output_format else None
    with Workers.joined() as workers:  # this process alone, or one rank of a torchrun job
        # Rank 0 lists the photos; a usage error there stops every rank, said once.
        work = _shared_from_main(
            workers, lambda: _planned(paths, output, recursive, suffix, extension, report, verbose)
        )
        _on_main(workers, lambda: _check_choices(expert, weights, device))
        work = _shared_from_main(workers, lambda: _with_hints(work, hint or [], hints_file))
        part = shard or Shard(1, 1)
        jobs = part.take(work.jobs)
        # What failed before any photo was read is reported once: by rank 0 of the first part.
        refused = work.refused if part.is_first and workers.is_main else []
        mine = Shard.of_rank(workers.rank, workers.size).take(jobs)
        # The models take seconds to load: a run whose every output is there answers without them.
        pipeline = None
        if _shared_from_main(workers, lambda: not all(kept_output(job, options) for job in jobs)):
            if workers.is_main and not quiet:
                console.print("[dim]loading models…[/]", highlight=False)
            pipeline = _on_every_rank(
                workers,
                lambda: _loaded(expert, threshold, weights, classifier_weights, device, work_size, saturation, threads),
            )
        with contextlib.ExitStack() as held:
            # A file named by -o is written atomically; its folder is not held, so that runs of
            # one photo each (xargs -P, a shell loop with &) can write side by side. Under
            # torchrun, rank 0 holds the folder for every rank.
            folder = output if jobs and not work.into_file else None
            tally = _on_main(workers, lambda: _held_and_reported(held, folder, shard, report))
            started = time.perf_counter()
            outcomes = run(pipeline, mine, options)
            fatal = None
            nothing_to_count = not jobs and not refused
            with (
                interrupted_once(),
                progress_bar("photos", disable=quiet or not workers.is_main or nothing_to_count) as progress,
            ):
                if workers.is_main:
                    ledger = _Ledger(tally, progress, len(jobs) + len(refused), verbose)
                    record = ledger.add_with_the_others(workers)
                else:

                    def record(outcome) -> None:  # to rank 0, which reports it
                        workers.post(outcome.as_record())

                try:
                    finished, stopped = work_through(workers, refused, outcomes, record, fail_fast)
                except FATAL_ERRORS as error:  # a weights file that passed the checks but fails to load
                    fatal = error
                # This rank's work is over: what is left is bookkeeping, which a late signal must
                # not cut short (nor turn a finished run into an interrupted one).
                with interrupts_ignored():
                    outcomes.close()  # stops the decode/encode threads; running writes finish whole
                    if fatal is not None:
                        if tally is not None:
                            tally.close()
                        fail(str(fatal) if workers.size == 1 else f"rank {workers.rank}: {fatal}")
                    if stopped:
                        for job in mine[finished:]:
                            # A write under way when the run stopped has finished (whole, being atomic).
                            record(unfinished(job, f"not started ({stopped})", workers.rank))
                if not workers.is_main:
                    workers.finish()  # its photos are rank 0's to report and to count in the exit code
                    return
                stopped = collect(workers, ledger.add, ledger.reported, jobs, stopped, ledger.rank_lost)
            assert tally is not None  # rank 0's, and only rank 0 gets here
            with interrupts_ignored():
                tally.close()
                startup = None if pipeline is None else started - began
                _summary(tally, time.perf_counter() - started, startup, output, work, quiet, stopped)
                if not quiet and (advice := subfolder_hint(work)):
                    console.print(advice, highlight=False)
                if stopped == "interrupted":
                    console.print(
                        "[yellow]interrupted[/]: run the same command again to resume (finished photos are skipped)",
                        highlight=False,
                    )
                    raise typer.Exit(EXIT_INTERRUPTED)
                if tally.counts[FAILED] or tally.report_error:
                    raise typer.Exit(EXIT_FAILED)


def _planned(paths, output, recursive, suffix, extension, report, verbose):
    """The run's jobs, or a one-line usage error; on rank 0 alone under torchrun."""
    from colorize.pipelines.batch import PlanError, plan

    try:
        work = plan(
            paths,
            output,
            recursive=recursive,
            suffix=suffix,
            own_output_dir=output == DEFAULT_OUTPUT,
            extension=extension,
        )
    except PlanError as error:
        fail(str(error))
    if report is not None:
        _refuse_report_over_photos(report, work)
    if verbose:
        for ignored in work.ignored:
            console.print(f"[dim]ignored (not an image): {shown(ignored)}[/]", highlight=False, soft_wrap=True)
        for earlier in work.earlier_outputs:
            console.print(f"[dim]ignored (a colorize output): {shown(earlier)}[/]", highlight=False, soft_wrap=True)
    return work


def _with_hints(work, texts: list[str], file: Path | None):
    """The plan with each photo's hints (``--hint`` or ``--hints``), or a one-line usage error:
    a hint that cannot be read, a file name that names no photo (or several), a pixel outside
    its photo. On rank 0 alone under torchrun."""
    from dataclasses import replace

    from colorize.experts.hints import Hint, HintError, hints_from_json, parse_hint

    if not texts and file is None:
        return work
    if texts and file is not None:
        fail("give hints with --hint or with --hints FILE, not both")
    try:
        given: list[Hint] | dict[str, list[Hint]]
        if file is None:  # --hint (at least one: neither returned above)
            given = [parse_hint(text) for text in texts]
        else:
            given = hints_from_json(_read_json(file), shown(file))
        if isinstance(given, list):
            if len(work.jobs) != 1:
                fail(
                    f"these hints are for one photo, and this run has {len(work.jobs)}; for several, "
                    'give --hints FILE.json with an object of file names to points, {"a.jpg": [...], ...}'
                )
            by_job = {0: given}
        else:
            assert file is not None  # an object of file names comes from --hints FILE alone
            by_job = _hints_by_photo(work.jobs, given, file)
        for index, hints in by_job.items():
            _check_places(work.jobs[index].input, hints)
    except HintError as error:
        fail(str(error))
    return replace(work, jobs=[replace(job, hints=tuple(by_job.get(i, ()))) for i, job in enumerate(work.jobs)])


def _read_json(path: Path):
    import json

    from colorize.core.errors import one_line

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        fail(f"{shown(path)}: cannot read it ({error.strerror or error})")
    except (ValueError, RecursionError) as error:
        fail(f"{shown(path)}: not a JSON file ({one_line(error)})")


def _hints_by_photo(jobs, by_name: dict, file: Path) -> dict[int, list]:
    """Job index -> hints, for an object of file names (a name, or the end of a path) to points."""
    found: dict[int, list] = {}
    for name, hints in by_name.items():
        matches = [i for i, job in enumerate(jobs) if _names(job.input, name)]
        if not matches:
            fail(f"{shown(file)}: '{shown(name)}' names no photo of this run")
        if len(matches) > 1:
            fail(f"{shown(file)}: '{shown(name)}' names {len(matches)} photos; write more of its path")
        found[matches[0]] = hints
    return found


def _names(path: Path, name: str) -> bool:
    parts, wanted = path.parts, Path(name).parts
    return bool(wanted) and parts[-len(wanted) :] == wanted


def _check_places(path: Path, hints) -> None:
    """Pixel places of hints inside the photo, upright as it will be colorized (read from the header)."""
    from colorize.core.images import upright_size

    size = None if all(hint.relative for hint in hints) else upright_size(path)
    if size is not None:
        for hint in hints:
            hint.check_inside(size[1], size[0])


def _refuse_report_over_photos(report: Path, work) -> None:
    """A report never replaces a photo: not an input, not an output of this run (one it would
    skip as already there included), and of existing files only an empty one or an earlier
    report (``batch.is_report``): anything else may be a photo or someone's data."""
    from colorize.pipelines.batch import is_report

    refuse_output_among_inputs(
        "--report", report, [], [job.input for job in work.jobs] + [o.input for o in work.refused]
    )
    target = report.resolve()
    outputs = [job.output for job in work.jobs] + [o.output for o in work.refused if o.output is not None]
    if any(target == output.resolve() for output in outputs):
        fail(f"--report {report} is an output of this run; choose another file")
    try:
        replaceable = is_report(report)
    except OSError as error:
        fail(f"--report {report}: cannot read it ({error.strerror})")
    if not replaceable:
        fail(f"--report {report} exists and is not a colorize report (JSON lines); choose another file")


def _check_choices(expert: str | None, weights: list[str], device: str) -> None:
    """What the options name that can be checked without loading a model, checked now (a
    one-line error): the forced expert among the installed ones, --weights files, the device
    (onnxruntime's providers)."""
    from colorize.experts.store import ModelStore
    from colorize.router import UnknownExpertError
    from colorize.router.policy import check_forced

    onnx_providers(device)
    files = parse_weights(weights)
    if expert is not None:
        try:
            check_forced(expert, ModelStore(files=files).names())
        except UnknownExpertError as error:
            fail(str(error))


def _loaded(expert, threshold, weights, classifier_weights, device, work_size, saturation, threads):
    """The pipeline, every expert it can route to checked, or a one-line error."""
    pipeline = build_pipeline(expert, threshold, weights, classifier_weights, device, work_size, saturation, threads)
    _check_experts(pipeline, expert)
    return pipeline


def _held_and_reported(held: contextlib.ExitStack, folder: Path | None, shard: Shard | None, report: Path | None):
    """The output folder made and held (until ``held`` closes), and the tally that writes the
    report; a folder that cannot be made or held, or a report that cannot be created, is a
    one-line error. (Only entering is guarded: ``held`` closes after the whole run.)"""
    from colorize.core.files import FolderBusyError, exclusive_folder
    from colorize.pipelines.batch import Tally

    if folder is not None:
        try:
            held.enter_context(exclusive_folder(folder, None if shard is None else f"{shard.number}-of-{shard.count}"))
        except FolderBusyError as error:
            fail(str(error))
        except OSError as error:  # a read-only place, a name too long, a file in the way
            fail(f"cannot write into the output folder {folder}: {error.strerror or error}")
    try:
        return held.enter_context(contextlib.closing(Tally.writing(report)))
    except OSError as error:
        fail(f"cannot write report {report}: {error.strerror}")


def _on_main(workers: Workers, step: Callable[[], T]) -> T | None:
    """``step()`` on rank 0 alone (None elsewhere). When it stops the command with a one-line
    error, which it has printed, every rank stops with the same exit code."""
    value, code = None, None
    if workers.is_main:
        try:
            value = step()
        except typer.Exit as stop:
            code = stop.exit_code
    code = workers.share(code)
    if code is not None:
        raise typer.Exit(code)
    return value


def _shared_from_main(workers: Workers, step: Callable[[], T]) -> T:
    """``step()`` on rank 0 alone (as ``_on_main``), its value shared with every rank."""
    # The None of the other ranks never leaves them: share() replaces it with rank 0's step().
    return cast(T, workers.share(_on_main(workers, step)))


def _on_every_rank(workers: Workers, step: Callable[[], T]) -> T:
    """``step()`` on every rank. When it stops the command on any rank, it stops on all, and
    rank 0 prints each different message once (naming the ranks, unless all said it)."""
    if workers.size == 1:
        return step()
    code = None
    with console.capture() as said:
        try:
            value = step()
        except typer.Exit as stop:
            code = stop.exit_code
    failed: dict[str, list[int]] = {}
    for rank, (rank_code, text) in enumerate(workers.gather((code, said.get()))):
        if rank_code is not None:
            failed.setdefault(text, []).append(rank)
            code = rank_code if code is None else code
    if workers.is_main:
        for text, ranks in failed.items():
            who = "" if len(ranks) == workers.size else f"rank {', '.join(map(str, ranks))}: "
            console.file.write(who + text)
    if code is not None:
        raise typer.Exit(code)
    return value  # step() returned on this rank: else code was set, and raised above


class _Ledger:
    """Where outcomes go on rank 0, or in a run of one process: the tally and its report, the
    terminal and the progress bar."""

    def __init__(self, tally, progress: Progress, total: int, verbose: bool):
        self.tally, self.progress, self.verbose = tally, progress, verbose
        self.task = progress.add_task("colorizing", total=total, info="")
        self.started = time.perf_counter()
        self.reported: set[str] = set()  # inputs of other ranks' rows

    def add(self, outcome) -> None:
        from colorize.pipelines.batch import path_text

        had_report = self.tally.report is not None
        self.tally.add(outcome)
        if had_report and self.tally.report_error:  # said once, when the report stops; the run goes on
            self.progress.console.print(
                f"[bold red]error:[/] {shown(self.tally.report_error)}; the report stops before this photo's row "
                "(each row in it whole) and the run goes on without it",
                highlight=False,
                soft_wrap=True,
            )
        if outcome.rank:
            self.reported.add(path_text(outcome.input))
        _announce(outcome, self.verbose, self.progress)
        rate = self.tally.done / max(1e-9, time.perf_counter() - self.started)
        self.progress.update(self.task, advance=1, info=f"{rate:.2f} photos/s")

    def rank_lost(self, rank: int, not_done: int) -> None:
        self.progress.console.print(
            f"[yellow]rank {rank} stopped before it finished[/]: {not_done} of its photos not done", highlight=False
        )

    def add_with_the_others(self, workers: Workers) -> Callable:
        """``add``, then whatever rows the other ranks have sent since."""
        from colorize.pipelines.batch import Outcome

        def add(outcome) -> None:
            self.add(outcome)
            for row in workers.received():
                self.add(Outcome.from_record(row))

        return add


def _check_experts(pipeline, forced: str | None) -> None:
    """Every expert this run can route to is checked before the first photo, so a broken
    weights file stops the run with one line naming it, not halfway through."""
    from colorize.core.modelfile import ModelFileError

    if forced is not None:
        names = {forced}
    else:
        names = {pipeline.policy.expert_for(label) for label in pipeline.classifier.labels} | {pipeline.policy.fallback}
    named_by_user = {forced, *pipeline.store.files} - {None}
    try:
        pipeline.store.check(names | set(pipeline.store.files), load=named_by_user)
    except ModelFileError as error:
        fail(str(error))


def _announce(outcome, verbose: bool, progress: Progress) -> None:
    # Paths are escaped: "[1950] beach.jpg" is a file name, not rich markup. soft_wrap keeps
    # each message on one line, however long the path.
    name = shown(outcome.input)
    reason = shown(outcome.reason)
    if outcome.status == "failed":
        progress.console.print(f"[red]failed[/] {name}: {reason}", highlight=False, soft_wrap=True)
    elif outcome.status == "skipped" and verbose:
        progress.console.print(f"[yellow]skipped[/] {name}: {reason}", highlight=False, soft_wrap=True)
    elif outcome.status == "ok" and verbose:
        progress.console.print(
            f"[green]ok[/] {name} → {shown(outcome.route.describe())}", highlight=False, soft_wrap=True
        )


def _summary(
    tally, elapsed: float, startup: float | None, output: Path, work, quiet: bool, stopped: str | None
) -> None:
    """``elapsed``: the photos' time; ``startup``: the time before the first photo, when it
    loaded the models (None: it loaded none)."""
    from colorize.pipelines.batch import FAILED, OK, OUTPUT_EXISTS, SKIPPED

    counts, experts, skips = tally.counts, tally.experts, tally.skips
    total = sum(counts.values())
    ignored = len(work.ignored) + len(work.earlier_outputs)
    where = f"written to {shown(output)}" if work.into_file else f"outputs in {shown(output)}"
    if not counts[OK] and not counts[FAILED] and not stopped:
        console.print(_nothing_to_do(skips, output, work), highlight=False, soft_wrap=True)
        return
    if quiet:
        console.print(
            f"{counts[OK]} ok, {counts[SKIPPED]} skipped, {counts[FAILED]} failed in {elapsed:.1f} s "
            f"({total / max(1e-9, elapsed):.2f} photos/s); {where}",
            highlight=False,
            soft_wrap=True,
        )
        return
    table = Table(title="colorize summary", show_header=True)
    table.add_column("")
    table.add_column("count", justify="right")
    for status, style in (("ok", "green"), ("skipped", "yellow"), ("failed", "red")):
        table.add_row(f"[{style}]{status}[/]", str(counts[status]))
        if status == "ok":
            for name, count in sorted(experts.items()):
                table.add_row(f"  expert {shown(name)}", str(count))
        if status == "skipped":
            for reason, count in sorted(skips.items()):
                table.add_row(f"  {shown(reason)}", str(count))
    if ignored:
        table.add_row("[dim]ignored (not images, or colorize outputs)[/]", str(ignored))
    table.add_row("time per image", f"{elapsed / max(1, total):.3f} s")
    table.add_row("photos' time", f"{elapsed:.1f} s")
    if startup is not None:  # seconds the photos did not cause: told apart, so the rate means something
        table.add_row("start-up (model loading)", f"{startup:.1f} s")
        table.add_row("total time", f"{startup + elapsed:.1f} s")
    console.print(table)
    if counts[FAILED]:
        named = ", ".join(shown(path) for path in tally.failed)
        more = counts[FAILED] - len(tally.failed)
        tail = f" and {more} more (see each one's reason above)" if more > 0 else ""
        console.print(f"[red]{counts[FAILED]} failed[/]: {named}{tail}", highlight=False, soft_wrap=True)
    if counts["ok"]:
        console.print(where, highlight=False, soft_wrap=True)
    if existing := skips.get(OUTPUT_EXISTS):
        # A re-run with other settings into the same folder would otherwise seem to do nothing.
        console.print(
            f"[yellow]not redone[/]: {existing} photo(s) whose output already exists in {shown(output)}; "
            "add --on-exists overwrite to redo them, or -o to write elsewhere",
            highlight=False,
            soft_wrap=True,
        )


def _nothing_to_do(skips, output: Path, work) -> str:
    """The summary of a run that colorized nothing and failed nothing: why there was nothing to do."""
    from colorize.pipelines.batch import OUTPUT_EXISTS

    if not skips:
        return (
            f"nothing to do: none of the {len(work.jobs)} photos is this part's"
            if work.jobs
            else "nothing to do: no photos found"
        )
    if work.into_file and set(skips) == {OUTPUT_EXISTS}:
        return f"nothing to do: {shown(output)} exists; --on-exists overwrite to redo it"
    if set(skips) == {OUTPUT_EXISTS}:
        return (
            f"nothing to do: all {skips[OUTPUT_EXISTS]} outputs exist in {shown(output)}; "
            "--on-exists overwrite to redo them"
        )
    reasons = ", ".join(f"{count} {shown(reason)}" for reason, count in sorted(skips.items()))
    return f"nothing to do: every photo was skipped ({reasons})"
