"""Tables for the terminal, and the targets, each marked met or not met."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

STAGE_COLUMNS = ("decode", "lightness", "classify", "expert", "compose", "encode")
RSS_LIMIT_MB = 1536  # 1.5 GB
FLAT_SLACK = 1.10  # "flat": the second half of a run peaks at most 10% above the first


def targets(results: dict) -> list[dict]:
    """Each target of the speed issue: what was measured, the limit, met or not."""
    stages = results["stages"].get("default", {})
    cli = results["cli"]
    rows = []

    def add(name: str, value, limit, met: bool | None, unit: str = "") -> None:
        rows.append({"target": name, "measured": value, "limit": limit, "unit": unit, "met": met})

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
        6.0,
        folder["images_per_s"] >= 6.0 and folder["written"] == folder["images"],
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
    nets = results["networks"]["architectures"]
    default = results["networks"]["default_expert"]["architecture"]
    if default in nets and "unet_seed" in nets:
        # As the pipeline runs its expert: channels-last (each architecture gets the same).
        ratio = nets["unet_seed"]["ms_channels_last"] / nets[default]["ms_channels_last"]
        add(f"default expert ({default}) forward vs unet_seed", ratio, 2.0, ratio >= 2.0, "x faster")
    return rows


def render(results: dict) -> None:
    console = Console(width=160)
    load = results["load"]
    machine = results["machine"]
    console.print(
        f"[bold]colorize {machine['colorize']}[/] on {machine['cpu']} ({machine['cores']} cores), torch "
        f"{machine['torch']}"
    )
    other = load.get("other_processes_cores")
    if other is not None:
        style = "red" if other > 0.2 else "green"
        console.print(
            f"[{style}]other processes used {other:.2f} cores on average during the run[/] "
            f"(load average {load['loadavg_start'][0]:.2f} -> {load['loadavg_end'][0]:.2f}); "
            "absolute times are pessimistic when this is above ~0.2"
        )
    _stage_table(console, results["stages"])
    _kernel_table(console, results["kernels"])
    _network_tables(console, results["networks"])
    _cli_table(console, results["cli"], results["startup"])
    _target_table(console, results["targets"])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _stage_table(console: Console, stages: dict) -> None:
    table = Table(title="per photo, wall ms (median; warm; Pipeline API + imageio, JPEG in and out)")
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


def _network_tables(console: Console, networks: dict) -> None:
    table = Table(
        title=f"expert networks, forward pass at {networks['work_size']} px, batch {networks['batch']}, "
        f"{networks['intra_op_threads']} thread(s); random weights"
    )
    for column in ("architecture", "parameters (M)", "ab output", "ms", "ms channels-last", "vs default"):
        table.add_column(column, justify="right" if column != "architecture" else "left")
    default = networks["default_expert"]["architecture"]
    base = networks["architectures"].get(default, {}).get("ms_channels_last")
    for name, data in networks["architectures"].items():
        ratio = f"{data['ms_channels_last'] / base:.1f}x slower" if base and name != default else "(default)"
        table.add_row(
            name,
            f"{data['parameters_m']:.2f}",
            "x".join(map(str, data["output"])),
            f"{data['ms']:.0f}",
            f"{data['ms_channels_last']:.0f}",
            ratio,
        )
    console.print(table)
    table = Table(
        title=f"options on the real default expert ({networks['default_expert']['name']}): "
        "forward ms and CIEDE2000 of the output photos vs float32"
    )
    for column in ("option", "ms", "ΔE mean", "ΔE max", "note"):
        table.add_column(column)
    for name, data in networks["options"].items():
        if "error" in data:
            table.add_row(name, "-", "-", "-", data["error"])
            continue
        note = f"compile {data['compile_s']:.0f} s" if "compile_s" in data else ""
        table.add_row(name, f"{data['ms']:.0f}", f"{data['delta_e_mean']:.4f}", f"{data['delta_e_max']:.3f}", note)
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
        table.add_row(row["target"], f"{row['measured']:.2f} {row['unit']}", f"{row['limit']} {row['unit']}", met)
    console.print(table)
