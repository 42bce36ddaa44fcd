"""The self-describing weights file shared by experts and the classifier.

One ``.safetensors`` file per model. Its header metadata holds one JSON document under
the key ``colorize`` with everything needed to rebuild and judge the model:
``format_version``, ``kind`` (``expert`` or ``classifier``), ``architecture`` and
``arguments``, ``labels`` or ``category``, ``normalization``, ``work_size``, ``training``
(data summary and recipe), ``metrics`` and ``code_version``. Loading rebuilds the network
from that metadata alone and loads the tensors with ``strict=True``; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load, safe_open, save
from torch import nn

from colorize.experts.files import atomic_write

FORMAT_VERSION = 1
_METADATA_KEY = "colorize"
# A colorize network has at most a few thousand tensors and tens of millions of parameters
# (pix2pix, the largest, 54 M); a header listing far more is refused before a network is built
# to compare it with, or its bytes are read.
MAX_TENSORS = 10_000
MAX_PARAMETERS = 1 << 28
# The side of the square a network is fed: over four times the bundled experts' 224. A side
# of 30,000 would cost 7.8 GB on any photo.
MAX_SIDE = 1024


class ModelFileError(Exception):
    """A weights file is missing, corrupt, foreign or does not match its own metadata."""


@dataclass(frozen=True)
class ModelFile:
    path: Path
    metadata: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.metadata["kind"]

    def sha256(self) -> str:
        return file_sha256(self.path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: nn.Module, path: Path, metadata: dict[str, Any], half: bool = True) -> Path:
    """Write ``model`` and ``metadata`` atomically; float tensors are stored as float16 when ``half``.

    float16 halves the file; the networks are evaluated in float32 after loading, and
    the round trip changes predicted ab by far less than one LAB unit.
    """
    from colorize import __version__

    required = {"kind", "architecture", "arguments"}
    if missing := required - metadata.keys():
        raise ValueError(f"metadata lacks {sorted(missing)}")
    metadata = {"format_version": FORMAT_VERSION, "code_version": __version__, **metadata}
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point() and tensor.dtype == torch.float32:
            tensor = tensor.half()
        tensors[name] = tensor
    return _write(tensors, Path(path), metadata)


def replace_metadata(path: Path, metadata: dict[str, Any], out: Path | None = None) -> Path:
    """Rewrite a weights file with the same tensors and new ``metadata`` (whole, as read), in
    place or, given ``out``, as a copy there (``path`` untouched)."""
    return _write(load(Path(path).read_bytes()), Path(out or path), metadata)


def _write(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, Any]) -> Path:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    data = save(tensors, metadata={_METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return atomic_write(path, lambda handle: handle.write(data))


def read_metadata(path: Path) -> ModelFile:
    """Read only the header (cheap: no tensors are loaded)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such weights file")
    if not path.is_file():  # a folder, a FIFO, /dev/zero: reading one could block or never end
        raise ModelFileError(f"{path}: not a regular file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(_METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a readable .safetensors weights file ({_one_line(error)})") from None
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


def load_network(model_file: ModelFile, build: Callable[[], nn.Module]) -> nn.Module:
    """Build the network the file's metadata describes and load its tensors, strictly.

    The network is first built on the ``meta`` device (no memory) and its tensors' names and
    shapes compared with the file's header: metadata asking for a network far larger than
    the tensors in the file (a 244-byte file can ask for 10 GB) is refused before anything
    is allocated. Metadata that ``build`` cannot use at all is refused in one line too. Even
    on the meta device building takes time for each block, so the header is bounded before
    (``MAX_TENSORS``, ``MAX_PARAMETERS``) and ``build`` is expected to bound its arguments
    (``create_architecture`` does).
    """
    path = model_file.path
    try:
        stored = _stored_shapes(path)
        with torch.device("meta"):
            expected = {name: tuple(t.shape) for name, t in build().state_dict().items()}
    except (SafetensorError, OSError) as error:
        raise ModelFileError(f"{path}: cannot read tensors ({_one_line(error)})") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        # Metadata naming no known architecture, or arguments it does not take.
        raise ModelFileError(
            f"{path}: not a usable colorize model ({type(error).__name__}: {_one_line(error)})"
        ) from None
    if stored != expected:
        differing = sorted(set(stored) ^ set(expected)) or [n for n in expected if stored[n] != expected[n]]
        raise ModelFileError(
            f"{path}: tensors do not match architecture {model_file.metadata['architecture']!r} "
            f"({len(differing)} differ, e.g. {differing[0]})"
        )
    return load_state(model_file, build())


def _stored_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of each tensor, from the header; bounded here, where counting is cheap."""
    with safe_open(str(path), framework="pt") as handle:
        names = handle.keys()
        if len(names) > MAX_TENSORS:
            raise ModelFileError(f"{path}: {len(names):,} tensors, more than any colorize model has ({MAX_TENSORS:,})")
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in names}
    parameters = sum(math.prod(shape) for shape in shapes.values())
    if parameters > MAX_PARAMETERS:
        raise ModelFileError(
            f"{path}: {parameters:,} parameters, more than any colorize model has ({MAX_PARAMETERS:,})"
        )
    return shapes


_A = {"expert": "an", "classifier": "a"}


def load_model(path: Path, kind: str, build: Callable[[dict[str, Any]], nn.Module]) -> tuple[ModelFile, nn.Module]:
    """A file's metadata and its network, built by ``build(metadata)``; the file must hold a
    model of ``kind`` ("expert" or "classifier")."""
    model_file = read_metadata(path)
    if model_file.kind != kind:
        raise ModelFileError(f"{path}: holds a {model_file.kind!r} model, expected {_A[kind]} {kind}")
    return model_file, load_network(model_file, lambda: build(model_file.metadata))


def load_state(model_file: ModelFile, model: nn.Module) -> nn.Module:
    """Load the file's tensors into ``model`` (built from the same metadata), strictly."""
    try:
        # Read whole, not memory-mapped: a file cut short while mapped kills the process
        # with SIGBUS; read, it is an error like any other.
        tensors = load(model_file.path.read_bytes())
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{model_file.path}: cannot read tensors ({_one_line(error)})") from None
    reference = model.state_dict()
    for name, tensor in tensors.items():
        expected = reference.get(name)
        if expected is not None and expected.is_floating_point():
            if not tensor.is_floating_point():
                raise ModelFileError(
                    f"{model_file.path}: tensor {name} holds {tensor.dtype}, not floating-point weights"
                )
            if not torch.isfinite(tensor).all():
                raise ModelFileError(f"{model_file.path}: tensor {name} holds NaN or infinite values")
    tensors = {
        name: tensor.to(reference[name].dtype) if name in reference else tensor for name, tensor in tensors.items()
    }
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise ModelFileError(
            f"{model_file.path}: tensors do not match architecture "
            f"{model_file.metadata['architecture']!r} ({_one_line(error)})"
        ) from None
    return model.eval()


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 200 else text[:197] + "..."
