"""Torch networks from model files: build the network a file's metadata names, load its
weights strictly, and write a trained network with its metadata.

Training, export and evaluation use this (colorize-experts[train]); inference runs the ONNX
graphs (core/onnx.py) and never imports torch. Weights load from a ``.safetensors`` file
or, by name, from the initializers of a colorize ``.onnx`` file (the bundled models ship as
ONNX only, and fine-tuning starts from them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load, safe_open, save
from torch import nn

from colorize.core.errors import one_line
from colorize.core.files import atomic_write
from colorize.core.locations import ONNX_SUFFIX
from colorize.core.modelfile import (
    FORMAT_VERSION,
    MAX_PARAMETERS,
    MAX_TENSORS,
    METADATA_KEY,
    ModelFile,
    ModelFileError,
    check_kind,
    read_metadata,
)
from colorize.core.onnx import HALF_SUFFIX, read_onnx


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
    data = save(tensors, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return atomic_write(path, lambda handle: handle.write(data))


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
        if _is_onnx(path):  # a count kept for training alone: no graph holds it
            expected = {name: shape for name, shape in expected.items() if not name.endswith(_BATCH_COUNT)}
    except (SafetensorError, OSError) as error:
        raise ModelFileError(f"{path}: cannot read tensors ({one_line(error)})") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        # Metadata naming no known architecture, or arguments it does not take.
        raise ModelFileError(
            f"{path}: not a usable colorize model ({type(error).__name__}: {one_line(error)})"
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
    if _is_onnx(path):
        shapes = {name: tuple(tensor.shape) for name, tensor in _onnx_tensors(path).items()}
    else:
        with safe_open(str(path), framework="pt") as handle:
            names = handle.keys()
            if len(names) > MAX_TENSORS:
                raise ModelFileError(
                    f"{path}: {len(names):,} tensors, more than any colorize model has ({MAX_TENSORS:,})"
                )
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in names}
    parameters = sum(math.prod(shape) for shape in shapes.values())
    if parameters > MAX_PARAMETERS:
        raise ModelFileError(
            f"{path}: {parameters:,} parameters, more than any colorize model has ({MAX_PARAMETERS:,})"
        )
    return shapes


def load_model(path: Path, kind: str, build: Callable[[dict[str, Any]], nn.Module]) -> tuple[ModelFile, nn.Module]:
    """A file's metadata and its network, built by ``build(metadata)``; the file must hold a
    model of ``kind`` ("expert" or "classifier")."""
    model_file = check_kind(read_metadata(path), kind)
    return model_file, load_network(model_file, lambda: build(model_file.metadata))


def load_state(model_file: ModelFile, model: nn.Module) -> nn.Module:
    """Load the file's tensors into ``model`` (built from the same metadata), strictly."""
    try:
        # Read whole, not memory-mapped: a file cut short while mapped kills the process
        # with SIGBUS; read, it is an error like any other.
        path = model_file.path
        tensors = _onnx_tensors(path) if _is_onnx(path) else load(path.read_bytes())
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{model_file.path}: cannot read tensors ({one_line(error)})") from None
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
    if _is_onnx(model_file.path):  # a count kept for training alone, not part of the graph
        tensors.update({name: reference[name] for name in reference if name.endswith(_BATCH_COUNT)})
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise ModelFileError(
            f"{model_file.path}: tensors do not match architecture "
            f"{model_file.metadata['architecture']!r} ({one_line(error)})"
        ) from None
    return model.eval()


_BATCH_COUNT = ".num_batches_tracked"


def _is_onnx(path: Path) -> bool:
    return Path(path).suffix.lower() == ONNX_SUFFIX


def _onnx_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The weights of a colorize ONNX file under their torch names (experts/onnx_export.py
    stores each as ``NAME.half``, cast to float32 in the graph), the graph checked first."""
    from onnx import load_from_string, numpy_helper

    data, _ = read_onnx(path)
    tensors = {}
    for initializer in load_from_string(data).graph.initializer:
        if "::" in initializer.name:  # a constant the exporter made (a resize's scales), not a weight
            continue
        array = numpy_helper.to_array(initializer)
        tensors[initializer.name.removesuffix(HALF_SUFFIX)] = torch.from_numpy(array.copy())
    return tensors


def load_model_file(path: Path) -> tuple[ModelFile, nn.Module]:
    """The torch network of any colorize model file, expert or classifier, in eval mode."""
    model_file = read_metadata(path)
    if model_file.kind == "classifier":
        from colorize.classifier.network import build_network

        return load_model(path, "classifier", lambda m: build_network(m["architecture"], **m["arguments"]))
    from colorize.experts.architectures import create_architecture

    return load_model(path, "expert", lambda m: create_architecture(m["architecture"], **m["arguments"]))
