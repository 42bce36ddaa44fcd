"""Training one colorization expert from a folder of colour photos.

The result is written only to the user's model folder (or ``--out``); bundled weights and
every other expert are never touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from colorize.configs import load_config
from colorize.experts.architectures import create_architecture
from colorize.experts.color import AB_SCALE, join_lab, lab_to_rgb, rgb_to_lab
from colorize.experts.modelfile import ModelFile, read_metadata
from colorize.experts.store import Expert, ExpertStore
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
from colorize.pipelines.pretrained import load_imagenet_encoder
from colorize.pipelines.sheets import contact_sheet
from colorize.pipelines.training import Callback, FitConfig, fit, install_best


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
    val_split: float
    val_limit: int
    patience: int
    seed: int
    workers: int
    ab_gain: tuple[float, float] = (1.0, 1.0)  # fixed a/b boost after the network (paper reproduction only)
    device: str = "cpu"
    out: Path | None = None
    run_dir: Path | None = None
    resume: bool = False
    max_steps_per_epoch: int | None = None

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
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(name=name, data_dirs=[Path(d) for d in data_dirs], **values)


class ExpertTask:
    def __init__(self, config: ExpertTrainConfig, model: torch.nn.Module, train_files, val_files, data_summary):
        self.config = config
        self.model = model
        self.train_set = ColorPhotoDataset(train_files, CropPolicy(config.size, config.crop_scale), train=True, seed=config.seed)
        self.val_set = ColorPhotoDataset(val_files, CropPolicy(config.work_size, flip=False), train=False)
        self.data_summary = data_summary
        self.collate = collate
        self.skipped_files: set[Path] = set()  # unreadable, or no colour to learn from
        self._samples: list[list[np.ndarray]] = []
        self._gray_summary: dict[str, float] | None = None

    @staticmethod
    def _split(model, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lab = rgb_to_lab(rgb.to(next(model.parameters()).device))
        return lab[:, :1], lab[:, 1:]

    @staticmethod
    def _predict(model, lightness: torch.Tensor) -> torch.Tensor:
        ab = model((lightness - 50.0) / 50.0)
        return F.interpolate(ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False) * AB_SCALE

    def loss(self, model, batch) -> torch.Tensor | None:
        images, _, dropped = batch
        self.skipped_files.update(self.train_set.files[i] for i in dropped)
        if len(images) == 0:
            return None
        lightness, ab = self._split(model, images)
        prediction = self._predict(model, lightness)
        if self.config.loss == "l1":
            return F.l1_loss(prediction, ab) / AB_SCALE
        return F.mse_loss(prediction, ab) / AB_SCALE**2

    @torch.inference_mode()
    def validate(self, model) -> dict[str, float]:
        model.eval()
        rows, gray_rows, losses, self._samples = [], [], [], []
        # Evenly spread, so a capped subset still covers every folder of a multi-folder run.
        subset = sorted({int(i) for i in np.linspace(0, len(self.val_set) - 1, min(len(self.val_set), self.config.val_limit))})
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(self.val_set, subset), batch_size=16, collate_fn=collate, num_workers=self.config.workers
        )
        for images, _, dropped in loader:
            self.skipped_files.update(self.val_set.files[i] for i in dropped)
            if len(images) == 0:
                continue
            lightness, ab = self._split(model, images)
            prediction = self._predict(model, lightness)
            losses.append(float(F.l1_loss(prediction, ab)) / AB_SCALE)
            # Score what inference will produce, boost included.
            prediction = prediction * torch.tensor(self.config.ab_gain, device=prediction.device).view(1, 2, 1, 1)
            colour = lab_to_rgb(join_lab(lightness, prediction)).permute(0, 2, 3, 1).cpu().numpy()
            truth = images.permute(0, 2, 3, 1).numpy()
            gray = lab_to_rgb(join_lab(lightness, torch.zeros_like(ab))).permute(0, 2, 3, 1).cpu().numpy()
            for gray_rgb, pred_rgb, true_rgb in zip(gray, colour, truth):
                rows.append(metrics.image_metrics(pred_rgb, true_rgb))
                if self._gray_summary is None:
                    gray_rows.append(metrics.image_metrics(gray_rgb, true_rgb))
                if len(self._samples) < 6:
                    self._samples.append([metrics.to_uint8(x) for x in (gray_rgb, pred_rgb, true_rgb)])
        if not rows:
            raise DataError("no usable validation photos (all unreadable or grayscale)")
        summary = metrics.summarize(rows)
        if self._gray_summary is None:
            # The validation photos never change, so the do-nothing baseline is scored once.
            self._gray_summary = metrics.summarize(gray_rows)
        return {
            "score": summary["delta_e"],
            "val_loss": float(np.mean(losses)),
            **{f"val_{k}": round(float(v), 4) for k, v in summary.items() if k != "images"},
            "val_gray_psnr": round(self._gray_summary["psnr"], 4),
            "val_gray_delta_e": round(self._gray_summary["delta_e"], 4),
        }

    def metadata(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        config = asdict(self.config)
        recipe = {k: (str(v) if isinstance(v, Path) else v) for k, v in config.items() if k not in {"data_dirs", "out", "run_dir", "resume"}}
        recipe["data_dirs"] = [str(d) for d in self.config.data_dirs]
        best = min(history, key=lambda r: r["score"])
        return {
            "kind": "expert",
            "category": self.config.name,
            "architecture": self.config.architecture,
            "arguments": self.config.arguments,
            "work_size": self.config.work_size,
            "normalization": {"l_center": 50.0, "l_scale": 50.0, "ab_scale": AB_SCALE, "ab_gain": list(self.config.ab_gain)},
            "training": {
                "data": {**self.data_summary, "skipped_files": len(self.skipped_files)},
                "recipe": recipe,
                "history": history,
            },
            "metrics": {k: v for k, v in best.items() if k.startswith("val_") or k == "epoch"},
        }

    def on_epoch_end(self, epoch: int, run_dir: Path) -> None:
        if self._samples:
            contact_sheet(self._samples, ["gray | predicted | truth"] * len(self._samples), run_dir / "samples" / f"epoch_{epoch + 1:03d}.png")


def _build_model(config: ExpertTrainConfig, store: ExpertStore) -> torch.nn.Module:
    if config.init in {"scratch", "imagenet"}:
        model = create_architecture(config.architecture, **config.arguments)
        if config.init == "imagenet":
            encoder = getattr(model, "encoder", None)
            if encoder is None:
                raise ValueError(f"--init imagenet needs an architecture with a timm encoder, not {config.architecture!r}")
            load_imagenet_encoder(encoder)
        return model
    # Fine-tuning: the architecture is whatever the starting expert was built with.
    expert = store.load(config.init)
    config.architecture = expert.model_file.metadata["architecture"]
    config.arguments = expert.model_file.metadata["arguments"]
    config.work_size = expert.work_size
    return expert.network.train()


def train_expert(config: ExpertTrainConfig, store: ExpertStore | None = None, callback: Callback = lambda *a, **k: None) -> ModelFile:
    """Train, then install the best epoch at ``config.out`` (default: the user's model folder)."""
    store = store or ExpertStore()
    files: list[Path] = []
    for folder in config.data_dirs:
        files.extend(list_images(folder))
    train_files, val_files = split_for_training(files, config.val_split)
    data_summary = {
        "folders": [str(d) for d in config.data_dirs],
        "images": len(files),
        "train_images": len(train_files),
        "val_images": len(val_files),
        "file_list_sha256": file_list_hash(files),
    }
    torch.manual_seed(config.seed)
    model = _build_model(config, store)
    run_dir = Path(config.run_dir or store.home / "runs" / config.name)
    task = ExpertTask(config, model, train_files, val_files, data_summary)
    callback("data", **data_summary)
    fit(task, FitConfig.of(config, run_dir), callback)
    out = Path(config.out or store.user_path(config.name))
    return read_metadata(install_best(run_dir, out))
