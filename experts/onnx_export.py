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
from colorize.core.modelfile import METADATA_KEY
from colorize.core.onnx import INPUT, OPSET, OUTPUT


def export_onnx(network, channels: int, metadata: dict[str, Any], path: Path, square: int | None = None) -> Path:
    """Write ``network`` (torch, in eval mode) as a colorize ONNX file at ``path``.

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
        torch.onnx.export(
            network,
            (example,),
            buffer,
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=OPSET,
            dynamic_axes={INPUT: free, OUTPUT: {0: "batch"}},
            dynamo=False,
            # Weights as trained, not folded with batch norm: float16 holds them exactly (onnxruntime folds at start).
            do_constant_folding=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    _store_weights_as_half(model)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata, sort_keys=True)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    return atomic_write(Path(path), lambda handle: handle.write(data))


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
            numpy_helper.to_array(initializer).astype(np.float16), f"{initializer.name}.half"
        )
        casts.append(helper.make_node("Cast", [half.name], [initializer.name], to=TensorProto.FLOAT))
        graph.initializer[index].CopyFrom(half)
    for position, cast in enumerate(casts):
        graph.node.insert(position, cast)
