"""The model store: where each model's file comes from, and the loaded ``Expert``.

One lookup order for every model, experts and the scene classifier alike: an explicit
file (``--weights NAME=FILE``, ``--classifier-weights FILE``), then the user's model folder
(``$COLORIZE_HOME/experts/NAME.onnx`` and ``$COLORIZE_HOME/classifier/``; default the
platform cache dir, e.g. ``~/.cache/colorize``), then the models bundled with the package.

Inference runs ONNX graphs with onnxruntime and never imports torch. A model that exists only
as ``.safetensors`` (written by an earlier release, or named with ``--weights``) is exported
to ONNX on first use where torch is installed: beside itself in the user's folder, in memory
otherwise. Without torch it is refused in one line that says how to export it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from colorize.core.errors import ColorizeError
from colorize.core.locations import ONNX_SUFFIX, installed_experts, model_file, model_folders, model_home
from colorize.core.modelfile import ModelFile, ModelFileError, check_kind, checked_side, read_metadata
from colorize.core.onnx import OnnxNetwork, parse_onnx, read_onnx
from colorize.experts.hints import HINT_PLANES
from colorize.experts.normalization import Normalization

# The scene classifier's name where it stands beside experts (its file, colorize experts --remove).
CLASSIFIER = "classifier"


class NoSuchExpertError(ColorizeError, KeyError):
    """No expert of that name is installed (the message lists the ones that are)."""

    exit_code = 2  # a usage error: the command line, a file named on it or the set-up

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelSource:
    name: str
    source: str  # "file", "user" or "bundled"
    path: Path  # .onnx, or .safetensors where no current ONNX file stands beside it


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
            path = model_file(folder, CLASSIFIER)
            if path is not None:  # the user's, else the bundled one
                return ModelSource("classifier", source, path)
        return None

    def names(self) -> list[str]:
        return list(self.sources())

    def user_path(self, name: str) -> Path:
        """Where training installs the expert ``name`` (its ONNX file goes beside it)."""
        return self.home / "experts" / f"{name}.safetensors"

    def user_classifier_path(self) -> Path:
        """Where training installs the scene classifier (its ONNX file goes beside it)."""
        return self.home / "classifier" / f"{CLASSIFIER}.safetensors"

    def source(self, name: str) -> ModelSource:
        try:
            return self.sources()[name]
        except KeyError:
            raise NoSuchExpertError(f"no expert named {name!r}; available: {', '.join(self.names())}") from None

    def load(self, name: str, threads: int = 1, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> "Expert":
        source = self.source(name)
        data, metadata = onnx_model(source, channels=(1, 1 + HINT_PLANES))
        network = OnnxNetwork(data, source.path, threads, providers)
        return Expert.from_parts(name, ModelFile(source.path, metadata), network)

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
            meta = check_kind(read_metadata(path), "expert").metadata  # an ONNX file's graph is checked here too
            if path.suffix.lower() != ONNX_SUFFIX:  # to be built with torch and exported: its arguments bounded first
                _check_architecture(path, meta)
            checked_side(path, "work size", meta.get("work_size"))


def _check_architecture(path: Path, meta: dict[str, Any]) -> None:
    from colorize.experts.architectures import check_arguments, list_architectures

    known = list_architectures()
    if meta.get("architecture") not in known:
        raise ModelFileError(f"{path}: unknown architecture {meta.get('architecture')!r}; known: {', '.join(known)}")
    try:
        check_arguments(meta["architecture"], meta["arguments"])
    except ValueError as error:
        raise ModelFileError(f"{path}: not a usable colorize model ({error})") from None


def onnx_model(source: ModelSource, channels: tuple[int, ...]) -> tuple[bytes, dict[str, Any]]:
    """The checked ONNX bytes and metadata of a model: its ONNX file, or its safetensors file
    exported (see the module's docstring)."""
    path = source.path
    if path.suffix.lower() == ONNX_SUFFIX:
        return read_onnx(path, channels)
    read_metadata(path)  # a corrupt or foreign file says so in any install, before torch is needed
    try:
        from colorize.experts.onnx_export import export_onnx_bytes

        data = export_onnx_bytes(path)
    except ImportError:  # no torch: the base install runs ONNX files only
        raise ModelFileError(
            f"{path}: a .safetensors model, which this install cannot run; export it with "
            f"`colorize export {path}` where colorize-experts[train] is installed"
        ) from None
    if source.source == "user":  # our own folder: export once, not on every run
        from colorize.core.files import atomic_write

        try:
            atomic_write(path.with_suffix(ONNX_SUFFIX), lambda handle: handle.write(data))
        except OSError:
            pass  # a read-only model folder: exported again next time
    return data, parse_onnx(data, path, channels)


class Expert:
    """A colorization network with the metadata that says how to feed it."""

    def __init__(self, name: str, model_file: ModelFile, network):
        self.name = name
        self.model_file = model_file
        self.network = network
        meta = check_kind(model_file, "expert").metadata
        if meta["arguments"].get("global_context"):  # an ONNX export of it would still run: refused alike
            raise ModelFileError(
                f"{model_file.path}: the global-context branch it was trained with was retired (it did not beat "
                "the expert without it, see MODELS.md); colorize no longer runs it"
            )
        self.work_size = checked_side(model_file.path, "work size", meta.get("work_size"))
        self.normalization = Normalization.from_metadata(meta.get("normalization", {}))
        # Whether the network reads hint planes beside L (experts/hints.py); files from before hints do not.
        self.reads_hints = bool(meta["arguments"].get("hints", False))

    @classmethod
    def from_parts(cls, name: str, model_file: ModelFile, network) -> "Expert":
        """``network``: an ``OnnxNetwork`` (inference) or a torch module (training, evaluation)."""
        try:
            return cls(name, model_file, network)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
            path = model_file.path
            raise ModelFileError(f"{path}: not a usable colorize expert ({type(error).__name__}: {error})") from None

    @classmethod
    def from_file(cls, path: Path, name: str | None = None, threads: int = 1) -> "Expert":
        """The expert in one file (ONNX, or safetensors exported), named by its metadata's category."""
        source = ModelSource(name or Path(path).stem, "file", Path(path))
        data, metadata = onnx_model(source, channels=(1, 1 + HINT_PLANES))
        name = name or metadata.get("category") or Path(path).stem
        return cls.from_parts(str(name), ModelFile(source.path, metadata), OnnxNetwork(data, path, threads))

    def predict_ab(self, lightness: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """L in [0, 100], float32 (B, 1, h, w) at the work size -> ab in LAB units at the network's resolution.

        ``hints``: (B, 3, h, w) planes of experts/hints.py, read by a network trained to read
        them (``reads_hints``; it gets empty planes when none are given) and ignored by one that
        was not: ``Pipeline`` spreads every hint over whichever expert's output."""
        if not self.reads_hints:
            hints = None
        elif hints is None:
            hints = np.zeros((lightness.shape[0], HINT_PLANES, *lightness.shape[2:]), np.float32)
        return self.normalization.chroma(self.network(self.normalization.network_input(lightness, hints)))
