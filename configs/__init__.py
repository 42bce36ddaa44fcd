"""TOML configuration shipped with the package; see each file for its fields.

configs/experts.toml and configs/classifier.toml are the one source of the training recipes'
defaults: the training configs' dataclasses give those fields no values of their own, and
the command line's options default to "not given"."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

# Where the TOML files are read from: the installed package (a test points it at a copy).
FOLDER = resources.files(__name__)


def load_config(name: str) -> dict[str, Any]:
    """Read ``configs/<name>.toml``."""
    text = FOLDER.joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)
