"""The ``colorize`` command line: typer for parsing, rich for the terminal.

Only this layer talks to the user. Heavy modules (torch, timm) are imported inside the
commands, so ``colorize --help`` and ``--version`` start in a fraction of a second.

Exit codes: 0 every file ok or skipped; 1 at least one file failed; 2 a usage error (bad
option, unknown expert, unusable weights file, unsafe output folder); 130 interrupted
(Ctrl-C or SIGTERM; run the same command again to resume).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from colorize import __version__

app = typer.Typer(
    name="colorize",
    help="Colorize black-and-white photos. A scene classifier routes each photo to a "
    "landscape, people or general U-Net expert; chroma is predicted and joined with the "
    "photo's own full-resolution luminance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
train_app = typer.Typer(help="Train an expert or the scene classifier on your own photos.", no_args_is_help=True)
app.add_typer(train_app, name="train")

# soft_wrap: a long error stays one line (terminals wrap it visually; logs and grep see one line).
console = Console(stderr=True, soft_wrap=True)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
_debug = False


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """A one-line error for the user (no traceback unless --debug)."""
    console.print(f"[bold red]error:[/] {shown(message)}", highlight=False)
    raise typer.Exit(code)


def shown(value: object) -> str:
    """Text for the terminal, on one line: rich markup escaped, control characters (a newline
    or ESC in a file name) and bytes that are not UTF-8 written as escapes."""
    text = os.fsencode(value).decode("utf-8", "backslashreplace") if isinstance(value, os.PathLike) else str(value)
    return escape("".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text))


def refuse_output_among_inputs(option: str, path: Path | None, folders: list[Path], files: list[Path]) -> None:
    """A report, JSON or sheet file never replaces an input photo, nor lands inside one of
    ``folders`` (a data folder of ground truth); links are followed to find out."""
    if path is None:
        return
    target = path.resolve()
    if any(target == file.resolve() for file in files):
        fail(f"{option} {path} is one of the input photos; choose another file")
    for folder in folders:
        if target.is_relative_to(folder.resolve()):
            fail(f"{option} {path} is inside the input folder {folder}; choose a file elsewhere")


WEIGHTS_HELP = "Use this weights file for an expert: NAME=FILE (repeatable). Highest precedence."
WORK_SIZE_HELP = "Side of the square the experts see, pixels.  \\[default: each expert's own]"
SATURATION_HELP = "Scale the expert's chroma: 1 = as shipped (its validated gain), 0 = gray."
# Below this the encoder's stride-32 features are a single pixel: no picture left to read.
MIN_WORK_SIZE = 32


def parse_weights(items: list[str]) -> dict[str, Path]:
    weights = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            fail(f"--weights expects NAME=FILE, got {item!r}")
        if not Path(file).exists():
            fail(f"--weights {name}: no such file {file}")
        if not Path(file).is_file():
            fail(f"--weights {name}: {file} is not a regular file")
        weights[name] = Path(file)
    return weights


def build_pipeline(expert, threshold, weights, classifier_weights, device, work_size=None, saturation=1.0):
    """A Pipeline from command-line options, or a one-line error (exit 2)."""
    from colorize.experts.modelfile import ModelFileError
    from colorize.pipelines.inference import Pipeline, PipelineError
    from colorize.router import NoFallbackExpertError, RoutingConfigError, UnknownExpertError

    if threshold is not None and not 0 <= threshold <= 1:
        fail("--threshold must be between 0 and 1")
    if work_size is not None and work_size < MIN_WORK_SIZE:
        fail(f"--work-size must be at least {MIN_WORK_SIZE} pixels")
    if saturation < 0:
        fail("--saturation must be 0 or more")
    try:
        return Pipeline.from_config(
            weights=parse_weights(weights),
            classifier_weights=classifier_weights,
            threshold=threshold,
            expert=expert,
            device=device,
            work_size=work_size,
            saturation=saturation,
            tune=True,  # the command line owns its process
        )
    except (UnknownExpertError, PipelineError, ModelFileError, NoFallbackExpertError, RoutingConfigError) as error:
        fail(str(error))


def progress_bar():
    """The one progress display: description, bar, n/total, a free ``info`` field, elapsed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"colorize {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    global _debug
    _debug = debug


def main() -> None:
    # Registering the commands imports only typer-level code; their heavy imports wait.
    from colorize.pipelines import cli_colorize, cli_eval, cli_train  # noqa: F401

    try:
        app()
    except Exception as error:  # the last line of defence: one line unless --debug
        if _debug or "--debug" in sys.argv:
            raise
        console.print(f"[bold red]error:[/] {type(error).__name__}: {shown(error)}", highlight=False)
        console.print("[dim]run again with --debug for the full traceback[/]")
        sys.exit(EXIT_FAILED)


def interruptible(command):
    """A command that Ctrl-C or SIGTERM stops at any moment with one line and exit code 130
    (click would print "Aborted!" and exit 1 for Ctrl-C; SIGTERM would kill it silently)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            with sigterm_as_interrupt():
                return command(*args, **kwargs)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: nothing was written; run the same command again", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return run


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside, a kill (SIGTERM) is handled like Ctrl-C: writes in flight finish, a training
    run saves its checkpoint, and the same command resumes."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
