"""``colorize classify`` and ``colorize experts`` (``colorize auto`` is in cli_auto.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from colorize.pipelines import cli_options as options
from colorize.pipelines.cli_common import (
    EXIT_FAILED,
    build_pipeline,
    console,
    fail,
    interruptible,
    shown,
    subfolder_hint,
)


@interruptible
def classify(
    paths: Annotated[
        list[str], typer.Argument(metavar="PATH", help="Photos, folders or glob patterns.", show_default=False)
    ],
    recursive: options.Recursive = False,
    threshold: options.Threshold = None,
    weights: options.Weights = [],
    classifier_weights: options.ClassifierWeights = None,
    as_json: options.Json = False,
    max_pixels: options.MaxPixels = 100.0,
    force: Annotated[bool, typer.Option("--force", help="Also route photos that are already in colour.")] = False,
    device: options.InferenceDevice = "auto",
    threads: options.Threads = None,
) -> None:
    """Show which expert each photo would go to, and why, as colorize auto would. Writes nothing.

    Examples:  colorize classify old_photos/ ·
    colorize classify scan.jpg --threshold 0.8 ·
    colorize classify photos/ -r --json > routes.json
    """
    from colorize.core.color import is_colour_photo
    from colorize.core.images import ImageError, decode
    from colorize.pipelines.batch import PlanError, list_photos, path_text

    try:
        found = list_photos(paths, recursive)
    except PlanError as error:
        fail(str(error))
    pipeline = build_pipeline(None, threshold, weights, classifier_weights, device, threads=threads)
    table = Table(title="routes")
    # A name folds onto more lines rather than lose its end (scans differ by their last digits).
    table.add_column("photo", overflow="fold")
    for column in ("class", "expert", "reason", "probabilities"):
        table.add_column(column)
    failed = len(found.refused)
    for outcome in found.refused:
        console.print(f"[red]failed[/] {shown(outcome.input)}: {shown(outcome.reason)}", highlight=False)
    for photo in found.photos:
        try:
            decoded = decode(photo.path, int(max_pixels * 1e6))
        except ImageError as error:
            failed += 1
            console.print(f"[red]failed[/] {shown(photo.path)}: {shown(error)}", highlight=False)
            continue
        if not force and is_colour_photo(decoded.data):
            console.print(
                f"[yellow]skipped[/] {shown(photo.path)}: already colour (--force to route it)", highlight=False
            )
            continue
        route = pipeline.route([decoded.lightness()])[0]
        if as_json:
            typer.echo(json.dumps({"input": path_text(photo.path), **route.as_dict()}))
        else:
            probabilities = " ".join(f"{k}={v:.2f}" for k, v in route.probabilities.items())
            # The class the classifier picked, with its probability: the expert may be named
            # otherwise (the routing table sends landscapes to the general expert), or a fallback.
            picked = f"{route.top_class} {route.probabilities[route.top_class]:.2f}"
            # Expert and class names come from model files and routing tables: escaped like file names.
            cells = (photo.path, picked, route.expert, route.explanation(), probabilities)
            table.add_row(*map(shown, cells))
    if not as_json:
        from rich.console import Console

        Console().print(table)
    if hint := subfolder_hint(found):
        console.print(hint, highlight=False)
    if failed:
        raise typer.Exit(EXIT_FAILED)


_REMOVE_HELP = "Set aside your expert NAME, or your classifier with NAME classifier (the bundled one takes over)."
_RESTORE_HELP = "Swap your expert NAME (or classifier) with the file it last replaced."


def list_experts(
    as_json: options.Json = False,
    remove: Annotated[Optional[str], typer.Option("--remove", metavar="NAME", help=_REMOVE_HELP)] = None,
    restore: Annotated[Optional[str], typer.Option("--restore", metavar="NAME", help=_RESTORE_HELP)] = None,
) -> None:
    """List installed experts and the classifier: source, file, checksum, architecture, metrics.

    Retraining or removing one of your experts keeps the file it replaced; --restore swaps it back.

    Examples:  colorize experts ·
    colorize experts --json ·
    colorize experts --restore people ·
    colorize experts --remove portraits-1920s ·
    colorize experts --remove classifier
    """
    from colorize.core.modelfile import ModelFileError, read_metadata
    from colorize.experts.store import ModelStore

    store = ModelStore()
    if remove is not None or restore is not None:
        _set_aside_or_restore(store, remove, restore)
        return
    rows: list[dict[str, Any]] = []  # of JSON values
    entries = [(s.name, s.source, s.path) for s in store.sources().values()]
    if (classifier := store.classifier_source()) is not None:
        entries.append(("(classifier)", classifier.source, classifier.path))
    for name, source, path in entries:
        row: dict[str, Any] = {"name": name, "source": source, "path": str(path)}
        try:
            model_file = read_metadata(path)
            meta = model_file.metadata
            data = meta.get("training", {}).get("data", {})
            row.update(
                sha256=model_file.sha256(),
                architecture=meta["architecture"],
                arguments=meta["arguments"],
                normalization=meta.get("normalization"),
                calibration=meta.get("calibration"),
                protocol_choices=meta.get("protocol_choices"),
                protocol_scores=meta.get("protocol_scores"),
                work_size=meta.get("work_size"),
                metrics=meta.get("metrics", {}),
                training_images=data.get("images"),
                training_data=data.get("folders") or data.get("folder"),
                code_version=meta.get("code_version"),
            )
            if model_file.kind == "expert":
                # Every expert follows hints (spread over its output); some also read them as input.
                row["reads_hints"] = bool(meta["arguments"].get("hints", False))
            row["description"] = _describe(row)
            if not isinstance(row["metrics"], dict):
                raise TypeError(f"metrics is a {type(row['metrics']).__name__}, not a table")
        except ModelFileError as error:
            row["error"] = str(error)
        except (AttributeError, KeyError, TypeError, ValueError) as error:  # metadata of the wrong shape
            row = {
                "name": name,
                "source": source,
                "path": str(path),
                "error": f"{path}: unreadable metadata ({type(error).__name__}: {error})",
            }
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console

    table = Table(title="installed models (validation metrics from training)")
    for column in ("name", "source"):
        table.add_column(column, no_wrap=True)
    for title, _ in _SHOWN_METRICS:
        table.add_column(title, no_wrap=True)
    for row in rows:
        cells = (
            _metric_cells(row.get("metrics", {}))
            if "error" not in row
            else ["[red]unusable[/]"] + [""] * (len(_SHOWN_METRICS) - 1)
        )
        table.add_row(shown(row["name"]), row["source"], *cells)
    out = Console(soft_wrap=True)
    out.print(table)
    for row in rows:
        detail = (
            f"[red]{shown(row['error'])}[/]"
            if "error" in row
            else f"{shown(row['description'])}, sha256 {row['sha256'][:16]}"
        )
        out.print(f"{shown(row['name'])}: {detail}, {shown(row['path'])}", highlight=False)
    out.print(f"user model folder: {shown(store.home)}", highlight=False)


def _set_aside_or_restore(store, remove: str | None, restore: str | None) -> None:
    """--remove moves your model's files (NAME.onnx and NAME.safetensors, whichever are there)
    to the backup place, so they can come back; --restore swaps them with the backup's. Bundled
    files are never touched."""
    import os

    from colorize.experts.store import CLASSIFIER

    if remove is not None and restore is not None:
        fail("give --remove NAME or --restore NAME, not both")
    name = remove if remove is not None else restore
    # "classifier" names the scene classifier: expert names cannot take it (colorize train expert).
    installed = store.user_classifier_path() if name == CLASSIFIER else store.user_path(name)
    what = "classifier" if name == CLASSIFIER else f"expert named {name!r}"
    current, backup = _model_files(installed), _model_files(_backup_path(installed))
    if remove is not None:
        if not current:
            fail(f"you have no {what} in {installed.parent} (bundled models cannot be removed)")
        _move_model([(file, _backup_path(file)) for file in current])
        console.print(
            f"set aside {_named(current)} (colorize experts --restore {shown(name)} brings it back)", highlight=False
        )
        return
    if not backup:
        fail(f"no earlier file of your {what} is kept (none in {_backup_path(installed).parent})")
    # Yours out of the way first, then the backup's in, then yours to the backup place.
    swaps = [(file, file.with_name(f".{file.name}.swap")) for file in current]
    for file, swap in swaps:
        os.replace(file, swap)
    restored = _move_model([(file, installed.with_name(file.name)) for file in backup])
    _move_model([(swap, _backup_path(file)) for file, swap in swaps])
    console.print(f"restored {_named(restored)}", highlight=False)


def _backup_path(installed: Path) -> Path:
    """Where the files an install replaced are kept (one generation): ``backup/`` beside them,
    where training keeps the file it replaces (``training.backup_path``, in a module that
    needs torch)."""
    return installed.parent / "backup" / installed.name


def _model_files(path: Path) -> list[Path]:
    """The files of the model ``path`` names, whichever of NAME.onnx and NAME.safetensors exist."""
    from colorize.core.locations import MODEL_SUFFIXES

    return [path.with_suffix(suffix) for suffix in MODEL_SUFFIXES if path.with_suffix(suffix).is_file()]


def _move_model(moves: list[tuple[Path, Path]]) -> list[Path]:
    """Move one model's files (source, target) as one: a file of another model with the same
    name left at the target (an ONNX file beside the safetensors moved in) would stand for it
    or be taken for its export, so it goes. Returns the targets."""
    import os

    from colorize.core.locations import MODEL_SUFFIXES

    targets = [target for _, target in moves]
    if not targets:
        return targets
    targets[0].parent.mkdir(parents=True, exist_ok=True)
    for other in {targets[0].with_suffix(suffix) for suffix in MODEL_SUFFIXES} - set(targets):
        other.unlink(missing_ok=True)
    for source, target in moves:
        os.replace(source, target)
    return targets


def _named(files: list[Path]) -> str:
    return " and ".join(shown(file) for file in files)


# (column title, metadata keys): the numbers a user compares models by; a second key is
# the gray baseline on the same validation photos, shown in brackets.
_SHOWN_METRICS = (
    ("PSNR (gray)", ("val_psnr", "val_gray_psnr")),
    ("ΔE (gray)", ("val_delta_e", "val_gray_delta_e")),
    ("colour", ("val_colorfulness_ratio",)),
    ("acc.", ("val_accuracy",)),
)


def _metric_cells(metrics: dict) -> list[str]:
    return [_metric_cell(metrics, keys) for _, keys in _SHOWN_METRICS]


def _metric_cell(metrics: dict, keys: tuple[str, ...]) -> str:
    values = [metrics.get(key) for key in keys]
    if not isinstance(values[0], (int, float)):
        return ""
    cell = f"{values[0]:.3g}"
    if len(values) > 1 and isinstance(values[1], (int, float)):
        cell += f" ({values[1]:.3g})"
    return cell


def _describe(row: dict) -> str:
    """Architecture, then the chroma gain after it (per channel
    when a fixed a/b boost) and the calibration shift, when there is one; whether it reads hints as input."""
    normalization = row.get("normalization") or {}
    a_gain, b_gain = normalization.get("ab_gain", (1.0, 1.0))
    a_shift, b_shift = normalization.get("ab_shift", (0.0, 0.0))
    decoding = []
    if (a_gain, b_gain) != (1.0, 1.0):
        decoding.append("chroma x" + (f"{a_gain:g}" if a_gain == b_gain else f"a {a_gain:g}, b {b_gain:g}"))
    if (a_shift, b_shift) != (0.0, 0.0):
        decoding.append(f"shift a {a_shift:+g}, b {b_shift:+g}")
    network = row["architecture"]
    described = f"{network} ({'; '.join(decoding)})" if decoding else network
    for choice in row.get("protocol_choices") or []:
        if isinstance(choice, dict) and isinstance(choice.get("choosing_sources"), list):
            sources = ", ".join(map(str, choice["choosing_sources"]))
            described += f", {choice.get('choice', 'a choice')} chosen on held-out sources ({sources})"
    if row.get("reads_hints"):
        described += ", reads colour hints as input"
    return described + _protocol_scores(row.get("protocol_scores"))


def _protocol_scores(scores) -> str:
    """The macro ΔE on the choosing and test sources recorded in the file (scripts/protocol.py record)."""
    if not isinstance(scores, dict):
        return ""
    parts = []
    for role in ("choosing", "test"):
        held_out = scores.get(role)
        if not isinstance(held_out, dict):
            continue
        overall = held_out.get("macro", {}).get("overall", {})
        if isinstance(overall.get("delta_e"), (int, float)):
            sources = ", ".join(map(str, held_out.get("sources", [])))
            parts.append(f"{overall['delta_e']:.3f} × gray on the {role} sources ({sources})")
    if not parts:
        return ""
    how = "routed" if scores.get("mode") == "auto" else "forced on every photo"
    return f"; ΔE {how}: " + ", ".join(parts)
