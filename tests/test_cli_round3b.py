"""colorize auto and classify, issue #35 (second part): temporaries of killed runs, outputs of
same-named photos, answers that need no model, and what classify and the summary say."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorize.core.files import atomic_write, remove_stale_temporaries
from colorize.core.images import read_marker
from colorize.pipelines.cli import app

LOADING = "loading models"


@pytest.fixture
def runner(isolated_home):
    return CliRunner()


def _rows(report: Path) -> list[dict]:
    return [json.loads(line) for line in report.read_text().splitlines()]


# 16. temporaries of a killed run ------------------------------------------------------------

_KILLED_MID_WRITE = """
import sys, time
from pathlib import Path
from colorize.core.files import atomic_write

def write(handle):
    handle.write(b"half a photo")
    handle.flush()
    print("writing", flush=True)
    time.sleep(600)

atomic_write(Path(sys.argv[1]), write)
"""


def test_the_temporary_of_a_run_killed_mid_write_is_removed_by_the_next_run(runner, gray_folder, tmp_path):
    out = tmp_path / "out"
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_MID_WRITE, str(out / "odd.png")], stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline() == b"writing\n"
    finally:
        writer.kill()
        writer.wait()
    (left,) = os.listdir(out)
    assert left.startswith(".colorize.") and left.endswith(".tmp"), left
    result = runner.invoke(app, ["auto", str(gray_folder / "odd.png"), "-o", str(out), "--expert", "general"])
    assert result.exit_code == 0, result.output
    assert os.listdir(out) == ["odd.png"]


def _our_temporary_name(folder: Path) -> str:
    """The name atomic_write gives its temporary in this process."""
    seen: list[str] = []
    atomic_write(folder / "probe", lambda handle: seen.extend(os.listdir(folder)))
    (folder / "probe").unlink()
    (name,) = seen
    return name


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_temporary_is_removed_once_its_process_is_gone_unless_it_may_be_another_machines(tmp_path):
    ours = _our_temporary_name(tmp_path)  # .colorize.PID.PLACE-RANDOM.tmp
    found = re.fullmatch(r"\.colorize\.\d+\.([0-9a-f]{8})-[^.]+\.tmp", ours)
    assert found, ours
    place = found[1]
    elsewhere = "0" * 8 if place != "0" * 8 else "1" * 8
    dead, alive, now, old = _dead_pid(), os.getpid(), time.time(), time.time() - 3600
    files = {
        f".colorize.{dead}.{place}-abcd1234.tmp": (now, "removed"),  # killed here a moment ago
        f".colorize.{dead}.{elsewhere}-abcd1234.tmp": (now, "kept"),  # another machine's, being written
        f".colorize.{dead}.{elsewhere}-efgh5678.tmp": (old, "removed"),  # another machine's, left long ago
        f".colorize.{alive}.{place}-abcd1234.tmp": (now, "kept"),  # a running process's
        f".colorize.{alive}.{place}-efgh5678.tmp": (old, "removed"),  # untouched for an hour: the number reused
        f".colorize.{dead}.abcd1234.tmp": (now, "kept"),  # an earlier release's, the machine unknown
        f".colorize.{dead}.efgh5678.tmp": (old, "removed"),
        ".photo.jpg.x1y2z3.tmp": (old, "kept"),  # not of our naming
    }
    for name, (mtime, _) in files.items():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (mtime, mtime))
    removed = {name for name, (_, fate) in files.items() if fate == "removed"}
    assert remove_stale_temporaries(tmp_path) == len(removed)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(files) - removed)


# 21. same-named photos from different folders -----------------------------------------------


@pytest.fixture
def same_names(tmp_path, photos):
    """old/x.jpg and album2/x.jpg: two different photos of one name; copy/x.jpg: old's bytes."""
    folders = {}
    for folder, photo in (("old", "rocket"), ("album2", "chelsea")):
        (tmp_path / folder).mkdir()
        Image.fromarray(photos[photo]).convert("L").save(tmp_path / folder / "x.jpg", quality=95)
        folders[folder] = tmp_path / folder / "x.jpg"
    (tmp_path / "copy").mkdir()
    folders["copy"] = Path(shutil.copy(folders["old"], tmp_path / "copy" / "x.jpg"))
    return folders


