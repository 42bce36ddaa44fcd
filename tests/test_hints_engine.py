"""Colour hints on the inference path: ``Hint`` values, their places on an expert's input, and
a hint refiner that runs only for photos with hints. The refiner here is a real ONNX graph
made by hand (no torch): it moves the expert's ab to the hint's ab, so what it does is known."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import sample_rgb
from onnx import TensorProto, helper, numpy_helper

from colorize.core.color import lightness_from_array, rgb_to_lab
from colorize.core.locations import bundled_weights_dir
from colorize.core.modelfile import FORMAT_VERSION, METADATA_KEY
from colorize.core.onnx import INPUT, OPSET, OUTPUT
from colorize.experts.hints import Hint, HintError, colour_ab, hints_from_json, hints_to_json, parse_hint, placed_planes
from colorize.pipelines.inference import Pipeline


def test_a_css_colour_gives_its_lab_chroma():
    # sRGB red is L 53.2, a 80.1, b 67.2 (CIE 1976, D65): the usual reference values.
    a, b = colour_ab("red")
    assert a == pytest.approx(80.1, abs=0.1) and b == pytest.approx(67.2, abs=0.1)
    assert colour_ab("#FF0000") == colour_ab("rgb(255, 0, 0)") == (a, b)
    assert colour_ab("gray") == pytest.approx((0.0, 0.0), abs=0.01)  # float32 maths


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Hint(1, 2, "bluish"), "'bluish' is not a colour"),
        (lambda: Hint(1.5, 0.5, "red", relative=True), "from 0 to 1"),
        (lambda: Hint(1, 2, "red", radius=-3), "negative"),
        (lambda: Hint(float("nan"), 2, "red"), "finite"),
    ],
)
def test_a_hint_that_cannot_be_used_is_refused_naming_it(make, words):
    with pytest.raises(HintError, match=words):
        make()


def test_hints_land_where_they_were_put_on_the_square_input():
    photo_height, photo_width, size = 300, 600, 224
    planes = placed_planes(
        [Hint(599, 0, "red"), Hint(0.5, 0.5, "blue", relative=True), Hint(100, 200, "yellow", radius=30)],
        photo_height,
        photo_width,
        size,
    )
    mask = planes[2]
    assert mask[0, size - 1] == 1 and planes[0, 0, size - 1] == pytest.approx(colour_ab("red")[0])
    assert mask[size // 2, size // 2] == 1 and planes[1, size // 2, size // 2] == pytest.approx(colour_ab("blue")[1])
    # 30 px of a 600 px side is 11 px of 224: more than training's largest patch (9), so 9.
    row, col = int(200.5 * size / photo_height), int(100.5 * size / photo_width)
    assert mask[row - 4 : row + 5, col - 4 : col + 5].all() and mask.sum() == 1 + 1 + 81
    with pytest.raises(HintError, match="outside the 600 x 300 photo"):
        placed_planes([Hint(600, 10, "red")], photo_height, photo_width, size)


def write_follow_the_hints_refiner(path, ab_scale: float = 110.0, kind: str = "hint_refiner") -> None:
    """A hint refiner that replaces the expert's ab by the hint planes' (0 where no hint):
    correction = hint ab - expert ab, at half the input's resolution (as the experts' output)."""
    weights = np.zeros((2, 6, 2, 2), np.float32)
    for channel, (hint_plane, expert_plane) in enumerate(((1, 4), (2, 5))):
        # A 2 x 2 stride-2 average of each plane: the hint at the top-left pixel of its cell.
        weights[channel, hint_plane] = 0.25
        weights[channel, expert_plane] = -0.25
    graph = helper.make_graph(
        [helper.make_node("Conv", [INPUT, "w"], [OUTPUT], strides=[2, 2])],
        "follow_the_hints",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 6, "height", "width"])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 2, None, None])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "architecture": "test_follow_the_hints",
        "arguments": {},
        "normalization": {"ab_scale": ab_scale},
    }
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


@pytest.fixture
def home_with_a_refiner(isolated_home):
    write_follow_the_hints_refiner(isolated_home / "experts" / "hints" / "general.onnx")
    return isolated_home


def test_without_hints_an_expert_with_a_refiner_gives_exactly_its_own_colours(home_with_a_refiner, tmp_path):
    lightness = lightness_from_array(sample_rgb("coffee", 160))
    plain = Pipeline.from_config(home=tmp_path / "empty", expert="general").predict([lightness])[0]
    with_refiner = Pipeline.from_config(home=home_with_a_refiner, expert="general")
    assert with_refiner.takes_hints("general")
    for hints in (None, [[]]):
        assert np.array_equal(with_refiner.predict([lightness], hints)[0].small_ab, plain.small_ab)


def test_a_hint_moves_the_colour_at_its_place_and_leaves_photos_without_hints_alone(home_with_a_refiner, tmp_path):
    coffee, chelsea = (lightness_from_array(sample_rgb(name, 160)) for name in ("coffee", "chelsea"))
    pipeline = Pipeline.from_config(home=home_with_a_refiner, expert="general")
    plain = Pipeline.from_config(home=tmp_path / "empty", expert="general").predict([coffee, chelsea])
    hinted, alone = pipeline.predict([coffee, chelsea], [[Hint(0.25, 0.5, "#1060d0", radius=2, relative=True)], []])
    assert np.array_equal(alone.small_ab, plain[1].small_ab)
    # The output pixel whose 2 x 2 input cell lies inside the hinted patch: exactly the hint's ab.
    row, col = hinted.small_ab.shape[1] // 2, hinted.small_ab.shape[2] // 4
    expected = colour_ab("#1060d0")
    # (Within the small gap between the expert's ab and its upsampled-then-averaged copy.)
    assert hinted.small_ab[:, row, col] == pytest.approx(expected, abs=1.0)
    assert not np.allclose(plain[0].small_ab[:, row, col], expected, atol=5)
    rgb = hinted.compose()
    hue = rgb_to_lab(rgb[None, coffee.shape[1] // 2, coffee.shape[2] // 4])[0]
    assert hue[2] < -20  # blue where the hint said blue


def test_hints_for_an_expert_that_takes_none_are_refused_in_one_line(isolated_home):
    pipeline = Pipeline.from_config(home=isolated_home, expert="general")
    assert not pipeline.takes_hints("general")
    lightness = lightness_from_array(sample_rgb("coffee", 64))
    with pytest.raises(HintError, match="expert 'general' takes no colour hints"):
        pipeline.predict([lightness], [[Hint(1, 1, "red")]])


def test_the_command_line_form_of_a_hint_reads_pixels_fractions_and_a_radius():
    assert parse_hint("120,80=#b22222") == Hint(120, 80, "#b22222")
    assert parse_hint("0.4, 0.7=red") == Hint(0.4, 0.7, "red", relative=True)
    assert parse_hint("10,20,5=blue") == Hint(10, 20, "blue", radius=5)
    assert parse_hint("1,1=red") == Hint(1, 1, "red")  # no decimal point: pixels
    for text, words in [
        ("120,80", "write X,Y=COLOR"),
        ("0.5,30=red", "both places in pixels"),
        ("a,b=red", "'a,b' is not two or three numbers"),
        ("1,2=reddish", "'reddish' is not a colour"),
    ]:
        with pytest.raises(HintError, match=words):
            parse_hint(text)


def test_hints_json_for_a_photo_or_a_folder_reads_back_what_it_wrote():
    hints = [Hint(120, 80, "#b22222", radius=3), Hint(0.25, 0.5, "navy", relative=True)]
    assert hints_from_json(hints_to_json(hints), "h.json") == hints
    assert hints_from_json({"a.jpg": hints_to_json(hints)}, "h.json") == {"a.jpg": hints}
    for value, words in [
        ("red", "expected a list of points or an object"),
        ({"x": 1}, "h.json, 'x': expected a list of points"),
        ([{"x": 1, "y": 2, "colour": "red"}], r"h.json, point 1: a point needs x, y and color"),
        ([{"x": 1, "y": 2, "color": "red", "size": 3}], "unknown key 'size'"),
        ({"a.jpg": [{"x": 1, "y": 2, "color": "bleu"}]}, r"h.json, 'a.jpg', point 1: 'bleu' is not a colour"),
    ]:
        with pytest.raises(HintError, match=words):
            hints_from_json(value, "h.json")


@pytest.mark.parametrize(
    "where, words",
    [
        ("refiner", "holds a 'expert' model, expected a hint refiner"),
        ("classifier", "holds a 'expert' model, expected a classifier"),
    ],
)
def test_a_model_of_another_kind_in_a_models_place_is_refused_naming_both(isolated_home, tmp_path, where, words):
    from colorize.core.modelfile import ModelFileError

    # A six-plane graph a refiner's check passes, saying it is an expert; the bundled general
    # expert (one plane, as a classifier's input) offered as the classifier.
    write_follow_the_hints_refiner(isolated_home / "experts" / "hints" / "general.onnx", kind="expert")
    classifier = bundled_weights_dir("colorize.experts") / "general.onnx" if where == "classifier" else None
    with pytest.raises(ModelFileError, match=words):
        Pipeline.from_config(home=isolated_home, classifier_weights=classifier).expert("general")
