"""Tables for the terminal, and the targets, each marked met or not met."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

STAGE_COLUMNS = ("decode", "lightness", "classify", "expert", "compose", "encode")
RSS_LIMIT_MB = 1536  # 1.5 GB, any command-line run
ONE_PHOTO_RSS_MB = 300  # colorize auto on one 2 MP photo
COLD_START_S = 1.0  # colorize auto photo_2mp.jpg -o out.jpg, a fresh process
FOLDER_RATE = 20.0  # photos/s, a folder of 200 x 2 MP, the whole run
FLAT_SLACK = 1.10  # "flat": the second half of a run peaks at most 10% above the first
HINT_SLACK = 1.10  # "speed with hints equals speed without": within 10%
PARITY_LEVELS = 1  # output within one 8-bit level of the former torch engine's


def targets(results: dict) -> list[dict]:
    """Each target of the speed issues: what was measured, the limit, met or not."""
    stages = results["stages"].get(next(iter(results["stages"]), ""), {})
    cli = results["cli"]
    rows = []

    def add(name: str, value, limit, met: bool | None, unit: str = "") -> None:
        rows.append({"target": name, "measured": value, "limit": limit, "unit": unit, "met": met})

    cold = results.get("cold_start")
    if cold:
        command = cold["command"]
        add(
            "cold start: colorize auto photo_2mp.jpg -o out.jpg (fresh process, median)",
            command["median_s"],
            COLD_START_S,
            command["median_s"] <= COLD_START_S,
            "s",
        )
        add(
            "peak memory, colorize auto on one 2 MP photo",
            command["peak_rss_mb"],
            ONE_PHOTO_RSS_MB,
            command["peak_rss_mb"] <= ONE_PHOTO_RSS_MB,
            "MB",
        )
        imported = cold["imports"]["torch_imported"] or any(
            size.get("torch_imported") for sizes in results["stages"].values() for size in sizes.values()
        )
        add("torch imported by colorize auto or the Pipeline", "yes" if imported else "no", "no", not imported)
    for size, limit in (("2MP", 0.25), ("12MP", 1.0)):
        if size in stages:
            total = stages[size]["median"]["total"]
            add(f"{size.replace('MP', ' MP')} photo end to end (Pipeline API, warm)", total, limit, total <= limit, "s")
    if "12MP" in stages:
        ratio = stages["12MP"]["median"]["total"] / stages["12MP"]["median"]["floor"]
        add("12 MP total / I/O floor", ratio, 3.0, ratio <= 3.0, "x")
    folder = cli["folder_2MP"]
    add(
        f"folder of {folder['images']} x 2 MP (colorize auto, whole run)",
        folder["images_per_s"],
        FOLDER_RATE,
        folder["images_per_s"] >= FOLDER_RATE and folder["written"] == folder["images"],
        "images/s",
    )
    peak = max(run["peak_rss_mb"] for run in cli.values())
    add("peak RSS (all CLI runs)", peak, RSS_LIMIT_MB, peak <= RSS_LIMIT_MB, "MB")
    flat = folder["rss_flat"]
    if flat["first_half_mb"]:
        grew = flat["second_half_mb"] / flat["first_half_mb"]
        add("RSS flat in the number of images (2nd half / 1st half peak)", grew, FLAT_SLACK, grew <= FLAT_SLACK, "x")
    for flag, timing in results["startup"].items():
        add(f"colorize {flag}", timing["median_s"], 1.0, timing["median_s"] <= 1.0, "s")
    parity = results.get("parity")
    if parity:
        add(
            f"output vs the former torch engine ({len(parity['photos'])} photos)",
            parity["max_levels"],
            PARITY_LEVELS,
            parity["max_levels"] <= PARITY_LEVELS,
            "8-bit levels",
        )
        add(
            "routes equal to the former torch engine's",
            "yes" if parity["routes_equal"] else "no",
            "yes",
            parity["routes_equal"],
        )
    networks = results["networks"]
    nets = networks["architectures"]
    default = networks["default_expert"]["architecture"]
    if default in nets and "unet_seed" in nets:
        # As colorize runs its experts: onnxruntime, one thread (each architecture gets the same).
        ratio = nets["unet_seed"]["ms_onnx_1_thread"] / nets[default]["ms_onnx_1_thread"]
        add(f"default expert ({default}) forward vs unet_seed (onnxruntime)", ratio, 2.0, ratio >= 2.0, "x faster")
    hints = networks.get("hint_planes", {})
    if "with hint planes" in hints and "without" in hints:
        ratio = hints["with hint planes"]["ms_1_thread"] / hints["without"]["ms_1_thread"]
        add("expert with hint planes (4 in) / without (1 in), forward", ratio, HINT_SLACK, ratio <= HINT_SLACK, "x")
    spread = networks.get("spread_hints", {}).get("ms", {})
    if "5 hints" in spread and "0 hints" in spread:
        ratio = spread["5 hints"] / spread["0 hints"]
        add("photo with 5 hints / without, Pipeline.predict", ratio, HINT_SLACK, ratio <= HINT_SLACK, "x")
    return rows


def render(results: dict) -> None:
    console = Console(width=160)
    load = results["load"]
    machine = results["machine"]
    console.print(
        f"[bold]colorize {machine['colorize']}[/] on {machine['cpu']} ({machine['cores']} cores), "
        f"onnxruntime {machine['onnxruntime']}, numpy {machine['numpy']}"
    )
    other = load.get("other_processes_cores")
    if other is not None:
        style = "red" if other > 0.2 else "green"
        console.print(
            f"[{style}]other processes used {other:.2f} cores on average during the run[/] "
            f"(load average {load['loadavg_start'][0]:.2f} -> {load['loadavg_end'][0]:.2f}); "
            "absolute times are pessimistic when this is above ~0.2"
        )
    if "cold_start" in results:
        _cold_start_table(console, results["cold_start"])
    _stage_table(console, results["stages"])
    _kernel_table(console, results["kernels"])
    _network_tables(console, results["networks"])
    if "parity" in results:
        _parity_table(console, results["parity"])
    _cli_table(console, results["cli"], results["startup"])
    _target_table(console, results["targets"])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _stage_table(console: Console, stages: dict) -> None:
    table = Table(title="per photo, wall ms (median; warm; Pipeline API + core.images, JPEG in and out)")
    for column in (
        "configuration",
        "size",
        *STAGE_COLUMNS,
        "total",
        "I/O floor",
        "total/floor",
        "CPU s",
        "peak RSS MB",
    ):
        table.add_column(column, justify="right" if column not in ("configuration",) else "left")
    for config, sizes in stages.items():
        for size, data in sizes.items():
            m = data["median"]
            table.add_row(
                config,
                size,
                *(_ms(m[s]) for s in STAGE_COLUMNS),
                _ms(m["total"]),
                _ms(m["floor"]),
                f"{m['total'] / m['floor']:.1f}",
                f"{m['cpu']:.2f}",
                f"{data['peak_rss_mb']:.0f}",
            )
        table.add_section()
    console.print(table)


def _kernel_table(console: Console, kernels: dict) -> None:
    table = Table(title="full-resolution kernels, 12 MP, one photo (ms, median)")
    for column in ("kernel", "variant", "ms", "speed-up", "check"):
        table.add_column(column)
    for row in kernels["rows"]:
        first = next(iter(row["ms"].values()))
        for index, (variant, ms) in enumerate(row["ms"].items()):
            check = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["check"].items())
            table.add_row(
                row["kernel"] if index == 0 else "",
                variant,
                f"{ms:.0f}",
                f"{first / ms:.1f}x",
                check if index == 0 else "",
            )
        table.add_section()
    console.print(table)


def _cold_start_table(console: Console, cold: dict) -> None:
    command = cold["command"]
    table = Table(
        title=f"cold start: colorize auto on one 2 MP photo, each a fresh process (median of {command['runs']}; "
        f"max {command['max_s']:.2f} s, first {command['first_s']:.2f} s; peak RSS {command['peak_rss_mb']:.0f} MB)"
    )
    for column in ("stage (each includes the ones above)", "total s", "adds s"):
        table.add_column(column, justify="left" if column.startswith("stage") else "right")
    previous = 0.0
    for name, seconds in cold["stages_s"].items():
        table.add_row(name, f"{seconds:.2f}", f"{seconds - previous:.2f}")
        previous = seconds
    table.add_row(
        "colorize auto, output written", f"{command['median_s']:.2f}", f"{command['median_s'] - previous:.2f}"
    )
    console.print(table)
    imports = cold["imports"]
    top = ", ".join(f"{name} {seconds:.2f}" for name, seconds in list(imports["by_package_s"].items())[:6])
    torch = "[red]torch IMPORTED[/]" if imports["torch_imported"] else "[green]no torch[/]"
    console.print(
        f"imports of the command (-X importtime): {imports['total_s']:.2f} s, {imports['modules']} modules, {torch}; "
        f"by top-level package, s: {top}"
    )


def _network_tables(console: Console, networks: dict) -> None:
    table = Table(
        title=f"expert architectures, forward pass at {networks['work_size']} px, batch {networks['batch']}; "
        f"random weights; torch on {networks['intra_op_threads']} thread(s), onnxruntime on 1"
    )
    columns = ("architecture", "parameters (M)", "ab output", "torch ms", "torch channels-last ms", "onnxruntime ms")
    for column in (*columns, "vs default (onnxruntime)"):
        table.add_column(column, justify="right" if column != "architecture" else "left")
    default = networks["default_expert"]["architecture"]
    base = networks["architectures"].get(default, {}).get("ms_onnx_1_thread")
    for name, data in networks["architectures"].items():
        ratio = f"{data['ms_onnx_1_thread'] / base:.1f}x slower" if base and name != default else "(default)"
        table.add_row(
            name,
            f"{data['parameters_m']:.2f}",
            "x".join(map(str, data["output"])),
            f"{data['ms']:.0f}",
            f"{data['ms_channels_last']:.0f}",
            f"{data['ms_onnx_1_thread']:.0f}",
            ratio,
        )
    console.print(table)
    cores = networks.get("cores", 1)
    counts = sorted({1, cores})
    table = Table(title="bundled models in onnxruntime, forward ms (median; a real photo's L at the input size)")
    for column in ("model", "architecture", "input px", *(f"{n} thread{'s' * (n > 1)}" for n in counts)):
        table.add_column(column, justify="left" if column in ("model", "architecture") else "right")
    for name, data in networks.get("bundled", {}).items():
        table.add_row(
            name, data["architecture"], str(data["work_size"]), *(f"{data[f'ms_{n}_thread']:.0f}" for n in counts)
        )
    for name, data in networks.get("hint_planes", {}).items():
        table.add_row(
            f"{default}, random, {name} ({data['input_planes']} planes in)",
            default,
            str(networks["work_size"]),
            *(f"{data[f'ms_{n}_thread']:.0f}" for n in counts),
        )
    console.print(table)
    table = Table(
        title=f"the default expert ({networks['default_expert']['name']}), real weights, 1 thread: "
        "forward ms and the change to the output photos vs torch float32"
    )
    for column in ("engine", "ms", "ΔE mean", "ΔE max", "max 8-bit levels"):
        table.add_column(column)
    for name, data in networks.get("engines", {}).items():
        table.add_row(
            name,
            f"{data['ms']:.0f}",
            f"{data['delta_e_mean']:.4f}",
            f"{data['delta_e_max']:.3f}",
            str(data["max_levels"]),
        )
    console.print(table)
    spread = networks.get("spread_hints")
    if spread:
        table = Table(title=f"Pipeline.predict with colour hints, {spread['megapixels']:.2f} MP photo (ms, median)")
        for column in spread["ms"]:
            table.add_column(column, justify="right")
        table.add_row(*(f"{ms:.1f}" for ms in spread["ms"].values()))
        console.print(table)


def _parity_table(console: Console, parity: dict) -> None:
    table = Table(title="colorize auto's 8-bit output vs the former torch engine's steps, per photo")
    for column in ("photo", "max levels", "values differing", "expert", "torch engine's expert"):
        table.add_column(column)
    for path, data in parity["photos"].items():
        name = "/".join(path.split("/")[-2:])
        table.add_row(
            name,
            str(data["max_levels"]),
            f"{data['share_differing']:.2e}",
            data["expert"],
            data["torch_expert"],
        )
    console.print(table)


def _cli_table(console: Console, cli: dict, startup: dict) -> None:
    table = Table(title="command line (child processes; wall includes start-up and model loading)")
    for column in ("run", "photos", "wall s", "images/s", "steady images/s", "cores busy", "peak RSS MB"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for flag, timing in startup.items():
        table.add_row(f"colorize {flag}", "", f"{timing['median_s']:.2f} (max {timing['max_s']:.2f})", "", "", "", "")
    for name, run in cli.items():
        steady = run.get("steady_images_per_s")
        table.add_row(
            f"colorize auto: {name}",
            f"{run['written']}/{run['images']}",
            f"{run['wall_s']:.2f}",
            f"{run['images_per_s']:.2f}",
            f"{steady:.2f}" if steady else "",
            f"{run['cores_busy']:.2f}",
            f"{run['peak_rss_mb']:.0f}",
        )
    console.print(table)


def _target_table(console: Console, rows: list[dict]) -> None:
    table = Table(title="targets (2-core CPU, default settings, JPEG in and out)")
    for column in ("target", "measured", "limit", "met"):
        table.add_column(column)
    for row in rows:
        met = "[green]met[/]" if row["met"] else "[red]NOT met[/]"
        measured = row["measured"]
        shown = f"{measured:.2f}" if isinstance(measured, float) else str(measured)
        table.add_row(row["target"], f"{shown} {row['unit']}".strip(), f"{row['limit']} {row['unit']}".strip(), met)
    console.print(table)
