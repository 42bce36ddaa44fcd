"""Training one colorization expert from a folder of colour photos.

The result is written only to the user's model folder (or ``--out``); bundled weights and
every other expert are never touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.nn import functional as F

from colorize.configs import load_config
from colorize.core.files import check_writable
from colorize.core.images import DEFAULT_MAX_PIXELS
from colorize.core.locations import ONNX_SUFFIX, SAFETENSORS_SUFFIX
from colorize.core.modelfile import ModelFile, read_metadata
from colorize.experts.architectures import create_architecture, list_architectures
from colorize.experts.color import join_lab, lab_to_rgb, rgb_to_lab
from colorize.experts.hints import HINT_PLANES, hint_count, hint_planes, simulate_hints
from colorize.experts.networks import load_model_file
from colorize.experts.normalization import Normalization
from colorize.experts.store import Expert, ModelStore
from colorize.experts.unet_lite import LiteUNet
from colorize.pipelines import metrics
from colorize.pipelines.data import ColorPhotoDataset, CropPolicy, collate
from colorize.pipelines.photo_folders import DataError, list_images, training_split
from colorize.pipelines.pretrained import load_imagenet_encoder
from colorize.pipelines.sheets import contact_sheet
from colorize.pipelines.training import (
    Callback,
    FitConfig,
    NotInstalledError,
    TrainingSetupError,
    fit,
    install_best,
    layered_config,
    worker_options,
)

LOSSES = ("l1", "mse")
# Hints per photo in the hint-taking score that validation reports beside the automatic one.
VALIDATION_HINTS = 5


@dataclass(frozen=True, kw_only=True)
class ExpertTrainConfig:
    """Every knob of an expert's training. The recipe's values come from configs/experts.toml,
    the one place they are set, and command-line flags override them (``from_defaults``); only
    the run's own choices have defaults here. The resolved config goes into the weights file."""

    name: str  # a category the router knows (people) or a new name (portraits-1920s)
    data_dirs: tuple[Path, ...]  # folders of colour photos, any depth
    fit: FitConfig  # the loop: epochs, batch, learning rate, patience
    architecture: str  # a registered name (experts/architectures.py)
    arguments: dict[str, Any]  # its factory's keywords; empty: its defaults
    # Side of the square the photo's L is resized to before the network, at inference and validation.
    work_size: int
    size: int  # training crop side, pixels
    crop_scale: tuple[float, float]  # crop area as a share of the photo
    # "nearest": the installed expert of this name, else general (a small folder trains a useful
    # expert in minutes); "imagenet": a new network with an ImageNet encoder; "scratch"; or a name.
    init: str
    loss: str  # l1: the median colour (less muted than mse's mean); mse as some papers train
    # Share of training photos given no hints (with hint_input): the expert must keep colouring
    # well on its own.
    hint_zero_share: float
    # Mean number of hints of the others (geometric: few points often, many now and then).
    hint_mean_count: float
    val_split: float  # share held out: half validates each epoch, half is left for colorize eval
    val_limit: int  # validation photos scored per epoch (an evenly spread subset, for speed)
    # The output gain is chosen on validation every epoch: of the gains whose ΔE is within
    # delta_e_tolerance of the best, the one whose colourfulness (output / truth) comes nearest
    # colorfulness_target. Colour is bought only where it costs little accuracy.
    chroma_gains: tuple[float, ...]
    colorfulness_target: float
    delta_e_tolerance: float
    # Give a unet_lite expert hint planes beside L (experts/hints.py: the ab of a few patches and
    # a mask), trained with hints drawn from the true colours; a fine-tune keeps its weights and
    # the new input starts at zero, so with no hints it starts exactly where the expert stood.
    hint_input: bool = False
    # Train the decoder alone (unet_lite): the encoder, ImageNet's or the starting expert's,
    # stays as it is, weights and batch statistics.
    freeze_encoder: bool = False
    ab_gain: tuple[float, float] | None = None  # a fixed a/b boost instead (the original paper's 1.6, 2)
    out: Path | None = None  # a .safetensors file (its ONNX file goes beside it); default: the user's model folder
    run_dir: Path | None = None  # checkpoints and sample sheets; default: the user's runs folder
    force: bool = False  # install even weights that validate worse than gray
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger photos are skipped, refused before decoding
    # Set when fine-tuning, by resolve(): which file --init named (names are reused) and its record.
    init_sha256: str | None = None
    init_training: dict[str, Any] | None = None

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise TrainingSetupError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.architecture not in list_architectures():
            raise TrainingSetupError(
                f"unknown architecture {self.architecture!r}; known: {', '.join(list_architectures())}"
            )
        if self.size < 16 or self.work_size < 16:
            raise TrainingSetupError(
                f"size and work_size must be at least 16 pixels, got {self.size} and {self.work_size}"
            )
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise TrainingSetupError(f"crop_scale must be 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0 < self.val_split < 1 or self.val_limit < 1:
            raise TrainingSetupError(
                f"val_split must be in (0, 1) and val_limit at least 1, got {self.val_split}, {self.val_limit}"
            )
        if not 0 <= self.hint_zero_share <= 1 or not self.hint_mean_count >= 1:
            raise TrainingSetupError(
                f"hint_zero_share must be in [0, 1] and hint_mean_count at least 1, got {self.hint_zero_share} "
                f"and {self.hint_mean_count}"
            )
        if not self.chroma_gains or min(self.chroma_gains) <= 0:
            raise TrainingSetupError(f"chroma_gains must be positive numbers, got {self.chroma_gains}")
        if self.ab_gain is not None and (len(self.ab_gain) != 2 or min(self.ab_gain) < 0):
            raise TrainingSetupError(f"ab_gain must be two numbers of 0 or more, got {self.ab_gain}")
        if self.max_pixels < 1:
            raise TrainingSetupError(f"max_pixels must be at least 1, got {self.max_pixels}")
        if self.out is not None and Path(self.out).suffix.lower() != SAFETENSORS_SUFFIX:
            raise TrainingSetupError(
                f"--out {self.out}: name a {SAFETENSORS_SUFFIX} file (its {ONNX_SUFFIX} file is written beside it)"
            )

    @classmethod
    def from_defaults(cls, name: str, data_dirs: list[Path], **overrides) -> "ExpertTrainConfig":
        """configs/experts.toml, then ``overrides`` (None: not given)."""
        config = load_config("experts")
        recipe = {
            "architecture": config["architecture"]["name"],
            "arguments": dict(config["architecture"]["arguments"]),
            "work_size": config["architecture"]["work_size"],
            **config["training"],
        }
        values = {**recipe, **{k: v for k, v in overrides.items() if v is not None}}
        for key in ("crop_scale", "chroma_gains", "ab_gain"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return layered_config(cls, [values], name=name, data_dirs=tuple(Path(d) for d in data_dirs))


class ExpertTask:
    def __init__(self, config: ExpertTrainConfig, model: torch.nn.Module, normalization: Normalization, files, data):
        self.config = config
        self.model = model
        # How the network is fed and decoded: the starting expert's, with the gain left to validation.
        self.normalization = normalization
        train_files, val_files = files
        self.train_set = ColorPhotoDataset(
            train_files,
            CropPolicy(config.size, config.crop_scale),
            train=True,
            seed=config.fit.seed,
            max_pixels=config.max_pixels,
        )
        self.val_set = ColorPhotoDataset(
            val_files, CropPolicy(config.work_size, flip=False), train=False, max_pixels=config.max_pixels
        )
        self.data_summary = data
        self.collate = collate
        self.skipped_files: set[Path] = set()  # unreadable, or no colour to learn from
        self._samples: list[list[np.ndarray]] = []
        self._gray_summary: dict[str, float] | None = None
        self.chosen = normalization  # the validated decoding of the latest epoch
        self.gain_curve: list[dict[str, float]] = []
        self.takes_hints = bool(config.arguments.get("hints"))

    @staticmethod
    def _split(model, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lab = rgb_to_lab(rgb.to(next(model.parameters()).device))
        return lab[:, :1], lab[:, 1:]

    @staticmethod
    def _upsample(ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        return F.interpolate(ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False)

    def _candidates(self) -> list[Normalization]:
        """The decodings validation chooses from: one per gain, or the fixed --ab-gain."""
        if self.config.ab_gain is not None:
            return [replace(self.normalization, ab_gain=self.config.ab_gain)]
        return [self.normalization.with_gain(gain) for gain in self.config.chroma_gains]

    def _hints(self, ab: torch.Tensor, counts: list[int], keys: list[list[int]]) -> torch.Tensor | None:
        """Hint planes (B, 3, H, W) drawn from the true ``ab``: ``counts[i]`` hints for photo i, placed
        by a generator seeded with ``keys[i]`` (so an epoch draws the same hints after a resume).
        None for an expert without a hint input."""
        if not self.takes_hints:
            return None
        truth = ab.detach().cpu().numpy()
        planes = [
            hint_planes(simulate_hints(truth[i], counts[i], np.random.default_rng(keys[i])), *truth.shape[2:])
            for i in range(len(truth))
        ]
        return torch.from_numpy(np.stack(planes)).to(ab.device)

    def _training_hints(self, ab: torch.Tensor, indices: list[int]) -> torch.Tensor | None:
        keys = [[self.config.fit.seed, self.train_set.epoch, index] for index in indices]
        counts = [
            hint_count(np.random.default_rng([*key, 1]), self.config.hint_zero_share, self.config.hint_mean_count)
            for key in keys
        ]
        return self._hints(ab, counts, keys)

    def loss(self, model, batch) -> torch.Tensor | None:
        images, indices, dropped = batch
        self.skipped_files.update(self.train_set.files[i] for i in dropped)
        if len(images) == 0:
            return None
        lightness, ab = self._split(model, images)
        hints = self._training_hints(ab, indices)
        output = self._upsample(model(self.normalization.network_input(lightness, hints)), lightness)
        error = output - ab / self.normalization.ab_scale
        return (error.abs() if self.config.loss == "l1" else error**2).mean()

    @torch.inference_mode()
    def validate(self, model) -> dict[str, float]:
        model.eval()
        candidates = self._candidates()
        rows: list[list[dict[str, float]]] = [[] for _ in candidates]
        gray_rows: list[dict[str, float]] = []
        first_pairs: list[tuple[np.ndarray, np.ndarray]] = []  # (gray, truth) for the sample sheet
        first_predictions: list[list[np.ndarray]] = [[] for _ in candidates]
        # Evenly spread, so a capped subset still covers every folder of a multi-folder run.
        subset = sorted(
            {int(i) for i in np.linspace(0, len(self.val_set) - 1, min(len(self.val_set), self.config.val_limit))}
        )
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(self.val_set, subset),
            batch_size=16,
            collate_fn=collate,
            **worker_options(self.config.fit.workers),
        )
        hinted_rows: list[dict[str, float]] = []
        for images, indices, dropped in loader:
            self.skipped_files.update(self.val_set.files[i] for i in dropped)
            if len(images) == 0:
                continue
            lightness, ab = self._split(model, images)
            truth_rgb = images.permute(0, 2, 3, 1).numpy()
            truths = [metrics.prepare_truth(t) for t in truth_rgb]
            gray = lab_to_rgb(join_lab(lightness, torch.zeros_like(ab))).permute(0, 2, 3, 1).cpu().numpy()
            if self._gray_summary is None:
                gray_rows.extend(metrics.compare(g, t) for g, t in zip(gray, truths))
            first_pairs.extend(zip(gray[: 6 - len(first_pairs)], truth_rgb))
            # One forward pass; each candidate's decoding costs almost nothing beside it.
            no_hints = (
                lightness.new_zeros(len(lightness), HINT_PLANES, *lightness.shape[2:]) if self.takes_hints else None
            )
            output = model(self.normalization.network_input(lightness, no_hints))
            if self.takes_hints:
                # The same photos with a few hints, to follow how well hints are taken up (not to choose by).
                hints = self._hints(ab, [VALIDATION_HINTS] * len(ab), [[index] for index in indices])
                hinted = self._upsample(
                    self.normalization.chroma(model(self.normalization.network_input(lightness, hints))), lightness
                )
                colour = lab_to_rgb(join_lab(lightness, hinted)).permute(0, 2, 3, 1).cpu().numpy()
                hinted_rows.extend(metrics.compare(c, t) for c, t in zip(colour, truths))
            for index, candidate in enumerate(candidates):
                # The gain acts at the network's resolution, then chroma is upsampled: as inference does.
                prediction = self._upsample(candidate.chroma(output), lightness)
                colour = lab_to_rgb(join_lab(lightness, prediction)).permute(0, 2, 3, 1).cpu().numpy()
                rows[index].extend(metrics.compare(c, t) for c, t in zip(colour, truths))
                kept = first_predictions[index]
                kept.extend(colour[: 6 - len(kept)])
        if not rows[0]:
            raise DataError("no usable validation photos (all unreadable or grayscale)")
        if self._gray_summary is None:
            # The validation photos never change, so the do-nothing baseline is scored once.
            self._gray_summary = metrics.summarize(gray_rows)
        summaries = [metrics.summarize(r) for r in rows]
        chosen = choose_gain(summaries, self.config.colorfulness_target, self.config.delta_e_tolerance)
        self.chosen = candidates[chosen]
        self.gain_curve = [
            {
                "chroma_gain": candidate.ab_gain[0],
                **{k: round(float(summary[k]), 4) for k in ("delta_e", "psnr", "colorfulness_ratio")},
            }
            for candidate, summary in zip(candidates, summaries)
        ]
        self._samples = [
            [metrics.to_uint8(x) for x in (gray_rgb, predicted, truth)]
            for (gray_rgb, truth), predicted in zip(first_pairs, first_predictions[chosen])
        ]
        summary = summaries[chosen]
        return {
            # Epochs are compared by their most accurate gain, not the chosen one: a chosen gain
            # trades ΔE for colour, and an epoch must not win by choosing less colour.
            "score": min(s["delta_e"] for s in summaries),
            **({"val_chroma_gain": self.chosen.ab_gain[0]} if self.config.ab_gain is None else {}),
            # Measurements rounded; the count of photos stays a count.
            **{f"val_{k}": v if isinstance(v, int) else round(float(v), 4) for k, v in summary.items()},
            "val_gray_psnr": round(self._gray_summary["psnr"], 4),
            "val_gray_delta_e": round(self._gray_summary["delta_e"], 4),
            **(
                {f"val_delta_e_{VALIDATION_HINTS}_hints": round(float(metrics.summarize(hinted_rows)["delta_e"]), 4)}
                if hinted_rows
                else {}
            ),
        }

    def metadata(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        recipe = _jsonable(asdict(self.config))
        for key in ("out", "run_dir", "init_training", "force"):
            recipe.pop(key)
        recipe["fit"].pop("resume")
        best = min(history, key=lambda r: r["score"])
        return {
            "kind": "expert",
            "category": self.config.name,
            "architecture": self.config.architecture,
            "arguments": dict(self.config.arguments),
            "work_size": self.config.work_size,
            "normalization": self.chosen.to_metadata(),
            "training": {
                "data": {**self.data_summary, "skipped_files": len(self.skipped_files)},
                "recipe": recipe,
                "history": history,
                **({"chroma_curve": self.gain_curve} if self.config.ab_gain is None else {}),
                # How the starting file was made, so a fine-tuned (or re-scored) file explains its whole chain.
                **({"init_training": self.config.init_training} if self.config.init_training else {}),
            },
            "metrics": {k: v for k, v in best.items() if k.startswith("val_") or k == "epoch"},
        }

    def on_epoch_end(self, epoch: int, run_dir: Path) -> None:
        if self._samples:
            contact_sheet(
                self._samples,
                ["gray | predicted | truth"] * len(self._samples),
                run_dir / "samples" / f"epoch_{epoch + 1:03d}.png",
            )


def choose_gain(summaries: list[dict[str, float]], colorfulness_target: float, delta_e_tolerance: float) -> int:
    """Which of the candidate gains to ship (an index), from their validation summaries.

    Every bit of extra colour costs some ΔE (a wrong guess costs more than a muted one), so
    the colour is bought within a budget: of the gains whose ΔE is within
    ``delta_e_tolerance`` of the best, the one whose colourfulness ratio comes nearest the
    target. Vivid where it is cheap, never far worse than the safest choice.
    """
    best = min(summary["delta_e"] for summary in summaries)
    affordable = [i for i, summary in enumerate(summaries) if summary["delta_e"] <= best * (1 + delta_e_tolerance)]
    return min(affordable, key=lambda i: abs(summaries[i]["colorfulness_ratio"] - colorfulness_target))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value


# --init values that build new weights; any other value names an expert to fine-tune.
NEW_WEIGHTS = frozenset({"scratch", "imagenet"})
# The default --init: the expert of the same name if one is installed (bundled or yours), else
# the general expert.
NEAREST = "nearest"


def resolve(config: ExpertTrainConfig, store: ModelStore) -> tuple[ExpertTrainConfig, torch.nn.Module, Normalization]:
    """The config as it will run (a new object; ``config`` is left as it was), the network to
    train and how it is fed. Fine-tuning takes the starting expert's architecture, arguments,
    work size and normalization: the file's, not the recipe's."""
    if config.init == NEAREST:
        # Fine-tuning from what exists trains a useful expert from a small folder in minutes;
        # ImageNet or random weights need thousands of photos before they beat gray.
        config = replace(config, init=config.name if config.name in store.names() else "general")
    if config.init in NEW_WEIGHTS:
        try:
            model = create_architecture(config.architecture, **config.arguments)
        except (TypeError, ValueError) as error:  # an argument it does not take, or a value it refuses
            raise TrainingSetupError(f"architecture {config.architecture!r} cannot be built so ({error})") from None
        if config.init == "imagenet":
            encoder = getattr(model, "encoder", None)
            if encoder is None or "encoder" not in config.arguments:
                raise TrainingSetupError(
                    f"--init imagenet needs an architecture with a timm encoder, not {config.architecture!r}"
                )
            load_imagenet_encoder(encoder, config.arguments["encoder"])
        return _prepared(config, model, Normalization())
    # The torch network of the file that stands for the expert: a bundled expert is an ONNX
    # file alone, and its weights are read back from the graph.
    model_file, network = load_model_file(store.source(config.init).path)
    expert = Expert.from_parts(config.init, model_file, network)  # an expert, with a usable work size and decoding
    meta = model_file.metadata
    config = replace(
        config,
        architecture=meta["architecture"],
        arguments=dict(meta["arguments"]),
        work_size=expert.work_size,
        init_sha256=model_file.sha256(),
        init_training=meta.get("training"),
    )
    return _prepared(config, network, expert.normalization.uncalibrated())


def _prepared(config: ExpertTrainConfig, network: torch.nn.Module, normalization: Normalization):
    """The network as this run trains it: with a hint input where asked, its encoder frozen where asked."""
    for flag, asked in (("--hint-input", config.hint_input), ("--freeze-encoder", config.freeze_encoder)):
        if asked and config.architecture != "unet_lite":
            raise TrainingSetupError(f"{flag} is for unet_lite experts, not {config.architecture}")
    if config.hint_input and config.freeze_encoder:
        # The hint planes enter through the encoder's first convolution, which a frozen encoder never learns.
        raise TrainingSetupError("--hint-input needs the encoder to learn: leave out --freeze-encoder")
    if config.hint_input and not config.arguments.get("hints"):
        config, network = _with_hints(config, network)
    if config.freeze_encoder:
        cast(LiteUNet, network).freeze_encoder()  # unet_lite, checked above
    return config, network.train(), normalization


def _with_hints(config: ExpertTrainConfig, network: torch.nn.Module):
    """``network`` rebuilt with a hint input and every weight it had kept; the new input
    channels start at zero, so the outputs are the same."""
    config = replace(config, arguments={**config.arguments, "hints": True})
    widened = create_architecture(config.architecture, **config.arguments)
    wanted = widened.state_dict()
    state = {}
    for key, tensor in network.state_dict().items():
        target = wanted.get(key)
        if target is not None and target.shape != tensor.shape:
            if target.shape[:1] + target.shape[2:] != tensor.shape[:1] + tensor.shape[2:]:
                raise TrainingSetupError(f"{config.init}'s weights do not fit a network with --hint-input ({key})")
            # More input planes: the old ones keep their weights, the new ones start at zero.
            grown = torch.zeros_like(target)
            grown[:, : tensor.shape[1]] = tensor
            tensor = grown
        state[key] = tensor
    missing, unexpected = widened.load_state_dict(state, strict=False)
    if unexpected or missing:
        raise TrainingSetupError(f"{config.init}'s weights do not fit a network with --hint-input")
    return config, widened


def train_expert(
    config: ExpertTrainConfig, store: ModelStore | None = None, callback: Callback = lambda *a, **k: None
) -> ModelFile:
    """Train, then install the best epoch at ``config.out`` (default: the user's model folder),
    a .safetensors file with its ONNX graph beside it (``install_best``)."""
    store = store or ModelStore()
    run_dir = Path(config.run_dir or store.home / "runs" / config.name)
    out = Path(config.out or store.user_path(config.name))
    for folder in {run_dir, out.parent}:
        check_writable(folder)  # now, not after the whole run
    files: list[Path] = []
    for folder in config.data_dirs:
        files.extend(list_images(folder))
    train_files, val_files, data_summary = training_split(files, config.val_split)
    data_summary = {"folders": [str(d) for d in config.data_dirs], **data_summary}
    torch.manual_seed(config.fit.seed)
    config, model, normalization = resolve(config, store)
    task = ExpertTask(config, model, normalization, (train_files, val_files), data_summary)
    callback("data", **data_summary)
    fit(task, replace(config.fit, score_start=config.init not in NEW_WEIGHTS), run_dir, callback)
    if not config.force:
        _judge(config, read_metadata(run_dir / "best.safetensors").metadata, out, run_dir)
    return read_metadata(install_best(run_dir, out))


def _judge(config: ExpertTrainConfig, best: dict[str, Any], out: Path, run_dir: Path) -> None:
    """Refuse weights not worth installing. New weights must beat leaving the photos gray; a
    fine-tune must beat the expert it started from (its epoch 0), which is what these photos
    would get without it, even where both lose to gray (a hard folder: old, faded photos)."""
    metrics = best["metrics"]
    photos = f"{metrics.get('val_images', '?')} validation photos"
    if config.init in NEW_WEIGHTS:
        if metrics["val_delta_e"] >= metrics["val_gray_delta_e"]:
            raise NotInstalledError(
                f"the best epoch validates worse than no colour at all (ΔE {metrics['val_delta_e']:.2f}, gray "
                f"{metrics['val_gray_delta_e']:.2f}, on {photos})",
                out,
                run_dir,
            )
    elif config.fit.epochs > 0 and metrics.get("epoch") == 0:
        raise NotInstalledError(
            f"no epoch validates better than {config.init}, the expert it started from (ΔE "
            f"{metrics['val_delta_e']:.2f}; gray {metrics['val_gray_delta_e']:.2f}; on {photos})",
            out,
            run_dir,
        )
