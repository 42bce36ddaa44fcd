"""``colorize eval --hints N``: simulated hints from the truth, the same for every run and expert,
and the share of them an output honours; on real photos and the bundled experts."""

import json

import numpy as np
import pytest
from conftest import sample_rgb
from PIL import Image
from typer.testing import CliRunner

from colorize.core.color import rgb_to_lab
from colorize.experts.hints import Hint, colour_ab, hints_from_truth
from colorize.pipelines import metrics
from colorize.pipelines.cli import app

pytestmark = pytest.mark.needs_torch  # eval's metrics and its listing of photos


def test_simulated_hints_are_the_truths_colours_at_their_places():
    rgb = sample_rgb("chelsea", 200).astype(np.float32) / 255
    ab = np.moveaxis(rgb_to_lab(rgb)[..., 1:], -1, 0)
    hints = hints_from_truth(ab, 20, np.random.default_rng(3))
    assert len(hints) == 20 and all(h.relative for h in hints)
    again = hints_from_truth(ab, 20, np.random.default_rng(3))
    assert again == hints  # a seed gives the same points
    height, width = ab.shape[-2:]
    near = 0
    for hint in hints:
        row, col = int(hint.y * height), int(hint.x * width)
        patch = ab[:, max(row - 3, 0) : row + 4, max(col - 3, 0) : col + 4].reshape(2, -1)
        near += np.abs(patch - np.array(hint.ab)[:, None]).max(axis=0).min() < 6
    assert near >= 18  # a patch's mean colour is found next to its centre (edges blur a few)


def test_honoured_hints_are_counted_at_their_centre_pixel():
    output = np.full((40, 60, 3), 128, np.uint8)
    output[10, 15] = (200, 40, 40)
    red_there = Hint(15.5 / 60, 10.5 / 40, "#c82828", relative=True)
    blue_there = Hint(15.5 / 60, 10.5 / 40, "#2828c8", relative=True)
    gray_elsewhere = Hint(0.9, 0.9, "#808080", relative=True)
    assert metrics.hints_honoured(output, [red_there, gray_elsewhere]) == 1.0
    assert metrics.hints_honoured(output, [blue_there, gray_elsewhere]) == 0.5


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos" / "general"
    folder.mkdir(parents=True)
    for name in ("coffee", "chelsea", "astronaut"):
        Image.fromarray(sample_rgb(name, 160)).save(folder / f"{name}.png")
    return folder.parent


def _eval(runner, photos, *extra):
    result = runner.invoke(app, ["eval", str(photos), "--no-recognition", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_eval_with_hints_scores_the_expert_given_them(photos, isolated_home):
    runner = CliRunner()
    plain = _eval(runner, photos, "--expert", "general")
    hinted = _eval(runner, photos, "--expert", "general", "--hints", "10")
    again = _eval(runner, photos, "--expert", "general", "--hints", "10")
    assert hinted["settings"]["hints"] == 10 and "hints_honoured" not in plain["summary"]["(all)"]["general"]
    summary = hinted["summary"]["(all)"]["general"]
    assert summary == again["summary"]["(all)"]["general"]  # the same points every run
    # Ten of the truth's own colours: nearly every point holds, and the photos come closer to the truth.
    assert summary["hints_honoured"] >= 0.9
    assert summary["delta_e"] < plain["summary"]["(all)"]["general"]["delta_e"]


def test_a_lab_colour_gives_its_a_and_b_exactly():
    assert colour_ab("lab(50% 12.25 -30.5)") == (12.25, -30.5)
    assert colour_ab("lab(71 -3 4)") == (-3.0, 4.0)