def _sha16(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_an_output_says_which_input_it_was_made_from(runner, same_names, tmp_path):
    out = tmp_path / "out"
    for fmt in ("jpg", "png"):  # EXIF Software, and a PNG text chunk
        arguments = ["auto", str(same_names["old"]), "-o", str(out / fmt), "--expert", "general", "--format", fmt]
        assert runner.invoke(app, arguments).exit_code == 0
        marker = read_marker(out / fmt / f"x.{fmt}")
        assert str(same_names["old"]) in marker and _sha16(same_names["old"]) in marker, marker
        assert "expert general (forced)" in marker, marker


def test_an_existing_output_of_another_photo_of_that_name_fails_naming_both(runner, same_names, tmp_path):
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    assert runner.invoke(app, ["auto", str(same_names["old"]), "-o", str(out), "--expert", "general"]).exit_code == 0
    made = (out / "x.jpg").read_bytes()
    arguments = ["auto", str(same_names["album2"]), "-o", str(out), "--expert", "people", "--report", str(report)]
    result = runner.invoke(app, arguments, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    (row,) = _rows(report)
    assert (row["status"], row["output"], row["expert"], row["skip_reason"]) == ("failed", None, None, None), row
    for named in (str(out / "x.jpg"), str(same_names["old"])):
        assert named in row["error"], row
    (line,) = [line for line in result.output.splitlines() if line.startswith("failed ")]
    assert line.startswith(f"failed {same_names['album2']}: ") and str(same_names["old"]) in line, line
    assert (out / "x.jpg").read_bytes() == made, "the other photo's output was replaced"


def test_an_existing_output_of_the_same_photo_is_skipped_whatever_its_path(runner, same_names, tmp_path):
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    assert runner.invoke(app, ["auto", str(same_names["old"]), "-o", str(out), "--expert", "general"]).exit_code == 0
    arguments = ["auto", str(same_names["copy"]), "-o", str(out), "--report", str(report)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    (row,) = _rows(report)
    assert (row["status"], row["skip_reason"], row["expert"]) == ("skipped", "output exists", "general"), row


def test_an_output_of_an_earlier_release_is_skipped_as_before(runner, same_names, tmp_path):
    from colorize.core.images import decode, encode

    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    source = decode(same_names["old"])
    gray_as_rgb = np.repeat(source.pixels[..., None], 3, axis=2)
    encode(gray_as_rgb, source, out / "x.jpg", note="colorized by expert people (forced), colorize 0.0.9")
    result = runner.invoke(app, ["auto", str(same_names["album2"]), "-o", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    (row,) = _rows(report)
    assert (row["status"], row["skip_reason"], row["expert"]) == ("skipped", "output exists", "people"), row


def test_two_inputs_of_one_run_with_one_output_name_are_a_conflict_at_planning(runner, same_names, tmp_path):
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    arguments = ["auto", str(same_names["old"]), str(same_names["album2"]), "-o", str(out), "--expert", "general"]
    result = runner.invoke(app, [*arguments, "--report", str(report)])
    assert result.exit_code == 1, result.output
    rows = {row["input"]: row for row in _rows(report)}
    assert rows[str(same_names["old"])]["status"] == "ok"
    conflict = rows[str(same_names["album2"])]
    assert conflict["status"] == "failed" and str(same_names["old"]) in conflict["error"], conflict
    assert _sha16(same_names["old"]) in read_marker(out / "x.jpg")


# 22. answers that need no model --------------------------------------------------------------


def test_a_rerun_with_nothing_to_do_answers_without_loading_models(runner, gray_folder, tmp_path):
    out, photo = tmp_path / "out", gray_folder / "odd.png"
    first = runner.invoke(app, ["auto", str(photo), "-o", str(out), "--expert", "general"])
    assert first.exit_code == 0 and LOADING in first.output, first.output
    again = runner.invoke(app, ["auto", str(photo), "-o", str(out), "--expert", "general"])
    assert again.exit_code == 0, again.output
    assert LOADING not in again.output and f"nothing to do: all 1 outputs exist in {out}" in again.output, again.output


def test_an_unknown_expert_is_refused_before_loading_models(runner, gray_folder, tmp_path):
    result = runner.invoke(app, ["auto", str(gray_folder), "-o", str(tmp_path / "o"), "--expert", "bogus"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.splitlines()
    assert line == "error: unknown expert 'bogus'; choose one of: general, landscape, people", line
    assert not (tmp_path / "o").exists()


def test_an_empty_folder_answers_without_loading_models(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["auto", str(tmp_path / "empty"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["nothing to do: no photos found"], result.output


# 24. what classify and the summary say -------------------------------------------------------

LONG_NAME = "deoldify_1000_comparison_of_a_harbour_at_dusk_scanned_1962.png"


def test_classify_at_80_columns_shows_whole_names_and_the_class_it_picked(runner, gray_folder, monkeypatch):
    monkeypatch.chdir(gray_folder)  # names as given: each row's first line begins with its own
    shutil.copy("chelsea.jpg", LONG_NAME)
    os.mkdir("1950s")
    for name in ("a.jpg", "b.png"):
        shutil.copy("odd.png", f"1950s/{name}")
    routes = runner.invoke(app, ["classify", LONG_NAME, "--json"])
    (route,) = [json.loads(line) for line in routes.stdout.splitlines()]
    table = runner.invoke(app, ["classify", "."], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    assert "…" not in table.output and max(map(len, table.stdout.splitlines())) <= 80, table.output
    first_column = "".join(line.split("│")[1].strip() for line in table.stdout.splitlines() if line.startswith("│"))
    assert LONG_NAME in first_column, table.stdout
    header = next(line for line in table.stdout.splitlines() if "photo" in line)
    assert "class" in header, table.stdout
    row = next(line for line in table.stdout.splitlines() if LONG_NAME[:10] in line)
    probability = route["probabilities"][route["top_class"]]
    assert f"{route['top_class']}" in row and f"{probability:.2f}" in row, (row, route)
    hints = [line for line in table.output.splitlines() if "sub-folders" in line]
    assert hints == ["2 photos in sub-folders were not looked at; add -r to descend into them"], table.output


def test_auto_says_once_that_photos_in_sub_folders_were_not_looked_at(runner, tmp_path, gray_folder):
    top = tmp_path / "top"
    (top / "1950s" / "summer").mkdir(parents=True)
    for name in ("a.jpg", "summer/b.png"):
        shutil.copy(gray_folder / "odd.png", top / "1950s" / name)
    result = runner.invoke(app, ["auto", str(top), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "nothing to do: no photos found",
        "2 photos in sub-folders were not looked at; add -r to descend into them",
    ], result.output


def test_the_summary_says_start_up_apart_and_why_a_colour_photo_was_skipped(runner, gray_folder, photos, tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(gray_folder / "odd.png", folder / "gray.png")
    Image.fromarray(photos["coffee"]).save(folder / "colour.png")
    report = tmp_path / "r.jsonl"
    arguments = ["auto", str(folder), "-o", str(tmp_path / "o"), "--expert", "general", "-v", "--report", str(report)]
    result = runner.invoke(app, arguments, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    skipped = {row["input"]: row["skip_reason"] for row in _rows(report) if row["status"] == "skipped"}
    assert "--force" in skipped[str(folder / "colour.png")], skipped
    assert re.search(r"skipped .*colour\.png: already colour .*--force", result.output), result.output
    startup = re.search(r"start-up \(model loading\)\s*│\s*([0-9.]+) s", result.output)
    photos_time = re.search(r"photos' time\s*│\s*([0-9.]+) s", result.output)
    total = re.search(r"total time\s*│\s*([0-9.]+) s", result.output)
    assert startup and photos_time and total, result.output
    assert abs(float(total[1]) - float(startup[1]) - float(photos_time[1])) <= 0.15, result.output


def test_the_sub_folder_count_leaves_out_the_output_folder_and_hidden_ones(gray_folder):
    from colorize.pipelines.batch import plan

    for sub in ("colorized", ".thumbnails", "1950s"):
        (gray_folder / sub).mkdir()
        shutil.copy(gray_folder / "odd.png", gray_folder / sub / "odd.png")
    work = plan([str(gray_folder)], gray_folder / "colorized", own_output_dir=True)
    assert (len(work.jobs), work.in_subfolders, work.in_subfolders_partial) == (5, 1, False)
    assert plan([str(gray_folder)], gray_folder / "colorized", recursive=True, own_output_dir=True).in_subfolders == 0


def test_the_confidence_header_is_what_docs_web_md_says_it_is():
    from colorize.configs import load_config
    from colorize.pipelines.serve import _route_headers
    from colorize.router import RoutingPolicy, route

    policy, experts = RoutingPolicy.from_config(load_config("routing")), ["general", "landscape", "people"]
    landscape = route({"landscape": 0.92, "people": 0.03, "general": 0.05}, experts, policy)
    assert (landscape.expert, _route_headers(landscape, {})["X-Colorize-Confidence"]) == ("general", "0.9200")
    unsure = route({"landscape": 0.1, "people": 0.45, "general": 0.45}, experts, policy)
    assert (unsure.reason, _route_headers(unsure, {})["X-Colorize-Confidence"]) == (
        "low confidence → general",
        "0.5500",  # landscape's 0.1 and general's 0.45: both classes go to the general expert
    )
    forced = route({}, experts, policy, "people")
    assert "X-Colorize-Confidence" not in _route_headers(forced, {})
