"""The models shipped inside the package: they pass the same graph check a user's file gets,
though inference reads only their metadata (straight from the file, without the onnx package)."""

import subprocess
import sys

import pytest

from colorize.core.locations import bundled_weights_dir
from colorize.core.onnx import parse_onnx, read_onnx

BUNDLED = sorted(
    [
        *bundled_weights_dir("colorize.experts").glob("*.onnx"),
        *bundled_weights_dir("colorize.classifier").glob("*.onnx"),
    ]
)


def test_four_models_ship():
    assert [path.name for path in BUNDLED] == ["classifier.onnx", "general.onnx", "landscape.onnx", "people.onnx"]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.stem)
def test_a_bundled_model_passes_the_full_check_and_its_metadata_reads_the_same_without_it(path):
    data, metadata = read_onnx(path, channels=(1,))  # the bundled files' way: metadata alone
    assert parse_onnx(data, path, channels=(1,)) == metadata  # a user's file's way: the graph checked first
    assert metadata["kind"] in ("expert", "classifier")


def test_reading_the_bundled_models_metadata_needs_no_onnx_package():
    code = (
        "import sys\n"
        "from colorize.core.locations import bundled_weights_dir\n"
        "from colorize.core.modelfile import read_metadata\n"
        "for package in ('colorize.experts', 'colorize.classifier'):\n"
        "    for path in bundled_weights_dir(package).glob('*.onnx'):\n"
        "        read_metadata(path)\n"
        "print('onnx' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.stem)
def test_a_bundled_models_record_names_no_folder_of_the_machine_it_was_made_on(path):
    _, metadata = read_onnx(path, channels=(1,))
    absolute = [text for text in _strings(metadata) if text.startswith(("/", "~")) or text[1:3] == ":\\"]
    assert not absolute, f"{path.name} records absolute paths: {absolute[:3]}"
    # What it records of its data is still there, relative: the folders it was trained on.
    assert metadata["training"]["data"]
