"""Colour hints as an expert's input: simulated hints, their planes, and hint-aware experts."""

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from colorize.core.modelfile import read_metadata
from colorize.experts.hints import PlacedHint, hint_count, hint_planes, simulate_hints
from colorize.experts.networks import load_model_file
from colorize.experts.store import ModelStore
from colorize.pipelines.cli import app
from colorize.pipelines.train_expert import ExpertTrainConfig, resolve


def _half_red_half_gray(height=40, width=60) -> np.ndarray:
    ab = np.zeros((2, height, width), np.float32)
    ab[0, :, width // 2 :] = 60.0  # red on the right
    ab[1, :, width // 2 :] = 40.0
    return ab


def test_simulated_hints_take_their_patch_mean_and_land_mostly_where_the_colour_is():
    ab = _half_red_half_gray()
    hints = simulate_hints(ab, 200, np.random.default_rng(0))
    assert len(hints) == 200
    for hint in hints:
        patch = ab[:, max(hint.row - hint.half, 0) : hint.row + hint.half + 1, max(hint.col - hint.half, 0) :]
        patch = patch[:, :, : hint.col + hint.half + 1 - max(hint.col - hint.half, 0)]
        assert np.allclose(hint.ab, patch.reshape(2, -1).mean(axis=1), atol=1e-4), hint
    on_colour = sum(hint.col >= 30 for hint in hints) / len(hints)
    # Weights 72 + 2 against 2 per pixel: about 97 % of the points on the red half.
    assert on_colour > 0.9, f"only {on_colour:.0%} of the hints on the coloured half"
    assert {2 * hint.half + 1 for hint in hints} == {1, 3, 5, 7, 9}


def test_hint_counts_are_zero_for_the_given_share_and_geometric_otherwise():
    rng = np.random.default_rng(1)
    counts = np.array([hint_count(rng, zero_share=0.5, mean_count=8.0) for _ in range(4000)])
    assert abs((counts == 0).mean() - 0.5) < 0.03, (counts == 0).mean()
    assert abs(counts[counts > 0].mean() - 8.0) < 0.6, counts[counts > 0].mean()


def test_hint_planes_mark_each_patch_with_its_colour_and_nothing_else():
    planes = hint_planes([PlacedHint(0, 0, (10.0, -20.0), half=1), PlacedHint(5, 7, (-3.0, 4.0))], 8, 9)
    assert planes.shape == (3, 8, 9)
    assert planes[2].sum() == 4 + 1, "a 3x3 patch cut by the corner (2x2 inside) and one pixel"
    assert (planes[:2, :2, :2] == np.array([10.0, -20.0])[:, None, None]).all()
    assert tuple(planes[:, 5, 7]) == (-3.0, 4.0, 1.0)
    assert not planes[:, planes[2] == 0].any(), "no colour outside the mask"


@pytest.fixture
def colour_photos(tmp_path, photos):
    folder = tmp_path / "colour"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        for i in range(8):
            crop = photos[name][i * 8 : i * 8 + 64, i * 8 : i * 8 + 64]
            Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{name}_{i}.jpg", quality=95)
    return folder


def test_a_hint_input_added_to_an_expert_starts_where_its_weights_stood(colour_photos, isolated_home):
    store = ModelStore()
    config = ExpertTrainConfig.from_defaults("general", [colour_photos], init="general", hint_input=True)
    resolved, widened, normalization = resolve(config, store)
    assert resolved.arguments["hints"] is True
    _, plain = load_model_file(store.source("general").path)  # the bundled ONNX file, in torch
    lightness = torch.linspace(0, 100, 96 * 80).reshape(1, 1, 96, 80)
    hints = torch.from_numpy(hint_planes([PlacedHint(40, 40, (50.0, 30.0), half=4)], 96, 80))[None]
    widened.eval()
    with torch.no_grad():
        without = widened(normalization.network_input(lightness, torch.zeros_like(hints)))
        assert torch.equal(without, plain(normalization.network_input(lightness)))
        # Hints change nothing yet: the new input channels start at zero...
        assert torch.equal(widened(normalization.network_input(lightness, hints)), without)
        # ...but they are wired in.
        widened.encoder.conv_stem.weight[:, 1:].fill_(0.01)
        assert not torch.equal(widened(normalization.network_input(lightness, hints)), without)


def test_a_hint_input_fine_tune_learns_its_new_input_and_the_file_takes_hints(colour_photos, isolated_home, tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "expert", "hinted", str(colour_photos), "--init", "general", "--hint-input", "--force"]
    tiny_run = ["--epochs", "1", "--max-steps", "2", "--size", "64", "--batch-size", "4", "--workers", "0"]
    result = CliRunner().invoke(app, [*args, *tiny_run, "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "delta_e_5_hints" in result.output, "validation reports how well hints are taken up"
    meta = read_metadata(isolated_home / "experts" / "hinted.safetensors").metadata
    assert meta["arguments"]["hints"] is True
    trained = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    assert trained["encoder.conv_stem.weight"][:, 1:].abs().sum() > 0, "the zero-started hint input learns"

    expert = ModelStore().load("hinted")  # its ONNX graph takes the four planes
    lightness = np.full((1, 1, 32, 32), 60.0, np.float32)
    hints = hint_planes([PlacedHint(16, 16, (40.0, 20.0), half=2)], 32, 32)[None]
    assert expert.reads_hints
    plain, hinted = expert.predict_ab(lightness), expert.predict_ab(lightness, hints)
    assert plain.shape == hinted.shape and not np.array_equal(plain, hinted), "the hint input is wired in"
    load_model_file(isolated_home / "experts" / "hinted.onnx")  # strict: torch rebuilds the four-plane network


def test_an_expert_without_a_hint_input_runs_its_network_on_l_alone(isolated_home):
    # The planes are not its input: Pipeline spreads the hints over its output instead.
    expert = ModelStore().load("general")
    assert not expert.reads_hints
    lightness = np.full((1, 1, 32, 32), 50.0, np.float32)
    hints = hint_planes([PlacedHint(16, 16, (40.0, 20.0), half=2)], 32, 32)[None]
    assert np.array_equal(expert.predict_ab(lightness, hints), expert.predict_ab(lightness))
