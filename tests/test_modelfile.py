"""Model files and the store: self-describing weights, strict loading, lookup order, files of earlier releases."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from colorize.core.locations import bundled_weights_dir
from colorize.core.modelfile import ModelFileError, read_metadata
from colorize.experts.architectures import create_architecture
from colorize.experts.networks import replace_metadata, save_model
from colorize.experts.store import Expert, ModelStore

SEED_META = {
    "kind": "expert",
    "architecture": "unet_seed",
    "arguments": {"widths": [8, 16, 32]},
    "work_size": 32,
    "category": "tiny",
}


def _tiny_expert_file(path: Path) -> Path:
    torch.manual_seed(0)
    net = create_architecture("unet_seed", widths=[8, 16, 32])
    return save_model(net, path, SEED_META, half=False)


def _ramp(height: int, width: int, batch: int = 1) -> np.ndarray:
    """L in [0, 100], float32 (batch, 1, height, width): a diagonal ramp, different in each photo."""
    y, x = np.meshgrid(np.linspace(0, 100, height), np.linspace(0, 100, width), indexing="ij")
    return np.stack([(y + x) / 2 * (1 - i / 4) for i in range(batch)])[:, None].astype(np.float32)


def test_round_trip_rebuilds_the_same_network_from_metadata_alone(tmp_path):
    path = _tiny_expert_file(tmp_path / "tiny.safetensors")
    torch.manual_seed(0)
    # The weights as inference runs them: its ONNX graph stores them as float16.
    original = create_architecture("unet_seed", widths=[8, 16, 32]).eval().half().float()
    loaded = Expert.from_file(path)
    x = _ramp(20, 20)
    with torch.inference_mode():
        expected = (original(torch.from_numpy((x - 50) / 50)) * 110).numpy()
    assert np.allclose(loaded.predict_ab(x), expected, atol=1e-4)
    meta = read_metadata(path).metadata
    assert meta["format_version"] == 1 and meta["code_version"] and meta["work_size"] == 32


def test_half_precision_file_changes_predictions_by_under_a_lab_unit(tmp_path):
    torch.manual_seed(0)
    net = create_architecture("unet_seed", widths=[8, 16, 32]).eval()
    save_model(net, tmp_path / "full.safetensors", SEED_META, half=False)
    half = Expert.from_file(save_model(net, tmp_path / "half.safetensors", SEED_META, half=True))
    x = _ramp(24, 24, batch=2)
    with torch.inference_mode():
        full = (net(torch.from_numpy((x - 50) / 50)) * 110).numpy()
    difference = np.abs(full - half.predict_ab(x)).max()
    assert 0 < difference < 1.0, difference
    assert (tmp_path / "half.safetensors").stat().st_size < 0.6 * (tmp_path / "full.safetensors").stat().st_size


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable .safetensors"),
        (b"\x80\x04\x95 pickle, not safetensors", "not a readable .safetensors"),
        (None, "without colorize metadata"),
    ],
)
def test_broken_or_foreign_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    if content is None:
        save_file({"w": torch.zeros(2)}, str(path))  # a valid file from somebody else
    else:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as info:
        Expert.from_file(path)
    assert str(path) in str(info.value)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = _tiny_expert_file(tmp_path / "t.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="t.safetensors"):
        Expert.from_file(path)


def test_tensors_that_do_not_match_the_architecture_are_refused(tmp_path):
    net = create_architecture("unet_seed", widths=[8, 16, 32])
    path = save_model(net, tmp_path / "m.safetensors", {**SEED_META, "arguments": {"widths": [8, 16, 64]}})
    with pytest.raises(ModelFileError, match="do not match architecture 'unet_seed'"):
        Expert.from_file(path)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"colorize": json.dumps({"format_version": 99})})
    with pytest.raises(ModelFileError, match="format version 99"):
        read_metadata(path)


def test_lookup_order_file_then_user_then_bundled(tmp_path):
    home = tmp_path / "home"
    bundled = ModelStore(home=home).sources()
    assert bundled["general"].source == "bundled"
    assert bundled["general"].path.parent == bundled_weights_dir()
    user_file = _tiny_expert_file(home / "experts" / "general.safetensors")
    assert ModelStore(home=home).sources()["general"] == type(bundled["general"])("general", "user", user_file)
    explicit = _tiny_expert_file(tmp_path / "mine.safetensors")
    assert ModelStore(home=home, files={"general": explicit}).sources()["general"].source == "file"
    # Other experts keep their bundled weights.
    assert ModelStore(home=home).sources()["people"].source == "bundled"


def test_the_classifier_is_looked_up_in_the_same_order(tmp_path):
    home = tmp_path / "home"
    bundled = ModelStore(home=home).classifier_source()
    assert bundled.source == "bundled" and bundled.path.parent == bundled_weights_dir("colorize.classifier")
    user = ModelStore(home=home).user_classifier_path().with_suffix(".onnx")  # as training installs it, beside
    user.parent.mkdir(parents=True)
    user.write_bytes(bundled.path.read_bytes())
    assert ModelStore(home=home).classifier_source().path == user
    explicit = tmp_path / "mine.safetensors"
    found = ModelStore(home=home, classifier_file=explicit).classifier_source()
    assert (found.source, found.path) == ("file", explicit)


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_file_written_by_colorize_0_1_0_loads_and_predicts_as_it_did(tmp_path):
    # Trained and saved by colorize 0.1.0 (a tiny unet_seed); its prediction on a fixed ramp was
    # recorded then. Its metadata has keys later releases no longer write (chroma_exponent).
    path = FIXTURES / "expert-0.1.0.safetensors"
    meta = read_metadata(path).metadata
    assert meta["code_version"] == "0.1.0" and "chroma_exponent" in meta["normalization"]
    recorded = np.load(FIXTURES / "expert-0.1.0-ab.npy")
    ramp = _ramp(24, 20)
    assert np.allclose(Expert.from_file(path).predict_ab(ramp), recorded, atol=1e-4)

    # In the user's folder, as 0.1.0 installed it: the store exports it to ONNX on first use,
    # beside it, and runs that file from then on.
    home = tmp_path / "home"
    installed = home / "experts" / "old.safetensors"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(path.read_bytes())
    assert np.allclose(ModelStore(home=home).load("old").predict_ab(ramp), recorded, atol=1e-4)
    exported = installed.with_suffix(".onnx")
    assert exported.is_file() and read_metadata(exported).metadata == meta
    assert ModelStore(home=home).source("old").path == exported
    assert np.allclose(ModelStore(home=home).load("old").predict_ab(ramp), recorded, atol=1e-4)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda meta: meta["normalization"].update(chroma_exponent=0.5), "chroma curve"),
        (lambda meta: meta.update(architecture="unet_lite", arguments={"ab_bins": 16}), "ab-bin head"),
        (
            lambda meta: meta.update(architecture="unet_lite", arguments={"global_context": True}),
            "global-context branch was retired",
        ),
    ],
)
def test_retired_decodings_are_refused_with_their_reason(tmp_path, change, message):
    meta = dict(read_metadata(FIXTURES / "expert-0.1.0.safetensors").metadata)
    meta["normalization"] = dict(meta["normalization"])
    change(meta)
    path = tmp_path / "retired.safetensors"
    path.write_bytes((FIXTURES / "expert-0.1.0.safetensors").read_bytes())
    replace_metadata(path, meta)
    with pytest.raises(ModelFileError, match=message) as refused:
        Expert.from_file(path)
    assert str(refused.value).startswith(f"{path}: ") and "\n" not in str(refused.value)


def _shifted_copy(tmp_path: Path, shift) -> Path:
    path = _tiny_expert_file(tmp_path / "tiny.safetensors")
    meta = read_metadata(path).metadata
    shifted = tmp_path / "shifted.safetensors"
    shifted.write_bytes(path.read_bytes())
    replace_metadata(shifted, {**meta, "normalization": {"ab_gain": [1.3, 1.3], "ab_shift": shift}})
    return shifted


def test_a_calibration_shift_is_added_to_the_chroma_after_the_gain(tmp_path):
    shifted = Expert.from_file(_shifted_copy(tmp_path, [-1.5, 2.0]))
    plain = Expert.from_file(tmp_path / "tiny.safetensors")
    x = _ramp(20, 20)
    difference = shifted.predict_ab(x) - 1.3 * plain.predict_ab(x)
    assert np.allclose(difference[:, 0], -1.5, atol=1e-4) and np.allclose(difference[:, 1], 2.0, atol=1e-4)
    assert plain.normalization.ab_shift == (0.0, 0.0), "a file without a shift (every earlier one) has none"


@pytest.mark.parametrize("shift", [[float("nan"), 0.0], [1.0], "warm"])
def test_a_shift_that_is_not_two_finite_numbers_is_refused_in_one_line(tmp_path, shift):
    with pytest.raises(ModelFileError, match="shifted.safetensors: not a usable colorize expert"):
        Expert.from_file(_shifted_copy(tmp_path, shift))


def test_bundled_experts_carry_their_story():
    for name in ("general", "landscape", "people"):
        meta = read_metadata(bundled_weights_dir() / f"{name}.onnx").metadata
        assert meta["kind"] == "expert"
        assert meta["training"]["data"]["images"] > 0
        assert "val_delta_e" in meta["metrics"]
