"""Training one colorization expert from a folder of colour photos.

The result is written only to the user's model folder (or ``--out``); bundled weights and
every other expert are never touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from colorize.configs import load_config
from colorize.experts.ab_bins import bin_index, bin_loss, log_prior, rarity_weights, soft_targets
from colorize.experts.architectures import create_architecture
from colorize.experts.color import AB_SCALE, CHROMA_REFERENCE, chroma_curve, join_lab, lab_to_rgb, rgb_to_lab
from colorize.experts.files import check_writable
from colorize.experts.modelfile import ModelFile, read_metadata
from colorize.experts.store import ExpertStore
from colorize.pipelines import metrics
from colorize.pipelines.data import (
    ColorPhotoDataset,
    CropPolicy,
    DataError,
    collate,
    file_list_hash,
    list_images,
    split_for_training,
)
from colorize.pipelines.imageio import DEFAULT_MAX_PIXELS
from colorize.pipelines.pretrained import load_imagenet_encoder
from colorize.pipelines.sheets import contact_sheet
from colorize.pipelines.training import Callback, FitConfig, fit, install_best

L_CENTER, L_SCALE = 50.0, 50.0  # networks read (L - 50) / 50, in [-1, 1]; stored in each file


class WorseThanGrayError(ValueError):
    """A trained expert scores worse on validation than leaving the photos gray (one line)."""


@dataclass
class ExpertTrainConfig:
    """Every knob of an expert's training; defaults come from configs/experts.toml."""

    name: str
    data_dirs: list[Path]
    architecture: str
    arguments: dict[str, Any]
    work_size: int
    epochs: int
    size: int
    crop_scale: tuple[float, float]
    batch_size: int
    lr: float
    weight_decay: float
    init: str
    loss: str
    # Regression heads: weight each pixel's loss by its true colour's rarity in the training
    # photos, prior ** -loss_rebalance (0: plain loss); see experts.ab_bins.rarity_weights.
    loss_rebalance: float
    val_split: float
    val_limit: int
    patience: int
    seed: int
    workers: int
    # How the output is decoded is chosen on validation: a chroma curve (gain x exponent) for a regression head,
    # a rebalancing strength for an ab-bin head. Of the candidates whose validation ΔE is
    # within delta_e_tolerance of the best, the one whose colourfulness ratio comes nearest
    # colorfulness_target wins (see choose_decoding).
    chroma_gains: tuple[float, ...]
    chroma_exponents: tuple[float, ...]
    rebalance_strengths: tuple[float, ...]
    colorfulness_target: float
    delta_e_tolerance: float
    ab_bins: int | None = None  # override: 0 = regression head, n = an n x n ab-bin head
    ab_gain: tuple[float, float] | None = None  # a fixed a/b boost instead of a calibrated gain (paper reproduction)
    init_sha256: str | None = None  # set when fine-tuning: which file --init named, since names are reused
    init_training: dict[str, Any] | None = None  # set when fine-tuning: that file's own training record
    device: str = "cpu"
    out: Path | None = None
    run_dir: Path | None = None
    resume: bool = False
    max_steps_per_epoch: int | None = None
    force: bool = False  # install even weights that validate worse than gray
    min_steps_per_epoch: int = 1  # a small folder is passed over again until an epoch has this many
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger photos are skipped, refused before decoding

    @classmethod
    def from_defaults(cls, name: str, data_dirs: list[Path], **overrides) -> "ExpertTrainConfig":
        config = load_config("experts")
        values: dict[str, Any] = {
            "architecture": config["architecture"]["name"],
            "arguments": dict(config["architecture"]["arguments"]),
            "work_size": config["architecture"]["work_size"],
            **config["training"],
        }
        values["crop_scale"] = tuple(values["crop_scale"])
        values["rebalance_strengths"] = tuple(values["rebalance_strengths"])
        values["chroma_gains"] = tuple(values["chroma_gains"])
        values["chroma_exponents"] = tuple(values["chroma_exponents"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(name=name, data_dirs=[Path(d) for d in data_dirs], **values)


class ExpertTask:
    def __init__(
        self, config: ExpertTrainConfig, model: torch.nn.Module, train_files, val_files, data_summary, loss_weights=None
    ):
        self.config = config
        self.model = model
        self.train_set = ColorPhotoDataset(
            train_files,
            CropPolicy(config.size, config.crop_scale),
            train=True,
            seed=config.seed,
            max_pixels=config.max_pixels,
        )
        self.val_set = ColorPhotoDataset(
            val_files, CropPolicy(config.work_size, flip=False), train=False, max_pixels=config.max_pixels
        )
        self.data_summary = data_summary
        self.collate = collate
        self.skipped_files: set[Path] = set()  # unreadable, or no colour to learn from
        self._samples: list[list[np.ndarray]] = []
        self._gray_summary: dict[str, float] | None = None
        self.decoding: tuple[str, Any] | None = (
            None  # ("chroma", (gain, exponent)) or ("rebalance", strength), chosen on validation
        )
        self.decoding_curve: list[dict[str, float]] = []
        self.loss_weights: torch.Tensor | None = loss_weights  # per ab cell (RARITY_BINS^2), when loss_rebalance > 0

    @staticmethod
    def _split(model, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lab = rgb_to_lab(rgb.to(next(model.parameters()).device))
        return lab[:, :1], lab[:, 1:]

    @staticmethod
    def _upsample(ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """Network-resolution ab (in units of AB_SCALE) -> LAB units at L's size."""
        return F.interpolate(ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False) * AB_SCALE

    def _decoding_kind(self, network) -> str | None:
        if _ab_bins(network):
            return "rebalance"
        return None if self.config.ab_gain else "chroma"

    def _predictions(self, model, lightness: torch.Tensor, kind: str | None) -> dict[Any, torch.Tensor]:
        """ab in LAB units at L's size, as inference will produce it: one per candidate
        decoding of ``kind`` (a rebalancing strength, or a chroma curve's (gain, exponent)),
        or one with a fixed --ab-gain."""
        # One forward pass; decoding each candidate costs almost nothing beside it.
        if kind == "rebalance":
            output = model(_network_input(lightness), raw=True)
            return {
                r: self._upsample(_unwrap(model).decode(output, r), lightness) for r in self.config.rebalance_strengths
            }
        ab = model(_network_input(lightness)) * AB_SCALE
        if kind == "chroma":
            # The curve acts at the network's resolution, before upsampling, as Expert.predict_ab does.
            return {
                (g, e): self._upsample(chroma_curve(ab, g, e) / AB_SCALE, lightness)
                for g in self.config.chroma_gains
                for e in self.config.chroma_exponents
            }
        fixed = torch.tensor(self.config.ab_gain, device=ab.device).view(1, 2, 1, 1)
        return {None: self._upsample(chroma_curve(ab, fixed) / AB_SCALE, lightness)}

    def loss(self, model, batch) -> torch.Tensor | None:
        images, _, dropped = batch
        self.skipped_files.update(self.train_set.files[i] for i in dropped)
        if len(images) == 0:
            return None
        lightness, ab = self._split(model, images)
        if _ab_bins(_unwrap(model)):
            return bin_loss(model(_network_input(lightness), raw=True), ab / AB_SCALE)
        prediction = self._upsample(model(_network_input(lightness)), lightness)
        return regression_loss(prediction, ab, self.config.loss, self.loss_weights)

    @torch.inference_mode()
    def validate(self, model) -> dict[str, float]:
        model.eval()
        kind = self._decoding_kind(_unwrap(model))
        rows: dict[float | None, list[dict[str, float]]] = {}
        gray_rows: list[dict[str, float]] = []
        first_pairs: list[tuple[np.ndarray, np.ndarray]] = []  # (gray, truth) for the sample sheet
        first_predictions: dict[float | None, list[np.ndarray]] = {}
        # Evenly spread, so a capped subset still covers every folder of a multi-folder run.
        subset = sorted(
            {int(i) for i in np.linspace(0, len(self.val_set) - 1, min(len(self.val_set), self.config.val_limit))}
        )
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(self.val_set, subset),
            batch_size=16,
            collate_fn=collate,
            num_workers=self.config.workers,
        )
        for images, _, dropped in loader:
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
            for setting, prediction in self._predictions(model, lightness, kind).items():
                colour = lab_to_rgb(join_lab(lightness, prediction)).permute(0, 2, 3, 1).cpu().numpy()
                rows.setdefault(setting, []).extend(metrics.compare(c, t) for c, t in zip(colour, truths))
                kept = first_predictions.setdefault(setting, [])
                kept.extend(colour[: 6 - len(kept)])
        if not rows:
            raise DataError("no usable validation photos (all unreadable or grayscale)")
        if self._gray_summary is None:
            # The validation photos never change, so the do-nothing baseline is scored once.
            self._gray_summary = metrics.summarize(gray_rows)
        by_setting = {r: metrics.summarize(rs) for r, rs in rows.items()}
        chosen = choose_decoding(by_setting, self.config.colorfulness_target, self.config.delta_e_tolerance)
        self.decoding = None if kind is None else (kind, chosen)
        self.decoding_curve = [
            {
                **_setting_fields(kind, r),
                **{k: round(float(by_setting[r][k]), 4) for k in ("delta_e", "psnr", "colorfulness_ratio")},
            }
            for r in by_setting
            if r is not None
        ]
        self._samples = [
            [metrics.to_uint8(x) for x in (gray_rgb, predicted, truth)]
            for (gray_rgb, truth), predicted in zip(first_pairs, first_predictions[chosen])
        ]
        summary = by_setting[chosen]
        return {
            # Epochs are compared by their most accurate decoding, not the chosen one: a chosen
            # gain trades ΔE for colour, and an epoch must not win by choosing less colour.
            "score": min(s["delta_e"] for s in by_setting.values()),
            **{f"val_{k}": v for k, v in _setting_fields(kind, chosen).items()},
            **{f"val_{k}": round(float(v), 4) for k, v in summary.items() if k != "images"},
            "val_gray_psnr": round(self._gray_summary["psnr"], 4),
            "val_gray_delta_e": round(self._gray_summary["delta_e"], 4),
        }

    def metadata(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        config = asdict(self.config)
        recipe = {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in config.items()
            if k not in {"data_dirs", "out", "run_dir", "resume", "init_training", "force"}
        }
        recipe["data_dirs"] = [str(d) for d in self.config.data_dirs]
        best = min(history, key=lambda r: r["score"])
        arguments = dict(self.config.arguments)
        normalization = {
            "l_center": L_CENTER,
            "l_scale": L_SCALE,
            "ab_scale": AB_SCALE,
            "ab_gain": list(self.config.ab_gain or (1.0, 1.0)),
        }
        curve = {}
        if self.decoding is not None:
            kind, value = self.decoding
            curve = {f"{kind}_curve": self.decoding_curve}
            if kind == "rebalance":
                arguments["rebalance"] = value
            else:
                gain, exponent = value
                normalization.update(ab_gain=[gain, gain], chroma_exponent=exponent, chroma_reference=CHROMA_REFERENCE)
        return {
            "kind": "expert",
            "category": self.config.name,
            "architecture": self.config.architecture,
            "arguments": arguments,
            "work_size": self.config.work_size,
            "normalization": normalization,
            "training": {
                "data": {**self.data_summary, "skipped_files": len(self.skipped_files)},
                "recipe": recipe,
                "history": history,
                **curve,
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


def regression_loss(
    prediction: torch.Tensor, ab: torch.Tensor, loss: str, cell_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """L1 or MSE between predicted and true ab (LAB units), in units of AB_SCALE; with
    ``cell_weights`` (per RARITY_BINS x RARITY_BINS ab cell) each pixel counts by its true colour's cell."""
    error = (prediction - ab).abs() / AB_SCALE if loss == "l1" else ((prediction - ab) / AB_SCALE) ** 2
    if cell_weights is not None:
        error = error * cell_weights.to(error.device)[bin_index(ab / AB_SCALE, RARITY_BINS)]
    return error.mean()


def choose_decoding(by_setting: dict, colorfulness_target: float, delta_e_tolerance: float):
    """The decoding setting (chroma curve or rebalancing strength) to ship, from validation
    summaries keyed by setting.

    Every bit of extra colour costs some ΔE (a wrong guess costs more than a muted one), so
    the colour is bought within a budget: of the settings whose ΔE is within
    ``delta_e_tolerance`` of the best, the one whose colourfulness ratio comes nearest the
    target. Vivid where it is cheap, never far worse than the safest choice.
    """
    best = min(summary["delta_e"] for summary in by_setting.values())
    affordable = [r for r, summary in by_setting.items() if summary["delta_e"] <= best * (1 + delta_e_tolerance)]
    return min(affordable, key=lambda r: abs(by_setting[r]["colorfulness_ratio"] - colorfulness_target))


def _setting_fields(kind: str | None, setting) -> dict[str, float]:
    """A decoding setting by name, for metadata: {"chroma_gain", "chroma_exponent"} or {"rebalance"}."""
    if kind == "chroma":
        gain, exponent = setting
        return {"chroma_gain": gain, "chroma_exponent": exponent}
    return {"rebalance": setting} if kind == "rebalance" else {}


def _network_input(lightness: torch.Tensor) -> torch.Tensor:
    return (lightness - L_CENTER) / L_SCALE


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network itself, inside a DistributedDataParallel wrapper or not."""
    return getattr(model, "module", model)


# --init values that build new weights; any other value names an expert to fine-tune.
NEW_WEIGHTS = frozenset({"scratch", "imagenet"})
# The default --init: the expert of the same name if one is installed (bundled or yours), else
# the general expert.
NEAREST = "nearest"


def _ab_bins(network: torch.nn.Module) -> int:
    return getattr(network, "ab_bins", 0)


def _build_model(config: ExpertTrainConfig, store: ExpertStore) -> torch.nn.Module:
    if config.init in NEW_WEIGHTS:
        if config.ab_bins is not None:
            config.arguments = {**config.arguments, "ab_bins": config.ab_bins}
        model = create_architecture(config.architecture, **config.arguments)
        if config.init == "imagenet":
            encoder = getattr(model, "encoder", None)
            if encoder is None or "encoder" not in config.arguments:
                raise ValueError(
                    f"--init imagenet needs an architecture with a timm encoder, not {config.architecture!r}"
                )
            load_imagenet_encoder(encoder, config.arguments["encoder"])
        return model
    # Fine-tuning: the architecture is whatever the starting expert was built with.
    expert = store.load(config.init)
    config.init_sha256 = expert.model_file.sha256()
    config.init_training = expert.model_file.metadata.get("training")
    config.architecture = expert.model_file.metadata["architecture"]
    config.arguments = dict(expert.model_file.metadata["arguments"])
    config.work_size = expert.work_size
    if config.ab_bins is None or config.ab_bins == config.arguments.get("ab_bins", 0):
        return expert.network.train()
    # Another head on the same body: every tensor whose name and shape match is kept, and the
    # head starts fresh (e.g. an ab-bin head fine-tuned from a regression expert).
    config.arguments["ab_bins"] = config.ab_bins
    config.arguments.pop("rebalance", None)
    model = create_architecture(config.architecture, **config.arguments)
    reference = model.state_dict()
    kept = {k: v for k, v in expert.network.state_dict().items() if k in reference and reference[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    return model.train()


PRIOR_PHOTOS = 512  # enough for a stable colour histogram; a few seconds to read
RARITY_BINS = 16  # the ab grid of --loss-rebalance's weights: cells about 14 LAB units wide


def colour_histogram(files: list[Path], config: ExpertTrainConfig, n: int) -> tuple[torch.Tensor, int]:
    """How the ab of (a spread of) the training photos falls on an n x n grid, and how many photos were read."""
    dataset = ColorPhotoDataset(
        files[:: max(1, len(files) // PRIOR_PHOTOS)],
        CropPolicy(config.size, flip=False),
        train=False,
        max_pixels=config.max_pixels,
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, collate_fn=collate, num_workers=config.workers)
    histogram, photos = torch.zeros(n * n), 0
    with torch.inference_mode():
        for images, _, _ in loader:
            if len(images):
                ab = F.avg_pool2d(rgb_to_lab(images)[:, 1:] / AB_SCALE, 4)  # chroma is smooth; 16x fewer pixels
                histogram += soft_targets(ab, n).sum(dim=(0, 2, 3))
                photos += len(images)
    return histogram, photos


def train_expert(
    config: ExpertTrainConfig, store: ExpertStore | None = None, callback: Callback = lambda *a, **k: None
) -> ModelFile:
    """Train, then install the best epoch at ``config.out`` (default: the user's model folder)."""
    store = store or ExpertStore()
    if config.init == NEAREST:
        # Fine-tuning from what exists trains a useful expert from a small folder in minutes;
        # ImageNet or random weights need thousands of photos before they beat gray.
        config = replace(config, init=config.name if config.name in store.names() else "general")
    run_dir = Path(config.run_dir or store.home / "runs" / config.name)
    out = Path(config.out or store.user_path(config.name))
    for folder in {run_dir, out.parent}:
        check_writable(folder)  # now, not after the whole run
    files: list[Path] = []
    for folder in config.data_dirs:
        files.extend(list_images(folder))
    train_files, val_files, test_files = split_for_training(files, config.val_split)
    data_summary = {
        "folders": [str(d) for d in config.data_dirs],
        "images": len(files),
        "train_images": len(train_files),
        "val_images": len(val_files),
        "test_images": len(test_files),  # held out, left for colorize eval
        "file_list_sha256": file_list_hash(files),
    }
    torch.manual_seed(config.seed)
    try:
        model = _build_model(config, store)
    except TypeError as error:
        raise ValueError(f"architecture {config.architecture!r} does not take these arguments ({error})") from None
    loss_weights = None
    if _ab_bins(model):
        config.loss = "cross_entropy"  # an ab-bin head learns a distribution, not one value
        histogram, data_summary["prior_photos"] = colour_histogram(train_files, config, model.ab_bins)
        if data_summary["prior_photos"]:
            model.log_prior.copy_(log_prior(histogram))
    elif config.loss_rebalance:
        histogram, data_summary["prior_photos"] = colour_histogram(train_files, config, RARITY_BINS)
        if data_summary["prior_photos"]:
            loss_weights = rarity_weights(histogram, config.loss_rebalance)
    task = ExpertTask(config, model, train_files, val_files, data_summary, loss_weights)
    callback("data", **data_summary)
    fit(task, replace(FitConfig.of(config, run_dir), score_start=config.init not in NEW_WEIGHTS), callback)
    best = read_metadata(run_dir / "best.safetensors").metadata["metrics"]
    if best["val_delta_e"] >= best["val_gray_delta_e"] and not config.force:
        raise WorseThanGrayError(
            f"not installed: the best epoch validates worse than no colour at all (ΔE {best['val_delta_e']:.2f}, "
            f"gray {best['val_gray_delta_e']:.2f}); {out} is unchanged. More photos or epochs may help; the weights "
            f"are in {run_dir / 'best.safetensors'}, and --force installs them anyway"
        )
    return read_metadata(install_best(run_dir, out))
