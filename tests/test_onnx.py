"""ONNX model files: the bundled ones against their torch networks on real photos, export from
torch and back, the same outputs under onnxruntime, hostile graphs refused."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from colorize.classifier.model import SceneClassifier
from colorize.core.color import compose_upsampled, resize_square
from colorize.core.images import decode
from colorize.core.locations import bundled_weights_dir
from colorize.core.modelfile import ModelFileError
from colorize.core.onnx import OnnxNetwork, read_onnx
from colorize.experts.hints import HINT_PLANES
from colorize.experts.networks import load_model_file, save_model
from colorize.experts.onnx_export import export_onnx, export_onnx_bytes
from colorize.experts.store import Expert, ModelStore
from colorize.pipelines.inference import Pipeline, lightness_of
from colorize.router.policy import route

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.jpg"))
BUNDLED_EXPERTS = ("general", "landscape", "people")


def _onnx_file(data: bytes, path: Path) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def general():
    """The bundled general expert twice: as inference runs it (ONNX) and as torch rebuilds it from that file."""
    path = bundled_weights_dir() / "general.onnx"
    return Expert.from_file(path), load_model_file(path)[1]


@pytest.fixture(scope="module")
def general_onnx(general, tmp_path_factory):
    expert, network = general
    path = tmp_path_factory.mktemp("onnx") / "general.onnx"
    return export_onnx(network, 1, expert.model_file.metadata, path)


def test_the_examples_are_real_photos():
    assert len(EXAMPLES) >= 5, EXAMPLES


@pytest.mark.parametrize("name", BUNDLED_EXPERTS)
def test_each_bundled_expert_runs_as_its_torch_network_on_real_photos_within_one_8_bit_level(name):
    path = bundled_weights_dir() / f"{name}.onnx"
    expert = Expert.from_file(path)
    _, network = load_model_file(path)
    normalization = expert.normalization
    for photo in EXAMPLES:
        lightness = decode(photo).lightness()  # (1, H, W), L in [0, 100]
        small = resize_square(lightness, expert.work_size)
        got = expert.predict_ab(small)
        with torch.no_grad():
            expected = normalization.chroma(network(torch.from_numpy(normalization.network_input(small))).numpy())
        assert got.shape == expected.shape
        # Measured: under a thousandth of a LAB unit; one 8-bit level is about a third of one.
        assert np.abs(got - expected).max() < 0.01, (photo.name, np.abs(got - expected).max())
        ours, theirs = (compose_upsampled(lightness, ab[0], dtype=np.uint8) for ab in (got, expected))
        assert np.abs(ours.astype(int) - theirs).max() <= 1, photo.name


def test_the_bundled_classifier_routes_as_its_torch_network_on_real_photos(tmp_path):
    path = ModelStore(home=tmp_path).classifier_source().path
    assert path.suffix == ".onnx"
    classifier = SceneClassifier.from_file(path)
    _, network = load_model_file(path)
    pipeline = Pipeline.from_config(home=tmp_path, threads=1)
    lightness = [decode(photo).lightness() for photo in EXAMPLES]
    with torch.no_grad():
        logits = torch.cat([network(torch.from_numpy(classifier.prepare(light))) for light in lightness])
    expected = [dict(zip(classifier.labels, map(float, row))) for row in logits.softmax(-1).numpy()]
    got = classifier.probabilities(lightness)
    for photo, ours, theirs in zip(EXAMPLES, got, expected):
        assert max(ours, key=ours.get) == max(theirs, key=theirs.get), photo.name
        assert max(abs(ours[label] - theirs[label]) for label in classifier.labels) < 1e-4, (photo.name, ours, theirs)
    routes = [[route(p, pipeline.available, pipeline.policy) for p in found] for found in (got, expected)]
    assert [(r.expert, r.reason) for r in routes[0]] == [(r.expert, r.reason) for r in routes[1]]
    # The examples are chosen to reach more than one expert: the comparison covers the routing.
    assert len({max(p, key=p.get) for p in got}) >= 2


@pytest.mark.parametrize("name", BUNDLED_EXPERTS)
def test_exporting_a_bundled_model_again_gives_back_its_own_weights(name, tmp_path):
    path = bundled_weights_dir() / f"{name}.onnx"
    again = onnx.load_from_string(export_onnx_bytes(path))
    ours = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer if "::" not in i.name}
    theirs = {i.name: numpy_helper.to_array(i) for i in again.graph.initializer if "::" not in i.name}
    assert ours.keys() == theirs.keys() and len(ours) > 100
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)


def test_an_exported_expert_gives_the_torch_output_on_a_real_photo_of_odd_size(general, general_onnx, photos):
    expert, network = general
    lightness = lightness_of(Image.fromarray(photos["chelsea"][:97, :131]))[None]  # (1, 1, 97, 131), L in [0, 100]
    network_input = expert.normalization.network_input(lightness)
    with torch.no_grad():
        expected = network(torch.from_numpy(network_input)).numpy()
    got = OnnxNetwork(read_onnx(general_onnx)[0], general_onnx)(network_input)
    assert got.shape == expected.shape
    # In ab units (x110), a thousandth of a level: weights stored as float16 are the trained ones, exactly.
    assert np.abs(got - expected).max() * 110 < 1e-3, np.abs(got - expected).max()


def test_an_exported_file_carries_the_metadata_and_stores_its_weights_as_half(general, general_onnx):
    expert, _ = general
    _, metadata = read_onnx(general_onnx)
    assert metadata == expert.model_file.metadata
    model = onnx.load(general_onnx)
    kinds = {initializer.data_type for initializer in model.graph.initializer}
    assert TensorProto.FLOAT16 in kinds and TensorProto.FLOAT not in kinds, kinds
    size = general_onnx.stat().st_size
    assert size < 1.1 * (bundled_weights_dir() / "general.onnx").stat().st_size, size


def test_an_exported_classifier_gives_the_torch_probabilities(tmp_path, photos):
    source = ModelStore(home=tmp_path).classifier_source().path
    classifier = SceneClassifier.from_file(source)
    _, network = load_model_file(source)
    side = classifier.preprocessing.input_size
    path = export_onnx(network, 1, classifier.model_file.metadata, tmp_path / "c.onnx", square=side)
    lightness = [lightness_of(Image.fromarray(photos[name])) for name in ("astronaut", "rocket")]
    batch = np.concatenate([classifier.prepare(plane) for plane in lightness])
    with torch.no_grad():
        expected = network(torch.from_numpy(batch)).softmax(-1).numpy()
    logits = OnnxNetwork(read_onnx(path)[0], path)(batch)
    got = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.abs(got - expected).max() < 1e-5, (got, expected)


def test_a_hint_aware_expert_exports_with_its_four_input_planes(tmp_path, general):
    from colorize.experts.architectures import create_architecture

    expert, _ = general
    # Weights as a model file holds them (float16 values), as every network colorize exports.
    network = create_architecture("unet_lite", hints=True).eval().half().float()
    metadata = {**expert.model_file.metadata, "arguments": {"hints": True}}
    path = export_onnx(network, 1 + HINT_PLANES, metadata, tmp_path / "h.onnx")
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 1 + HINT_PLANES, 40, 56)).astype(np.float32)
    with torch.no_grad():
        expected = network(torch.from_numpy(inputs)).numpy()
    assert np.abs(OnnxNetwork(read_onnx(path)[0], path)(inputs) - expected).max() < 1e-5


def _trained_tiny(name: str, arguments: dict):
    """A tiny network of architecture ``name`` after a few optimiser steps in training mode, so
    that its weights and BatchNorm statistics are its own, not an initialisation."""
    from colorize.experts.architectures import create_architecture

    torch.manual_seed(0)
    network = create_architecture(name, **arguments).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(1)
    planes = 1 + HINT_PLANES * bool(arguments.get("hints"))
    for _ in range(3):
        inputs = torch.rand(2, planes, 40, 48, generator=generator) * 2 - 1
        output = network(inputs)
        loss = (output - torch.rand(output.shape, generator=generator)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network.eval()


@pytest.mark.parametrize(
    "name, arguments",
    [("unet_seed", {"widths": [4, 8, 16]}), ("unet_lite", {"decoder_channels": [16, 12, 8, 8], "hints": True})],
)
def test_a_trained_expert_survives_safetensors_then_onnx_with_every_tensor_identical(tmp_path, name, arguments):
    network = _trained_tiny(name, arguments)
    metadata = {"kind": "expert", "architecture": name, "arguments": arguments, "work_size": 48, "category": "tiny"}
    weights = save_model(network, tmp_path / "tiny.safetensors", metadata)
    graph = _onnx_file(export_onnx_bytes(weights), tmp_path / "tiny.onnx")
    saved, from_safetensors = load_model_file(weights)
    exported, from_onnx = load_model_file(graph)
    assert exported.metadata == saved.metadata
    ours, theirs = from_safetensors.state_dict(), from_onnx.state_dict()
    assert ours.keys() == theirs.keys()
    kept = [k for k in ours if not k.endswith("num_batches_tracked")]  # a training count no graph holds
    assert len(kept) > 10 and all(torch.equal(ours[k], theirs[k]) for k in kept), [
        k for k in kept if not torch.equal(ours[k], theirs[k])
    ]
    # Trained: BatchNorm's statistics have moved from their start (zero means), and are carried too.
    assert any("running_mean" in k and ours[k].abs().sum() > 0 for k in kept)


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
        read_onnx(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message, message


def test_colorize_export_writes_the_onnx_beside_a_model_file_and_refuses_other_files(tmp_path, general):
    from typer.testing import CliRunner

    from colorize.pipelines.cli import app

    expert, network = general
    source = save_model(network, tmp_path / "general.safetensors", expert.model_file.metadata)
    result = CliRunner().invoke(app, ["export", str(source)])
    assert result.exit_code == 0 and "wrote" in result.output, result.output
    exported = tmp_path / "general.onnx"
    assert read_onnx(exported)[1] == expert.model_file.metadata
    photo = np.linspace(0, 100, 64 * 80, dtype=np.float32).reshape(1, 1, 64, 80)
    assert np.abs(Expert.from_file(exported).predict_ab(photo) - expert.predict_ab(photo)).max() < 1e-3

    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_text("hello")
    refused = CliRunner().invoke(app, ["export", str(not_a_model)])
    assert refused.exit_code == 2 and refused.output.count("\n") == 1 and "notes.safetensors" in refused.output
    onto_itself = CliRunner().invoke(app, ["export", str(source), "-o", str(source)])
    assert onto_itself.exit_code == 2 and "is the file to export" in onto_itself.output


def test_a_graph_onnxruntime_cannot_run_on_an_input_is_one_line_naming_the_file(tmp_path):
    # A graph whose input size is fixed at 8 x 8 (as an export for one work size is), given 16 x 16.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])],
        "fixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 8, 8])],
    )
    path = tmp_path / "fixed.onnx"
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    network = OnnxNetwork(data, path)
    assert network(np.ones((1, 1, 8, 8), np.float32)).shape == (1, 1, 8, 8)
    with pytest.raises(ModelFileError, match=r"fixed.onnx: onnxruntime cannot run it on this input \(") as refused:
        network(np.ones((1, 1, 16, 16), np.float32))
    message = str(refused.value)
    assert "\n" not in message and len(message.split("on this input (", 1)[1]) <= 201  # onnxruntime's words, cut
