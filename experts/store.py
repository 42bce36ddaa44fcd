"""The model store: where each model's weights come from, and the loaded ``Expert``.

One lookup order for every model, experts and the scene classifier alike: an explicit
file (``--weights NAME=FILE``, ``--classifier-weights FILE``), then the user's model folder
(``$COLORIZE_HOME/experts/NAME.safetensors`` and ``$COLORIZE_HOME/classifier/``; default
the platform cache dir, e.g. ``~/.cache/colorize``), then the weights bundled with the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import torch

from colorize.core.locations import WEIGHTS_SUFFIX, installed_experts, model_folders, model_home
from colorize.core.modelfile import ModelFile, ModelFileError, checked_side, read_metadata
from colorize.experts.architectures import check_arguments, create_architecture, list_architectures
from colorize.experts.hints import HINT_PLANES
from colorize.experts.networks import load_model
from colorize.experts.normalization import Normalization

# The scene classifier's name where it stands beside experts (its file, colorize experts --remove).
CLASSIFIER = "classifier"
CLASSIFIER_FILE = CLASSIFIER + WEIGHTS_SUFFIX


class NoSuchExpertError(KeyError):
    """No expert of that name is installed (the message lists the ones that are)."""

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelSource:
    name: str
    source: str  # "file", "user" or "bundled"
    path: Path


class ModelStore:
    """Finds models by name across the three sources; a later source overrides an earlier one."""

    def __init__(
        self, home: Path | None = None, files: Mapping[str, Path] | None = None, classifier_file: Path | None = None
    ):
        self.home = Path(home) if home is not None else model_home()
        self.files = {name: Path(path) for name, path in (files or {}).items()}
        self.classifier_file = Path(classifier_file) if classifier_file is not None else None

    def sources(self) -> dict[str, ModelSource]:
        """Every expert by name, from the source that wins for it."""
        found = {name: ModelSource(name, source, path) for name, (source, path) in installed_experts(self.home).items()}
        for name, path in self.files.items():
            found[name] = ModelSource(name, "file", path)
        return dict(sorted(found.items()))

    def classifier_source(self) -> ModelSource | None:
        """The scene classifier's weights, by the same order; None when there are none."""
        if self.classifier_file is not None:
            return ModelSource("classifier", "file", self.classifier_file)
        for source, folder in reversed(model_folders("classifier", self.home)):
            if (folder / CLASSIFIER_FILE).is_file():  # the user's, else the bundled one
                return ModelSource("classifier", source, folder / CLASSIFIER_FILE)
        return None

    def names(self) -> list[str]:
        return list(self.sources())

    def user_path(self, name: str) -> Path:
        """Where training installs the expert ``name``."""
        return self.home / "experts" / f"{name}{WEIGHTS_SUFFIX}"

    def user_classifier_path(self) -> Path:
        """Where training installs the scene classifier."""
        return self.home / "classifier" / CLASSIFIER_FILE

    def load(self, name: str, device: str | torch.device = "cpu") -> "Expert":
        try:
            source = self.sources()[name]
        except KeyError:
            raise NoSuchExpertError(f"no expert named {name!r}; available: {', '.join(self.names())}") from None
        return Expert.from_file(source.path, name=name, device=device)

    def check(self, names: Iterable[str], load: Iterable[str] = ()) -> None:
        """Refuse a run before its first photo when an expert it may route to is unusable.

        The experts in ``load`` (the ones a user named) are loaded in full; the others only
        have their header read (cheap, and it catches truncation) and load on first use. A
        name with no weights is passed over: routing falls back from it, and says so.
        Raises ``ModelFileError`` naming the file.
        """
        load, sources = set(load), self.sources()
        for name in sorted(set(names) & set(sources)):
            path = sources[name].path
            if name in load:
                self.load(name)
                continue
            meta = read_metadata(path).metadata
            if meta.get("kind") != "expert":
                raise ModelFileError(f"{path}: holds a {meta.get('kind')!r} model, expected an expert")
            known = list_architectures()
            if meta.get("architecture") not in known:
                raise ModelFileError(
                    f"{path}: unknown architecture {meta.get('architecture')!r}; known: {', '.join(known)}"
                )
            try:
                check_arguments(meta["architecture"], meta["arguments"])
            except ValueError as error:
                raise ModelFileError(f"{path}: not a usable colorize model ({error})") from None
            checked_side(path, "work size", meta.get("work_size"))


class Expert:
    """A colorization network with the metadata that says how to feed it."""

    def __init__(self, name: str, model_file: ModelFile, network: torch.nn.Module):
        self.name = name
        self.model_file = model_file
        self.network = network
        meta = model_file.metadata
        self.work_size = checked_side(model_file.path, "work size", meta.get("work_size"))
        self.normalization = Normalization.from_metadata(meta.get("normalization", {}))
        # Whether the network reads hint planes beside L (experts/hints.py); files from before hints do not.
        self.takes_hints = bool(meta["arguments"].get("hints", False))

    @classmethod
    def from_file(cls, path: Path, name: str | None = None, device: str | torch.device = "cpu") -> "Expert":
        model_file, network = load_model(
            path, "expert", lambda m: create_architecture(m["architecture"], **m["arguments"])
        )
        meta = model_file.metadata
        try:
            expert = cls(name or meta.get("category") or Path(path).stem, model_file, network.to(device))
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError) as error:
            raise ModelFileError(f"{path}: not a usable colorize expert ({type(error).__name__}: {error})") from None
        return expert

    @torch.inference_mode()
    def predict_ab(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """L in [0, 100], (B, 1, h, w) at the work size -> ab in LAB units at the network's resolution.

        ``hints``: (B, 3, h, w) planes of experts/hints.py, for an expert that takes them; a
        hint-aware expert given none reads empty planes and colours the photo on its own."""
        if hints is not None and not self.takes_hints:
            raise ValueError(f"expert {self.name!r} takes no colour hints")
        if hints is None and self.takes_hints:
            hints = lightness.new_zeros(lightness.shape[0], HINT_PLANES, *lightness.shape[2:])
        return self.normalization.chroma(self.network(self.normalization.network_input(lightness, hints)))
