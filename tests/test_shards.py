"""One colorize auto run split in parts: --shard K/N (job arrays) and torchrun (one run, many processes).

Every photo is done by exactly one part, the parts together write what one run writes, and the
report accounts for every photo once, naming the rank that did it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SAFETY_TIMEOUT, Child
from PIL import Image
from typer.testing import CliRunner

from colorize.pipelines.cli import app
from colorize.pipelines.shards import Shard

FAST = ["--expert", "general", "--work-size", "64"]  # no classifier: the split is under test, not the routes


@pytest.fixture
def runner(isolated_home):
    return CliRunner()


@pytest.fixture
def scans(tmp_path, photos) -> Path:
    """Nine small gray photos of three formats, one broken file, in a folder and a sub-folder."""
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    for i in range(9):
        rgb = np.roll(photos[("astronaut", "coffee", "chelsea")[i % 3]], 7 * i, axis=1)
        where = folder / "sub" if i >= 6 else folder
        Image.fromarray(rgb).convert("L").save(where / f"p{i}.{('jpg', 'png', 'tif')[i % 3]}")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return folder


def _rows(report: Path) -> list[dict]:
    return [json.loads(line) for line in report.read_text().splitlines()]


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    return {
        p.relative_to(folder).as_posix(): np.asarray(Image.open(p).convert("RGB"))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_shard_is_every_nth_item_and_the_shards_cover_each_item_once():
    items = list(range(11))
    for count in (1, 2, 3, 5, 11, 12):
        parts = [Shard(k, count).take(items) for k in range(1, count + 1)]
        assert sorted(i for part in parts for i in part) == items, count
        assert max(map(len, parts)) - min(map(len, parts)) <= 1, "the parts are as even as they can be"
    assert Shard.parse("2/3").take(items) == [1, 4, 7, 10]
    assert Shard.of_rank(0, 2) == Shard(1, 2)


def test_the_shards_of_a_run_together_do_what_one_run_does(runner, scans, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    (tmp_path / "other").mkdir()
    Image.open(scans / "p0.jpg").save(tmp_path / "other" / "p0.jpg")  # refused before any photo is read
    inputs = [str(scans), str(tmp_path / "other" / "p0.jpg"), "-r", *FAST, "--batch-size", "1"]
    result = runner.invoke(app, ["auto", *inputs, "-o", str(whole)])
    assert result.exit_code == 1, result.output  # the broken file, and the output name taken twice
    rows = {}
    for k in (1, 2):
        rows[k] = tmp_path / f"r{k}.jsonl"
        result = runner.invoke(app, ["auto", *inputs, "-o", str(split), "--shard", f"{k}/2", "--report", str(rows[k])])
        assert result.exit_code == (1 if k == 1 else 0), result.output
        rows[k] = [Path(r["input"]).relative_to(tmp_path).as_posix() for r in _rows(rows[k])]
    # The run's order: the folder's files by name, then its sub-folder's; shard 2 has the 2nd, 4th, ...
    jobs = ["scans/broken.jpg", *(f"scans/p{i}.{('jpg', 'png', 'tif')[i % 3]}" for i in range(6))]
    jobs += [f"scans/sub/p{i}.{('jpg', 'png', 'tif')[i % 3]}" for i in range(6, 9)]
    assert rows[2] == jobs[1::2], rows[2]
    assert sorted(rows[1]) == sorted(jobs[0::2] + ["other/p0.jpg"]), "the first part reports what was refused"
    expected, got = _outputs(whole), _outputs(split)
    assert got.keys() == expected.keys() and len(got) == 9
    for name in expected:
        assert np.array_equal(got[name], expected[name]), name


@pytest.mark.parametrize("given", ["0/2", "3/2", "x", "1/0", "2", "1/2/3", "-1/2", ""])
def test_a_bad_shard_is_a_one_line_usage_error_before_any_model_loads(runner, scans, tmp_path, given):
    result = runner.invoke(app, ["auto", str(scans), "-o", str(tmp_path / "out"), "--shard", given])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: Invalid value for '--shard'") and result.output.count("\n") == 1, (
        result.output
    )
    assert not (tmp_path / "out").exists()


def test_parts_of_one_split_share_the_output_folder_and_nothing_else_does(runner, scans, tmp_path):
    from colorize.core.files import exclusive_folder

    out = tmp_path / "out"
    args = ["auto", str(scans / "p0.jpg"), str(scans / "p1.png"), "-o", str(out), *FAST]
    with exclusive_folder(out, part="1-of-2"):  # as shard 1/2 holds it while at work
        assert (out / ".colorize.part-1-of-2.lock").exists()
        same = runner.invoke(app, [*args, "--shard", "1/2"])
        assert same.exit_code == 2 and "part 1-of-2 of this run is already writing" in same.output, same.output
        whole = runner.invoke(app, args)
        assert whole.exit_code == 2 and "another colorize run is writing into" in whole.output, whole.output
        other = runner.invoke(app, [*args, "--shard", "2/2"])
        assert other.exit_code == 0, other.output
    assert sorted(p.name for p in out.iterdir()) == ["p1.png"], "lock files are removed"
    with exclusive_folder(out):  # as a whole run holds it
        part = runner.invoke(app, [*args, "--shard", "1/2"])
        assert part.exit_code == 2 and "another colorize run is writing into" in part.output, part.output
    assert os.listdir(out) == ["p1.png"]


NEEDS_TORCH = pytest.mark.needs_torch


@pytest.mark.parametrize(
    "given, environment, gpus, expected",
    [
        ("auto", {}, 2, "cuda"),
        ("auto", {"WORLD_SIZE": "4", "LOCAL_RANK": "1"}, 2, "cuda:1"),
        ("auto", {"WORLD_SIZE": "4", "LOCAL_RANK": "3"}, 2, "cuda:1"),  # 4 processes a node, 2 GPUs: two each
        ("cuda", {"WORLD_SIZE": "2", "LOCAL_RANK": "1"}, 2, "cuda:1"),
        ("cuda:0", {"WORLD_SIZE": "2", "LOCAL_RANK": "1"}, 2, "cuda:0"),  # named by the user: kept
        ("auto", {"WORLD_SIZE": "2", "LOCAL_RANK": "1"}, 0, "cpu"),
    ],
)
@pytest.mark.needs_torch
def test_each_torchrun_process_takes_its_own_gpu_for_training(monkeypatch, given, environment, gpus, expected):
    import torch

    from colorize.pipelines.cli_common import resolve_device

    for name in ("WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device(given) == expected


CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@pytest.mark.parametrize(
    "given, environment, gpus, expected",
    [
        ("auto", {}, 2, (CUDA, CPU)),
        ("cuda", {}, 2, (CUDA, CPU)),
        ("cpu", {}, 2, (CPU,)),
        ("auto", {}, 0, (CPU,)),
        pytest.param(
            "auto", {"WORLD_SIZE": "4", "LOCAL_RANK": "1"}, 2, ((CUDA, {"device_id": 1}), CPU), marks=NEEDS_TORCH
        ),
        # 4 processes a node, 2 GPUs: two each
        pytest.param(
            "auto", {"WORLD_SIZE": "4", "LOCAL_RANK": "3"}, 2, ((CUDA, {"device_id": 1}), CPU), marks=NEEDS_TORCH
        ),
        pytest.param(
            "cuda", {"WORLD_SIZE": "2", "LOCAL_RANK": "1"}, 2, ((CUDA, {"device_id": 1}), CPU), marks=NEEDS_TORCH
        ),
        ("auto", {"WORLD_SIZE": "2", "LOCAL_RANK": "1"}, 0, (CPU,)),
    ],
)
def test_each_torchrun_process_runs_its_networks_on_its_own_gpu(monkeypatch, given, environment, gpus, expected):
    """Inference's --device as onnxruntime providers. No GPU here: onnxruntime's CUDA provider
    is made to start (as onnxruntime-gpu's does on a GPU machine), and torch, which torchrun's
    processes have loaded, to count ``gpus``."""
    from colorize.core import onnx
    from colorize.pipelines.cli_common import onnx_providers

    for name in ("WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(onnx, "cuda_failure", lambda: None if gpus else onnx.NO_CUDA_BUILD)
    if "WORLD_SIZE" in environment and gpus:
        import torch

        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert onnx_providers(given) == expected


# ------------------------------------------------------------------ torchrun: one run, two processes


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"] + [
        "-m",
        "colorize",
        "auto",
        *map(str, args),
        *FAST,
    ]


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def _by_input(report: Path) -> dict[str, dict]:
    rows = _rows(report)
    by_input = {Path(row["input"]).name: row for row in rows}
    assert len(by_input) == len(rows), "a photo was reported twice"
    return by_input


@pytest.mark.needs_torch  # torchrun is torch's launcher
@pytest.mark.slow
def test_two_processes_write_what_one_writes_and_report_every_photo_once(scans, tmp_path, isolated_home):
    one, two = tmp_path / "one", tmp_path / "two"
    single = subprocess.run(
        [sys.executable, "-m", "colorize", "auto", str(scans), "-r", "-o", str(one), *FAST],
        capture_output=True,
        env=_environment(),
        timeout=SAFETY_TIMEOUT,
    )
    assert single.returncode == 1, single.stderr.decode()[-2000:]  # the broken file
    report = tmp_path / "r.jsonl"
    done = subprocess.run(
        _torchrun(scans, "-r", "-o", two, "--report", report),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_environment(),
        timeout=SAFETY_TIMEOUT,
    )
    output = done.stdout.decode()
    assert done.returncode == 1, output[-3000:]  # as one process: a photo failed
    rows = _by_input(report)
    assert set(rows) == {p.name for p in scans.rglob("*") if p.is_file()}
    assert {row["rank"] for row in rows.values()} == {0, 1}
    assert rows["broken.jpg"]["status"] == "failed" and "broken.jpg" in output
    assert output.count("colorize summary") == 1 and output.count("loading models") == 1, "only rank 0 talks"
    assert output.count("colorizing ") == 1 and "10/10 photos" in output, output[-3000:]
    written = {p.relative_to(two).as_posix(): p.read_bytes() for p in two.rglob("*") if p.is_file()}
    assert written == {p.relative_to(one).as_posix(): p.read_bytes() for p in one.rglob("*") if p.is_file()}


def _rank_pid(parent: int, rank: int) -> int | None:
    """The process that torchrun (``parent``) started as ``rank``, once it exists."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                if f"\0RANK={rank}\0" in "\0" + (entry / "environ").read_bytes().decode("utf-8", "replace"):
                    return int(entry.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


@pytest.mark.needs_torch  # torchrun is torch's launcher
@pytest.mark.slow
def test_a_killed_rank_costs_only_its_unfinished_photos_and_the_same_command_finishes_them(
    tmp_path, isolated_home, photos
):
    scans, out, report = tmp_path / "scans", tmp_path / "out", tmp_path / "r.jsonl"
    scans.mkdir()
    names = [f"s{i:02d}.png" for i in range(60)]
    for i, name in enumerate(names):
        Image.fromarray(np.roll(photos["astronaut"], 3 * i, axis=1)).convert("L").save(scans / name)
    command = _torchrun(scans, "-o", out, "--report", report, "--batch-size", "1")
    with Child(command, group=True, env=_environment()) as child:
        rank1 = None

        def rank1_wrote_one(output: str) -> bool:
            nonlocal rank1
            rank1 = rank1 or _rank_pid(child.pid, 1)
            return rank1 is not None and any((out / name).exists() for name in names[1::2])

        # Rank 1's photos are the 2nd, 4th, ...: kill it (as an OOM killer would) once it has written one.
        child.wait_for(rank1_wrote_one, "rank 1 had written a photo")
        try:
            os.kill(rank1, signal.SIGKILL)
        except ProcessLookupError:
            child.fail("rank 1 had exited before it could be killed")
        returncode, output = child.finish()
    assert returncode != 0, output[-3000:]
    rows = _by_input(report)
    assert set(rows) == set(names), "every photo is in the report of the broken run too"
    lost = {n for n, row in rows.items() if row["skip_reason"] == "not done (rank 1 stopped)"}
    assert lost and lost <= set(names[1::2]), (lost, output[-3000:])
    for name, row in rows.items():
        has_output = row["status"] == "ok" or row["skip_reason"] == "output exists"
        assert has_output == (out / name).exists(), (name, row)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir() if not p.name.startswith(".")}
    for name in before:
        Image.open(out / name).load()  # whole

    again = subprocess.run(command, capture_output=True, env=_environment(), timeout=SAFETY_TIMEOUT)
    assert again.returncode == 0, again.stderr.decode()[-3000:]
    rows = _by_input(report)
    assert set(rows) == set(names)
    assert {n for n, row in rows.items() if row["status"] == "ok"} == set(names) - set(before)
    for name in before:
        assert (rows[name]["skip_reason"], rows[name]["expert"]) == ("output exists", "general"), rows[name]
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir() if not p.name.startswith(".")}
    assert set(after) == set(names) and {n: after[n] for n in before} == before, "a finished photo was written twice"
