"""``colorize eval``: quality numbers against colour ground truth, always beside the gray baseline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from colorize.pipelines import cli_options as options
from colorize.pipelines.cli_common import (
    EXIT_FAILED,
    build_pipeline,
    console,
    fail,
    installed_expert_names,
    interruptible,
    progress_bar,
    refuse_output_among_inputs,
)

# Fewer held-out photos than this and eval warns that its means are mostly chance.
FEW_HELD_OUT = 30
# (key in metrics.summarize, column title, format, True when higher is better)
_COLUMNS = (
    ("psnr", "PSNR", "{:.2f}", True),
    ("snr", "SNR", "{:.2f}", True),
    ("ssim", "SSIM", "{:.3f}", True),
    ("rmse", "RMSE", "{:.2f}", False),
    ("delta_e", "ΔE00", "{:.2f}", False),
    ("ab_auc", "AuC", "{:.3f}", True),
    ("recognised", "recog", "{:.2f}", True),
)


@interruptible
def evaluate(
    data_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DATA_DIR",
            help="Folder of colour photos (the ground truth), optionally in category sub-folders named like the "
            "classes: landscape/, people/, general/.",
            show_default=False,
        ),
    ],
    expert: Annotated[
        Optional[str],
        typer.Option(
            "--expert",
            "-e",
            metavar="NAME",
            help="Evaluate this expert alone, forced for every photo (default: auto-routing). "
            + installed_expert_names(),
        ),
    ] = None,
    compare: Annotated[
        Optional[str],
        typer.Option(
            "--compare",
            metavar="NAME,NAME,...",
            help="Evaluate several in one run, comma-separated: auto and/or expert names, "
            "e.g. auto,general,landscape,people.",
        ),
    ] = None,
    holdout: Annotated[
        Optional[float],
        typer.Option(
            "--holdout",
            help="Only photos held out of training at this fraction (0.1 for the bundled models); of those, the "
            "--part half.",
        ),
    ] = None,
    part: Annotated[
        Literal["test", "validation", "all"],
        typer.Option(
            "--part",
            help="With --holdout: test (photos nothing was chosen on), validation (where training chose its epoch "
            "and output gain, and the routing threshold is chosen), or all.",
        ),
    ] = "test",
    limit: Annotated[
        Optional[int],
        typer.Option(
            "--limit", min=1, metavar="N", help="At most this many photos per category: the first N after sorting."
        ),
    ] = None,
    threshold: options.Threshold = None,
    weights: options.Weights = [],
    classifier_weights: options.ClassifierWeights = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print every number (summary, routing, one record per photo) as JSON on standard output instead "
            "of the tables.",
        ),
    ] = False,
    plots: Annotated[
        Optional[Path],
        typer.Option(
            "--plots",
            metavar="FILE.png",
            help="Draw each metric's spread over the photos (box plots, every method beside gray) into this PNG.",
        ),
    ] = None,
    sheet: Annotated[
        Optional[Path],
        typer.Option(
            "--sheet",
            metavar="FILE.png",
            help="Write a PNG contact sheet of the best and worst photos by ΔE: gray | output | truth.",
        ),
    ] = None,
    sheet_count: Annotated[
        int,
        typer.Option(
            "--sheet-count", min=1, metavar="N", help="How many best and how many worst photos the sheet shows."
        ),
    ] = 6,
    work_size: options.WorkSize = None,
    saturation: options.Saturation = 1.0,
    device: options.InferenceDevice = "auto",
    threads: options.Threads = None,
    batch_size: options.BatchSize = 8,
    max_pixels: options.MaxPixels = 100.0,
    hints: Annotated[
        int,
        typer.Option(
            "--hints",
            min=0,
            max=100,
            metavar="N",
            help="Give each expert N colour hints per photo, drawn from its true colours (a seed per file), and "
            "score how many it honours (hints_honoured in --json: within ΔE 5 at the point).",
        ),
    ] = 0,
    recognition: Annotated[
        bool,
        typer.Option(
            "--recognition/--no-recognition",
            help="Score recognisability: how often a frozen ImageNet classifier (efficientnet_lite1, no training "
            "loss uses it) gives the same top-1 class on the output as on the true photo. "
            "Needs colorize-experts\\[eval].",
        ),
    ] = True,
) -> None:
    """Score colorization against colour photos, beside the gray baseline: PSNR, SNR, SSIM, RMSE,
    ΔE2000, ab AuC, recognisability, colourfulness.

    Examples:  colorize eval photos/ ·
    colorize eval photos/ --compare auto,general,people --sheet sheet.png --plots plots.png ·
    colorize eval photos/ --holdout 0.1 --json > scores.json
    """
    try:
        import skimage  # noqa: F401  (the metrics)

        if recognition:
            import torch  # noqa: F401  (the recognisability judge)
    except ImportError as error:
        fail(
            f"colorize eval needs {error.name or 'its extra'}: pip install 'colorize-experts[eval]'"
            + (" (or --no-recognition, which needs no torch)" if error.name == "torch" else "")
        )
    from colorize.pipelines.evaluate import (
        AUTO,
        Evaluation,
        EvaluationError,
        check_modes,
        find_samples,
        json_text,
        model_provenance,
        score,
    )
    from colorize.pipelines.photo_folders import DataError

    if expert is not None and compare is not None:
        fail("give --expert NAME or --compare A,B,..., not both")
    modes = [expert] if expert is not None else [m.strip() for m in (compare or AUTO).split(",") if m.strip()]
    for option, path in (("--sheet", sheet), ("--plots", plots)):
        if path is not None and path.is_dir():
            fail(f"{option} {path} is a folder; give a file name")  # found now, not after the whole run
        refuse_output_among_inputs(option, path, [data_dir], [])
    if sheet is not None and plots is not None and sheet.resolve() == plots.resolve():
        fail("--sheet and --plots name the same file; give each its own")
    if part != "test" and holdout is None:
        fail("--part chooses among held-out photos: give --holdout too (0.1 for the bundled models)")
    try:
        samples = find_samples(data_dir, holdout=holdout, limit=limit, part=part)
    except (DataError, EvaluationError) as error:
        fail(str(error))
    if holdout is not None and len(samples) < FEW_HELD_OUT:
        console.print(
            f"[yellow]warning[/]: only {len(samples)} photo(s) of {data_dir} are in the {part} part held out at "
            f"--holdout {holdout:g}: means over so few swing by chance; score a larger folder, or all of it "
            "(no --holdout) if no model here trained on it",
            highlight=False,
        )
    # Auto-routing needs the classifier; forced experts alone do not, so none is loaded for them.
    forced = None if AUTO in modes else modes[0] if modes else None
    pipeline = build_pipeline(forced, threshold, weights, classifier_weights, device, work_size, saturation, threads)
    try:
        check_modes(modes, pipeline)
    except EvaluationError as error:
        fail(str(error))

    evaluation = Evaluation(modes, pipeline, sheet_count=sheet_count if sheet else 0)
    recognizer = _judge(pipeline) if recognition else None
    if recognition and recognizer is None:
        console.print(
            "[dim]recognisability left out: its judge needs pip install 'colorize-experts\\[eval]'[/]",
            highlight=False,
        )
    scoring = score(
        pipeline,
        samples,
        modes,
        batch_size,
        int(max_pixels * 1e6),
        keep_images=sheet is not None,
        recognizer=recognizer,
        hints=hints,
    )
    elapsed = _run(scoring, evaluation, len(samples))
    if not evaluation.ok:
        fail(
            f"no photo could be scored ({len(evaluation.failed)} unreadable, {len(evaluation.skipped)} gray or toned)",
            EXIT_FAILED,
        )
    out = Console()  # the results go to stdout; progress and notes to stderr
    ok = len(evaluation.ok)
    if as_json:
        settings = {
            "data_dir": str(data_dir),
            "holdout": holdout,
            "part": part if holdout is not None else None,
            "limit": limit,
            "threshold": pipeline.policy.threshold,
            "work_size": work_size,
            "saturation": saturation,
            "providers": _provider_names(pipeline),
            "threads": pipeline.threads,
            "batch_size": batch_size,
            "hints": hints,
            "seconds": round(elapsed, 3),
            "models": model_provenance(pipeline, modes),
        }
        typer.echo(json_text(evaluation.as_json(settings)))
    else:
        out.print(_metrics_table(evaluation, data_dir))
        if (routing := evaluation.routing()) is not None:
            out.print(_routing_table(routing))
    console.print(
        f"{ok} photos scored in {elapsed:.1f} s ({elapsed / ok:.3f} s per photo); "
        f"{len(evaluation.skipped)} skipped (gray or toned truth), {len(evaluation.failed)} unreadable",
        highlight=False,
    )
    if sheet is not None and evaluation.write_sheet(sheet) is not None:
        console.print(f"contact sheet in [bold]{sheet}[/]", highlight=False)
    if plots is not None:
        from colorize.pipelines.evaluate import GRAY
        from colorize.pipelines.plots import metric_plots

        rows = {GRAY: [s.gray for s in evaluation.ok]}
        rows.update({mode: [s.modes[mode].metrics for s in evaluation.ok] for mode in evaluation.modes})
        console.print(f"metric plots in [bold]{metric_plots(rows, plots)}[/]", highlight=False)
    if evaluation.failed:
        raise typer.Exit(EXIT_FAILED)


def _judge(pipeline):
    """The recognisability judge (torch), on the GPU where the networks run on one; None when
    it or its weights are not installed."""
    try:
        import torch

        from colorize.pipelines.recognition import Recognizer
    except ImportError:
        return None
    if "CUDAExecutionProvider" in _provider_names(pipeline) and torch.cuda.is_available():
        return Recognizer.available("cuda")
    # One intra-op thread: it judges a few photos at a time, and OpenMP's fork/join stalls
    # badly whenever another program holds a core (measured: twice the time with two threads).
    torch.set_num_threads(1)
    return Recognizer.available("cpu")


def _provider_names(pipeline) -> list[str]:
    """onnxruntime's providers by name (an entry may be a (name, options) pair)."""
    return [provider if isinstance(provider, str) else provider[0] for provider in pipeline.providers]


