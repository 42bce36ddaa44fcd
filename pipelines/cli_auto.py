"""``colorize auto``: colorize photos, each routed to the best expert, into an output folder."""

from __future__ import annotations

import contextlib
import itertools
import time
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.progress import Progress
from rich.table import Table

from colorize.pipelines.cli_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    BatchSizeOption,
    ClassifierWeightsOption,
    DeviceOption,
    MaxPixelsOption,
    SaturationOption,
    ThresholdOption,
    WeightsOption,
    WorkSizeOption,
    build_pipeline,
    console,
    fail,
    progress_bar,
    refuse_output_among_inputs,
    shown,
    sigterm_as_interrupt,
)
from colorize.pipelines.shards import Shard
from colorize.pipelines.signals import interrupts_deferred, interrupts_ignored

DEFAULT_OUTPUT = Path("colorized")


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


EXPERT_HELP = "Force this expert for every photo (skips the classifier). `colorize experts` lists them."


def auto(
    paths: list[str] = typer.Argument(
        ..., metavar="PATH", help="Photos, folders or glob patterns (quote globs).", show_default=False
    ),
    output: Path = typer.Option(
        DEFAULT_OUTPUT,
        "--output",
        "-o",
        help="Output folder (the tree below each given folder is mirrored); for one photo, "
        "a file name (e.g. photo_colour.jpg: its extension names the format).",
    ),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    expert: Optional[str] = typer.Option(None, "--expert", "-e", help=EXPERT_HELP),
    threshold: ThresholdOption = None,
    report: Optional[Path] = typer.Option(
        None,
        "--report",
        help="Write one JSON line per input (status, expert, confidence, reason, probabilities, error).",
    ),
    on_exists: Annotated[
        Literal["skip", "overwrite", "error"],
        typer.Option("--on-exists", help="When an output exists: skip (resume a run), overwrite, or error."),
    ] = "skip",
    suffix: str = typer.Option(
        "", "--suffix", help="Add to output names (e.g. _color); needed to write inside the input folder."
    ),
    force: bool = typer.Option(
        False, "--force", help="Also colorize photos that are already in colour (from their luminance)."
    ),
    output_format: Annotated[
        Optional[Literal["jpg", "png", "tif", "webp"]],
        typer.Option("--format", help="Write every output in this format.  \\[default: each input's own]"),
    ] = None,
    quality: int = typer.Option(
        95, "--quality", min=1, max=100, help="Quality of JPEG and WebP outputs (PNG and TIFF are lossless)."
    ),
    strip_metadata: bool = typer.Option(
        False, "--strip-metadata", help="Do not copy ICC profile and EXIF to the outputs."
    ),
    max_pixels: MaxPixelsOption = 100.0,
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first failed file."),
    weights: WeightsOption = [],
    classifier_weights: ClassifierWeightsOption = None,
    device: DeviceOption = "auto",
    work_size: WorkSizeOption = None,
    saturation: SaturationOption = 1.0,
    batch_size: BatchSizeOption = 8,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print each photo's route and any ignored files."),
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar: only failures and a one-line summary."),
) -> None:
    """Colorize photos, routing each to the best expert. Exit code 1 if any file failed, 130 if interrupted."""
    from colorize.pipelines.batch import (
        FAILED,
        FATAL_ERRORS,
        SKIPPED,
        Outcome,
        PlanError,
        RunOptions,
        Tally,
        existing_output,
        plan,
        run,
    )

    try:
        work = plan(
            paths,
            output,
            recursive=recursive,
            suffix=suffix,
            own_output_dir=output == DEFAULT_OUTPUT,
            extension=f".{output_format}" if output_format else None,
        )
    except PlanError as error:
        fail(str(error))
    refuse_output_among_inputs("--report", report, [], [job.input for job in work.jobs])
    if verbose:
        for ignored in work.ignored:
            console.print(f"[dim]ignored (not an image): {shown(ignored)}[/]", highlight=False, soft_wrap=True)
        for earlier in work.earlier_outputs:
            console.print(f"[dim]ignored (a colorize output): {shown(earlier)}[/]", highlight=False, soft_wrap=True)
    if not quiet:
        console.print("[dim]loading models…[/]", highlight=False)
    pipeline = build_pipeline(expert, threshold, weights, classifier_weights, device, work_size, saturation)
    _check_experts(pipeline, expert)
    # A file named by -o is written atomically; its folder is not held, so that runs of one
    # photo each (xargs -P, a shell loop with &) can write side by side.
    part = shard or Shard(1, 1)
    jobs, refused = part.take(work.jobs), work.refused if part.is_first else []
    with _held(output if jobs and not work.into_file else None, shard):
        options = RunOptions(
            on_exists=on_exists,
            force=force,
            max_pixels=int(max_pixels * 1_000_000),
            keep_metadata=not strip_metadata,
            fail_fast=fail_fast,
            batch_size=batch_size,
            quality=quality,
        )
        try:
            tally = Tally.writing(report)
        except OSError as error:
            fail(f"cannot write report {report}: {error.strerror}")
        started = time.perf_counter()
        finished = 0  # jobs with an outcome; outcomes come in job order, so the rest never started
        stopped = fatal = None
        outcomes = run(pipeline, jobs, options)

        try:
            with sigterm_as_interrupt(), progress_bar("photos", disable=quiet) as progress:
                task = progress.add_task("colorizing", total=len(jobs) + len(refused), info="")
                # Plan-time failures first (tagged False), then each job in order (tagged True).
                tagged = itertools.chain(((False, o) for o in refused), ((True, o) for o in outcomes))
                for is_job, outcome in tagged:
                    with interrupts_deferred():  # counted as finished only with its report row
                        finished += is_job
                        tally.add(outcome)
                    _announce(outcome, verbose, progress)
                    rate = tally.done / max(1e-9, time.perf_counter() - started)
                    progress.update(task, advance=1, info=f"{rate:.2f} photos/s")
                    if options.fail_fast and outcome.status == FAILED:
                        stopped = "stopped by --fail-fast"
                        break
        except KeyboardInterrupt:
            stopped = "interrupted"
        except FATAL_ERRORS as error:  # a weights file that passed the checks above but fails to load
            fatal = error
        # The work is over: what is left is bookkeeping, which a late signal must not cut short
        # (nor turn a finished run into an interrupted one).
        with interrupts_ignored():
            outcomes.close()  # stops the decode/encode threads; running writes finish whole
            if fatal is not None:
                tally.close()
                fail(str(fatal))
            if stopped:
                for job in jobs[finished:]:
                    # A write already under way when the run stopped has finished (whole, being atomic).
                    done = job.output.exists()
                    tally.add(
                        existing_output(job)
                        if done
                        else Outcome(job.input, job.output, SKIPPED, f"not started ({stopped})")
                    )
            tally.close()
            elapsed = time.perf_counter() - started
            _summary(tally, elapsed, output, work, quiet, stopped)
            if stopped == "interrupted":
                console.print(
                    "[yellow]interrupted[/]: run the same command again to resume (finished photos are skipped)",
                    highlight=False,
                )
                raise typer.Exit(EXIT_INTERRUPTED)
            if tally.counts[FAILED]:
                raise typer.Exit(EXIT_FAILED)


@contextlib.contextmanager
def _held(output: Path | None, shard: Shard | None):
    """The output folder, held by this run alone, or by the parts of its split together (see
    ``experts.files.exclusive_folder``)."""
    from colorize.experts.files import FolderBusyError, exclusive_folder

    if output is None:
        yield
        return
    try:
        with exclusive_folder(output, None if shard is None else f"{shard.number}-of-{shard.count}"):
            yield
    except FolderBusyError as error:  # raised only on entry: the body raises none
        fail(str(error))


def _check_experts(pipeline, forced: str | None) -> None:
    """Every expert this run can route to is checked before the first photo, so a broken
    weights file stops the run with one line naming it, not halfway through."""
    from colorize.experts.modelfile import ModelFileError

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
        progress.console.print(f"[green]ok[/] {name} → {outcome.route.describe()}", highlight=False, soft_wrap=True)


def _summary(tally, elapsed: float, output: Path, work, quiet: bool, stopped: str | None) -> None:
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
    table.add_row("total time", f"{elapsed:.1f} s")
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
