"""ONNX model files: the graphs inference runs with onnxruntime.

A colorize ONNX file holds one graph with one input ``input`` (N, C, H, W) float32 and one
output ``output``, its weights stored as float16 (half the bytes; each is cast to float32 once,
when onnxruntime folds the constants at session start) and, in the model's ``metadata_props``
under ``colorize``, the same JSON a safetensors file carries: architecture, arguments, work
size, normalisation, labels, training record. Nothing else is needed to use it.

A file from a user's folder is checked before onnxruntime sees it: every operator on a short
list of the ones our networks export to (no operator can read a file, allocate what a
constant asks, or loop), no weights outside the file, one input and one output of the
expected names and ranks, bounded counts. ``onnx`` parses the file for that check; the
export (experts/onnx_export.py) needs torch (colorize-experts[train]).
"""

from __future__ import annotations

import functools
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from colorize.core.errors import one_line
from colorize.core.locations import is_bundled
from colorize.core.modelfile import MAX_PARAMETERS, METADATA_KEY, ModelFileError, parse_metadata

INPUT, OUTPUT = "input", "output"
HALF_SUFFIX = ".half"  # an initializer stored as float16, cast to float32 under its name without it
OPSET = 17
# What our networks (unet_lite on a timm encoder, the seed reports' U-Nets, the classifier)
# export to with OPSET. Shape-producing operators (ConstantOfShape, Expand, Tile, Range) are
# left out on purpose: with them a tiny file could ask for any amount of memory.
ALLOWED_OPERATORS = frozenset(
    {
        "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv",
        "ConvTranspose", "Div", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "HardSigmoid",
        "HardSwish", "Identity", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pad", "ReduceMean", "Relu", "Reshape",
        "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Sub", "Tanh", "Transpose", "Unsqueeze",
    }
)  # fmt: skip
MAX_FILE_BYTES = 1 << 30
MAX_NODES = 20_000


def read_onnx(path: Path, channels: tuple[int, ...] = (1, 4)) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes, checked (see the module's docstring), and its colorize metadata.
    Raises ``ModelFileError`` naming the file and what is wrong."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ModelFileError(f"{path}: {path.stat().st_size} bytes, larger than any colorize model")
        data = path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    if is_bundled(path):
        # Shipped inside the package and checked by its tests (tests/test_onnx.py): only the
        # metadata is read here, without the onnx package, whose import is half a cold start.
        raw = _metadata_props(data).get(METADATA_KEY)
        if raw is not None:
            return data, parse_metadata(path, raw)
    return data, parse_onnx(data, path, channels)


def parse_onnx(data: bytes, path: Path, channels: tuple[int, ...] = (1, 4)) -> dict[str, Any]:
    """The colorize metadata of an ONNX model held in ``data`` (from ``path``, or made from
    it), after the checks of its graph."""
    import onnx
    from google.protobuf.message import DecodeError

    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"{path}: {len(data)} bytes, larger than any colorize model")
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:  # onnx's parser names no more than this
        raise ModelFileError(f"{path}: not an ONNX model ({type(error).__name__})") from None
    _check_graph(model, path, channels)
    raw = {entry.key: entry.value for entry in model.metadata_props}.get(METADATA_KEY)
    if raw is None:
        raise ModelFileError(f"{path}: an ONNX model without colorize metadata (a foreign model?)")
    return parse_metadata(path, raw)


def _check_graph(model, path: Path, channels: tuple[int, ...]) -> None:
    graph = model.graph
    if model.functions or any(op.domain not in ("", "ai.onnx") for op in model.opset_import):
        raise ModelFileError(f"{path}: the graph defines functions or uses operators outside ONNX's own")
    if len(graph.node) > MAX_NODES:
        raise ModelFileError(f"{path}: {len(graph.node)} operators, more than any colorize model has")
    unknown = sorted({node.op_type for node in graph.node} - ALLOWED_OPERATORS)
    if unknown or any(node.domain not in ("", "ai.onnx") for node in graph.node):
        raise ModelFileError(f"{path}: operators colorize does not run: {', '.join(unknown) or 'other domains'}")
    # Weights are the initializers and the tensors Constant nodes hold: a graph could hide them in either.
    tensors = [
        *graph.initializer,
        *(a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.t.dims),
    ]
    if any(tensor.data_location == 1 or tensor.external_data for tensor in tensors):
        raise ModelFileError(f"{path}: weights stored outside the file; colorize reads only what the file holds")
    parameters = sum(_elements(tensor.dims) for tensor in tensors)
    if parameters > MAX_PARAMETERS:
        raise ModelFileError(f"{path}: {parameters} weights, more than any colorize model holds")
    names = [i.name for i in graph.input if i.name not in {init.name for init in graph.initializer}]
    if names != [INPUT] or [o.name for o in graph.output] != [OUTPUT]:
        raise ModelFileError(f"{path}: expected one input '{INPUT}' and one output '{OUTPUT}', found {names}")
    dims = graph.input[0].type.tensor_type.shape.dim
    planes = dims[1].dim_value if len(dims) == 4 else None
    if planes not in channels:
        raise ModelFileError(f"{path}: its input is not (N, C, H, W) with C one of {channels}")


