"""colorize auto's guards around what it writes (issue #35): the report never replaces a photo
and never ends mid-line, impossible names and unwritable places are one-line usage errors,
and names read from model files or routing tables reach the terminal escaped."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import SAFETY_TIMEOUT
from PIL import Image
from typer.testing import CliRunner

from colorize.core.locations import bundled_weights_dir
from colorize.pipelines.cli import app


@pytest.fixture
def runner(isolated_home):
    return CliRunner()


def _one_line_usage_error(result, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


# 1. --report never names a photo -------------------------------------------------------------


@pytest.mark.parametrize("which", ["existing output", "output to be written", "input", "not a report"])
def test_a_report_never_replaces_a_photo_of_the_run_or_a_file_that_is_not_a_report(
    runner, gray_folder, tmp_path, which
):
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "chelsea.jpg"  # an output a first run made: this run would skip it
    Image.open(gray_folder / "chelsea.jpg").save(earlier)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    report = {
        "existing output": earlier,
        "output to be written": out / "coffee.jpg",
        "input": gray_folder / "rocket.jpg",
        "not a report": notes,
    }[which]
    before = report.read_bytes() if report.exists() else None
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--report", str(report)])
    _one_line_usage_error(result, f"--report {report}")
    assert (report.read_bytes() if report.exists() else None) == before


def test_an_earlier_report_or_an_empty_file_may_be_the_report(runner, gray_folder, tmp_path):
    photo = gray_folder / "odd.png"
    for name, text in (("earlier.jsonl", None), ("empty.jsonl", "")):
        report = tmp_path / name
        if text is None:  # a real report of an earlier run
            arguments = ["auto", str(photo), "-o", str(tmp_path / "first"), "--expert", "general"]
            assert runner.invoke(app, [*arguments, "--report", str(report)]).exit_code == 0
        else:
            report.write_text(text)
        out = tmp_path / f"out-{name}"
        arguments = ["auto", str(photo), "-o", str(out), "--expert", "general", "--report", str(report)]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        (row,) = map(json.loads, report.read_text().splitlines())
        assert row["status"] == "ok" and row["output"] == str(out / "odd.png")


# 13. a report on a full disk -----------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full (every write: no space)")
def test_a_report_on_a_full_disk_stops_with_one_line_and_the_run_goes_on_to_its_summary(runner, gray_folder, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["auto", str(gray_folder), "-o", str(out), "--expert", "general", "--report", "/dev/full"]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, OSError), result.exception
    said = [line for line in result.output.splitlines() if "/dev/full" in line]
    assert len(said) == 1 and "No space left on device" in said[0], result.output
    assert "colorize summary" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in gray_folder.iterdir())


_FILLING_DISK = """
import resource, signal, sys
from pathlib import Path
from colorize.pipelines.batch import Outcome, Tally

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG), as on a full disk
tally = Tally.writing(Path(sys.argv[1]))
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
for i in range(10):
    try:
        tally.add(Outcome(Path(f"photo{i:02d}.jpg"), None, "skipped", "already colour"))
    except OSError as error:
        print("raised", error)
