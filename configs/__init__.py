"""TOML configuration shipped with the package; see each file for its fields."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


def load_config(name: str) -> dict[str, Any]:
    """Read ``configs/<name>.toml`` from the installed package."""
    text = resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)