def _metadata_props(data: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialised ONNX ModelProto (field 14: entries of key = 1,
    value = 2), read straight from the protobuf wire format; every other field is stepped over."""
    props: dict[str, str] = {}
    for number, value in _fields(memoryview(data)):
        if number == 14 and isinstance(value, memoryview):
            entry = {n: v for n, v in _fields(value) if isinstance(v, memoryview)}
            key, text = (bytes(entry.get(n, b"")).decode("utf-8", "replace") for n in (1, 2))
            props[key] = text
    return props


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview | None]]:
    """(field number, value) of each field of one protobuf message: an int or a view of the
    bytes of a length-delimited field (a view: the graph, most of the file, is stepped over
    without a copy). Malformed input ends the walk (the caller finds no metadata)."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | memoryview | None
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire in (1, 5):
            value, position = None, position + (8 if wire == 1 else 4)
        else:
            return
        if position > end:
            return
        yield number, value


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data) and shift < 64:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7
    return value, len(data) + 1  # cut short: past the end, which ends the walk


def _elements(dims) -> int:
    return math.prod(int(d) for d in dims) if dims else 1


CUDA_PROVIDER = "CUDAExecutionProvider"
NO_CUDA_BUILD = "this onnxruntime has no CUDA provider (install onnxruntime-gpu in its place)"


@functools.cache
def cuda_failure() -> str | None:
    """Why onnxruntime cannot run on a GPU here, or None when its CUDA provider starts.

    onnxruntime-gpu lists its CUDA provider whether or not the CUDA and cuDNN libraries it was
    built against load and a GPU is visible; when they do not, every session falls back to the
    CPU after several lines of log, once per network. So the provider is started once on a
    one-node graph, with what onnxruntime writes to stderr kept aside, and its reason read
    from there."""
    import onnxruntime

    if CUDA_PROVIDER not in onnxruntime.get_available_providers():
        return NO_CUDA_BUILD
    import onnx

    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    session, written = _stderr_of(
        lambda: onnxruntime.InferenceSession(model.SerializeToString(), providers=[CUDA_PROVIDER])
    )
    if CUDA_PROVIDER in session.get_providers():
        return None
    # e.g. "Failed to load library .../libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot
    # open shared object file: No such file or directory", then "Require cuDNN 9.* and CUDA 13.*".
    reason = re.search(r"with error: ([^\n\x1b]+)", written) or re.search(r"(Require [^\n\x1b]*CUDA [\d.*]+)", written)
    return "its CUDA provider did not start: " + (
        reason.group(1).strip() if reason else "no usable NVIDIA GPU or driver"
    )


def _stderr_of(function):
    """(function(), what was written to file descriptor 2 meanwhile): onnxruntime logs from C++."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            result = function()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return result, sink.read().decode(errors="replace")


class OnnxNetwork:
    """One network run by onnxruntime: numpy float32 (N, C, H, W) in, its output out.

    ``data``: the ONNX model, already checked (``read_onnx``, ``parse_onnx``); ``path`` names
    it in messages. ``threads``: onnxruntime's own threads for this network; the caller decides
    how many photos run side by side."""

    def __init__(
        self, data: bytes, path: Path, threads: int = 1, providers: tuple[str, ...] = ("CPUExecutionProvider",)
    ):
        import onnxruntime

        self.path = Path(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Threads that spin between calls steal the cores the decoding and composing threads
        # run on: 2 MP took 81 ms instead of 294 with spinning off (benchmarks/README.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(data, options, providers=list(providers))
        except Exception as error:  # onnxruntime raises its own types for a graph it cannot run
            raise ModelFileError(f"{path}: onnxruntime cannot run it ({type(error).__name__}: {error})") from None

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(inputs, dtype=np.float32)})[0]
        except Exception as error:  # a graph of fixed input size given another (--work-size), and the like
            if type(error).__module__.startswith("onnxruntime"):
                raise ModelFileError(
                    f"{self.path}: onnxruntime cannot run it on this input ({one_line(error)})"
                ) from None
            raise
