"""``colorize export``: the ONNX graph for a .safetensors model file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from colorize.pipelines.cli_common import console, fail, require_torch, shown


def export_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="An expert's or the classifier's .safetensors file.")],
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", metavar="FILE", help="ONNX file to write.  \\[default: FILE with the suffix .onnx]"
        ),
    ] = None,
) -> None:
    """Write the ONNX graph of a model file, with its metadata, for inference with onnxruntime.

    Needs colorize-experts\\[train] (torch and onnx). The weights are stored as float16, as in the
    .safetensors file.

    Examples:  colorize export ~/.cache/colorize/experts/portraits-1920s.safetensors ·
    colorize export classifier.safetensors -o classifier.onnx
    """
    from colorize.core.files import NotWritableError, atomic_write
    from colorize.core.modelfile import ModelFileError, read_metadata

    target = out or file.with_suffix(".onnx")
    if target.resolve() == file.resolve():
        fail(f"--out {target} is the file to export; choose another name")
    require_torch("export")
    from colorize.experts.onnx_export import export_onnx_bytes

    try:
        kind = read_metadata(file).kind
        if kind not in ("expert", "classifier"):
            fail(f"{file}: holds a {kind!r} model; colorize exports experts and classifiers")
        data = export_onnx_bytes(file)
        written = atomic_write(target, lambda handle: handle.write(data))
    except ModelFileError as error:
        fail(str(error))
    except NotWritableError as error:
        fail(f"cannot write {target}: {error}")
    except OSError as error:
        fail(f"cannot write {target}: {error.strerror or error}")
    console.print(f"wrote {shown(written)} ({written.stat().st_size / 1e6:.1f} MB)", highlight=False)