def _run(scoring, evaluation, total: int) -> float:
    """Consume the scoring generator under a progress bar; returns the seconds it took."""
    started = time.perf_counter()
    with progress_bar() as progress:
        task = progress.add_task("evaluating", total=total, info="")
        for scored in scoring:
            evaluation.add(scored)
            if scored.error is not None:
                style = "red]failed" if scored.failed else "yellow]skipped"
                progress.console.print(f"[{style}[/] {scored.sample.path}: {scored.error}", highlight=False)
            rate = len(evaluation.scored) / max(1e-9, time.perf_counter() - started)
            progress.update(task, advance=1, info=f"{rate:.2f} img/s")
    return time.perf_counter() - started


def _cell(value: float, fmt: str, baseline: float | None, higher_is_better: bool) -> str:
    text = fmt.format(value)
    if baseline is None or value == baseline:
        return text
    better = (value > baseline) == higher_is_better
    return f"[green]{text}[/]" if better else f"[red]{text}[/]"


def _metrics_table(evaluation, data_dir: Path) -> Table:
    from colorize.pipelines.evaluate import ALL, AUTO, GRAY

    summary = evaluation.summary()
    routed = summary[ALL].get(AUTO, {}).get("experts")
    caption = (
        "gray: the baseline, L alone (a = b = 0); green: better than gray, red: worse. PSNR in dB, RMSE in 8-bit "
        "levels; recog: share of photos an ImageNet classifier names as it names the true photo"
    )
    if routed:
        caption += "; auto routed to " + ", ".join(f"{k} {v}" for k, v in routed.items())
    # Compact (no outer edge; the box's one-space column rule, no padding) so 11 columns fit 80 characters.
    table = Table(title=f"colorize eval: {data_dir}", caption=caption, box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    table.add_column("category", min_width=min(16, max(map(len, summary))), no_wrap=True)
    # A long expert name folds onto a second line rather than pushing numbers off the edge.
    table.add_column(
        "method", min_width=min(10, max(len(m) for methods in summary.values() for m in methods)), overflow="fold"
    )
    table.add_column("n", justify="right", no_wrap=True)
    columns = [column for column in _COLUMNS if column[0] in summary[ALL][GRAY]]
    for title in [title for _, title, _, _ in columns] + ["colour", "truth", "ratio"]:
        table.add_column(title, justify="right", no_wrap=True, min_width=5)  # numbers are never cut
    for c, (category, methods) in enumerate(summary.items()):
        gray = methods[GRAY]
        for m, (method, numbers) in enumerate(methods.items()):
            is_gray = method == GRAY
            cells = [_cell(numbers[key], fmt, None if is_gray else gray[key], up) for key, _, fmt, up in columns]
            cells += [
                f"{numbers['colorfulness']:.1f}",
                f"{numbers['colorfulness_truth']:.1f}",
                f"{numbers['colorfulness_ratio']:.2f}",
            ]
            row = [category if m == 0 else "", method, str(numbers["images"]), *cells]
            table.add_row(
                *[f"[dim]{cell}[/]" for cell in row] if is_gray else row,
                end_section=m == len(methods) - 1 and c < len(summary) - 1,
            )
    return table


def _routing_table(routing: dict) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"routing (auto): {routing['accuracy']:.1%} to the folder's expert, "
        f"classifier top-1 {routing['classifier_accuracy']:.1%}, {routing['images']} photos",
        caption="rows: the photo's folder; columns: the expert it was routed to. Reasons: "
        + ", ".join(f"{k} {v}" for k, v in routing["reasons"].items()),
    )
    table.add_column("folder \\ routed to")
    for expert in routing["experts"]:
        table.add_column(expert, justify="right")
    for label, row in routing["confusion"].items():
        table.add_row(label, *[f"[bold]{n}[/]" if e == routing["expected"][label] else str(n) for e, n in row.items()])
    return table
