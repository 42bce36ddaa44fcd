"""Colour hints on the inference path: ``Hint`` values, their places on an expert's input, and
how every expert follows them (``spread_hints``), on the bundled experts and real photos."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import sample_rgb
from onnx import numpy_helper

from colorize.core.color import lightness_from_array, rgb_to_lab
from colorize.core.locations import bundled_weights_dir
from colorize.core.modelfile import METADATA_KEY
from colorize.core.onnx import INPUT
from colorize.experts.hints import (
    Hint,
    HintError,
    PlacedHint,
    colour_ab,
    hints_from_json,
    hints_to_json,
    parse_hint,
    placed_planes,
    spread_hints,
)
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


def test_without_hints_an_expert_colours_the_photo_alone(isolated_home):
    lightness = lightness_from_array(sample_rgb("coffee", 160))
    pipeline = Pipeline.from_config(home=isolated_home, expert="general")
    plain = pipeline.predict([lightness])[0].small_ab
    assert np.array_equal(pipeline.predict([lightness], [[]])[0].small_ab, plain)


def test_a_hint_holds_at_its_place_and_spreads_over_what_is_as_light_not_beyond():
    # A flat gray output over two halves of different lightness; one blue hint on the left half.
    size = 112
    ab = np.zeros((2, size, size), np.float32)
    lightness = np.full((size, size), 30.0, np.float32)
    lightness[:, size // 2 :] = 70.0
    blue = colour_ab("#1060d0")
    spread = spread_hints(ab, lightness, [PlacedHint(56, 40, blue, half=1)])
    assert spread[:, 56, 40] == pytest.approx(blue, abs=0.01)
    # 12 px away on the same half: most of the way; as far on the lighter half: almost nothing.
    near_same, near_other = np.hypot(*spread[:, 56, 28]), np.hypot(*spread[:, 56, 52 + 4])
    assert near_same > 0.6 * np.hypot(*blue) and near_other < 0.05 * np.hypot(*blue)
    assert np.hypot(*spread[:, 56, 0]) < np.hypot(*spread[:, 56, 28])  # fading with distance
    assert np.array_equal(ab, np.zeros_like(ab))  # the expert's array is left as it was


def test_hints_side_by_side_each_hold_their_own_colour():
    ab = np.zeros((2, 112, 112), np.float32)
    red, blue = colour_ab("red"), colour_ab("blue")
    spread = spread_hints(
        ab, np.full((112, 112), 50.0, np.float32), [PlacedHint(50, 50, red), PlacedHint(50, 54, blue)]
    )
    assert spread[:, 50, 50] == pytest.approx(red, abs=0.5) and spread[:, 50, 54] == pytest.approx(blue, abs=0.5)


def test_a_hint_turns_the_photo_its_colour_there_and_leaves_photos_without_hints_alone(isolated_home):
    coffee, chelsea = (lightness_from_array(sample_rgb(name, 160)) for name in ("coffee", "chelsea"))
    pipeline = Pipeline.from_config(home=isolated_home, expert="general")
    plain = pipeline.predict([coffee, chelsea])
    hinted, alone = pipeline.predict([coffee, chelsea], [[Hint(0.25, 0.5, "#1060d0", radius=2, relative=True)], []])
    assert np.array_equal(alone.small_ab, plain[1].small_ab)
    row, col = coffee.shape[1] // 2, coffee.shape[2] // 4
    before, after = (rgb_to_lab(p.compose()[None, row, col])[0] for p in (plain[0], hinted))
    assert before[2] > -5 and after[2] < -20  # blue where the hint said blue, not before it


def test_an_expert_that_reads_hints_is_given_them_and_its_output_follows_them_too(isolated_home, tmp_path):
    # The bundled general expert's graph widened to read the hint planes: with the new planes'
    # weights at zero it cannot see them, with weights it can; the hint reaches the second's
    # network (the outputs differ) and both outputs keep the hint's colour at its place.
    lightness = lightness_from_array(sample_rgb("coffee", 160))
    hint = Hint(0.25, 0.5, "#1060d0", radius=2, relative=True)
    outputs = []
    for plane_weight in (0.0, 0.05):
        path = widened_general_expert(tmp_path / f"general-{plane_weight}.onnx", plane_weight)
        pipeline = Pipeline.from_config(home=isolated_home, weights={"general": path}, expert="general")
        assert pipeline.expert("general").reads_hints
        outputs.append(pipeline.predict([lightness], [[hint]])[0])
    assert not np.allclose(outputs[0].small_ab, outputs[1].small_ab, atol=0.1)
    row, col = lightness.shape[1] // 2, lightness.shape[2] // 4
    for hinted in outputs:
        assert rgb_to_lab(hinted.compose()[None, row, col])[0][2] < -20


def widened_general_expert(path, plane_weight: float):
    """The bundled general expert's ONNX graph with its first convolution given three more input
    planes (the hint planes), every weight of theirs ``plane_weight``, and its metadata saying
    it reads hints."""
    model = onnx.load(bundled_weights_dir("colorize.experts") / "general.onnx")
    graph = model.graph
    first = next(node for node in graph.node if node.op_type == "Conv" and node.input[0] == INPUT)
    name = first.input[1]  # stored as float16 and cast on load: widen the stored tensor
    name = next((node.input[0] for node in graph.node if node.op_type == "Cast" and node.output[0] == name), name)
    weights = next(w for w in graph.initializer if w.name == name)
    array = numpy_helper.to_array(weights)
    planes = np.full((array.shape[0], 3, *array.shape[2:]), plane_weight, array.dtype)
    widened = np.concatenate([array, planes], axis=1)
    weights.CopyFrom(numpy_helper.from_array(widened, weights.name))
    graph.input[0].type.tensor_type.shape.dim[1].dim_value = 4
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    metadata = json.loads(entry.value)
    metadata["arguments"] = {**metadata["arguments"], "hints": True}
    entry.value = json.dumps(metadata)
    onnx.save(model, path)
    return path


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


def test_a_model_of_another_kind_in_a_models_place_is_refused_naming_both(isolated_home):
    from colorize.core.modelfile import ModelFileError

    # The bundled general expert (one plane in, as a classifier's input) offered as the classifier.
    classifier = bundled_weights_dir("colorize.experts") / "general.onnx"
    with pytest.raises(ModelFileError, match="holds a 'expert' model, expected a classifier"):
        Pipeline.from_config(home=isolated_home, classifier_weights=classifier).expert("general")
