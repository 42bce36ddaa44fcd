"""The ``colorize`` command line: typer for parsing, rich for the terminal.

Only this layer talks to the user. Heavy modules (torch, timm) are imported inside the
commands, so ``colorize --help`` and ``--version`` start in a fraction of a second. Every
command is registered here, by name; the cli_*.py modules only define them.

Exit codes: 0 every file ok or skipped; 1 at least one file failed; 2 a usage error (bad
option, unknown expert, unusable weights file, unsafe output folder); 130 interrupted
(Ctrl-C or SIGTERM; run the same command again to resume).
"""

from __future__ import annotations

import os

# Before numpy loads: the only BLAS work is the resizes around the networks, which run beside
# the decoding, composing and network threads; a BLAS pool of its own per core only contends
# with them (2 MP: 98 ms a photo with one BLAS thread, 294 ms with one per core;
# benchmarks/README.md). A caller's own setting is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import signal
import sys
from typing import Annotated, Optional

import typer

from colorize import __version__
from colorize.core.errors import ColorizeError
from colorize.pipelines import cli_auto, cli_colorize, cli_eval, cli_export, cli_serve, cli_train
from colorize.pipelines.cli_common import EXIT_FAILED, OneLineErrors, console, shown

app = typer.Typer(
    cls=OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"]},
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


app.command("auto")(cli_auto.auto)
app.command("classify")(cli_colorize.classify)
app.command("experts")(cli_colorize.list_experts)
app.command("eval")(cli_eval.evaluate)
app.command("serve")(cli_serve.serve)
app.command("export")(cli_export.export_command)
train_app.command("expert")(cli_train.train_expert_command)
train_app.command("classifier")(cli_train.train_classifier_command)
_debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"colorize {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
) -> None:
    global _debug
    _debug = debug


def main() -> None:
    try:
        app()
    except SystemExit:
        # The exit code is decided: a Ctrl-C or SIGTERM while the interpreter shuts down
        # (thread pools and onnxruntime take a moment) would only replace it with "interrupted".
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise
    except ColorizeError as error:  # the person's to fix: its message alone, with its exit code
        if _debug or "--debug" in sys.argv:
            raise
        console.print(f"[bold red]error:[/] {shown(error)}", highlight=False)
        sys.exit(error.exit_code)
    except Exception as error:  # the last line of defence: one line unless --debug
        if _debug or "--debug" in sys.argv:
            raise
        console.print(f"[bold red]error:[/] {type(error).__name__}: {shown(error)}", highlight=False)
        console.print("[dim]run again with --debug for the full traceback[/]")
        sys.exit(EXIT_FAILED)
