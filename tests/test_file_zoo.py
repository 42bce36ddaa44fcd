"""Bad input, and nothing lost: `colorize auto` over a zoo of real files of every kind.

The zoo holds every format and mode we read, odd sizes, toned and colour photos, broken
files and non-images, next to each other as in years of scans. The tests check what
happened to every file (through --report), that no input changed (sha256), and that
alpha, orientation, bit depth and metadata survive; then that interrupted runs resume.
Which expert a photo goes to is never asserted: the bundled models will change.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import SAFETY_TIMEOUT, Child, bundled_expert, interrupt_when, old_style_expert
from PIL import Image, ImageCms, ImageOps
from skimage import data
from skimage.color import rgb2lab
from typer.testing import CliRunner

from colorize.pipelines.cli import app

FAST = ["--work-size", "64"]  # the experts' quality is not under test here; their speed matters
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
COLORIZE = str(Path(sys.executable).with_name("colorize"))


# ------------------------------------------------------------------ helpers


def _photo(name: str = "camera", size: int = 64) -> np.ndarray:
    image = Image.fromarray(getattr(data, name)())
    image.thumbnail((size, size), Image.BILINEAR)
    return np.asarray(image)


def _gray(name: str = "camera", size: int = 64) -> np.ndarray:
    image = _photo(name, size)
    return image if image.ndim == 2 else np.asarray(Image.fromarray(image).convert("L"))


def _tone(gray: np.ndarray, dark, light) -> np.ndarray:
    t = gray.astype(np.float32)[..., None] / 255
    return (np.array(dark) + (np.array(light) - np.array(dark)) * t).round().astype(np.uint8)


def _with_alpha(gray: np.ndarray, mode: str) -> Image.Image:
    image = Image.fromarray(gray).convert(mode[:-1])
    height, width = gray.shape
    ramp = (np.add.outer(np.arange(height), np.arange(width)) * 7 % 256).astype(np.uint8)
    image.putalpha(Image.fromarray(ramp))
    return image


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
    }


def _report(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    by_input = {Path(row["input"]).name: row for row in rows}
    assert len(by_input) == len(rows), "an input was reported twice"
    return by_input


def _reason(row: dict) -> str:
    return row["error"] or row["skip_reason"] or ""


def _invoke(runner: CliRunner, *args: str):
    return runner.invoke(app, ["auto", *map(str, args), *FAST])


@pytest.fixture
def runner(isolated_home):
    return CliRunner()


# ------------------------------------------------------------------ the zoo

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
ALPHA_CASES = ("cutout_la.png", "cutout_rgba.png", "palette_transparent.png", "cutout.webp", "cutout16.tif")


def build_zoo(root: Path) -> dict[str, tuple[str, str]]:
    """Write the zoo below ``root``; return {file name: (expected status, reason substring)}."""
    root.mkdir(parents=True)
    gray, people = _gray("camera"), _gray("astronaut", 48)
    expect: dict[str, tuple[str, str]] = {}

    def save(name: str, image: Image.Image, status=OK, reason="", **params) -> None:
        image.save(root / name, **params)
        expect[name] = (status, reason)

    save("camera.jpg", Image.fromarray(gray), quality=90)
    # Stored sideways with EXIF orientation 6 (turn clockwise to view), as cameras and scanners do.
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Epson"
    exif.get_ifd(0x8769)[0x9003] = "1950:06:01 12:00:00"  # DateTimeOriginal
    sideways = Image.fromarray(np.rot90(people, 1).copy()).convert("RGB")
    save("portrait_turned.jpg", sideways, exif=exif.tobytes(), icc_profile=SRGB, quality=95)
    save("gray.png", Image.fromarray(gray))
    save("cutout_la.png", _with_alpha(gray, "LA"))
    save("cutout_rgba.png", _with_alpha(gray, "RGBA"))
    save("palette.png", Image.fromarray(gray).convert("P"))
    transparent = Image.fromarray(gray // 32 * 32).convert("P")
    transparent.info["transparency"] = 0
    save("palette_transparent.png", transparent, transparency=0)
    save("sepia.jpg", Image.fromarray(_tone(gray, (40, 26, 13), (255, 240, 200))), quality=85)
    save("cyanotype.png", Image.fromarray(_tone(_gray("moon"), (10, 30, 80), (235, 245, 255))))
    save("cmyk.jpg", Image.fromarray(gray).convert("CMYK"))
    save("deep16.png", Image.fromarray(gray.astype(np.uint16) * 257 + 100))
    save("gray.tif", Image.fromarray(gray), compression="tiff_lzw")
    save("gray.bmp", Image.fromarray(gray))
    save("gray.webp", Image.fromarray(gray).convert("RGB"), quality=90)
    save("cutout.webp", _with_alpha(gray, "RGBA"), lossless=True)
    save("tiny_1x1.png", Image.fromarray(np.array([[128]], np.uint8)))
    save("tiny_2x3.jpg", Image.fromarray(gray[:3, :2].copy()))
    save("colour.jpg", Image.fromarray(_photo("astronaut")), SKIPPED, "already colour")
    save("jpeg_named.png", Image.fromarray(gray), format="JPEG")  # wrong extension: read by content
    save("IMG0001", Image.fromarray(gray), format="JPEG")  # no extension at all
    save("[1950] beach.jpg", Image.fromarray(_gray("coins")))  # rich markup in a name is just a name

    # 16-bit RGB(A) TIFFs, as scanners write them: a smooth ramp that 8 bits would band.
    ramp = np.linspace(6000, 60000, 64 * 48).reshape(48, 64).astype(np.uint16)
    tifffile.imwrite(root / "deep16.tif", np.dstack([ramp] * 3), photometric="rgb")
    expect["deep16.tif"] = (OK, "")
    alpha16 = (np.arange(48 * 64).reshape(48, 64) * 21 % 65536).astype(np.uint16)
    tifffile.imwrite(
        root / "cutout16.tif", np.dstack([ramp] * 3 + [alpha16]), photometric="rgb", extrasamples=["unassalpha"]
    )
    expect["cutout16.tif"] = (OK, "")

    nested = root / "1950s" / "summer"
    nested.mkdir(parents=True)
    Image.fromarray(_gray("coins")).save(nested / "nested.jpg")
    expect["nested.jpg"] = (OK, "")

    # Broken files: each must fail alone, with one line naming it.
    (root / "empty.jpg").write_bytes(b"")
    expect["empty.jpg"] = (FAILED, "empty file (0 bytes)")
    whole = (root / "camera.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    expect["truncated.jpg"] = (FAILED, "cannot decode")
    whole = (root / "gray.png").read_bytes()
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    expect["truncated.png"] = (FAILED, "cannot decode")
    (root / "[bw] notes.jpg").write_text("not a photo: a list of who is in which picture\n")
    expect["[bw] notes.jpg"] = (FAILED, "not an image")
    (root / "huge.png").write_bytes(  # claims 20000 x 20000: refused before any pixel is read
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + _png_chunk(b"IEND", b"")
    )
    expect["huge.png"] = (FAILED, "too large: 400.0 MP > --max-pixels 100 MP")
    (root / "moved_away.jpg").symlink_to(root / "no-longer-here.jpg")
    expect["moved_away.jpg"] = (FAILED, "broken symbolic link")

    # Not images: ignored quietly. Hidden files are not even looked at.
    (root / "README.txt").write_text("scans from the attic\n")
    (root / "scan.xmp").write_text("<x:xmpmeta/>")
    (root / "Thumbs.db").write_bytes(os.urandom(64))
    Image.fromarray(gray).save(root / ".hidden.jpg")
    return expect


IGNORED = ("README.txt", "scan.xmp", "Thumbs.db")


@pytest.fixture
def zoo(tmp_path):
    root = tmp_path / "scans"
    return root, build_zoo(root)


def test_every_file_in_the_zoo_is_accounted_for_and_no_input_changes(runner, zoo, tmp_path):
    root, expect = zoo
    before = _hashes(root)
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    result = _invoke(runner, root, "-r", "-o", out, "--report", report, "-v")

    assert result.exit_code == 1, result.output  # some files failed, the rest were done
    assert "Traceback" not in result.output
    rows = _report(report)
    got = {name: (row["status"], _reason(row)) for name, row in rows.items()}
    assert set(got) == set(expect), (
        f"reported but not expected: {set(got) - set(expect)}; missing: {set(expect) - set(got)}"
    )
    for name, (status, reason) in expect.items():
        assert got[name][0] == status and reason in got[name][1], (
            f"{name}: expected {status} '{reason}', got {got[name]}"
        )

    # One line per failure, naming the file (markup-like names printed literally).
    lines = result.output.splitlines()
    for name, (status, reason) in expect.items():
        if status == FAILED:
            hits = [line for line in lines if line.startswith("failed ") and name in line and reason in line]
            assert len(hits) == 1, f"{name}: {hits or lines}"
    for name in IGNORED:
        assert any("ignored (not an image)" in line and name in line for line in lines), name

    assert _hashes(root) == before, "an input was modified"
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    expected_outputs = {Path(row["output"]).relative_to(out).as_posix() for row in rows.values() if row["status"] == OK}
    assert written == expected_outputs, f"unexpected files in the output tree: {written ^ expected_outputs}"
    assert "1950s/summer/nested.jpg" in written, "the tree below the input folder is mirrored"
    for row in rows.values():
        if row["status"] == OK:
            _check_output(root, out, row)


def _check_output(root: Path, out: Path, row: dict) -> None:
    """What each kind of input must keep in its output."""
    name = Path(row["input"]).name
    source, output = Path(row["input"]), Path(row["output"])
    with Image.open(source) as original, Image.open(output) as written:
        assert written.format == original.format, f"{name}: format {written.format} != {original.format}"
        upright = ImageOps.exif_transpose(original)
        assert written.size == upright.size, f"{name}: {written.size} != upright {upright.size}"
        if written.format != "BMP":
            marker = written.info.get("colorize") or written.getexif().get(0x0131, "")
            assert "colorized by expert" in marker, f"{name}: no colorize marker in {written.info}"
        if name in ALPHA_CASES:
            if name.endswith(".tif"):
                want, have = tifffile.imread(source)[..., 3], tifffile.imread(output)[..., 3]
            else:
                want = np.asarray(original.convert("RGBA"))[..., 3]
                have = np.asarray(written.convert("RGBA"))[..., 3]
            assert np.array_equal(want, have), f"{name}: alpha changed"
        if name == "portrait_turned.jpg":
            exif = written.getexif()
            assert exif.get(0x0112, 1) == 1 and exif.get(0x010F) == "Epson", dict(exif)
            assert exif.get_ifd(0x8769).get(0x9003) == "1950:06:01 12:00:00", "EXIF date lost"
            assert written.info.get("icc_profile") == SRGB, "ICC profile lost"
            # The output is upright: its luminance matches the turned-upright input's.
            want = rgb2lab(np.asarray(upright.convert("RGB")))[..., 0]
            have = rgb2lab(np.asarray(written.convert("RGB")))[..., 0]
            assert np.abs(want - have).mean() < 1.5, np.abs(want - have).mean()
    if name in ("deep16.png",):
        raw = output.read_bytes()
        assert raw[24] == 16, f"{name}: output is {raw[24]}-bit"
    if name in ("deep16.tif", "cutout16.tif"):
        _check_sixteen_bit_luminance(source, output)


def _check_sixteen_bit_luminance(source: Path, output: Path) -> None:
    """16 bits in, 16 bits out, and the output's L is the input's at 16-bit precision."""
    original, written = tifffile.imread(source)[..., :3], tifffile.imread(output)[..., :3]
    assert written.dtype == np.uint16, f"{output.name}: {written.dtype}"
    want = rgb2lab(original.astype(np.float64) / 65535)[..., 0]
    have = rgb2lab(written.astype(np.float64) / 65535)[..., 0]
    # Rounding to 8 bits anywhere on the way would make this ~0.1 or more.
    error = np.median(np.abs(want - have))
    assert error < 0.02, f"{output.name}: median |ΔL| = {error:.4f}"


def test_a_second_run_redoes_nothing_and_outputs_are_not_reingested(runner, zoo, tmp_path):
    root, expect = zoo
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    assert _invoke(runner, root, "-r", "-o", out).exit_code == 1
    outputs_before = _hashes(out)

    again = _invoke(runner, root, "-r", "-o", out, "--report", report)
    assert again.exit_code == 1, again.output
    rows = _report(report)
    for name, (status, _) in expect.items():
        if status == OK:
            assert (rows[name]["status"], rows[name]["skip_reason"]) == (SKIPPED, "output exists"), (name, rows[name])
        else:
            assert rows[name]["status"] == status, (name, rows[name])
    assert _hashes(out) == outputs_before, "a finished output was rewritten"

    # Outputs fed back in are recognised by their marker (BMP has no metadata to carry one).
    report2 = tmp_path / "report2.jsonl"
    fed_back = _invoke(runner, out, "-r", "-o", tmp_path / "out2", "--report", report2)
    assert fed_back.exit_code == 0, fed_back.output
    for name, row in _report(report2).items():
        if not name.endswith(".bmp"):
            assert (row["status"], row["skip_reason"]) == (SKIPPED, "a colorize output (from an earlier run)"), (
                name,
                row,
            )


def test_fail_fast_stops_and_the_same_command_resumes(runner, tmp_path):
    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir()
    names = ["a.png", "b.jpg", "c_broken.jpg", "d.png", "e.tif"]
    for name in names:
        if name == "c_broken.jpg":
            (scans / name).write_bytes(b"\xff\xd8\xff\xe0 truncated")
        else:
            Image.fromarray(_gray("camera", 40)).save(scans / name)
    report = tmp_path / "first.jsonl"
    first = _invoke(runner, scans, "-o", out, "--fail-fast", "--report", report)
    assert first.exit_code == 1, first.output
    rows = _report(report)
    assert [rows[n]["status"] for n in names] == [OK, OK, FAILED, SKIPPED, SKIPPED], rows
    assert rows["d.png"]["skip_reason"] == "not started (stopped by --fail-fast)"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]

    # A run killed mid-write leaves at most a hidden temporary, never a partial output.
    (out / ".d.png.x1y2z3.tmp").write_bytes(b"\x89PNG half")
    (out / "b.jpg").unlink()  # and an output lost since
    report = tmp_path / "second.jsonl"
    second = _invoke(runner, scans, "-o", out, "--report", report)
    assert second.exit_code == 1, second.output
    rows = _report(report)
    assert {n: (rows[n]["status"], _reason(rows[n])[:14]) for n in names} == {
        "a.png": (SKIPPED, "output exists"),
        "b.jpg": (OK, ""),
        "c_broken.jpg": (FAILED, "cannot decode "),
        "d.png": (OK, ""),
        "e.tif": (OK, ""),
    }
    for name in ("a.png", "b.jpg", "d.png", "e.tif"):
        Image.open(out / name).load()  # complete and readable


def _report_lines(report: Path) -> int:
    """Rows a running command has written to its --report so far."""
    return len(report.read_text().splitlines()) if report.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_an_interrupted_run_leaves_only_whole_files_and_resumes(tmp_path, isolated_home, sig):
    scans, out, report = tmp_path / "scans", tmp_path / "out", tmp_path / "report.jsonl"
    scans.mkdir()
    base = _gray("camera", 32)
    count = 60  # enough that even a fast machine is still busy when the signal comes
    for i in range(count):
        Image.fromarray(np.roll(base, i, axis=1)).save(scans / f"scan{i:03d}.png")
    # One photo per batch and no classifier: small steps, so the signal lands mid-run.
    fast = ["--expert", "general", *FAST]
    command = [COLORIZE, "auto", str(scans), "-o", str(out), "--report", str(report), "--batch-size", "1", *fast]
    returncode, output = interrupt_when(
        command, lambda output: _report_lines(report) >= 2, sig, "two photos were in the report"
    )
    assert returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output, output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(rows) == count, "every photo is in the report, done or not started"
    done = {Path(r["input"]).name for r in rows if r["status"] == OK}
    assert 2 <= len(done) < count, f"{len(done)} done: the interrupt came too late to test anything"
    finished = done | {Path(r["input"]).name for r in rows if r["skip_reason"] == "output exists"}
    assert {r["skip_reason"] for r in rows if r["status"] == SKIPPED} <= {"not started (interrupted)", "output exists"}
    files = sorted(p.name for p in out.iterdir())
    assert not [f for f in files if f.startswith(".")], f"temporary files left: {files}"
    assert finished == set(files), "the report must say which outputs exist"
    for name in files:
        Image.open(out / name).load()  # every file there is whole

    second = CliRunner().invoke(app, ["auto", str(scans), "-o", str(out), "--report", str(report), *fast])
    assert second.exit_code == 0, second.output
    rows = _report(report)
    assert {n for n, r in rows.items() if r["skip_reason"] == "output exists"} == set(files)
    assert {n for n, r in rows.items() if r["status"] == OK} == {f"scan{i:03d}.png" for i in range(count)} - set(files)


@pytest.mark.slow
def test_a_second_signal_right_after_the_first_leaves_the_report_whole(tmp_path, isolated_home):
    """torchrun passes a terminal's Ctrl-C on to workers that had it already; a scheduler may
    send SIGTERM twice. The first stops the run; the second must not cut its bookkeeping short."""
    scans, out, report = tmp_path / "scans", tmp_path / "out", tmp_path / "report.jsonl"
    scans.mkdir()
    base = _gray("camera", 32)
    for i in range(60):
        Image.fromarray(np.roll(base, i, axis=1)).save(scans / f"scan{i:03d}.png")
    command = [COLORIZE, "auto", str(scans), "-o", str(out), "--report", str(report), "--batch-size", "1"]
    with Child([*command, "--expert", "general", *FAST]) as child:
        child.wait_for(lambda output: _report_lines(report) >= 2, "two photos were in the report")
        child.send(signal.SIGINT)
        # And SIGTERM after it, again and again, until it has exited: however long its bookkeeping takes.
        deadline = time.monotonic() + SAFETY_TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(0.002)
            if child.process.poll() is not None:
                break
            child.process.send_signal(signal.SIGTERM)
        returncode, output = child.finish()
    assert returncode == 130, (returncode, output[-2000:])
    assert len(_report(report)) == 60, "every photo is in the report, done or not started"


# ------------------------------------------------------------------ where outputs go


def _small_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    gray = _gray("camera", 40)
    Image.fromarray(gray).save(root / "a.jpg")
    Image.fromarray(gray).save(root / "b.png")
    Image.fromarray(gray).save(root / "c.bmp")
    tifffile.imwrite(root / "sub" / "d.tif", np.dstack([gray.astype(np.uint16) * 257] * 3), photometric="rgb")


def test_output_inside_the_input_tree_is_refused_without_a_suffix(runner, tmp_path):
    scans = tmp_path / "scans"
    _small_tree(scans)
    before = _hashes(scans)
    result = _invoke(runner, scans, "-r", "-o", scans / "colorized")
    assert result.exit_code == 2, result.output
    assert "inside input folder" in result.output and "--suffix" in result.output
    assert _hashes(scans) == before and not (scans / "colorized").exists()


def test_with_a_suffix_outputs_beside_the_originals_are_never_colorized_again(runner, tmp_path):
    scans = tmp_path / "scans"
    _small_tree(scans)
    originals = _hashes(scans)
    for on_exists in ("skip", "skip", "overwrite"):
        report = tmp_path / f"{on_exists}.jsonl"
        result = _invoke(
            runner, scans, "-r", "-o", scans, "--suffix", "_color", "--on-exists", on_exists, "--report", report
        )
        assert result.exit_code == 0, result.output
        assert set(_report(report)) == {"a.jpg", "b.png", "c.bmp", "d.tif"}, "an output was taken as an input"
    names = {p.relative_to(scans).as_posix() for p in scans.rglob("*") if p.is_file()}
    assert names == set(originals) | {"a_color.jpg", "b_color.png", "c_color.bmp", "sub/d_color.tif"}
    assert {k: v for k, v in _hashes(scans).items() if k in originals} == originals


def test_an_original_that_merely_has_an_output_name_is_never_overwritten(runner, tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(_gray("camera", 40)).save(scans / "x.jpg")
    Image.fromarray(_gray("coins", 40)).save(scans / "x_color.jpg")  # the user's own file, no marker
    before = _hashes(scans)
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, scans, "-o", scans, "--suffix", "_color", "--on-exists", "overwrite", "--report", report)
    assert result.exit_code == 1, result.output
    rows = _report(report)
    assert rows["x.jpg"]["status"] == FAILED and "is taken by another input photo" in rows["x.jpg"]["error"]
    assert rows["x_color.jpg"]["status"] == OK
    assert {k: v for k, v in _hashes(scans).items() if k in before} == before


def test_two_inputs_with_one_output_name_never_overwrite_each_other(runner, tmp_path):
    for folder, name in (("a", "camera"), ("b", "coins")):
        (tmp_path / folder).mkdir()
        Image.fromarray(_gray(name, 40)).save(tmp_path / folder / "x.jpg")
    report = tmp_path / "r.jsonl"
    result = _invoke(
        runner, tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", "-o", tmp_path / "out", "--report", report
    )
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(r["status"] for r in rows) == [FAILED, OK]
    assert "same output file as" in next(r["error"] for r in rows if r["status"] == FAILED)


def test_on_exists_error_overwrite_and_force(runner, tmp_path):
    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir()
    Image.fromarray(_gray("camera", 40)).save(scans / "gray.png")
    Image.fromarray(_photo("astronaut", 40)).save(scans / "colour.png")
    assert _invoke(runner, scans, "-o", out).exit_code == 0
    inode = (out / "gray.png").stat().st_ino

    report = tmp_path / "error.jsonl"
    result = _invoke(runner, scans, "-o", out, "--on-exists", "error", "--report", report)
    assert result.exit_code == 1
    assert _report(report)["gray.png"]["error"] == f"output exists: {out / 'gray.png'} (--on-exists error)"
    assert (out / "gray.png").stat().st_ino == inode

    report = tmp_path / "overwrite.jsonl"
    result = _invoke(runner, scans, "-o", out, "--on-exists", "overwrite", "--force", "--report", report)
    assert result.exit_code == 0, result.output
    rows = _report(report)
    assert rows["gray.png"]["status"] == OK and rows["colour.png"]["status"] == OK  # --force: colour too
    assert (out / "gray.png").stat().st_ino != inode, "not rewritten (atomically, as a new file)"


def test_one_photo_and_an_output_file_name_write_that_file_in_the_format_it_names(runner, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(_gray("camera", 40)).save(photo)
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, photo, "-o", tmp_path / "photo_colour.jpg", "--report", report, "-q")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "photo_colour.jpg") as written:
        assert written.format == "JPEG" and written.size == (40, 40)
    assert _report(report)["photo.jpg"]["output"] == str(tmp_path / "photo_colour.jpg")
    assert _invoke(runner, photo, "-o", tmp_path / "as.PNG", "-q").exit_code == 0
    with Image.open(tmp_path / "as.PNG") as written:
        assert written.format == "PNG" and "colorized by expert" in written.info["colorize"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["as.PNG", "photo.jpg", "photo_colour.jpg", "r.jsonl"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["scans", "-o", "out.jpg"], "names an image file, but there is more than one photo"),
        (["scans/a.jpg", "scans/b.png", "-o", "out.png"], "names an image file, but there is more than one photo"),
        (["scans/a.jpg", "-o", "out.png", "--format", "jpg"], "--format jpg, but -o out.png names a PNG file"),
        (["scans/a.jpg", "-o", "out.jpg", "--quality", "0"], "'--quality': Input should be greater than or equal"),
        (["scans", "--format", "gif"], "'gif' is not one of 'jpg', 'png', 'tif', 'webp'"),
    ],
)
def test_output_file_names_and_formats_that_cannot_work_are_one_line_errors(runner, tmp_path, monkeypatch, args, words):
    _small_tree(tmp_path / "scans")
    monkeypatch.chdir(tmp_path)
    result = _invoke(runner, *args)
    assert result.exit_code == 2 and words in result.output and result.output.count("\n") == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans"]


def test_format_and_quality_choose_the_outputs_encoding(runner, tmp_path):
    scans, out = tmp_path / "scans", tmp_path / "out"
    _small_tree(scans)
    result = _invoke(runner, scans, "-r", "-o", out, "--format", "png")
    assert result.exit_code == 0, result.output
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["a.png", "b.png", "c.png", "sub/d.png"]
    assert {Image.open(out / name).format for name in names} == {"PNG"}
    assert (out / "sub" / "d.png").read_bytes()[24] == 16, "a 16-bit TIFF stays 16-bit as a PNG"
    sizes = {}
    for quality in (20, 95):
        folder = tmp_path / f"q{quality}"
        result = _invoke(runner, scans / "b.png", "-o", folder, "--format", "webp", "--quality", quality)
        assert result.exit_code == 0, result.output
        assert Image.open(folder / "b.webp").format == "WEBP"
        sizes[quality] = (folder / "b.webp").stat().st_size
    assert sizes[20] < sizes[95], sizes


def test_max_pixels_refuses_big_images_and_tiny_ones_work(runner, tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(_gray("camera", 64)).save(scans / "big.png")  # 64 x 64
    Image.fromarray(np.array([[0, 255, 128]], np.uint8)).save(scans / "tiny.png")
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, scans, "-o", tmp_path / "out", "--max-pixels", "0.004", "--report", report)
    assert result.exit_code == 1
    rows = _report(report)
    assert rows["big.png"]["error"] == "too large: 64x64 = 0.0 MP > --max-pixels 0.004 MP"
    assert rows["tiny.png"]["status"] == OK and Image.open(tmp_path / "out" / "tiny.png").size == (3, 1)


def test_globs_are_expanded_and_non_images_among_them_ignored(runner, tmp_path):
    scans = tmp_path / "scans"
    _small_tree(scans)
    (scans / "a.txt").write_text("notes")
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, str(scans / "a.*"), "-o", tmp_path / "out", "--report", report, "-v")
    assert result.exit_code == 0, result.output
    assert set(_report(report)) == {"a.jpg"}
    assert "ignored (not an image)" in result.output and "a.txt" in result.output


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_fails_alone(runner, tmp_path):
    scans = tmp_path / "scans"
    _small_tree(scans)
    (scans / "a.jpg").chmod(0)
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, scans, "-o", tmp_path / "out", "--report", report)
    assert result.exit_code == 1
    rows = _report(report)
    assert rows["a.jpg"]["error"].startswith("permission denied") and rows["b.png"]["status"] == OK


def test_unsafe_command_lines_are_refused_before_any_work(runner, tmp_path):
    scans = tmp_path / "scans"
    _small_tree(scans)
    before = _hashes(scans)
    as_report = _invoke(runner, scans, "-o", tmp_path / "out", "--report", scans / "b.png")
    assert as_report.exit_code == 2 and "is one of the input photos" in as_report.output
    (tmp_path / "file").write_text("x")
    onto_file = _invoke(runner, scans, "-o", tmp_path / "file")
    assert onto_file.exit_code == 2 and "is a file, not a folder" in onto_file.output
    onto_input = _invoke(runner, scans / "a.jpg", "-o", scans)
    assert onto_input.exit_code == 2 and "output would overwrite the input" in onto_input.output
    assert _hashes(scans) == before


@pytest.mark.parametrize("suffix", ["/../../escaped", "_c/x", "..\\evil"])
def test_a_suffix_with_a_path_separator_is_refused(runner, tmp_path, suffix):
    scans, out = tmp_path / "scans", tmp_path / "out"
    _small_tree(scans)
    (tmp_path / "escapeda.jpg").write_text("an unrelated file")
    before = _hashes(tmp_path)
    result = _invoke(runner, scans, "-o", out, "--suffix", suffix, "--on-exists", "overwrite")
    assert result.exit_code == 2 and "path separator" in result.output, result.output
    assert _hashes(tmp_path) == before and not out.exists()


@pytest.mark.parametrize("on_exists", ["skip", "overwrite"])
def test_a_link_in_the_output_tree_never_leads_writes_among_the_originals(runner, tmp_path, on_exists):
    scans, out = tmp_path / "scans", tmp_path / "out"
    _small_tree(scans)
    before = _hashes(scans)
    out.mkdir()
    (out / "sub").symlink_to(scans)  # out/sub -> the photos: sub/d.tif's output would be scans/d.tif
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, scans, "-r", "-o", out, "--on-exists", on_exists, "--report", report)
    assert result.exit_code == 1, result.output
    rows = _report(report)
    assert rows["d.tif"]["status"] == FAILED and "symbolic link" in rows["d.tif"]["error"]
    assert all(rows[name]["status"] == OK for name in ("a.jpg", "b.png", "c.bmp"))
    assert _hashes(scans) == before, "an original was replaced, or an output written among them"


def test_a_link_in_the_output_tree_never_leads_writes_out_of_it(runner, tmp_path):
    scans, out, elsewhere = tmp_path / "scans", tmp_path / "out", tmp_path / "elsewhere"
    _small_tree(scans)
    elsewhere.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, scans, "-r", "-o", out, "--report", report)
    assert result.exit_code == 1, result.output
    assert "leads out of the output folder" in _report(report)["d.tif"]["error"]
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------ broken models


class _Trap:
    """Unpickling this creates a file: proof that pickled code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _save_numpy(path: Path, metadata: str | None) -> None:
    """A safetensors file of one tensor, with ``metadata`` under colorize's key (None: a foreign file)."""
    from safetensors.numpy import save_file

    save_file({"weight": np.zeros(3, np.float32)}, str(path), metadata={"colorize": metadata} if metadata else {})