tally.close()
print("counted", tally.done, "report error:", tally.report_error)
"""


def test_a_report_that_fills_the_disk_ends_with_a_whole_row(tmp_path):
    # The file-size limit cuts a write short mid-row, then fails the next one: what a disk
    # that fills does, on any file system, without filling one.
    report = tmp_path / "r.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _FILLING_DISK, str(report)], capture_output=True, text=True, timeout=SAFETY_TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.endswith("\n") and len(text.encode()) < 1000, text
    rows = [json.loads(line) for line in text.splitlines()]
    assert [row["input"] for row in rows] == [f"photo{i:02d}.jpg" for i in range(len(rows))] and rows
    assert "raised" not in done.stdout and "counted 10" in done.stdout and "File too large" in done.stdout, done.stdout


# 15. usage errors that crashed ---------------------------------------------------------------


def test_a_suffix_too_long_for_any_file_name_is_a_usage_error(runner, gray_folder, tmp_path):
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--suffix", "_" * 250])
    _one_line_usage_error(result, "--suffix", "255")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["c" * 252 + ".jpg", "d" * 256 + "/out"], ids=["file", "folder"])
def test_an_output_name_too_long_to_make_is_a_usage_error(runner, gray_folder, tmp_path, name):
    result = runner.invoke(app, ["auto", str(gray_folder / "odd.png"), "-o", str(tmp_path / name)])
    _one_line_usage_error(result, "256 bytes", "255")


def test_a_photo_whose_output_name_is_too_long_fails_alone(runner, gray_folder, tmp_path):
    long_name = "p" * 248 + ".png"  # a legal name; with the suffix, 4 bytes too long
    Image.open(gray_folder / "odd.png").save(gray_folder / long_name)
    out = tmp_path / "o"
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--suffix", "_col", "--expert", "general"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and long_name in failed[0] and "too long" in failed[0], result.output
    assert len(list(out.iterdir())) == 5


def test_a_shard_count_too_large_for_a_part_name_is_a_usage_error(runner, gray_folder, tmp_path):
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--shard", "1/" + "9" * 250])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "--shard" in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("place", ["/proc/colorize-out", "/sys/colorize-out"])
def test_an_output_folder_that_cannot_be_made_is_a_usage_error(runner, gray_folder, place):
    # /proc and /sys refuse new folders even to root (tests here run as root: chmod would not).
    if not os.path.isdir(os.path.dirname(place)):
        pytest.skip(f"no {os.path.dirname(place)} here")
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", place, "--expert", "general"])
    errors = [line for line in result.output.splitlines() if line != "loading models…"]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert (
        errors[0].startswith(f"error: cannot write into the output folder {place}: ") and "Traceback" not in errors[0]
    )


def test_a_routing_table_nested_too_deeply_is_an_error_naming_its_file(tmp_path):
    from colorize.router import RoutingConfigError
    from colorize.router.policy import read_routing

    routing = tmp_path / "routing.toml"
    routing.write_text("threshold = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(RoutingConfigError, match=f"^{re.escape(str(routing))}: .*nested too deeply"):
        read_routing(routing)
    routing.write_text("threshold = = 1\n")
    with pytest.raises(RoutingConfigError, match=f"^{re.escape(str(routing))}: not valid TOML"):
        read_routing(routing)
    routing.write_bytes(b"threshold = 0.5 # \xff\n")
    with pytest.raises(RoutingConfigError, match=f"^{re.escape(str(routing))}: not valid TOML"):
        read_routing(routing)
    routing.write_text('threshold = 0.25\n[class_to_expert]\npeople = "general"\n')
    assert read_routing(routing) == {"threshold": 0.25, "class_to_expert": {"people": "general"}}


def test_a_user_routing_file_nested_too_deeply_is_one_line_naming_it(runner, gray_folder, tmp_path, isolated_home):
    isolated_home.mkdir(parents=True)
    routing = isolated_home / "routing.toml"
    routing.write_text("threshold = " + "[" * 5000 + "]" * 5000 + "\n")
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.output.startswith("loading models…\nerror: "), result.output
    assert result.output.count("\n") == 2 and f"{routing}: " in result.output, result.output


# 23. -o NAME.EXT in a format colorize does not write -----------------------------------------


@pytest.mark.parametrize("name", ["hem.gif", "scan.PDF"])
def test_an_output_named_in_a_format_we_do_not_write_is_refused(runner, gray_folder, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    for given in (gray_folder, gray_folder / "odd.png"):
        result = runner.invoke(app, ["auto", str(given), "-o", name])
        _one_line_usage_error(result, f"--output {name}", ".jpg", ".png", ".tif", ".webp")
        assert not (tmp_path / name).exists()


def test_an_existing_folder_with_an_image_extension_is_still_an_output_folder(gray_folder, tmp_path):
    from colorize.pipelines.batch import plan

    folder = tmp_path / "hem.gif"
    folder.mkdir()
    work = plan([str(gray_folder / "odd.png")], folder)
    assert [job.output for job in work.jobs] == [folder / "odd.png"] and not work.into_file


# 6. names from model files and routing tables, escaped ---------------------------------------

HOSTILE = "\x1b]0;pwned\x07\x1b[41mred"  # retitles the terminal, paints it red


@pytest.fixture
def hostile_expert(tmp_path):
    weights = tmp_path / "mine.onnx"
    weights.write_bytes((bundled_weights_dir() / "people.onnx").read_bytes())
    return ["--weights", f"{HOSTILE}={weights}"]


def _escaped(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output, repr(output)
    assert "\\x1b]0;pwned\\x07\\x1b[41mred" in output, output


def test_auto_verbose_shows_an_expert_name_escaped(runner, gray_folder, tmp_path, hostile_expert):
    arguments = ["auto", str(gray_folder / "odd.png"), "-o", str(tmp_path / "o"), "-v", "--expert", HOSTILE]
    result = runner.invoke(app, [*arguments, *hostile_expert], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    _escaped(result.output)


def test_classify_shows_an_expert_name_from_the_routing_table_escaped(
    runner, gray_folder, isolated_home, hostile_expert
):
    isolated_home.mkdir(parents=True)
    table = "".join(f'{label} = "{json.dumps(HOSTILE)[1:-1]}"\n' for label in ("landscape", "people", "general"))
    (isolated_home / "routing.toml").write_text(f"[class_to_expert]\n{table}")
    result = runner.invoke(app, ["classify", str(gray_folder / "odd.png"), *hostile_expert], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    _escaped(result.output)
