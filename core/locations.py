"""Where model files live, without importing torch: the command line lists installed
experts in ``--help`` from here, and the model store looks models up through the same folders."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

WEIGHTS_SUFFIX = ".safetensors"


def model_home() -> Path:
    """The user's model folder: ``$COLORIZE_HOME`` or the platform's cache dir."""
    if env := os.environ.get("COLORIZE_HOME"):
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("colorize", appauthor=False))


def bundled_weights_dir(package: str = "colorize.experts") -> Path:
    return Path(str(resources.files(package).joinpath("weights")))


def model_folders(kind: str, home: Path) -> list[tuple[str, Path]]:
    """(source, folder) for ``kind`` ("experts" or "classifier"), lowest precedence first."""
    package = "colorize.experts" if kind == "experts" else "colorize.classifier"
    return [("bundled", bundled_weights_dir(package)), ("user", home / kind)]


def installed_experts(home: Path) -> dict[str, tuple[str, Path]]:
    """Every installed expert by name: (source, path) of the folder that wins for it."""
    found: dict[str, tuple[str, Path]] = {}
    for source, folder in model_folders("experts", home):
        if folder.is_dir():
            for path in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
                found[path.name[: -len(WEIGHTS_SUFFIX)]] = (source, path)
    return found
