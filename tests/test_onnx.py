"""ONNX model files: export from torch, the same outputs under onnxruntime, hostile graphs refused."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from colorize.classifier.model import SceneClassifier
from colorize.core.locations import bundled_weights_dir
from colorize.core.modelfile import ModelFileError
from colorize.core.onnx import OnnxNetwork, read_onnx
from colorize.experts.hints import HINT_PLANES
from colorize.experts.onnx_export import export_onnx
from colorize.experts.store import Expert, ModelStore
from colorize.pipelines.inference import lightness_of


@pytest.fixture(scope="module")
def general_expert():
    return Expert.from_file(bundled_weights_dir() / "general.safetensors")


@pytest.fixture(scope="module")
def general_onnx(general_expert, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "general.onnx"
    return export_onnx(general_expert.network, 1, general_expert.model_file.metadata, path)


def test_an_exported_expert_gives_the_torch_output_on_a_real_photo_of_odd_size(general_expert, general_onnx, photos):
    lightness = lightness_of(Image.fromarray(photos["chelsea"][:97, :131]))[None]  # (1, 1, 97, 131), L in [0, 100]
    network_input = general_expert.normalization.network_input(lightness)
    with torch.no_grad():
        expected = general_expert.network.eval()(network_input).numpy()
    got = OnnxNetwork(general_onnx)(network_input.numpy())
    assert got.shape == expected.shape
    # In ab units (x110), a thousandth of a level: weights stored as float16 are the trained ones, exactly.
    assert np.abs(got - expected).max() * 110 < 1e-3, np.abs(got - expected).max()


def test_an_exported_file_carries_the_metadata_and_stores_its_weights_as_half(general_expert, general_onnx):
    _, metadata = read_onnx(general_onnx)
    assert metadata == general_expert.model_file.metadata
    model = onnx.load(general_onnx)
    kinds = {initializer.data_type for initializer in model.graph.initializer}
    assert TensorProto.FLOAT16 in kinds and TensorProto.FLOAT not in kinds, kinds
    size = general_onnx.stat().st_size
    assert size < 1.1 * (bundled_weights_dir() / "general.safetensors").stat().st_size, size


def test_an_exported_classifier_gives_the_torch_probabilities(tmp_path, photos):
    classifier = SceneClassifier.from_file(ModelStore().classifier_source().path)
    side = classifier.preprocessing.input_size
    path = export_onnx(classifier.network, 1, classifier.model_file.metadata, tmp_path / "c.onnx", square=side)
    lightness = [lightness_of(Image.fromarray(photos[name]))[None] for name in ("astronaut", "rocket")]
    batch = torch.cat([classifier.prepare(plane) for plane in lightness])
    with torch.no_grad():
        expected = classifier.network.eval()(batch).softmax(-1).numpy()
    logits = OnnxNetwork(path)(batch.numpy())
    got = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.abs(got - expected).max() < 1e-5, (got, expected)


def test_a_hint_aware_expert_exports_with_its_four_input_planes(tmp_path, general_expert):
    from colorize.experts.architectures import create_architecture

    # Weights as a model file holds them (float16 values), as every network colorize exports.
    network = create_architecture("unet_lite", hints=True).eval().half().float()
    metadata = {**general_expert.model_file.metadata, "arguments": {"hints": True}}
    path = export_onnx(network, 1 + HINT_PLANES, metadata, tmp_path / "h.onnx")
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 1 + HINT_PLANES, 40, 56)).astype(np.float32)
    with torch.no_grad():
        expected = network(torch.from_numpy(inputs)).numpy()
    assert np.abs(OnnxNetwork(path)(inputs) - expected).max() < 1e-5


def _graph_file(tmp_path, nodes, inputs=("input",), metadata='{"format_version": 1}', initializers=()):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, 4, 4]) for name in inputs],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if metadata is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "colorize", metadata
    path = tmp_path / "hostile.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _external_weights():
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    return tensor


@pytest.mark.parametrize(
    "build, words",
    [
        (
            lambda t: _graph_file(t, [helper.make_node("ConstantOfShape", ["input"], ["output"])]),
            "operators colorize does not run: ConstantOfShape",
        ),
        (lambda t: _graph_file(t, [helper.make_node("Relu", ["x"], ["output"])], inputs=("x",)), "one input 'input'"),
        (
            lambda t: _graph_file(t, [helper.make_node("Relu", ["input"], ["output"])], metadata=None),
            "without colorize metadata",
        ),
        (
            lambda t: _graph_file(
                t, [helper.make_node("Add", ["input", "w"], ["output"])], initializers=[_external_weights()]
            ),
            "weights stored outside the file",
        ),
        (lambda t: (t / "junk.onnx").write_bytes(b"\x08\x07junk" * 50) and t / "junk.onnx", "not an ONNX model"),
    ],
)
def test_a_hostile_or_foreign_onnx_file_is_refused_in_one_line_naming_it(tmp_path, build, words):
    path = build(tmp_path)
    with pytest.raises(ModelFileError) as caught:
        OnnxNetwork(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message, message


def test_colorize_export_writes_the_onnx_beside_a_model_file_and_refuses_other_files(tmp_path, general_expert):
    from typer.testing import CliRunner

    from colorize.pipelines.cli import app

    source = tmp_path / "general.safetensors"
    source.write_bytes((bundled_weights_dir() / "general.safetensors").read_bytes())
    result = CliRunner().invoke(app, ["export", str(source)])
    assert result.exit_code == 0 and "wrote" in result.output, result.output
    assert read_onnx(tmp_path / "general.onnx")[1] == general_expert.model_file.metadata
    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_text("hello")
    refused = CliRunner().invoke(app, ["export", str(not_a_model)])
    assert refused.exit_code == 2 and refused.output.count("\n") == 1 and "notes.safetensors" in refused.output
