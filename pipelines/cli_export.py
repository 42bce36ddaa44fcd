"""``colorize export``: the ONNX graph for a .safetensors model file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from colorize.pipelines.cli_common import console, fail, shown


def export_command(
    file: Path = typer.Argument(..., metavar="FILE", help="An expert's or the classifier's .safetensors file."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", metavar="FILE", help="ONNX file to write.  \\[default: FILE with the suffix .onnx]"
    ),
) -> None:
    """Write the ONNX graph of a model file, with its metadata, for inference with onnxruntime.

    Needs colorize-experts\\[train] (torch and onnx). The weights are stored as float16, as in the
    .safetensors file.

    Examples:  colorize export ~/.cache/colorize/experts/portraits-1920s.safetensors ·
    colorize export classifier.safetensors -o classifier.onnx
    """
    from colorize.classifier.model import SceneClassifier
    from colorize.core.files import NotWritableError
    from colorize.core.modelfile import ModelFileError, read_metadata
    from colorize.experts.hints import HINT_PLANES
    from colorize.experts.onnx_export import export_onnx
    from colorize.experts.store import Expert

    target = out or file.with_suffix(".onnx")
    if target.resolve() == file.resolve():
        fail(f"--out {target} is the file to export; choose another name")
    try:
        kind = read_metadata(file).metadata["kind"]
        if kind == "expert":
            expert = Expert.from_file(file)
            written = export_onnx(
                expert.network, 1 + HINT_PLANES * expert.takes_hints, expert.model_file.metadata, target
            )
        elif kind == "classifier":
            classifier = SceneClassifier.from_file(file)
            side = classifier.preprocessing.input_size
            written = export_onnx(classifier.network, 1, classifier.model_file.metadata, target, square=side)
        else:
            fail(f"{file}: holds a {kind!r} model; colorize exports experts and classifiers")
    except ModelFileError as error:
        fail(str(error))
    except NotWritableError as error:
        fail(f"cannot write {target}: {error}")
    console.print(f"wrote {shown(written)} ({written.stat().st_size / 1e6:.1f} MB)", highlight=False)