def _weights(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """A broken weights file of ``kind`` and the words its error must contain."""
    from colorize.core.modelfile import read_metadata

    bundled = bundled_expert("general")
    path = tmp_path / f"{kind}.safetensors"
    if kind == "corrupt":
        path.write_bytes(os.urandom(4096))
        return path, "not a readable .safetensors weights file"
    if kind == "truncated":
        whole = old_style_expert(tmp_path / "whole.safetensors", like="general")
        path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        return path, "not a readable .safetensors weights file"
    if kind == "truncated-onnx":
        path = tmp_path / "truncated.onnx"
        path.write_bytes(bundled.read_bytes()[: bundled.stat().st_size // 2])
        return path, "not an ONNX model"
    if kind == "foreign":
        _save_numpy(path, None)
        return path, "without colorize metadata (a foreign model?)"
    if kind == "classifier":
        path = Path(__file__).parents[1] / "classifier" / "weights" / "classifier.onnx"
        return path, "holds a 'classifier' model, expected an expert"
    if kind == "unknown-architecture":
        meta = {
            "format_version": 1,
            "kind": "expert",
            "architecture": "unet_from_the_future",
            "arguments": {},
            "work_size": 64,
        }
        _save_numpy(path, json.dumps(meta))
        return path, "unet_from_the_future"
    if kind == "mismatched-tensors":
        _save_numpy(path, json.dumps(read_metadata(bundled).metadata))
        return path, "tensors do not match architecture"
    if kind == "hub-encoder":  # timm would fetch this name's config from the internet
        meta = {
            "format_version": 1,
            "kind": "expert",
            "architecture": "unet_lite",
            "work_size": 64,
            "arguments": {"encoder": "hf-hub:someone/model", "decoder_channels": [96, 64, 40, 24], "output_stride": 2},
        }
        _save_numpy(path, json.dumps(meta))
        return path, "'hf-hub:someone/model' is not one colorize builds"
    if kind == "huge-network":  # a tiny file whose metadata asks for terabytes of weights
        meta = {
            "format_version": 1,
            "kind": "expert",
            "architecture": "unet_seed",
            "work_size": 64,
            "arguments": {"widths": [8, 8, 10**7]},
        }
        _save_numpy(path, json.dumps(meta))
        return path, "argument 'widths' of unet_seed"
    raise ValueError(kind)


# A .safetensors file is built and exported with torch before it runs: what is wrong with its
# network (not its header) is found there.
_BUILT_WITH_TORCH = pytest.mark.needs_torch


@pytest.mark.parametrize(
    "kind",
    [
        "corrupt",
        "truncated",
        "truncated-onnx",
        "foreign",
        "classifier",
        pytest.param("unknown-architecture", marks=_BUILT_WITH_TORCH),
        pytest.param("mismatched-tensors", marks=_BUILT_WITH_TORCH),
        pytest.param("hub-encoder", marks=_BUILT_WITH_TORCH),
        pytest.param("huge-network", marks=_BUILT_WITH_TORCH),
    ],
)
def test_broken_expert_weights_are_one_line_errors_naming_the_file(runner, tmp_path, kind):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(_gray("camera", 32)).save(scans / "a.png")
    path, words = _weights(kind, tmp_path)
    result = _invoke(runner, scans, "-o", tmp_path / "out", "--weights", f"general={path}")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and words in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists(), "nothing is written when the models are broken"


@pytest.mark.parametrize("option", ["--weights", "--classifier-weights"])
def test_a_pickle_posing_as_weights_is_never_unpickled(runner, tmp_path, option):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(_gray("camera", 32)).save(scans / "a.png")
    proof = tmp_path / "pickle-code-ran"
    evil = tmp_path / "general.pt"
    evil.write_bytes(pickle.dumps(_Trap(proof)))
    value = f"general={evil}" if option == "--weights" else str(evil)
    result = _invoke(runner, scans, "-o", tmp_path / "out", option, value)
    assert result.exit_code == 2, result.output
    assert str(evil) in result.output and "not a readable .safetensors weights file" in result.output
    assert not proof.exists(), "loading weights executed pickled code"


@pytest.mark.parametrize(
    "architecture, arguments, words",
    [
        ("hf-hub:someone/model", {"num_classes": 3}, "'hf-hub:someone/model' is not one colorize builds"),
        ("efficientnet_lite0", {"num_classes": 2 * 10**9}, "argument 'num_classes' of efficientnet_lite0"),
    ],
)
@pytest.mark.needs_torch
def test_a_classifier_file_cannot_make_colorize_fetch_or_build_what_it_names(
    runner, tmp_path, architecture, arguments, words
):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(_gray("camera", 32)).save(scans / "a.png")
    path = tmp_path / "classifier.safetensors"
    meta = {
        "format_version": 1,
        "kind": "classifier",
        "architecture": architecture,
        "arguments": arguments,
        "labels": ["landscape", "people", "general"],
        "preprocessing": {"input_size": 128, "mean": 0.5, "std": 0.5},
    }
    _save_numpy(path, json.dumps(meta))
    result = _invoke(runner, scans, "-o", tmp_path / "out", "--classifier-weights", path)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and words in errors[0], result.output


def _bundled_expert_with(tmp_path: Path, name: str, change, suffix: str = ".safetensors") -> Path:
    """The bundled general expert with its metadata or tensors changed by ``change``: as an
    earlier release installed it (.safetensors, ``conftest.old_style_expert``), or as ONNX."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    path = tmp_path / f"{name}{suffix}"
    if suffix == ".onnx":
        import onnx

        from colorize.core.modelfile import METADATA_KEY

        model = onnx.load(str(bundled_expert("general")))
        entry = next(entry for entry in model.metadata_props if entry.key == METADATA_KEY)
        metadata, _ = change(json.loads(entry.value), {})
        entry.value = metadata if isinstance(metadata, str) else json.dumps(metadata)
        onnx.save(model, str(path))
        return path
    source = old_style_expert(tmp_path / "source" / "general.safetensors", like="general")
    with safe_open(str(source), "np") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(source))
    metadata, tensors = change(json.loads(metadata["colorize"]), tensors)
    save_file(
        tensors, str(path), metadata={"colorize": metadata if isinstance(metadata, str) else json.dumps(metadata)}
    )
    return path


def _nan_gain(meta, tensors):
    meta["normalization"]["ab_gain"] = [float("nan"), 1.0]
    return meta, tensors


def _three_gains(meta, tensors):
    meta["normalization"]["ab_gain"] = [1.0, 1.0, 1.0]
    return meta, tensors


def _integer_tensor(meta, tensors):
    name = next(n for n, t in tensors.items() if t.dtype.kind == "f")
    tensors[name] = tensors[name].astype(np.int32)
    return meta, tensors


def _infinite_tensor(meta, tensors):
    name = next(n for n, t in tensors.items() if t.dtype.kind == "f")
    tensors[name] = tensors[name].copy()
    tensors[name].reshape(-1)[0] = np.inf
    return meta, tensors


@pytest.mark.parametrize(
    "change, suffix, words",
    [
        (_nan_gain, ".onnx", "out of range"),
        (_three_gains, ".onnx", "not a usable colorize expert"),
        pytest.param(_nan_gain, ".safetensors", "out of range", marks=_BUILT_WITH_TORCH),
        pytest.param(_three_gains, ".safetensors", "not a usable colorize expert", marks=_BUILT_WITH_TORCH),
        pytest.param(_integer_tensor, ".safetensors", "not floating-point weights", marks=_BUILT_WITH_TORCH),
        pytest.param(_infinite_tensor, ".safetensors", "NaN or infinite", marks=_BUILT_WITH_TORCH),
    ],
    ids=["nan gain", "three gains", "nan gain, safetensors", "three gains, safetensors", "integers", "infinity"],
)
def test_bad_numbers_in_weights_are_one_line_errors_naming_the_file(runner, tmp_path, change, suffix, words):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(_gray("camera", 32)).save(scans / "a.png")
    path = _bundled_expert_with(tmp_path, "odd", change, suffix)
    result = _invoke(runner, scans, "-o", tmp_path / "out", "--weights", f"general={path}")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and words in errors[0], result.output
    assert not (tmp_path / "out" / "a.png").exists()


def test_weights_that_are_not_regular_files_say_so(runner, tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(_gray("camera", 32)).save(scans / "a.png")
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        result = _invoke(runner, scans, "-o", tmp_path / "out", "--weights", f"general={path}")
        assert result.exit_code == 2 and "not a regular file" in result.output, result.output


def test_experts_lists_every_good_model_beside_the_bad_ones(runner, isolated_home, tmp_path):
    folder = isolated_home / "experts"
    folder.mkdir(parents=True)
    bad = {
        "as-list": json.dumps([1, 2, 3]),
        "nested": "[" * 100_000 + "]" * 100_000,
        "no-keys": json.dumps({"format_version": 1}),
        "odd-metrics": json.dumps(
            {
                "format_version": 1,
                "kind": "expert",
                "architecture": "unet_lite",
                "arguments": {},
                "metrics": [1, 2],
                "normalization": {"ab_gain": [1, 2, 3]},
            }
        ),
    }
    for name, metadata in bad.items():
        _save_numpy(folder / f"{name}.safetensors", metadata)
    markup = _bundled_expert_with(folder, "[red]loud", lambda meta, tensors: (meta, tensors), ".onnx")
    result = runner.invoke(app, ["experts"])
    assert result.exit_code == 0, result.output
    for name in ("general", "landscape", "people", "[red]loud", *bad):
        assert any(line.startswith(f"{name}: ") for line in result.output.splitlines()), (name, result.output)
    for name in bad:
        line = next(line for line in result.output.splitlines() if line.startswith(f"{name}: "))
        assert str(folder / f"{name}.safetensors") in line and "sha256" not in line, line
    assert markup.exists()
    listed = json.loads(runner.invoke(app, ["experts", "--json"]).output)
    assert {row["name"] for row in listed if "error" in row} == set(bad)


def test_awkward_file_names_are_reported_escaped_and_the_run_goes_on(runner, tmp_path):
    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir()
    gray = Image.fromarray(_gray("camera", 24))
    latin1 = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name from an old disk: not UTF-8
    long_name = "x" * 250 + ".png"  # 254 bytes, near the limit of 255
    for name in (latin1, long_name, "plain.png"):
        gray.save(scans / name)
    (scans / "bad\nname\x1b[31m.jpg").write_bytes(b"\xff\xd8 truncated")
    report = tmp_path / "r.jsonl"
    result = _invoke(runner, scans, "-o", out, "--report", report)
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4
    by_status = {row["input"].rsplit("/", 1)[1]: row["status"] for row in rows}
    assert by_status == {"caf\\xe9.png": OK, long_name: OK, "plain.png": OK, "bad\nname\x1b[31m.jpg": FAILED}
    assert (out / latin1).is_file() and (out / long_name).is_file()
    failed = [line for line in result.output.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "bad\\nname\\x1b[31m.jpg" in failed[0], result.output


def test_a_jpeg_whose_exif_nearly_fills_its_segment_keeps_it_and_is_written(runner, tmp_path):
    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir()
    exif = Image.Exif()
    exif[0x010E] = "x" * 65490  # ImageDescription: the EXIF block ends a few bytes under 64 KB
    Image.fromarray(_gray("camera", 24)).save(scans / "a.jpg", exif=exif.tobytes())
    result = _invoke(runner, scans, "-o", out)
    assert result.exit_code == 0, result.output
    with Image.open(out / "a.jpg") as written:
        assert written.getexif().get(0x010E) == "x" * 65490


def test_temporaries_a_killed_run_left_are_removed_by_the_next_run(runner, tmp_path):
    scans, out = tmp_path / "scans", tmp_path / "out"
    _small_tree(scans)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    out.mkdir()
    stale = out / f".colorize.{child.pid}.k1ll3d00.tmp"
    stale.write_bytes(b"\x89PNG half of a photo")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert _invoke(runner, scans, "-o", out).exit_code == 0
    assert not stale.exists()


def test_a_recursive_glob_does_not_follow_links_to_folders(tmp_path, isolated_home):
    scans = tmp_path / "scans"
    _small_tree(scans)
    (scans / "again").symlink_to(".")
    (scans / "and-again").symlink_to(".")  # two loops: following them, the names multiply without end
    report = tmp_path / "r.jsonl"
    command = [
        sys.executable,
        "-m",
        "colorize",
        "auto",
        str(scans / "**" / "*.*"),
        "-r",
        "-o",
        str(tmp_path / "out"),
        "--report",
        str(report),
        *FAST,
    ]
    # The timeout only keeps a regression from hanging the suite; the run itself takes seconds.
    done = subprocess.run(command, capture_output=True, text=True, timeout=SAFETY_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert sorted(_report(report)) == ["a.jpg", "b.png", "c.bmp", "d.tif"]


def test_a_second_run_into_a_busy_output_folder_is_refused_at_once(runner, tmp_path):
    import fcntl

    scans, out = tmp_path / "scans", tmp_path / "out"
    _small_tree(scans)
    out.mkdir()
    held = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a first run, still at work, holds it
        busy = _invoke(runner, scans, "-o", out)
        assert busy.exit_code == 2 and "another colorize run is writing into" in busy.output, busy.output
        assert list(out.iterdir()) == []
    finally:
        os.close(held)
    assert _invoke(runner, scans, "-o", out).exit_code == 0, "the folder is free once the first run ends"
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png", "c.bmp"]


@pytest.mark.needs_torch  # eval's judge
@pytest.mark.slow
def test_sigterm_during_eval_exits_130_and_says_so(tmp_path, isolated_home):
    truths = tmp_path / "truths"
    truths.mkdir()
    for i in range(300):  # a minute's work or more: the signal lands while it is under way
        Image.fromarray(np.roll(_photo("astronaut", 48), i, axis=1)).save(truths / f"t{i:03d}.png")
    # First in the order, a gray truth: eval says it skipped it once it is scoring, the sign it is under way.
    Image.fromarray(_gray("astronaut", 48)).save(truths / "0-gray.png")
    command = [COLORIZE, "eval", str(truths), "--expert", "general", "--batch-size", "1", "--work-size", "64"]
    returncode, output = interrupt_when(
        command, lambda output: "0-gray.png" in output, signal.SIGTERM, "eval said it skipped the gray photo"
    )
    assert returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output, output


@pytest.mark.parametrize("given", ["not-there.jpg", "scans/*.tiff"], ids=["missing file", "empty pattern"])
def test_a_path_that_names_nothing_is_a_usage_error_before_any_model_loads(runner, tmp_path, given):
    _small_tree(tmp_path / "scans")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not weights")  # loading models would fail on this first
    weights = f"general={broken}"
    result = _invoke(runner, tmp_path / "scans", tmp_path / given, "-o", tmp_path / "out", "--weights", weights)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert str(tmp_path / given) in result.output and "broken.safetensors" not in result.output
    assert not (tmp_path / "out").exists()


def test_colorize_auto_dot_inside_a_photo_folder_writes_its_default_folder_and_never_reads_it(
    runner, tmp_path, monkeypatch
):
    scans = tmp_path / "scans"
    _small_tree(scans)
    before = _hashes(scans)
    monkeypatch.chdir(scans)
    first = runner.invoke(app, ["auto", ".", "-r", *FAST])
    assert first.exit_code == 0, first.output
    outputs = sorted(
        p.relative_to(scans / "colorized").as_posix() for p in (scans / "colorized").rglob("*") if p.is_file()
    )
    assert outputs == ["a.jpg", "b.png", "c.bmp", "sub/d.tif"]
    again = runner.invoke(app, ["auto", ".", "-r", *FAST, "--on-exists", "overwrite"])
    assert again.exit_code == 0, again.output
    assert not (scans / "colorized" / "colorized").exists(), "outputs were read back as inputs"
    assert {k: v for k, v in _hashes(scans).items() if not k.startswith("colorized")} == before
    chosen = runner.invoke(app, ["auto", ".", "-o", "mine"])  # a folder the user names is theirs: refused
    assert chosen.exit_code == 2 and "--suffix" in chosen.output
