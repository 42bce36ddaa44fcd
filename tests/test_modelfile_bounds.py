"""Hostile numbers in a weights file's metadata: refused or neutralised before they cost anything.

A file of a few hundred bytes can name a network of millions of blocks, a work size of
30,000 pixels, or a metric of 400 digits; each is refused in one line naming the file (or, for
a metric, left out), before any network is built or any photo resized.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from colorize.classifier.model import SceneClassifier
from colorize.core.locations import bundled_weights_dir
from colorize.core.modelfile import ModelFileError, read_metadata
from colorize.experts import cnn_zhang, networks, unet_dilated, unet_lite, unet_pix2pix, unet_seed
from colorize.experts.architectures import create_architecture
from colorize.experts.networks import load_model_file, load_network, replace_metadata, save_model
from colorize.experts.store import Expert, ModelStore

FIXTURES = Path(__file__).parent / "fixtures"
SEED_META = {"kind": "expert", "architecture": "unet_seed", "arguments": {"widths": [8, 16, 32]}, "work_size": 32}


def _tiny_expert(path: Path, **changes) -> Path:
    """A real, loadable unet_seed expert file whose metadata has ``changes`` applied."""
    return save_model(create_architecture("unet_seed", widths=[8, 16, 32]), path, {**SEED_META, **changes})


def _never_built(*args, **kwargs):
    raise AssertionError("the network was built from metadata that should have been refused")


def _refusal(path: Path, load=Expert.from_file) -> str:
    with pytest.raises(ModelFileError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    return message


HOSTILE_ARGUMENTS = [
    # (architecture, arguments, module and class that would build it, argument named in the refusal)
    ("unet_seed", {"bottleneck_blocks": 3_000_000}, unet_seed, "SeedUNet", "bottleneck_blocks"),
    ("unet_seed", {"bottleneck_blocks": 10**400}, unet_seed, "SeedUNet", "bottleneck_blocks"),
    ("unet_seed", {"widths": [8, 16, 1 << 40]}, unet_seed, "SeedUNet", "widths"),
    ("unet_dilated", {"dilations": [2] * 300_000}, unet_dilated, "DilatedUNet", "dilations"),
    ("unet_dilated", {"dilations": [2, 1_000_000]}, unet_dilated, "DilatedUNet", "dilations"),
    ("unet_pix2pix", {"num_downs": 100_000}, unet_pix2pix, "Pix2PixUNet", "num_downs"),
    ("unet_pix2pix", {"ngf": 1 << 20}, unet_pix2pix, "Pix2PixUNet", "ngf"),
    ("cnn_zhang", {"width": float("inf")}, cnn_zhang, "ZhangCNN", "width"),
    ("cnn_zhang", {"width": 1e6}, cnn_zhang, "ZhangCNN", "width"),
    ("unet_lite", {"decoder_channels": [24] * 300_000}, unet_lite, "LiteUNet", "decoder_channels"),
    ("unet_lite", {"decoder_channels": [96, 64, 40, 1 << 30]}, unet_lite, "LiteUNet", "decoder_channels"),
]


@pytest.mark.parametrize(
    "architecture, arguments, module, network, argument",
    HOSTILE_ARGUMENTS,
    ids=[str(a[1])[:40] for a in HOSTILE_ARGUMENTS],
)
def test_architecture_arguments_beyond_their_bounds_are_refused_before_building(
    tmp_path, monkeypatch, architecture, arguments, module, network, argument
):
    path = _tiny_expert(tmp_path / "hostile.safetensors", architecture=architecture, arguments=arguments)
    monkeypatch.setattr(module, network, _never_built)
    assert path.stat().st_size < 4 << 20  # the harm is in what the metadata asks for, not in the file
    message = _refusal(path)
    assert argument in message and architecture in message


def test_a_user_expert_with_arguments_beyond_bounds_is_refused_by_the_start_up_check(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _tiny_expert(home / "experts" / "hostile.safetensors", arguments={"bottleneck_blocks": 3_000_000})
    monkeypatch.setattr(unet_seed, "SeedUNet", _never_built)
    with pytest.raises(ModelFileError, match="hostile.safetensors.*bottleneck_blocks"):
        ModelStore(home=home).check(["hostile"])


def test_every_architecture_still_builds_at_its_defaults_and_at_the_papers_sizes():
    for name, arguments in [
        ("unet_seed", {}),
        ("unet_dilated", {}),
        ("unet_pix2pix", {}),
        ("cnn_zhang", {"width": 1.0}),
        ("unet_lite", {"decoder_channels": [192, 128, 80, 48]}),
    ]:
        with torch.device("meta"):
            create_architecture(name, **arguments)


def _header_only_file(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    metadata = {"format_version": 1, **SEED_META}
    save_file(tensors, str(path), metadata={"colorize": json.dumps(metadata)})
    return path


@pytest.mark.parametrize(
    "limit, tensors, message",
    [
        ("MAX_TENSORS", {f"t{i}": torch.zeros(1) for i in range(11)}, "11 tensors"),
        ("MAX_PARAMETERS", {"t": torch.zeros(11)}, "11 parameters"),
    ],
)
def test_a_header_listing_more_than_any_model_holds_is_refused_before_building(
    tmp_path, monkeypatch, limit, tensors, message
):
    # The real limits are far above any colorize model; lowered here so the file stays tiny.
    monkeypatch.setattr(networks, limit, 10, raising=False)
    path = _header_only_file(tmp_path / "many.safetensors", tensors)
    refused = _refusal(path, lambda p: load_network(read_metadata(p), _never_built))
    assert message in refused


def test_a_work_size_beyond_any_photo_is_refused_in_one_line(tmp_path):
    path = _tiny_expert(tmp_path / "huge.safetensors", work_size=30_000)
    assert "work size 30000" in _refusal(path)
    assert "work size 30000" in _refusal(path, lambda p: ModelStore(home=tmp_path, files={"huge": p}).check(["huge"]))
    assert Expert.from_file(_tiny_expert(tmp_path / "largest.safetensors", work_size=1024)).work_size == 1024


def test_a_work_size_an_expert_is_exported_at_is_bounded_before_the_export(tmp_path, monkeypatch):
    from colorize.experts import onnx_export

    # pix2pix's graph is exported for its work size alone (its padding follows no other size).
    meta = {**SEED_META, "architecture": "unet_pix2pix", "arguments": {"ngf": 4}, "work_size": 30_000}
    path = save_model(create_architecture("unet_pix2pix", ngf=4), tmp_path / "big.safetensors", meta)
    monkeypatch.setattr(onnx_export, "onnx_bytes", _never_built)
    assert "work size 30000" in _refusal(path)


def test_a_classifier_input_size_beyond_any_photo_is_refused_in_one_line(tmp_path, monkeypatch):
    from colorize.experts import onnx_export

    model_file, network = load_model_file(bundled_weights_dir("colorize.classifier") / "classifier.onnx")
    meta = model_file.metadata
    path = save_model(network, tmp_path / "classifier.safetensors", meta)
    replace_metadata(path, {**meta, "preprocessing": {**meta["preprocessing"], "input_size": 30_000}})
    # Refused before a 30,000-pixel square is traced for the export (gigabytes, minutes).
    monkeypatch.setattr(onnx_export, "onnx_bytes", _never_built)
    assert "input size 30000" in _refusal(path, SceneClassifier.from_file)


def test_the_bundled_models_and_a_file_of_colorize_0_1_0_load_within_the_bounds():
    for name in ("general", "landscape", "people"):
        assert Expert.from_file(bundled_weights_dir() / f"{name}.onnx").work_size == 224
    assert SceneClassifier.from_file(bundled_weights_dir("colorize.classifier") / "classifier.onnx").labels
    Expert.from_file(FIXTURES / "expert-0.1.0.safetensors")


def test_the_experts_listing_shows_every_model_when_one_has_a_metric_of_400_digits(isolated_home):
    from colorize.pipelines.cli import app

    _tiny_expert(isolated_home / "experts" / "hostile.safetensors", metrics={"val_psnr": 10**400, "val_delta_e": 7.25})
    runner = CliRunner()
    table = runner.invoke(app, ["experts"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "hostile" in table.stdout and "general" in table.stdout and "unusable" not in table.stdout
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)}
    assert rows["hostile"]["metrics"] == {"val_delta_e": 7.25}, "the metric no float can hold is left out"
    assert rows["general"]["metrics"]["val_psnr"] > 0


def test_an_integer_of_5000_digits_in_the_metadata_is_read_not_raised(tmp_path):
    # Python refuses to parse integers of over 4300 digits (a ValueError, not a JSON error).
    raw = json.dumps({"format_version": 1, **SEED_META, "metrics": {"val_psnr": 0, "val_ssim": 0.9}})
    path = tmp_path / "digits.safetensors"
    save_file(
        {"w": torch.zeros(1)},
        str(path),
        metadata={"colorize": raw.replace('"val_psnr": 0', f'"val_psnr": {"9" * 5000}')},
    )
    assert read_metadata(path).metadata["metrics"] == {"val_ssim": 0.9}
