"""Export a torch network as a colorize ONNX file (core/onnx.py reads and runs it).

The weights are stored as float16 behind a Cast (half the bytes; exact for weights that were
float16 already, as every saved file's are), under their torch names, so that torch can load
them back from the ONNX file alone (experts/networks.py).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from colorize.core.files import atomic_write
from colorize.core.modelfile import METADATA_KEY, checked_side
from colorize.core.onnx import HALF_SUFFIX, INPUT, OPSET, OUTPUT


def export_onnx(network, channels: int, metadata: dict[str, Any], path: Path, square: int | None = None) -> Path:
    """Write ``network`` (torch) as a colorize ONNX file at ``path``, atomically (see ``onnx_bytes``)."""
    data = onnx_bytes(network, channels, metadata, square)
    return atomic_write(Path(path), lambda handle: handle.write(data))


def export_onnx_bytes(path: Path) -> bytes:
    """The colorize ONNX model of a model file (expert or classifier, usually .safetensors)."""
    from colorize.experts.hints import HINT_PLANES
    from colorize.experts.networks import load_model_file

    model_file, network = load_model_file(path)
    meta = model_file.metadata
    # A side is bounded before an example of it is traced: metadata can ask for 30,000 pixels.
    if model_file.kind == "classifier":
        preprocessing = meta.get("preprocessing")
        side = preprocessing.get("input_size") if isinstance(preprocessing, dict) else None
        return onnx_bytes(network, 1, meta, square=checked_side(path, "input size", side))
    # Inference feeds an expert its work size: a network whose graph cannot follow the input's
    # size is exported for that one.
    square = None
    if getattr(network, "exports_at_one_size", False):
        square = checked_side(path, "work size", meta.get("work_size"))
    return onnx_bytes(network, 1 + HINT_PLANES * bool(meta["arguments"].get("hints", False)), meta, square)


def onnx_bytes(network, channels: int, metadata: dict[str, Any], square: int | None = None) -> bytes:
    """``network`` (torch) as a colorize ONNX model, with ``metadata``.

    ``channels``: the input planes (1 for L; 4 with hint planes). Height and width stay free
    (any photo shape at the work size), unless ``square`` fixes them (the classifier's input).
    """
    import io

    import onnx
    import torch

    size = square or 64
    example = torch.zeros(1, channels, size, size)
    free = {0: "batch"} if square else {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    network = network.eval().float()
    # The TorchScript exporter: deprecated, but it needs nothing beyond torch and onnx (the
    # dynamo exporter also needs the onnxscript package).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # Sizes a trace fixes on purpose (a graph exported for one input size) are no news to the user.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            network,
            (example,),
            buffer,  # type: ignore[arg-type]  # torch types f as a path; the TorchScript exporter also writes a file object
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=OPSET,
            dynamic_axes={INPUT: free, OUTPUT: {0: "batch"}},
            dynamo=False,
            # Weights as trained, not folded with batch norm: float16 holds them exactly (onnxruntime folds at start).
            do_constant_folding=False,
            # Every weight under its own name, as torch reads them back (experts/networks.py): by
            # default two tensors of equal values (zero biases of a briefly trained network) are
            # stored once, under one of the names. The price, each weight listed as a graph input
            # as well, is undone below.
            keep_initializers_as_inputs=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    inputs = [value for value in model.graph.input if value.name == INPUT]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    _store_weights_as_half(model)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata, sort_keys=True)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _store_weights_as_half(model) -> None:
    """Float32 weights stored as float16 behind a Cast. Exact for weights that were float16
    already (every bundled file), and onnxruntime folds the casts once at session start."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    for index, initializer in enumerate(graph.initializer):
        if initializer.data_type != TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(
            numpy_helper.to_array(initializer).astype(np.float16), f"{initializer.name}{HALF_SUFFIX}"
        )
        casts.append(helper.make_node("Cast", [half.name], [initializer.name], to=TensorProto.FLOAT))
        graph.initializer[index].CopyFrom(half)
    for position, cast in enumerate(casts):
        graph.node.insert(position, cast)
