"""The self-describing model file shared by experts and the classifier: its metadata.

One file per model: ``.onnx`` (what inference runs) or ``.safetensors`` (what training
writes and reads). Both carry one JSON document under the key ``colorize`` (the safetensors
header's metadata; the ONNX model's ``metadata_props``) with everything needed to rebuild
and judge the model: ``format_version``, ``kind`` (``expert`` or ``classifier``),
``architecture`` and ``arguments``, ``labels`` or ``category``, ``normalization``,
``work_size``, ``training`` (data summary and recipe), ``metrics`` and ``code_version``.
Nothing is ever unpickled. This module reads and checks that metadata without torch;
experts/networks.py builds torch networks from it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from colorize.core.errors import ColorizeError, one_line
from colorize.core.locations import ONNX_SUFFIX

FORMAT_VERSION = 1
METADATA_KEY = "colorize"
# A colorize network has at most a few thousand tensors and tens of millions of parameters
# (pix2pix, the largest, 54 M); a header listing far more is refused before a network is built
# to compare it with, or its bytes are read.
MAX_TENSORS = 10_000
MAX_PARAMETERS = 1 << 28
# The side of the square a network is fed: over four times the bundled experts' 224. A side
# of 30,000 would cost 7.8 GB on any photo.
MAX_SIDE = 1024


class ModelFileError(ColorizeError):
    """A weights file is missing, corrupt, foreign or does not match its own metadata."""

    exit_code = 2  # a usage error: the command line, a file named on it or the set-up


@dataclass(frozen=True)
class ModelFile:
    path: Path
    metadata: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.metadata["kind"]

    def sha256(self) -> str:
        return file_sha256(self.path)


# How a message names each kind of model a file may hold.
_KINDS = {"expert": "an expert", "classifier": "a classifier"}


def check_kind(model_file: ModelFile, kind: str) -> ModelFile:
    """``model_file`` when it holds a model of ``kind``; else a one-line ``ModelFileError``."""
    if model_file.kind != kind:
        raise ModelFileError(f"{model_file.path}: holds a {model_file.kind!r} model, expected {_KINDS[kind]}")
    return model_file


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metadata(path: Path) -> ModelFile:
    """Read and check a model file's metadata: a safetensors header alone (no tensors are
    loaded), or an ONNX file's, after the checks of its graph (core/onnx.py)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such weights file")
    if not path.is_file():  # a folder, a FIFO, /dev/zero: reading one could block or never end
        raise ModelFileError(f"{path}: not a regular file")
    if path.suffix.lower() == ONNX_SUFFIX:
        from colorize.core.onnx import read_onnx

        return ModelFile(path, read_onnx(path)[1])
    try:
        with safe_open(str(path), framework="numpy") as handle:
            raw = (handle.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a readable .safetensors weights file ({one_line(error)})") from None
    if raw is None:
        raise ModelFileError(f"{path}: a .safetensors file without colorize metadata (a foreign model?)")
    return ModelFile(path, parse_metadata(path, raw))


def parse_metadata(path: Path, raw: str) -> dict[str, Any]:
    """A model file's colorize metadata (JSON text), checked: the one reading for every file type."""
    try:
        metadata = json.loads(raw, parse_int=_json_int)
    except (ValueError, RecursionError):  # deeply nested JSON exhausts the parser's stack
        raise ModelFileError(f"{path}: colorize metadata is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: colorize metadata is a JSON {type(metadata).__name__}, not an object")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version!r}, this colorize reads {FORMAT_VERSION}")
    for key, kind in (("kind", str), ("architecture", str), ("arguments", dict)):
        if not isinstance(metadata.get(key), kind):
            raise ModelFileError(f"{path}: colorize metadata lacks {key!r} (a {kind.__name__})")
    if isinstance(metadata.get("metrics"), dict):
        metadata["metrics"] = {name: value for name, value in metadata["metrics"].items() if not _infinite(value)}
    return metadata


def _json_int(text: str) -> int | float:
    # An integer no float can hold is read as infinity, as the parser already reads 1e400:
    # formatting or comparing one as a float raises OverflowError wherever it is shown, and
    # one of over 4300 digits cannot even be parsed.
    if len(text.lstrip("-")) > 308:
        return -math.inf if text.startswith("-") else math.inf
    return int(text)


def _infinite(value: Any) -> bool:
    # No measurement comes out infinite: such a metric is one no float could hold, left out so
    # that the listing and the comparisons of metrics show and judge only the others.
    return isinstance(value, float) and math.isinf(value)


def checked_side(path: Path, what: str, side: Any) -> int:
    """``side`` (``what`` in the metadata) in pixels, from 1 to ``MAX_SIDE``; else a one-line refusal."""
    number = isinstance(side, (int, float)) and not isinstance(side, bool)
    if not number or not 1 <= side <= MAX_SIDE or side != int(side):
        shown = side if number else f"a {type(side).__name__}"
        raise ModelFileError(f"{path}: {what} {shown} in the metadata is not a side from 1 to {MAX_SIDE} pixels")
    return int(side)
