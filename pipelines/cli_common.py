"""What every command shares: one-line errors, the shared options, device and pipeline set-up,
the progress bar, interruption. Commands live in cli_*.py; ``cli.py`` registers them."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from colorize.pipelines.shards import Torchrun

try:  # typer 0.2x parses with its own copy of click; earlier releases with click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors  # type: ignore[no-redef]  # the same module, by its older home


@functools.cache  # two commands' help reads it when the command line is built: one folder scan
def installed_expert_names() -> str:
    """ "Installed: general, landscape, people." for an option's help, read from the model
    folders when the help is built (no model is loaded)."""
    from colorize.core.locations import installed_experts, model_home

    try:
        names = sorted(installed_experts(model_home()))
    except OSError:  # an unreadable model folder is reported when a model is needed, not in --help
        return ""
    return f"Installed: {', '.join(map(shown, names))}." if names else ""


class OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a value out of range, a choice not offered, an unknown option) as one line,
    like every other error colorize reports: typer would draw a box of several lines."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        passed = dict(standalone_mode=False, windows_expand_args=windows_expand_args, **extra)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, **passed)
        try:
            code = super().main(args, prog_name, complete_var, **passed)
        except click_errors.NoArgsIsHelpError as error:
            typer.echo(error.ctx.get_help())
            sys.exit(0)
        except click_errors.UsageError as error:
            where = f" (see {error.ctx.command_path} --help)" if error.ctx is not None else ""
            console.print(f"[bold red]error:[/] {shown(error.format_message())}{where}", highlight=False)
            sys.exit(EXIT_USAGE)
        except click_errors.ClickException as error:
            console.print(f"[bold red]error:[/] {shown(error.format_message())}", highlight=False)
            sys.exit(error.exit_code)
        except typer.Abort:
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


def _plain_type_label(self, ctx) -> str | None:
    """The value column of --help as click writes it (PATH, FLOAT, INTEGER, TEXT, a|b), and
    nothing for an on/off flag: typer writes <path>, <float>, <list[str]> and <bool>."""
    if self.metavar is not None:
        return self.metavar or None
    label = self.display_type(ctx).strip("<>").removesuffix(" range")
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    label = {"str": "TEXT", "path": "PATH", "int": "INTEGER", "float": "FLOAT", "bool": ""}.get(label.lower(), label)
    return label or None


# One place, applied to every command: options and arguments alike (replacing typer's method on purpose).
typer.core.TyperOption.display_type_rich = _plain_type_label  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _plain_type_label  # type: ignore[method-assign]

# soft_wrap: a long error stays one line (terminals wrap it visually; logs and grep see one line).
console = Console(stderr=True, soft_wrap=True)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """A one-line error for the user (no traceback unless --debug)."""
    console.print(f"[bold red]error:[/] {shown(message)}", highlight=False)
    raise typer.Exit(code)


def require_torch(command: str, extra: str = "train") -> None:
    """A one-line usage error when torch, which ``command`` needs, is not installed (the base
    install runs models, and does not train or export them)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        fail(f"colorize {command} needs torch: pip install 'colorize-experts[{extra}]'")


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


def subfolder_hint(work) -> str | None:
    """One line for the photos of sub-folders that a run without -r passed over (``batch.Plan``)."""
    count = work.in_subfolders
    if not count:
        return None
    many = f"{'at least ' if work.in_subfolders_partial else ''}{count} photo{'s' if count > 1 else ''}"
    return f"{many} in sub-folders {'were' if count > 1 else 'was'} not looked at; add -r to descend into them"


