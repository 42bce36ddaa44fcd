"""Colour hints on the command line: --hint and --hints, on real photos and the bundled experts."""

import json

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image
from test_hints_engine import widened_general_expert
from typer.testing import CliRunner

from colorize.core.color import rgb_to_lab
from colorize.experts.hints import Hint
from colorize.pipelines.cli import app
from colorize.pipelines.metrics import hints_honoured

PHOTO = EXAMPLES / "coffee.jpg"  # 512 x 341, routed to the general expert


@pytest.fixture
def runner(isolated_home):
    return CliRunner()


def _ab(path, x, y):
    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32)[None, y, x] / 255
    return rgb_to_lab(rgb)[0, 1:]


def test_a_hint_paints_its_place_in_its_colour(runner, isolated_home, tmp_path):
    plain, hinted = tmp_path / "plain.png", tmp_path / "hinted.png"
    assert runner.invoke(app, ["auto", str(PHOTO), "-o", str(plain)]).exit_code == 0
    result = runner.invoke(app, ["auto", str(PHOTO), "-o", str(hinted), "--hint", "100,120,12=#1060d0"])
    assert result.exit_code == 0, result.output
    # The hint's colour where it was put (CIEDE2000 at most 5, at the pixel's own lightness:
    # that blue is out of gamut there, so its a is clipped a little), not what the expert chose alone.
    point = [Hint(100.5 / 512, 120.5 / 341, "#1060d0", relative=True)]
    assert hints_honoured(np.asarray(Image.open(hinted)), point) == 1.0
    assert hints_honoured(np.asarray(Image.open(plain)), point) == 0.0


def test_hints_from_a_file_go_to_the_photos_they_name(runner, isolated_home, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea"):
        Image.open(EXAMPLES / f"{name}.jpg").convert("L").save(folder / f"{name}.png")
    hints = tmp_path / "hints.json"
    hints.write_text(
        json.dumps({"coffee.png": [{"x": 0.2, "y": 0.35, "color": "red", "radius": 12, "relative": True}]})
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["auto", str(folder), "-o", str(out), "--hints", str(hints), "--expert", "general"])
    assert result.exit_code == 0, result.output
    plain = tmp_path / "plain"
    assert runner.invoke(app, ["auto", str(folder), "-o", str(plain), "--expert", "general"]).exit_code == 0
    red = rgb_to_lab(np.array([[[1.0, 0, 0]]], np.float32))[0, 0, 1:]
    # Pure red lies outside the colours of that pixel's lightness: the output goes as far as it can.
    hinted_gap, plain_gap = (np.abs(_ab(f / "coffee.png", 102, 119) - red).max() for f in (out, plain))
    assert hinted_gap < plain_gap / 2 and _ab(out / "coffee.png", 102, 119).min() > 40
    chelsea_hinted = np.asarray(Image.open(out / "chelsea.png"))
    assert np.array_equal(chelsea_hinted, np.asarray(Image.open(plain / "chelsea.png")))  # no hints: as without


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--hint", "100,80=reddish"], "'reddish' is not a colour"),
        (["--hint", "900,80=red"], "lies outside the 512 x 341 photo"),
        (["--hint", "0.5,80=red"], "both places in pixels"),
        (["--hint", "100,80"], "write X,Y=COLOR"),
    ],
)
def test_a_hint_that_cannot_be_used_is_a_one_line_usage_error_before_any_work(
    runner, isolated_home, tmp_path, extra, words
):
    out = tmp_path / "out.png"
    result = runner.invoke(app, ["auto", str(PHOTO), "-o", str(out), *extra])
    assert result.exit_code == 2 and words in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    "content, words",
    [
        ({"nosuch.png": []}, "'nosuch.png' names no photo of this run"),
        ([{"x": 1, "y": 2}], "a point needs x, y and color"),
        ("{not json", "not a JSON file"),
    ],
)
def test_a_hints_file_that_cannot_be_used_is_one_line(runner, isolated_home, tmp_path, content, words):
    hints = tmp_path / "hints.json"
    hints.write_text(content if isinstance(content, str) else json.dumps(content))
    result = runner.invoke(app, ["auto", str(EXAMPLES), "-o", str(tmp_path / "out"), "--hints", str(hints)])
    assert result.exit_code == 2 and words in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_one_photos_hints_for_a_folder_say_how_to_give_hints_for_several(runner, isolated_home, tmp_path):
    result = runner.invoke(app, ["auto", str(EXAMPLES), "-o", str(tmp_path / "out"), "--hint", "1,1=red"])
    assert result.exit_code == 2 and "for several, give --hints FILE.json" in result.output


def test_experts_says_which_experts_read_hints_as_input(runner, isolated_home):
    (isolated_home / "experts").mkdir(parents=True)
    widened_general_expert(isolated_home / "experts" / "people.onnx", 0.0)
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)}
    assert rows["people"]["reads_hints"] is True and rows["general"]["reads_hints"] is False
    assert "reads_hints" not in rows["(classifier)"]
    listing = runner.invoke(app, ["experts"]).stdout
    people = next(line for line in listing.splitlines() if line.startswith("people: "))
    assert "reads colour hints as input" in people
    general = next(line for line in listing.splitlines() if line.startswith("general: "))
    assert "hints" not in general


def test_hint_places_are_checked_on_the_photo_turned_upright(runner, isolated_home, tmp_path):
    # Stored 60 wide and 30 high, with EXIF orientation 6: upright it is 30 wide and 60 high.
    photo = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((30, 60), 128, np.uint8)).save(photo, exif=exif)
    inside = runner.invoke(app, ["auto", str(photo), "-o", str(tmp_path / "a.jpg"), "--hint", "10,50=red"])
    assert inside.exit_code == 0, inside.output
    outside = runner.invoke(app, ["auto", str(photo), "-o", str(tmp_path / "b.jpg"), "--hint", "50,10=red"])
    assert outside.exit_code == 2 and "lies outside the 30 x 60 photo" in outside.output
