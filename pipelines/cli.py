"""The ``colorize`` command line: typer for parsing, rich for the terminal.

Only this layer talks to the user. Heavy modules (torch, timm) are imported inside the
commands, so ``colorize --help`` and ``--version`` start in a fraction of a second.

Exit codes: 0 every file ok or skipped; 1 at least one file failed; 2 a usage error (bad
option, unknown expert, unsafe output folder); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from typing import NoReturn, Optional

import typer
from rich.console import Console

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
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"colorize {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    global _debug
    _debug = debug


def main() -> None:
    # Registering the commands imports only typer-level code; their heavy imports wait.
    from colorize.pipelines import cli_colorize, cli_eval, cli_train  # noqa: F401
    try:
        app()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # the last line of defence: one line unless --debug
        if _debug or "--debug" in sys.argv:
            raise
        console.print(f"[bold red]error:[/] {type(error).__name__}: {error}", highlight=False)
        console.print("[dim]run again with --debug for the full traceback[/]")
        sys.exit(EXIT_FAILED)
