"""Options that several commands share, declared once: name, type, range, metavar and help.

Commands import the module (``from colorize.pipelines import cli_options as options``) and
annotate a parameter ``threshold: options.Threshold = None``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

# Below this the encoder's stride-32 features are a single pixel: no picture left to read.
MIN_WORK_SIZE = 32

Weights = Annotated[
    list[str],
    typer.Option(
        "--weights",
        metavar="NAME=FILE",
        help="Use this weights file for the expert NAME (repeatable); it wins over installed ones.",
        show_default=False,
    ),
]
ClassifierWeights = Annotated[
    Optional[Path],
    typer.Option("--classifier-weights", metavar="FILE", help="Use this scene-classifier weights file."),
]
Threshold = Annotated[
    Optional[float],
    typer.Option(
        "--threshold",
        min=0.0,
        max=1.0,
        metavar="FLOAT",
        help="Below this classifier confidence, use the general expert.  \\[default: 0.5, from configs/routing.toml]",
        show_default=False,
    ),
]
Device = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="DEVICE",
        help="auto (CUDA if usable, else Apple MPS, else CPU), cpu, cuda, cuda:1 or mps.",
    ),
]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the interrupted run from its checkpoint.")]
MaxSteps = Annotated[
    Optional[int], typer.Option("--max-steps", min=1, metavar="N", help="Cap batches per epoch (quick trials).")
]
# Inference runs onnxruntime, whose providers are chosen as a whole (cli_common.onnx_providers).
InferenceDevice = Annotated[
    Literal["auto", "cpu", "cuda"],
    typer.Option(
        "--device",
        help="auto (CUDA when onnxruntime has it, i.e. onnxruntime-gpu, else CPU), cpu or cuda.",
    ),
]
Threads = Annotated[
    Optional[int],
    typer.Option(
        "--threads",
        min=1,
        metavar="N",
        help="Threads for the networks and the full-resolution work.  \\[default: every available core]",
        show_default=False,
    ),
]
WorkSize = Annotated[
    Optional[int],
    typer.Option(
        "--work-size",
        min=MIN_WORK_SIZE,
        metavar="PIXELS",
        help="Side of the square the experts see.  \\[default: each expert's own, 224 for the bundled ones]",
        show_default=False,
    ),
]
Saturation = Annotated[
    float,
    typer.Option(
        "--saturation", min=0.0, metavar="FLOAT", help="Scale the chroma: 1 as shipped (its validated gain), 0 gray."
    ),
]
MaxPixels = Annotated[
    float,
    typer.Option(
        "--max-pixels",
        min=1e-6,
        metavar="MEGAPIXELS",
        help="Refuse images larger than this, checked before decoding (a guard against decompression bombs).",
    ),
]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, metavar="N", help="Photos per network batch.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON on standard output instead of a table.")]
