"""Where model files live: the command line lists installed experts in ``--help`` from here,
and the model store looks models up through the same folders.

A model in a folder is ``NAME.onnx`` (what inference runs), ``NAME.safetensors`` (what
training writes; an earlier release wrote only this), or both. When both are there the ONNX
file stands for the model unless the safetensors is newer (retrained by a release that wrote
no ONNX): then the safetensors does, and is exported again on use."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

ONNX_SUFFIX, SAFETENSORS_SUFFIX = ".onnx", ".safetensors"
MODEL_SUFFIXES = (ONNX_SUFFIX, SAFETENSORS_SUFFIX)


def model_home() -> Path:
    """The user's model folder: ``$COLORIZE_HOME`` or the platform's cache dir."""
    if env := os.environ.get("COLORIZE_HOME"):
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("colorize", appauthor=False))


def bundled_weights_dir(package: str = "colorize.experts") -> Path:
    return Path(str(resources.files(package).joinpath("weights")))


def is_bundled(path: Path) -> bool:
    """Whether ``path`` is one of the model files shipped inside the package."""
    folders = (bundled_weights_dir("colorize.experts"), bundled_weights_dir("colorize.classifier"))
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(folder.resolve()) for folder in folders)


def model_folders(kind: str, home: Path) -> list[tuple[str, Path]]:
    """(source, folder) for ``kind`` ("experts" or "classifier"), lowest precedence first."""
    package = "colorize.experts" if kind == "experts" else "colorize.classifier"
    return [("bundled", bundled_weights_dir(package)), ("user", home / kind)]


def installed_experts(home: Path) -> dict[str, tuple[str, Path]]:
    """Every installed expert by name: (source, path) of the folder that wins for it."""
    found: dict[str, tuple[str, Path]] = {}
    for source, folder in model_folders("experts", home):
        if folder.is_dir():
            names = sorted({path.stem for suffix in MODEL_SUFFIXES for path in folder.glob(f"*{suffix}")})
            for name in names:
                path = model_file(folder, name)
                if path is not None:
                    found[name] = (source, path)
    return found


def model_file(folder: Path, name: str) -> Path | None:
    """The file that stands for model ``name`` in ``folder`` (see the module's docstring), or None."""
    onnx, weights = folder / f"{name}{ONNX_SUFFIX}", folder / f"{name}{SAFETENSORS_SUFFIX}"
    if not onnx.is_file():
        return weights if weights.is_file() else None
    if weights.is_file() and weights.stat().st_mtime > onnx.stat().st_mtime:
        return weights
    return onnx
