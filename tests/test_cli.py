"""The colorize CLI end to end, on real photos with the bundled models."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, colorize_without_torch, old_style_expert, tiny_expert
from PIL import Image
from skimage.color import rgb2lab
from typer.testing import CliRunner

from colorize.core.locations import bundled_weights_dir
from colorize.pipelines.cli import app

REPORT_KEYS = {"input", "output", "status", "expert", "confidence", "reason", "probabilities", "error"}


@pytest.fixture
def runner(isolated_home):
    return CliRunner()


def _report(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_auto_colorizes_a_folder_and_reports_every_photo(runner, gray_folder, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    rows = _report(report)
    assert len(rows) == 5
    for row in rows:
        assert REPORT_KEYS <= row.keys()
        assert row["status"] == "ok" and row["error"] is None
        assert row["expert"] in ("general", "landscape", "people")
        assert row["reason"] in ("classified", "low confidence → general")
        assert set(row["probabilities"]) == {"landscape", "people", "general"}
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in gray_folder.iterdir())
    assert Image.open(out / "odd.png").format == "PNG" and Image.open(out / "astronaut.jpg").format == "JPEG"
    assert "colorize summary" in result.output


def test_output_luminance_equals_input_luminance(runner, gray_folder, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["auto", str(gray_folder / "odd.png"), "-o", str(out)]).exit_code == 0
    gray = np.asarray(Image.open(gray_folder / "odd.png").convert("RGB"))
    colour = np.asarray(Image.open(out / "odd.png").convert("RGB"))
    diff = np.abs(rgb2lab(colour)[..., 0] - rgb2lab(gray)[..., 0])
    assert diff.mean() < 0.5 and diff.max() < 3, (diff.mean(), diff.max())
    assert np.abs(colour.astype(int) - gray.astype(int)).max() > 0, "output has no colour at all"


def test_recursive_run_mirrors_the_tree(runner, gray_folder, tmp_path):
    nested = gray_folder / "1950s" / "summer"
    nested.mkdir(parents=True)
    (gray_folder / "astronaut.jpg").rename(nested / "astronaut.jpg")
    out = tmp_path / "out"
    result = runner.invoke(app, ["auto", str(gray_folder), "-r", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "1950s" / "summer" / "astronaut.jpg").is_file()
    flat = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "flat")])
    assert not (tmp_path / "flat" / "1950s").exists(), flat.output


def test_forced_expert_is_used_for_every_photo(runner, gray_folder, tmp_path):
    report = tmp_path / "r.jsonl"
    result = runner.invoke(
        app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--expert", "people", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert {(r["expert"], r["reason"]) for r in _report(report)} == {("people", "forced")}


def test_unknown_expert_is_a_one_line_error_listing_names(runner, gray_folder, tmp_path):
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--expert", "portraits"])
    assert result.exit_code == 2
    assert "unknown expert 'portraits'" in result.output and "general, landscape, people" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "option, message",
    [
        (["--work-size", "31"], "'--work-size': Input should be greater than or equal to 32"),
        (["--saturation", "-1"], "'--saturation': Input should be greater than or equal to 0"),
    ],
)
def test_out_of_range_work_size_and_saturation_are_one_line_errors_before_any_output(
    runner, gray_folder, tmp_path, option, message
):
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), *option])
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "o").exists()


def test_threshold_one_falls_back_to_general(runner, gray_folder, tmp_path):
    report = tmp_path / "r.jsonl"
    result = runner.invoke(
        app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--threshold", "1", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    rows = _report(report)
    assert {r["expert"] for r in rows} == {"general"}
    assert any(r["reason"] == "low confidence → general" for r in rows)


def test_a_user_mapping_to_an_expert_not_installed_is_a_one_line_error_at_start(
    runner, gray_folder, tmp_path, isolated_home
):
    isolated_home.mkdir(parents=True, exist_ok=True)
    routing = isolated_home / "routing.toml"
    routing.write_text('threshold = 0.0\n[class_to_expert]\npeople = "portraits-1920s"\n')
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o")])
    errors = [line for line in result.output.splitlines() if line != "loading models…"]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert f"{routing}: [class_to_expert] people = 'portraits-1920s': no expert of that name" in result.output
    assert not (tmp_path / "o").exists()
    # Once the expert exists (here: named with --weights), the same file routes to it.
    mine = tmp_path / "mine.onnx"
    mine.write_bytes((bundled_weights_dir() / "people.onnx").read_bytes())
    report = tmp_path / "r.jsonl"
    arguments = ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--report", str(report)]
    result = runner.invoke(app, [*arguments, "--weights", f"portraits-1920s={mine}"])
    assert result.exit_code == 0, result.output
    assert "portraits-1920s" in {r["expert"] for r in _report(report)}


def test_a_failed_file_gives_exit_code_one_and_the_rest_still_run(runner, gray_folder, tmp_path):
    (gray_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    report = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--report", str(report)])
    assert result.exit_code == 1
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in _report(report)}
    assert rows["broken.jpg"]["status"] == "failed" and rows["broken.jpg"]["error"]
    assert sum(r["status"] == "ok" for r in rows.values()) == 5


def test_classify_routes_without_writing(runner, gray_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["classify", str(gray_folder), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 5 and all(line["reason"] for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_experts_lists_sources_checksums_and_metrics(runner):
    result = runner.invoke(app, ["experts", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"general", "landscape", "people", "(classifier)"} <= rows.keys()
    for row in rows.values():
        assert row["source"] == "bundled" and len(row["sha256"]) == 64 and row["architecture"]
        assert row["metrics"]


def test_version_and_help_work_without_models(runner):
    assert runner.invoke(app, ["--version"]).stdout.startswith("colorize ")
    help_text = runner.invoke(app, ["auto", "--help"]).stdout
    for option in ("--expert", "--threshold", "--report", "--output", "--recursive"):
        assert option in help_text


COMMANDS = (
    ["auto"],
    ["classify"],
    ["experts"],
    ["eval"],
    ["serve"],
    ["export"],
    ["train", "expert"],
    ["train", "classifier"],
)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_explains_itself_with_examples_and_human_value_names(runner, command):
    result = runner.invoke(app, [*command, "-h"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.stdout and f"colorize {' '.join(command)} " in result.stdout
    assert not re.search(r"<\w+(\[\w+\])?>", result.stdout), result.stdout  # typer's <list[str]>, <bool>


def test_expert_option_help_lists_the_installed_experts_including_the_users(tmp_path):
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    # As an earlier release installed it: a .safetensors file alone (named, not loaded, for --help).
    old_style_expert(home / "experts" / "portraits-1920s.safetensors")
    env = {**os.environ, "COLORIZE_HOME": str(home), "COLUMNS": "300"}
    for command in ("auto", "eval"):
        # A fresh process: the list is read when the command line is built.
        help_text = subprocess.run(
            [sys.executable, "-m", "colorize", command, "--help"], env=env, capture_output=True, text=True, check=True
        ).stdout
        assert "Installed: general, landscape, people, portraits-1920s." in help_text, help_text


@pytest.mark.parametrize(
    "text, words",
    [
        ("threshold = 7\n", "threshold must be a number from 0 to 1, got 7"),
        ("threshold = nan\n", "threshold must be a number from 0 to 1, got nan"),
        ("treshold = 0.8\n", "unknown key 'treshold'"),
        ("fallback = 3\n", "fallback must be an expert name"),
        ("[class_to_expert]\npeople = 1\n", "[class_to_expert] must map each class to an expert name"),
        ("threshold = = 0.8\n", "not valid TOML"),
    ],
)
def test_a_bad_user_routing_file_is_one_line_naming_it(runner, gray_folder, tmp_path, isolated_home, text, words):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "routing.toml").write_text(text)
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    # The error is found while the models load: it is the one line after the line saying so.
    assert result.output.startswith("loading models…\nerror: ") and result.output.count("\n") == 2, result.output
    assert str(isolated_home / "routing.toml") in result.output and words in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_a_user_routing_table_changes_only_the_classes_it_names(runner, gray_folder, tmp_path, isolated_home):
    from colorize.pipelines.inference import Pipeline

    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "routing.toml").write_text('[class_to_expert]\nlandscape = "landscape"\n')
    policy = Pipeline.from_config(home=isolated_home).policy
    assert policy.expert_for("landscape") == "landscape" and policy.expert_for("people") == "people"


def test_a_rerun_that_finds_its_outputs_says_where_they_are_and_how_to_redo_them(runner, gray_folder, tmp_path):
    out = tmp_path / "out"
    first = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out)])
    assert first.exit_code == 0 and "not redone" not in first.output, first.output
    (out / "odd.png").unlink()
    again = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--threshold", "0.8"])
    assert again.exit_code == 0, again.output
    hint = next(line for line in again.output.splitlines() if line.startswith("not redone"))
    assert f"4 photo(s) whose output already exists in {out}" in hint and "--on-exists overwrite" in hint


def test_a_fallback_shows_the_class_it_overruled_in_the_terminal_and_the_report(runner, gray_folder, tmp_path):
    report = tmp_path / "r.jsonl"
    result = runner.invoke(
        app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--threshold", "1", "-v", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    rows = [
        row for row in _report(report) if row["reason"] == "low confidence → general" and row["top_class"] != "general"
    ]
    assert rows, "no photo fell back from another class"
    for row in rows:
        top = row["top_class"]
        line = next(
            line for line in result.output.splitlines() if line.startswith("ok ") and Path(row["input"]).name in line
        )
        assert f"low confidence → general ({top} {row['probabilities'][top]:.0%})" in line, line


def test_classify_routes_a_photo_exactly_as_auto_does_and_skips_colour_ones(runner, tmp_path):
    from skimage import data

    photos = tmp_path / "big"
    photos.mkdir()
    for name in ("astronaut", "chelsea", "rocket"):  # larger than every network input: shrink matters
        Image.fromarray(getattr(data, name)()).convert("L").save(photos / f"{name}.png")
    Image.fromarray(data.coffee()).save(photos / "colour.png")
    classified = runner.invoke(app, ["classify", str(photos), "--json"])
    assert classified.exit_code == 0, classified.output
    routes = {Path(row["input"]).name: row for row in map(json.loads, classified.stdout.splitlines()) if row}
    assert set(routes) == {"astronaut.png", "chelsea.png", "rocket.png"}, "a colour photo was routed"
    report = tmp_path / "r.jsonl"
    assert runner.invoke(app, ["auto", str(photos), "-o", str(tmp_path / "o"), "--report", str(report)]).exit_code == 0
    for row in _report(report):
        name = Path(row["input"]).name
        if name in routes:
            assert row["expert"] == routes[name]["expert"]
            for label, p in row["probabilities"].items():
                assert p == pytest.approx(routes[name]["probabilities"][label], abs=1e-5), (name, label)


def test_the_progress_bar_says_what_it_counts_after_a_loading_line(runner, gray_folder, tmp_path):
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--expert", "general"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    loading = next(i for i, line in enumerate(lines) if line.startswith("loading models"))
    bar = next(i for i, line in enumerate(lines) if "5/5 photos" in line)
    assert loading < bar and " photos/s" in lines[bar] and "img/s" not in result.output, result.output


def test_the_summary_names_the_failed_photos_up_to_ten(runner, gray_folder, tmp_path):
    for i in range(12):
        (gray_folder / f"broken{i:02d}.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--expert", "general"])
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("12 failed: "))
    named = [f"broken{i:02d}.jpg" for i in range(12) if f"broken{i:02d}.jpg" in line]
    assert len(named) == 10 and line.endswith("and 2 more (see each one's reason above)"), line


def test_quiet_prints_only_failures_and_one_summary_line(runner, gray_folder, tmp_path):
    out = tmp_path / "o"
    quiet = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--expert", "general", "-q"])
    assert quiet.exit_code == 0, quiet.output
    (line,) = quiet.output.splitlines()
    assert re.fullmatch(
        rf"5 ok, 0 skipped, 0 failed in [0-9.]+ s \([0-9.]+ photos/s\); outputs in {re.escape(str(out))}", line
    )
    (gray_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    again = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--expert", "general", "--quiet"])
    assert again.exit_code == 1, again.output
    lines = again.output.splitlines()
    assert len(lines) == 2 and lines[0].startswith("failed ") and "broken.jpg" in lines[0], lines
    assert lines[1].startswith("0 ok, 5 skipped, 1 failed"), lines


def test_a_run_with_every_output_there_says_there_is_nothing_to_do(runner, gray_folder, tmp_path):
    out = tmp_path / "o"
    assert runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--expert", "general"]).exit_code == 0
    again = runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--expert", "general"])
    assert again.exit_code == 0, again.output
    expected = f"nothing to do: all 5 outputs exist in {out}; --on-exists overwrite to redo them"
    assert expected in again.output.splitlines(), again.output
    assert not [line for line in again.output.splitlines() if "photos/s" in line and "5/5 photos" not in line]
    assert "colorize summary" not in again.output


def test_a_signal_after_the_summary_leaves_the_exit_code_of_the_finished_run(
    runner, gray_folder, tmp_path, monkeypatch, ctrl_c_reaches_python
):
    import signal

    from colorize.pipelines import cli_auto

    summary = cli_auto._summary

    def then_ctrl_c(*args, **kwargs):
        summary(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # the user's Ctrl-C, a moment too late

    monkeypatch.setattr(cli_auto, "_summary", then_ctrl_c)
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--expert", "general"])
    assert result.exit_code == 0 and "interrupted" not in result.output, (result.exit_code, result.output)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handler is given back"


def test_a_rerun_reports_every_photo_it_skips_with_the_route_its_output_was_made_by(runner, gray_folder, tmp_path):
    out, first, again = tmp_path / "out", tmp_path / "first.jsonl", tmp_path / "again.jsonl"
    assert runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--report", str(first)]).exit_code == 0
    assert runner.invoke(app, ["auto", str(gray_folder), "-o", str(out), "--report", str(again)]).exit_code == 0
    made = {row["input"]: row for row in _report(first)}
    skipped = {row["input"]: row for row in _report(again)}
    assert skipped.keys() == made.keys() and len(made) == 5
    for name, row in skipped.items():
        assert (row["status"], row["skip_reason"], row["rank"]) == ("skipped", "output exists", 0), row
        assert row["output"] == made[name]["output"] and Path(row["output"]).is_file(), row
        assert (row["expert"], row["reason"]) == (made[name]["expert"], made[name]["reason"]), (row, made[name])
    assert {row["rank"] for row in made.values()} == {0}


# ------------------------------------------------------------------ models as files, and torch


@pytest.mark.needs_torch
def test_a_user_expert_that_is_only_a_safetensors_file_is_exported_beside_itself_and_used(
    runner, gray_folder, tmp_path, isolated_home
):
    weights = tiny_expert(isolated_home / "experts" / "tiny.safetensors")
    exported = weights.with_suffix(".onnx")
    report = tmp_path / "r.jsonl"
    arguments = ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--expert", "tiny", "--report", str(report)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert {row["expert"] for row in _report(report)} == {"tiny"}
    assert exported.is_file(), "the export is kept beside the file it was made from"
    made = exported.stat().st_mtime_ns
    again = runner.invoke(app, [*arguments, "--on-exists", "overwrite"])
    assert again.exit_code == 0, again.output
    assert exported.stat().st_mtime_ns == made, "exported again, though its ONNX file stood beside it"
    listed = {row["name"]: row for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)}
    assert listed["tiny"]["path"] == str(exported) and listed["tiny"]["source"] == "user"


def test_without_torch_an_expert_that_is_only_a_safetensors_file_is_one_line_saying_how_to_export_it(
    gray_folder, tmp_path
):
    home = tmp_path / "home"
    weights = old_style_expert(home / "experts" / "portraits-1920s.safetensors")
    out = tmp_path / "o"
    done = colorize_without_torch("auto", gray_folder, "-o", out, "--expert", "portraits-1920s", home=home)
    errors = [line for line in done.stderr.splitlines() if line != "loading models…"]
    assert done.returncode == 2 and len(errors) == 1, done.stdout + done.stderr
    assert errors[0].startswith("error: ") and str(weights) in errors[0], errors
    assert f"colorize export {weights}" in errors[0], errors
    assert not out.exists() and not weights.with_suffix(".onnx").exists()


def test_without_torch_auto_colorizes_the_examples_with_the_bundled_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output folder, ./colorized, lands here
    done = colorize_without_torch("auto", EXAMPLES, home=tmp_path / "home")
    assert done.returncode == 0 and "torch was loaded" not in done.stderr, done.stdout + done.stderr
    photos = sorted(path.name for path in EXAMPLES.iterdir() if path.suffix == ".jpg")
    assert photos and sorted(path.name for path in (tmp_path / "colorized").iterdir()) == photos


def test_experts_remove_and_restore_move_both_files_of_a_model(runner, isolated_home):
    folder = isolated_home / "experts"
    weights = old_style_expert(folder / "portraits-1920s.safetensors")
    exported = folder / "portraits-1920s.onnx"
    exported.write_bytes(bundled_weights_dir().joinpath("people.onnx").read_bytes())
    both = {path.name: path.read_bytes() for path in (weights, exported)}
    removed = runner.invoke(app, ["experts", "--remove", "portraits-1920s"])
    assert removed.exit_code == 0, removed.output
    assert not weights.exists() and not exported.exists(), "a file left behind would still stand for the model"
    assert {path.name: path.read_bytes() for path in (folder / "backup").iterdir()} == both
    assert "portraits-1920s" not in {
        row["name"] for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)
    }
    # A newer model of that name, ONNX alone, then swapped with the one set aside.
    exported.write_bytes(bundled_weights_dir().joinpath("landscape.onnx").read_bytes())
    restored = runner.invoke(app, ["experts", "--restore", "portraits-1920s"])
    assert restored.exit_code == 0, restored.output
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == both
    kept = list((folder / "backup").iterdir())
    assert [path.name for path in kept] == ["portraits-1920s.onnx"], "the set aside model is its own files alone"
    assert kept[0].read_bytes() == bundled_weights_dir().joinpath("landscape.onnx").read_bytes()


def test_experts_remove_and_restore_the_users_classifier_as_one(runner, isolated_home):
    folder = isolated_home / "classifier"
    folder.mkdir(parents=True)
    mine = folder / "classifier.onnx"
    mine.write_bytes(bundled_weights_dir("colorize.classifier").joinpath("classifier.onnx").read_bytes())
    assert runner.invoke(app, ["experts", "--remove", "classifier"]).exit_code == 0
    assert not mine.exists() and (folder / "backup" / "classifier.onnx").is_file()
    listed = {row["name"]: row for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)}
    assert listed["(classifier)"]["source"] == "bundled"
    assert runner.invoke(app, ["experts", "--restore", "classifier"]).exit_code == 0 and mine.is_file()
    nothing = runner.invoke(app, ["experts", "--restore", "classifier"])
    assert nothing.exit_code == 2 and "no earlier file of your classifier is kept" in nothing.output, nothing.output


def test_classify_lists_photos_without_planning_outputs(runner, gray_folder, tmp_path):
    # Two folders with photos of the same names: outputs of one run would clash; routes do not.
    twin = tmp_path / "twin"
    twin.mkdir()
    for photo in gray_folder.iterdir():
        twin.joinpath(photo.name).write_bytes(photo.read_bytes())
    result = runner.invoke(
        app, ["classify", str(gray_folder), str(twin), "--json", "--device", "cpu", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 10 and "failed" not in result.output, result.output


def test_without_a_usable_cuda_provider_cuda_is_one_line_and_auto_runs_on_the_cpu(runner, gray_folder, tmp_path):
    """Where onnxruntime has no CUDA provider (the base install), and where onnxruntime-gpu's
    cannot start (its CUDA libraries missing, no GPU): --device cuda is refused in one line
    saying why, and auto runs on the CPU without onnxruntime's own log lines (several per
    network), saying once why the GPU went unused when onnxruntime-gpu is installed."""
    from colorize.core.onnx import NO_CUDA_BUILD, cuda_failure

    failure = cuda_failure()
    if failure is None:
        pytest.skip("onnxruntime runs on a GPU here")
    for command in (["auto", str(gray_folder), "-o", str(tmp_path / "o")], ["classify", str(gray_folder)]):
        result = runner.invoke(app, [*command, "--device", "cuda"])
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert "--device cuda" in result.output and failure in result.output, result.output
    assert not (tmp_path / "o").exists()
    auto = colorize_without_torch("auto", gray_folder, "-o", tmp_path / "o", "--device", "auto", home=tmp_path)
    assert auto.returncode == 0, auto.stderr
    assert "onnxruntime:" not in auto.stderr, auto.stderr  # onnxruntime's log lines look like [E:onnxruntime:...]
    notes = [line for line in auto.stderr.splitlines() if "running on the CPU" in line]
    assert len(notes) == (0 if failure == NO_CUDA_BUILD else 1), auto.stderr


def test_experts_names_the_held_out_sources_a_bundled_choice_was_made_on(runner):
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)}
    for name in ("general", "people"):
        (choice,) = rows[name]["protocol_choices"]
        assert choice["chosen"] == rows[name]["normalization"]["ab_gain"][0]
        assert "utkface" in choice["choosing_sources"] and choice["rule"].startswith("lowest macro mean")
    listing = runner.invoke(app, ["experts"]).stdout
    assert re.search(r"general: .*output gain \(normalization.ab_gain\) chosen on held-out sources \(sun, ", listing)


def test_every_bundled_model_carries_its_scores_on_the_choosing_and_test_sources(runner):
    """The quality protocol's sources (MODELS.md): each expert's record is its own, forced on
    every photo, beside the routed tool's; the classifier's is the routed tool's."""
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)}
    sources = {
        "choosing": ["camvid", "ecssd", "pedestrian-streets", "sun", "utkface"],
        "test": ["clothing-co-parsing", "fog", "food", "rooms", "yosemite"],
    }
    for name, row in rows.items():
        scores = row["protocol_scores"]
        assert scores["mode"] == ("auto" if name == "(classifier)" else name)
        for role, expected in sources.items():
            assert scores[role]["sources"] == expected
            macro = scores[role]["macro"]
            assert set(macro) == {"landscape", "people", "general", "overall"}
            assert 0.3 < macro["overall"]["delta_e"] < 1.5 and all(
                v["photos"] >= 20 for c in scores[role]["by_category_and_source"].values() for v in c.values()
            )
    # The routed tool is the same run whichever file records it.
    assert (
        rows["general"]["protocol_scores"]["test"]["routed_macro"]
        == rows["(classifier)"]["protocol_scores"]["test"]["macro"]
    )
    listing = runner.invoke(app, ["experts"]).stdout
    assert re.search(
        r"\(classifier\): .*ΔE routed: 0\.\d+ × gray on the choosing sources \(camvid, .*test sources \(clothing",
        listing,
    )