def resolve_device(name: str) -> str:
    """``--device`` as torch will use it, for training: auto picks CUDA, then MPS, then the CPU;
    a device this machine cannot use is a one-line usage error now, not a traceback later.
    (Inference runs onnxruntime: ``onnx_providers``.)

    Under torchrun (WORLD_SIZE > 1), auto and a bare ``cuda`` mean this process's own GPU,
    ``cuda:LOCAL_RANK`` (shared round the GPUs when a node runs more processes than it has);
    a device named with its number is taken as named.
    """
    import torch

    job = Torchrun.here()
    if name in ("auto", "cuda") and job.shared and torch.cuda.is_available():
        return f"cuda:{job.gpu(torch.cuda.device_count())}"
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        fail(f"--device {name}: not a device; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        fail(f"--device {name}: no usable CUDA device here (no NVIDIA driver or GPU); use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        fail(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        fail(f"--device {name}: Apple MPS is not available here; use auto or cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        fail(f"--device {name}: colorize runs on cpu, cuda or mps")
    return name


CPU_PROVIDER = "CPUExecutionProvider"
INFERENCE_DEVICES = ("auto", "cpu", "cuda")


def onnx_providers(name: str) -> tuple:
    """``--device`` of an inference command as onnxruntime's execution providers, in order of
    preference: auto takes CUDA when this onnxruntime has it (onnxruntime-gpu), else the CPU;
    cuda where it has not is a one-line usage error, not a silent run on the CPU.

    Under torchrun (WORLD_SIZE > 1) CUDA means this process's own GPU, ``LOCAL_RANK`` (shared
    round the GPUs when a node runs more processes than it has)."""
    if name not in INFERENCE_DEVICES:
        fail(f"--device {name}: inference runs on {', '.join(INFERENCE_DEVICES)}")
    if name == "cpu":
        return (CPU_PROVIDER,)
    from colorize.core.onnx import CUDA_PROVIDER, NO_CUDA_BUILD, cuda_failure

    failure = cuda_failure()
    if failure is not None:
        if name == "cuda":
            fail(f"--device cuda: onnxruntime cannot use a GPU here, {failure}; use auto or cpu")
        if failure != NO_CUDA_BUILD:  # onnxruntime-gpu is installed: the user meant to use a GPU
            _note_once(f"note: running on the CPU; onnxruntime cannot use a GPU here, {failure}")
        return (CPU_PROVIDER,)
    job = Torchrun.here()
    if job.shared:
        # Only torch counts the GPUs, and under torchrun it is loaded already (shards.Workers):
        # it is not imported for this.
        torch = sys.modules.get("torch")
        count = torch.cuda.device_count() if torch is not None else 0
        return ((CUDA_PROVIDER, {"device_id": job.gpu(count)}), CPU_PROVIDER)
    return (CUDA_PROVIDER, CPU_PROVIDER)


@functools.cache
def _note_once(message: str) -> None:
    console.print(shown(message), highlight=False)


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


def build_pipeline(
    expert, threshold, weights, classifier_weights, device, work_size=None, saturation=1.0, threads=None
):
    """A Pipeline from command-line options, or a one-line error (exit 2). ``device``: auto,
    cpu or cuda (``onnx_providers``); ``threads``: the networks' and the full-resolution
    work's threads (None: every available core)."""
    from colorize.core.errors import ColorizeError
    from colorize.pipelines.inference import Pipeline

    providers = onnx_providers(device)
    try:
        return Pipeline.from_config(
            weights=parse_weights(weights),
            classifier_weights=classifier_weights,
            threshold=threshold,
            expert=expert,
            work_size=work_size,
            saturation=saturation,
            threads=threads,
            providers=providers,
            tune=True,  # the command line owns its process
        )
    except ColorizeError as error:  # an unknown expert, a bad model file or routing.toml, no models
        fail(str(error))


def progress_bar(unit: str | None = None, disable: bool = False):
    """The one progress display: description, bar, n/total (``n/total unit`` when a ``unit``
    is named), a free ``info`` field, elapsed, ETA. ``disable``: draw nothing (--quiet); lines
    printed through its console still appear."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    counted = TextColumn(f"{{task.completed:.0f}}/{{task.total:.0f}} {unit}") if unit else MofNCompleteColumn()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        counted,
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )


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
