"""Training one expert or the classifier: isolation, resumption, bad data — tiny and real."""

import contextlib
import hashlib
import inspect
import json
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAFETY_TIMEOUT, Child, interrupt_when
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from colorize.configs import load_config
from colorize.core.color import resize_square
from colorize.core.images import decode
from colorize.core.locations import bundled_weights_dir
from colorize.core.modelfile import read_metadata
from colorize.experts.networks import load_model_file, replace_metadata
from colorize.experts.store import ModelStore
from colorize.pipelines import training
from colorize.pipelines.cli import app
from colorize.pipelines.inference import Pipeline
from colorize.pipelines.train_expert import ExpertTrainConfig, train_expert

# Every test here trains a network (or starts to): the slow part of the suite, run by CI after the rest.
pytestmark = pytest.mark.slow

# Tiny and quick: these tests are about the mechanics, so the expert is installed however it
# scores (--force); the guard against experts worse than gray has its own test.
TINY = [
    "--force",
    "--arch",
    "unet_seed",
    "--init",
    "scratch",
    "--epochs",
    "1",
    "--size",
    "32",
    "--batch-size",
    "4",
    "--workers",
    "0",
]


def _crops(rgb: np.ndarray, count: int, size: int = 48):
    """``count`` different real photos: crops of one scikit-image sample at varied offsets."""
    h, w = rgb.shape[:2]
    for i in range(count):
        top, left = (i * 7) % (h - size), (i * 11) % (w - size)
        yield rgb[top : top + size, left : left + size]


@pytest.fixture
def colour_folder(tmp_path, photos):
    folder = tmp_path / "mine" / "deep"
    folder.mkdir(parents=True)
    # Crops of many hues each: a crop of coffee alone (brown liquid, white cup) counts as toned.
    for name in ("astronaut", "chelsea"):
        for i, crop in enumerate(_crops(photos[name], 12)):
            Image.fromarray(crop).save(folder / f"{name}_{i}.jpg", quality=95)
    return tmp_path / "mine"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_expert_goes_to_the_user_folder_only(colour_folder, isolated_home, tmp_path):
    bundled = {p.name: _sha(p) for p in bundled_weights_dir().iterdir() if p.is_file()}
    assert "general.onnx" in bundled
    runner = CliRunner()
    result = runner.invoke(app, ["train", "expert", "portraits-1920s", str(colour_folder), *TINY])
    assert result.exit_code == 0, result.output
    written = isolated_home / "experts" / "portraits-1920s.safetensors"
    meta = read_metadata(written).metadata
    assert meta["architecture"] == "unet_seed" and meta["category"] == "portraits-1920s"
    data = meta["training"]["data"]
    assert data["images"] == 24 and data["train_images"] + data["val_images"] + data["test_images"] == 24
    assert len(data["file_list_sha256"]) == 16
    assert meta["training"]["recipe"]["fit"]["epochs"] == 1
    assert {"val_psnr", "val_delta_e", "val_colorfulness_ratio"} <= meta["metrics"].keys()
    assert {p.name: _sha(p) for p in bundled_weights_dir().iterdir() if p.is_file()} == bundled
    # The weights torch trains on, and beside them the ONNX graph inference runs, no older than they are.
    graph = written.with_suffix(".onnx")
    assert sorted(p.name for p in (isolated_home / "experts").iterdir()) == [graph.name, written.name]
    assert graph.stat().st_mtime >= written.stat().st_mtime
    assert read_metadata(graph).metadata == meta
    assert list((isolated_home / "runs" / "portraits-1920s" / "samples").glob("epoch_001.png"))

    # The installed expert is what the store and the pipeline then run: the trained network.
    assert ModelStore().source("portraits-1920s").path == graph
    pipeline = Pipeline.from_config(expert="portraits-1920s", threads=1)
    lightness = decode(next(colour_folder.rglob("*.jpg"))).lightness()
    prediction = pipeline.predict([lightness])[0]
    assert prediction.route.expert == "portraits-1920s"
    _, network = load_model_file(written)
    small = resize_square(lightness, meta["work_size"])
    normalization = pipeline.expert("portraits-1920s").normalization
    with torch.no_grad():
        trained = normalization.chroma(network(torch.from_numpy(normalization.network_input(small))).numpy())
    assert np.abs(prediction.small_ab - trained[0]).max() < 1e-3

    # Usable at once, and listed with its origin.
    gray = tmp_path / "old.png"
    Image.fromarray(np.full((20, 30), 120, np.uint8)).save(gray)
    auto = runner.invoke(app, ["auto", str(gray), "-o", str(tmp_path / "out"), "--expert", "portraits-1920s"])
    assert auto.exit_code == 0, auto.output
    listed = {row["name"]: row for row in json.loads(runner.invoke(app, ["experts", "--json"]).stdout)}
    assert listed["portraits-1920s"]["source"] == "user" and listed["portraits-1920s"]["training_images"] == 24
    assert listed["people"]["source"] == "bundled"


def test_unusable_photos_are_skipped_and_counted(colour_folder, photos, isolated_home):
    folder = colour_folder
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    Image.fromarray(np.full((40, 40), 90, np.uint8)).convert("RGB").save(folder / "gray.png")
    toned = np.asarray(Image.fromarray(photos["astronaut"]).convert("L"))[..., None] * np.array([1.0, 0.85, 0.6])
    Image.fromarray(toned.astype(np.uint8)).save(folder / "sepia.png")
    config = ExpertTrainConfig.from_defaults(
        "people",
        [folder],
        architecture="unet_seed",
        arguments={},
        init="scratch",
        epochs=1,
        size=32,
        batch_size=32,
        workers=0,
        val_split=0.3,
    )
    meta = train_expert(config, ModelStore()).metadata
    assert meta["training"]["data"]["images"] == 27
    assert meta["training"]["data"]["skipped_files"] == 3  # broken, gray, sepia


def test_training_refuses_photos_over_its_pixel_limit_before_decoding_them(colour_folder, isolated_home):
    from PIL import Image as PILImage

    big = np.tile(np.asarray(PILImage.open(next(colour_folder.rglob("*.jpg")))), (8, 8, 1))  # 8x the sides
    from colorize.pipelines.photo_folders import is_held_out

    name = next(f"big{i}.png" for i in range(100) if not is_held_out(Path(f"big{i}.png"), 0.1))  # a training photo
    PILImage.fromarray(big).save(colour_folder / name)
    limit = big.shape[0] * big.shape[1] / 1e6 - 0.0001  # just under the big photo, far over the others
    args = [*TINY, "--batch-size", "1", "--max-pixels", str(limit)]  # batch 1: no photo left out in a partial batch
    result = CliRunner().invoke(app, ["train", "expert", "tiny", str(colour_folder), *args])
    assert result.exit_code == 0, result.output
    meta = read_metadata(isolated_home / "experts" / "tiny.safetensors").metadata
    assert meta["training"]["data"]["images"] == 25 and meta["training"]["data"]["skipped_files"] == 1
    assert meta["training"]["recipe"]["max_pixels"] == int(limit * 1e6)
    assert PILImage.MAX_IMAGE_PIXELS is not None, "PIL's own guard was switched off for the whole process"


@pytest.mark.parametrize("make, message", [(None, "no such folder"), ("empty", "no images found")])
def test_missing_or_empty_folder_is_a_one_line_error(tmp_path, isolated_home, make, message):
    folder = tmp_path / "data"
    if make:
        folder.mkdir()
        (folder / "notes.txt").write_text("not a photo")
    result = CliRunner().invoke(app, ["train", "expert", "people", str(folder), *TINY])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_classifier_needs_one_folder_per_class(tmp_path, isolated_home, photos):
    (tmp_path / "classes" / "landscape").mkdir(parents=True)
    Image.fromarray(photos["rocket"]).save(tmp_path / "classes" / "landscape" / "rocket.jpg")
    result = CliRunner().invoke(app, ["train", "classifier", str(tmp_path / "classes"), "--init", "scratch"])
    assert result.exit_code == 2 and "people: missing class folder" in result.output


def _class_folders(root, photos):
    for label, source in (("landscape", "rocket"), ("people", "astronaut"), ("general", "coffee")):
        (root / label).mkdir(parents=True)
        for i, crop in enumerate(_crops(photos[source], 6)):
            Image.fromarray(crop).save(root / label / f"{source}_{i}.jpg")
    return root


# One epoch from scratch on 32-pixel crops: the mechanics, not a classifier worth having.
TINY_CLASSIFIER = ["--init", "scratch", "--epochs", "1", "--size", "32", "--batch-size", "4", "--workers", "0"]


def test_classifier_trains_into_the_user_folder(tmp_path, isolated_home, photos):
    root = _class_folders(tmp_path / "classes", photos)
    args = ["train", "classifier", str(root), *TINY_CLASSIFIER, "--val-split", "0.3", "--force"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = read_metadata(isolated_home / "classifier" / "classifier.safetensors").metadata
    assert meta["labels"] == ["landscape", "people", "general"]
    assert meta["preprocessing"]["input_size"] == 32
    assert meta["training"]["data"]["per_class"] == {"landscape": 6, "people": 6, "general": 6}
    assert "val_accuracy" in meta["metrics"]
    installed = isolated_home / "classifier" / "classifier.safetensors"
    graph = installed.with_suffix(".onnx")
    assert read_metadata(graph).metadata == meta and ModelStore().classifier_source().path == graph

    # Your classifier is set aside and brought back like your experts.
    removed = CliRunner().invoke(app, ["experts", "--remove", "classifier"])
    assert removed.exit_code == 0 and not installed.exists(), removed.output
    assert ModelStore().classifier_source().source == "bundled"
    assert CliRunner().invoke(app, ["experts", "--restore", "classifier"]).exit_code == 0 and installed.exists()
    named = CliRunner().invoke(app, ["train", "expert", "classifier", str(root)])
    assert named.exit_code == 2 and "names the scene classifier" in named.output, named.output


def test_the_classifier_judge_refuses_guessing_and_anything_below_the_classifier_it_replaces(tmp_path, isolated_home):
    from conftest import close_up_face_rgb

    from colorize.classifier.model import SceneClassifier
    from colorize.pipelines.train_classifier import ClassifierTask, ClassifierTrainConfig, _judge
    from colorize.pipelines.training import NotInstalledError

    faces = []
    for i, size in enumerate((96, 112, 128, 144)):
        faces.append(tmp_path / f"face_{i}.jpg")
        Image.fromarray(close_up_face_rgb(size)).save(faces[-1], quality=95)
    config = ClassifierTrainConfig.from_defaults(tmp_path, init="scratch")
    labelled = [(path, config.labels.index("people")) for path in faces]
    task = ClassifierTask(config, None, None, labelled, labelled, {})
    bundled = ModelStore().classifier_source().path
    assert task.accuracy_of(SceneClassifier.from_file(bundled)) == 1.0, "the bundled classifier knows a close-up face"
    out, run_dir = tmp_path / "classifier.safetensors", tmp_path / "run"
    with pytest.raises(NotInstalledError, match=r"right on 33% of 4 validation photos, no better than guessing"):
        _judge(task, {"val_accuracy": 1 / 3, "val_images": 4}, None, out, run_dir)
    with pytest.raises(NotInstalledError, match=r"right on 75% of 4 .* the one it replaces .* on 100%"):
        _judge(task, {"val_accuracy": 0.75, "val_images": 4}, bundled, out, run_dir)
    _judge(task, {"val_accuracy": 1.0, "val_images": 4}, bundled, out, run_dir)  # as good: installed


def _config(folder, run_dir, **extra):
    settings = dict(
        architecture="unet_seed",
        arguments={"widths": [8, 16, 32]},
        init="scratch",
        epochs=2,
        size=32,
        batch_size=4,
        workers=0,
        val_split=0.2,
        run_dir=run_dir,
        out=run_dir / "out.safetensors",
        force=True,
        # 24 photos leave 16 to train on (a small folder validates on a third): 8 steps an epoch
        # give the resume tests batches to crash and interrupt in.
        min_steps_per_epoch=8,
    )
    return ExpertTrainConfig.from_defaults("people", [folder], **{**settings, **extra})


def test_resumed_run_matches_an_uninterrupted_one(colour_folder, isolated_home, tmp_path):
    store = ModelStore()
    straight = train_expert(_config(colour_folder, tmp_path / "straight"), store)

    def interrupt_midway(event, **data):
        if event == "step" and data["epoch"] == 1 and data["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_expert(_config(colour_folder, tmp_path / "resumed"), store, interrupt_midway)
    assert not (tmp_path / "resumed" / "out.safetensors").exists(), "an interrupted run must not install weights"
    # Checkpoints of earlier versions also stored the count of epochs without improvement.
    checkpoint = tmp_path / "resumed" / "checkpoint.pt"
    saved = torch.load(checkpoint, weights_only=True)
    torch.save({**saved, "state": {**saved["state"], "stale_epochs": 0}}, checkpoint)
    resumed = train_expert(_config(colour_folder, tmp_path / "resumed", resume=True), store)

    _assert_same_weights(straight.path, resumed.path)


def test_a_crash_mid_epoch_resumes_from_the_timed_checkpoint_and_matches(
    colour_folder, isolated_home, tmp_path, monkeypatch
):
    store = ModelStore()
    straight = train_expert(_config(colour_folder, tmp_path / "straight"), store)
    monkeypatch.setattr(training, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every batch

    def crash_midway(event, **data):
        # Not an interrupt: nothing gets the chance to save on the way out, as after kill -9.
        if event == "step" and data["epoch"] == 0 and data["step"] == 3:
            raise MemoryError

    with pytest.raises(MemoryError):
        train_expert(_config(colour_folder, tmp_path / "resumed"), store, crash_midway)
    saved = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["state"]
    assert (saved["epoch"], saved["step"]) == (0, 3)
    resumed = train_expert(_config(colour_folder, tmp_path / "resumed", resume=True), store)
    _assert_same_weights(straight.path, resumed.path)


@pytest.mark.parametrize("hook", ["metadata", "on_epoch_end"])
def test_an_interrupt_while_an_epoch_is_being_scored_resumes_as_if_it_came_before(
    colour_folder, isolated_home, tmp_path, monkeypatch, hook
):
    """Ctrl-C can land after validation has recorded an epoch but before the epoch is counted
    done: while its best file is written (``metadata``), or its sample sheet (``on_epoch_end``)."""
    from colorize.pipelines.train_expert import ExpertTask

    store = ModelStore()
    straight = train_expert(_config(colour_folder, tmp_path / "straight"), store)
    straight_history = read_metadata(straight.path).metadata["training"]["history"]
    # The best file is written only for a best epoch, so the last one must be best here.
    assert min(straight_history, key=lambda r: r["score"])["epoch"] == 2, straight_history

    original = getattr(ExpertTask, hook)

    def interrupt_in_the_last_epoch(self, *args, **kwargs):
        # metadata(history) and on_epoch_end(epoch index, run_dir)
        in_last_epoch = len(args[0]) == 2 if hook == "metadata" else args[0] == 1
        if in_last_epoch:
            monkeypatch.setattr(ExpertTask, hook, original)  # once; the resumed run goes through
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ExpertTask, hook, interrupt_in_the_last_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_expert(_config(colour_folder, tmp_path / "resumed"), store)
    resumed = train_expert(_config(colour_folder, tmp_path / "resumed", resume=True), store)

    _assert_same_weights(straight.path, resumed.path)
    resumed_history = read_metadata(resumed.path).metadata["training"]["history"]
    assert [r["epoch"] for r in resumed_history] == [1, 2]
    assert [r["score"] for r in resumed_history] == [r["score"] for r in straight_history]
    # A later --resume with more epochs carries the checkpoint's history on: no epoch twice.
    saved = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["state"]
    assert [r["epoch"] for r in saved["history"]] == [1, 2]


def _assert_same_weights(path_a, path_b):
    a, b = load_file(str(path_a)), load_file(str(path_b))
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst == 0.0, f"resumed weights differ by up to {worst}"


def test_same_seed_gives_the_same_model(colour_folder, isolated_home, tmp_path):
    store = ModelStore()
    first = load_file(str(train_expert(_config(colour_folder, tmp_path / "a", epochs=1), store).path))
    second = load_file(str(train_expert(_config(colour_folder, tmp_path / "b", epochs=1), store).path))
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_training_runs_channels_last_and_learns_what_the_plain_layout_learns(colour_folder, isolated_home, tmp_path):
    runs = {}
    for name, layout in {"plain": {"channels_last": False}, "default": {}}.items():
        losses = []

        def collect(event, **info):
            if event == "step":
                losses.append(info["loss"])

        run_dir = tmp_path / name
        installed = train_expert(_config(colour_folder, run_dir, **layout), callback=collect)
        convolutions = [
            w for w in torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"].values() if w.ndim == 4
        ]
        runs[name] = losses, convolutions, installed.metadata["metrics"]["val_delta_e"]
    (plain_losses, plain_weights, plain_delta_e), (nhwc_losses, nhwc_weights, nhwc_delta_e) = runs.values()
    # The weights really were trained in the layout asked for, channels-last by default...
    assert all(w.is_contiguous() for w in plain_weights)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in nhwc_weights)
    assert not any(w.is_contiguous() for w in nhwc_weights if w.shape[1] > 1 and w.shape[2:] != (1, 1))
    # ...and the layout reorders sums, nothing more: the same curve (rounding differences grow a
    # little step by step, to about 0.3 % by the 16th) and the same validation score.
    assert len(plain_losses) == len(nhwc_losses) == 16
    assert np.allclose(plain_losses, nhwc_losses, rtol=1e-2), (plain_losses, nhwc_losses)
    assert nhwc_delta_e == pytest.approx(plain_delta_e, rel=1e-2)


def test_a_frozen_encoder_keeps_its_weights_and_statistics_while_the_decoder_learns(
    colour_folder, isolated_home, tmp_path
):
    run_dir = tmp_path / "run"
    args = ["train", "expert", "frozen", str(colour_folder), "--init", "general", "--freeze-encoder", "--force"]
    tiny_run = ["--epochs", "1", "--max-steps", "3", "--size", "32", "--batch-size", "4", "--workers", "0"]
    result = CliRunner().invoke(app, [*args, *tiny_run, "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    start = load_model_file(ModelStore().source("general").path)[1].state_dict()
    trained = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    encoder = [key for key in start if key.startswith("encoder.")]
    assert any(key.endswith("running_var") for key in encoder)  # batch statistics are among them
    assert all(torch.equal(trained[key], start[key]) for key in encoder)
    decoder = [key for key in start if not key.startswith("encoder.") and key.endswith("weight")]
    assert not all(torch.equal(trained[key], start[key]) for key in decoder)


@pytest.mark.parametrize(
    "asked, refusal",
    [
        (["--hint-input"], "--hint-input needs the encoder to learn"),
        (["--arch", "unet_seed"], "--freeze-encoder is for unet_lite experts, not unet_seed"),
    ],
)
def test_freezing_an_encoder_that_is_not_there_or_must_learn_is_refused_in_one_line(
    colour_folder, isolated_home, asked, refusal
):
    args = ["train", "expert", "frozen", str(colour_folder), "--freeze-encoder", *asked, "--epochs", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and refusal in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_two_process_distributed_training_keeps_ranks_in_step(colour_folder, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp.safetensors"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "colorize",
        "train",
        "expert",
        "ddp",
        str(colour_folder),
        *TINY,
        "--max-steps",
        "3",
        "--out",
        str(out),
        "--run-dir",
        str(tmp_path / "run"),
    ]
    env = {**os.environ, "COLORIZE_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=SAFETY_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    history = read_metadata(out).metadata["training"]["history"]
    assert read_metadata(out.with_suffix(".onnx")).metadata["training"]["history"] == history, "the graph beside it"
    assert history[-1]["world_size"] == 2
    assert history[-1]["ranks_agree"] is True
    assert done.stderr.count("wrote ") == 1 and done.stderr.count("data: ") == 1, "only rank 0 reports"


def test_colour_is_bought_within_a_delta_e_budget():
    from colorize.pipelines.train_expert import choose_gain

    curve = [  # one validation summary per gain 1.0, 1.15, 1.3, 1.45, as a regression head's typically runs
        {"delta_e": 9.0, "colorfulness_ratio": 0.55},
        {"delta_e": 9.2, "colorfulness_ratio": 0.66},
        {"delta_e": 9.6, "colorfulness_ratio": 0.75},
        {"delta_e": 10.4, "colorfulness_ratio": 0.86},
    ]
    assert choose_gain(curve, 0.85, 0.05) == 1  # the third would cost 6.7 % ΔE
    assert choose_gain(curve, 0.85, 0.10) == 2
    assert choose_gain(curve, 0.85, 0.20) == 3
    assert choose_gain(curve, 0.60, 0.20) == 0  # nearer the target, and cheaper
    assert choose_gain(curve, 0.85, 0.0) == 0


FIRST_EPOCH_LINE = re.compile(r"^epoch 1: ", re.MULTILINE)  # what colorize train prints as the first epoch ends


@pytest.mark.slow
def test_a_killed_training_run_saves_its_checkpoint_and_resumes(colour_folder, isolated_home):
    """SIGTERM (a scheduler's pre-emption, a closed session) is handled as Ctrl-C is."""

    def train_args(epochs: int) -> list[str]:
        args = ["train", "expert", "killed", str(colour_folder), *TINY]
        args[args.index("--epochs") + 1] = str(epochs)
        return args

    command = [sys.executable, "-m", "colorize", *train_args(500)]  # far more epochs than the test waits for
    checkpoint = isolated_home / "runs" / "killed" / "checkpoint.pt"
    # Into a later epoch than the first checkpoint's: an epoch's line is printed once its checkpoint is written.
    returncode, output = interrupt_when(
        command, lambda output: FIRST_EPOCH_LINE.search(output) is not None, signal.SIGTERM, "the first epoch ended"
    )
    assert returncode == 130, output
    assert "interrupted" in output and "--resume" in output and "Traceback" not in output, output
    saved = torch.load(checkpoint, weights_only=True)["state"]
    assert saved["epoch"] >= 1
    assert not (isolated_home / "experts" / "killed.safetensors").exists()

    resumed = CliRunner().invoke(app, [*train_args(saved["epoch"] + 1), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    meta = read_metadata(isolated_home / "experts" / "killed.safetensors").metadata
    assert [r["epoch"] for r in meta["training"]["history"]] == list(range(1, saved["epoch"] + 2))


def test_regression_expert_ships_the_chroma_curve_chosen_on_validation(colour_folder, isolated_home, tmp_path):
    from colorize.experts.store import Expert

    # Any ΔE is affordable and no colour is too much: the rule must pick the most colourful setting.
    config = _config(
        colour_folder,
        tmp_path / "calibrated",
        epochs=1,
        delta_e_tolerance=100.0,
        colorfulness_target=100.0,
    )
    model_file = train_expert(config, ModelStore())
    meta = model_file.metadata
    curve = meta["training"]["chroma_curve"]
    assert sorted(c["chroma_gain"] for c in curve) == sorted(config.chroma_gains)
    most_colourful = max(curve, key=lambda c: c["colorfulness_ratio"])
    gain = meta["metrics"]["val_chroma_gain"]
    assert gain == most_colourful["chroma_gain"]
    assert meta["normalization"]["ab_gain"] == [gain, gain]
    assert meta["metrics"]["val_delta_e"] == most_colourful["delta_e"]
    # Epochs are ranked by their most accurate decoding, whatever gain was chosen for colour.
    assert meta["training"]["history"][-1]["score"] == pytest.approx(min(c["delta_e"] for c in curve), abs=1e-3)
    plain = sorted(curve, key=lambda c: c["chroma_gain"])
    ratios = [c["colorfulness_ratio"] for c in plain]
    assert ratios == sorted(ratios) and ratios[-1] > ratios[0], "more gain, more colour"
    expert = Expert.from_file(model_file.path)
    assert expert.normalization.ab_gain == pytest.approx((gain, gain))

    # A fixed boost (the paper's) is kept as given, and nothing is chosen.
    fixed = train_expert(
        _config(colour_folder, tmp_path / "fixed", epochs=1, ab_gain=(1.6, 2.0)), ModelStore()
    ).metadata
    assert fixed["normalization"]["ab_gain"] == [1.6, 2.0]
    assert "chroma_curve" not in fixed["training"] and "val_chroma_gain" not in fixed["metrics"]


def test_zero_epochs_rechooses_the_gain_of_an_expert_without_touching_its_weights(
    colour_folder, isolated_home, tmp_path
):
    store = ModelStore()
    # A safest-ΔE rule first (no colour wanted), then a rule that wants all the colour there is.
    first = train_expert(
        _config(colour_folder, tmp_path / "first", epochs=1, colorfulness_target=0.0, out=store.user_path("mine")),
        store,
    )
    rescored = train_expert(
        _config(
            colour_folder,
            tmp_path / "again",
            epochs=0,
            init="mine",
            delta_e_tolerance=100.0,
            colorfulness_target=100.0,
            out=store.user_path("mine-vivid"),
        ),
        store,
    )
    a, b = load_file(str(first.path)), load_file(str(rescored.path))
    # Started from mine.onnx, the file that stands for the expert: its graph holds every weight,
    # not BatchNorm's count of training batches (which these layers do not use).
    kept = [k for k in a if not k.endswith("num_batches_tracked")]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in kept), "nothing may be trained"
    meta = rescored.metadata
    assert [r["epoch"] for r in meta["training"]["history"]] == [0]
    assert meta["training"]["init_training"] == first.metadata["training"], (
        "the file keeps how its weights were trained"
    )
    assert meta["training"]["recipe"]["init_sha256"] == _sha(first.path.with_suffix(".onnx"))
    most_colourful = max(meta["training"]["chroma_curve"], key=lambda c: c["colorfulness_ratio"])
    chosen = meta["normalization"]["ab_gain"]
    assert chosen == [most_colourful["chroma_gain"]] * 2 != [1.0, 1.0]
    assert first.metadata["normalization"]["ab_gain"][0] == 1.0, "the first rule wanted no colour"
    listing = CliRunner().invoke(app, ["experts"]).output
    assert "mine: unet_seed," in listing and f"mine-vivid: unet_seed (chroma x{chosen[0]:g})" in listing


def test_a_calibration_shift_stays_with_its_weights_and_a_shifted_expert_at_saturation_0_is_gray(
    colour_folder, gray_folder, isolated_home, tmp_path
):
    runner = CliRunner()
    assert runner.invoke(app, ["train", "expert", "mine", str(colour_folder), *TINY]).exit_code == 0
    mine = isolated_home / "experts" / "mine.safetensors"
    meta = read_metadata(mine).metadata
    replace_metadata(mine, {**meta, "normalization": {**meta["normalization"], "ab_shift": [-6.0, 9.0]}})

    out = tmp_path / "gray-out"
    args = ["auto", str(gray_folder), "-o", str(out), "--expert", "mine", "--saturation", "0", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    for made in out.iterdir():
        rgb = np.asarray(Image.open(made).convert("RGB")).astype(int)
        assert np.abs(rgb - rgb[..., :1]).max() <= 1, f"{made.name}: saturation 0 must mean no colour at all"

    assert "mine: unet_seed (shift a -6, b +9)" in runner.invoke(app, ["experts"]).output

    rescored = ["train", "expert", "mine-again", str(colour_folder), "--init", "mine", "--epochs", "0", "--force"]
    assert runner.invoke(app, [*rescored, "--size", "32", "--workers", "0"]).exit_code == 0
    again = read_metadata(isolated_home / "experts" / "mine-again.safetensors").metadata
    assert again["normalization"]["ab_shift"] == [0.0, 0.0], "a shift chosen for one file is not inherited"


def test_fine_tuning_keeps_the_starting_weights_when_no_epoch_beats_them_on_validation(
    colour_folder, isolated_home, tmp_path
):
    store = ModelStore()
    # The bundled general expert, and a learning rate that wrecks it in two steps: epochs 1 and 2 must lose to epoch 0.
    epochs = []
    record_epochs = lambda event, **data: epochs.append(data) if event == "epoch_end" else None  # noqa: E731
    config = _config(
        colour_folder, tmp_path / "tuned", epochs=2, patience=1, init="general", lr=1e4, max_steps_per_epoch=2
    )
    wrecked = train_expert(config, store, record_epochs)
    # Losing to the starting weights is no reason to stop early (a warm restart starts by losing):
    # with patience 1, epoch 2 still runs, as epoch 1 is the best trained epoch so far.
    assert [(r["epoch"], r["best"]) for r in epochs] == [(0, True), (1, False), (2, False)]
    assert [r["epoch"] for r in wrecked.metadata["training"]["history"]] == [0, 1, 2], (
        "the file records the epochs it rejected"
    )
    # The bundled expert is an ONNX file: its weights as torch reads them back from the graph.
    a = load_model_file(bundled_weights_dir() / "general.onnx")[1].state_dict()
    b = load_file(str(wrecked.path))
    kept = [k for k in a if not k.endswith("num_batches_tracked")]  # a training count no graph holds
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k].to(a[k].dtype)) for k in kept)


def test_zero_epochs_needs_an_expert_to_start_from(colour_folder, isolated_home):
    result = CliRunner().invoke(
        app, ["train", "expert", "mine", str(colour_folder), "--epochs", "0", "--init", "scratch"]
    )
    assert result.exit_code != 0 and "--init NAME" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_encoder_option_builds_a_new_expert_on_that_encoder(colour_folder, isolated_home, tmp_path):
    runner = CliRunner()
    args = [
        "train",
        "expert",
        "wide",
        str(colour_folder),
        *TINY,
        "--arch",
        "unet_lite",
        "--encoder",
        "efficientnet_lite1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = read_metadata(isolated_home / "experts" / "wide.safetensors").metadata
    assert meta["architecture"] == "unet_lite" and meta["arguments"]["encoder"] == "efficientnet_lite1"
    tensors = load_file(isolated_home / "experts" / "wide.safetensors")
    # lite1's stages are lite0's widths but deeper: its sixth stage has a fifth block.
    assert any(k.startswith("encoder.blocks.5.4.") for k in tensors)

    for wrong, message in (
        (["--encoder", "efficientnet_lite1", "--init", "wide"], "--encoder builds a new expert"),
        (["--encoder", "efficientnet_b0", "--init", "imagenet"], "no offline ImageNet weights"),
        (["--encoder", "no_such_network"], "no_such_network"),
        (["--arch", "unet_seed", "--encoder", "efficientnet_lite1"], "unet_lite"),
    ):
        bad = runner.invoke(app, [*args[:4], *TINY, "--arch", "unet_lite", *wrong])
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output, (wrong, bad.output)


@pytest.mark.slow
def test_naming_the_recipes_own_architecture_builds_the_recipes_network(colour_folder, isolated_home):
    # --arch unet_lite once dropped the recipe's arguments, and with them the encoder to load ImageNet weights into.
    args = ["train", "expert", "lite", str(colour_folder), *TINY, "--arch", "unet_lite", "--init", "imagenet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = read_metadata(isolated_home / "experts" / "lite.safetensors").metadata
    recipe = load_config("experts")["architecture"]
    assert meta["architecture"] == "unet_lite" and meta["arguments"] == recipe["arguments"]


def test_a_disk_that_fills_mid_run_leaves_the_last_checkpoint_to_resume_from(colour_folder, isolated_home, tmp_path):
    from test_files import small_disk

    store = ModelStore()
    straight = train_expert(_config(colour_folder, tmp_path / "straight"), store)
    with small_disk(tmp_path / "disk", "8m") as disk:
        filler = disk / "filler"

        def fill_the_disk_after_epoch_one(event, **data):
            if event == "epoch_end" and data["epoch"] == 1:
                with open(filler, "wb") as handle:  # every byte left, as another program might
                    with contextlib.suppress(OSError):
                        while True:
                            handle.write(b"\0" * 65536)

        run_dir = disk / "run"
        with pytest.raises(OSError, match="no space left on the device"):
            train_expert(_config(colour_folder, run_dir), store, fill_the_disk_after_epoch_one)
        assert not [p.name for p in run_dir.rglob("*.tmp")], "a partial file was left behind"
        filler.unlink()
        resumed = train_expert(_config(colour_folder, run_dir, resume=True), store)
        _assert_same_weights(straight.path, resumed.path)


def test_a_full_disk_is_one_line_that_says_what_to_do(colour_folder, isolated_home, tmp_path):
    from test_files import small_disk

    with small_disk(tmp_path / "disk", "64k") as disk:
        result = CliRunner().invoke(
            app, ["train", "expert", "tiny", str(colour_folder), *TINY, "--run-dir", str(disk / "run")]
        )
        assert result.exit_code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "no space left on the device" in errors[0] and "--resume" in errors[0], (
            result.output
        )
        assert "Traceback" not in result.output and not list(disk.rglob("*.tmp"))


def test_a_model_folder_that_cannot_be_written_is_refused_before_training(colour_folder, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file where the model folder should be")
    monkeypatch.setenv("COLORIZE_HOME", str(home))
    result = CliRunner().invoke(app, ["train", "expert", "tiny", str(colour_folder), *TINY])
    assert result.exit_code == 2, result.output
    assert "error: cannot write in" in result.output and str(home) in result.output, result.output
    assert "epoch" not in result.output, "training started before the check"


def test_ctrl_c_during_an_optimiser_step_resumes_exactly_as_an_uninterrupted_run(
    colour_folder, isolated_home, tmp_path, monkeypatch, ctrl_c_reaches_python
):
    import os

    store = ModelStore()
    straight = train_expert(_config(colour_folder, tmp_path / "straight"), store)
    original, calls = torch.optim.AdamW.step, []

    def step_then_ctrl_c(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 7:  # the weights have moved; the step is not yet counted
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train_expert(_config(colour_folder, tmp_path / "resumed"), store)
    monkeypatch.setattr(torch.optim.AdamW, "step", original)
    resumed = train_expert(_config(colour_folder, tmp_path / "resumed", resume=True), store)
    _assert_same_weights(straight.path, resumed.path)


def test_a_small_folder_is_passed_over_again_until_an_epoch_has_its_steps():
    from colorize.pipelines.training import epoch_batches

    batches = epoch_batches(54, 32, seed=0, epoch=3, min_steps=50)  # 60 photos, 54 of them for training
    assert len(batches) == 50 and all(len(batch) == 32 for batch in batches)
    assert {i for batch in batches for i in batch} == set(range(54)), "some photos never trained on"
    assert len({tuple(batch) for batch in batches}) == 50, "passes repeat one order"
    assert epoch_batches(54, 32, seed=0, epoch=3, min_steps=50) == batches  # a resume finds the same epoch
    assert [len(b) for b in epoch_batches(10, 32, seed=0, epoch=0, min_steps=3)] == [
        10,
        10,
        10,
    ]  # the partial batch kept
    big = epoch_batches(3200, 32, seed=0, epoch=0, min_steps=50)
    assert big == epoch_batches(3200, 32, seed=0, epoch=0) and len(big) == 100  # large folders: one pass, as before


def test_an_expert_worse_than_gray_is_not_installed_and_the_previous_file_stays(colour_folder, isolated_home):
    runner = CliRunner()
    first = runner.invoke(app, ["train", "expert", "mine", str(colour_folder), *TINY])
    assert first.exit_code == 0, first.output
    installed = isolated_home / "experts" / "mine.safetensors"
    before = installed.read_bytes()
    # A fixed boost of 6x on a network that has barely trained: louder than any truth.
    loud = [a for a in TINY if a != "--force"] + ["--ab-gain", "6,6"]
    result = runner.invoke(app, ["train", "expert", "mine", str(colour_folder), *loud])
    assert result.exit_code == 1, result.output
    error = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert "not installed" in error and "worse than no colour" in error and "--force" in error, error
    assert re.search(r"on \d+ validation photos\)", error), error
    assert installed.read_bytes() == before
    forced = runner.invoke(app, ["train", "expert", "mine", str(colour_folder), *loud, "--force"])
    assert forced.exit_code == 0, forced.output
    assert installed.read_bytes() != before


def test_a_fine_tune_that_never_beats_the_expert_it_started_from_is_not_installed(colour_folder, isolated_home):
    # A learning rate that wrecks the network in two steps: epoch 0 (the general expert) stays the best.
    wrecking = ["--init", "general", "--lr", "50", "--epochs", "1", "--max-steps", "2", "--size", "32"]
    args = ["train", "expert", "mine", str(colour_folder), *wrecking, "--batch-size", "4", "--workers", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    error = " ".join(result.output.split())
    assert "no epoch validates better than general, the expert it started from" in error, error
    assert not (isolated_home / "experts" / "mine.safetensors").exists()


def test_a_small_folder_validates_on_enough_photos_and_a_large_one_keeps_its_test_share():
    from colorize.pipelines.photo_folders import MIN_VALIDATION, training_split

    small = [Path(f"album/photo_{i:03d}.jpg") for i in range(60)]
    train, val, summary = training_split(small, 0.1)
    assert len(val) >= MIN_VALIDATION * 0.7 and summary["test_images"] == 0, summary
    assert sorted(train + val) == sorted(small)
    assert training_split(small, 0.1)[1] == val, "the same photos every time"
    large = [Path(f"album/photo_{i:04d}.jpg") for i in range(2000)]
    _, val, summary = training_split(large, 0.1)
    assert 70 < len(val) < 130 and 70 < summary["test_images"] < 130, summary


def test_a_refused_new_expert_says_nothing_was_installed_and_resume_force_installs_it(colour_folder, isolated_home):
    runner = CliRunner()
    loud = [a for a in TINY if a != "--force"] + ["--ab-gain", "6,6"]
    result = runner.invoke(app, ["train", "expert", "fresh", str(colour_folder), *loud])
    assert result.exit_code == 1, result.output
    error = " ".join(result.output.split())
    assert "nothing was installed at" in error and "unchanged" not in error, error
    assert "--resume --force" in error, error
    installed = isolated_home / "experts" / "fresh.safetensors"
    assert not installed.exists()
    again = runner.invoke(app, ["train", "expert", "fresh", str(colour_folder), *loud, "--resume", "--force"])
    assert again.exit_code == 0 and installed.exists(), again.output
    assert "epoch 1:" not in again.output, "installed from the finished run, not trained again"


def test_retraining_keeps_the_replaced_file_for_restore_and_remove_returns_to_the_bundled(colour_folder, isolated_home):
    from colorize.experts.store import ModelStore

    runner = CliRunner()
    assert runner.invoke(app, ["train", "expert", "people", str(colour_folder), *TINY, "--seed", "1"]).exit_code == 0
    mine = isolated_home / "experts" / "people.safetensors"
    first = mine.read_bytes()
    second_run = runner.invoke(app, ["train", "expert", "people", str(colour_folder), *TINY, "--seed", "2"])
    assert second_run.exit_code == 0, second_run.output
    assert "colorize experts --restore people" in second_run.output
    assert "takes the bundled one's place" in second_run.output  # people is a bundled name
    second = mine.read_bytes()
    assert second != first
    assert runner.invoke(app, ["experts", "--restore", "people"]).exit_code == 0
    assert mine.read_bytes() == first  # and back again: restore swaps
    assert runner.invoke(app, ["experts", "--restore", "people"]).exit_code == 0
    assert mine.read_bytes() == second
    assert runner.invoke(app, ["experts", "--remove", "people"]).exit_code == 0
    assert not mine.exists() and ModelStore().sources()["people"].source == "bundled"
    nothing = runner.invoke(app, ["experts", "--remove", "landscape"])
    assert nothing.exit_code == 2 and "bundled models cannot be removed" in nothing.output


def test_by_default_an_expert_is_fine_tuned_from_the_nearest_installed_one(colour_folder, isolated_home):
    from colorize.core.modelfile import file_sha256

    quick = ["--epochs", "1", "--max-steps", "2", "--size", "32", "--batch-size", "4", "--workers", "0", "--force"]
    runner = CliRunner()
    assert runner.invoke(app, ["train", "expert", "people", str(colour_folder), *quick]).exit_code == 0
    assert runner.invoke(app, ["train", "expert", "portraits", str(colour_folder), *quick]).exit_code == 0
    people = read_metadata(isolated_home / "experts" / "people.safetensors").metadata["training"]["recipe"]
    portraits = read_metadata(isolated_home / "experts" / "portraits.safetensors").metadata["training"]["recipe"]
    assert people["init"] == "people" and people["init_sha256"] == file_sha256(bundled_weights_dir() / "people.onnx")
    assert portraits["init"] == "general"  # a new name starts from the general expert


def _ready_data_loading_workers(process) -> set[int]:
    """``process``'s data-loading workers, once each has set itself up: children still running its
    command line (forked, not exec'd) that ignore SIGTERM, as a worker's set-up makes it (a
    Ctrl-C or a kill of the whole group is the main process's to handle). Imports run
    short-lived children too (torch's CUDA lookup runs ldconfig); until their exec they share
    the main process's handlers, which catch SIGTERM rather than ignore it, so they never match."""
    import os

    # From the command, not /proc: read just after Popen, /proc may still show the parent's
    # command line (the child has not exec'd yet), and then no worker ever matches.
    own = b"".join(os.fsencode(part) + b"\0" for part in process.args)
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    except FileNotFoundError:
        return set()
    workers = set()
    for pid in children:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() != own:
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone meanwhile
        ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE)[1], 16)
        if ignored & (1 << (signal.SIGTERM - 1)):
            workers.add(int(pid))
    return workers


@pytest.mark.slow
def test_a_signal_to_the_whole_process_group_interrupts_training_cleanly(photos, tmp_path):
    """Ctrl-C in a terminal (or a kill of the job) reaches the data-loading worker as well as
    the main process; when the worker died first the run ended with exit 1 and no checkpoint
    message (6 of 8 tries), or ran on."""
    import os

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(120):  # enough that the worker is still loading when the signal comes
        Image.fromarray(np.roll(photos["astronaut"], i * 7, axis=1)).save(folder / f"p{i:03d}.jpg")
    # Training proper has begun once a data-loading worker is at work: a signal before that ends
    # setup, with nothing yet to checkpoint. The signal comes as soon as the first epoch's worker
    # is ready, then (in a second run) once the first epoch has ended and the next one's is.
    for trial, after_first_epoch in enumerate((False, True)):
        home = tmp_path / f"home{trial}"
        command = [sys.executable, "-m", "colorize", "train", "expert", "tiny", str(folder), *TINY,
                   "--epochs", "5", "--size", "64", "--batch-size", "8", "--workers", "1"]  # fmt: skip
        env = {**os.environ, "COLORIZE_HOME": str(home), "OMP_NUM_THREADS": "1"}
        with Child(command, group=True, env=env) as child:

            def ready(output: str) -> bool:
                if after_first_epoch and not FIRST_EPOCH_LINE.search(output):
                    return False
                return bool(_ready_data_loading_workers(child.process))

            what = "the first epoch had ended and " if after_first_epoch else ""
            child.wait_for(ready, what + "a data-loading worker was ready")
            child.send(signal.SIGTERM)
            returncode, output = child.finish()
        assert returncode == 130 and "interrupted: checkpoint saved" in output, output[-1500:]
        assert (home / "runs" / "tiny" / "checkpoint.pt").is_file()


def test_a_signal_to_the_whole_process_group_during_validation_stops_it_without_a_killed_worker(photos, tmp_path):
    """Validation's data-loading workers leave interrupts to the main process as training's do:
    a kill of the whole group while the starting expert is scored (--epochs 0 trains nothing,
    it only validates) stops the run, and no worker dies of the signal under it."""
    import os

    from conftest import tiny_expert

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(120):  # enough that validation is still loading when the signal comes
        Image.fromarray(np.roll(photos["astronaut"], i * 7, axis=1)).save(folder / f"p{i:03d}.jpg")
    home = tmp_path / "home"
    tiny_expert(home / "experts" / "tiny.safetensors")
    command = [sys.executable, "-m", "colorize", "train", "expert", "tiny", str(folder), "--init", "tiny",
               "--epochs", "0", "--size", "64", "--workers", "1", "--val-split", "0.9", "--force"]  # fmt: skip
    env = {**os.environ, "COLORIZE_HOME": str(home), "OMP_NUM_THREADS": "1"}
    with Child(command, group=True, env=env) as child:
        child.wait_for(lambda output: bool(_ready_data_loading_workers(child.process)), "a validation worker was ready")
        child.send(signal.SIGTERM)
        returncode, output = child.finish()
    assert returncode == 130, output[-1500:]
    assert "killed by signal" not in output and "Traceback" not in output, output[-1500:]


@pytest.mark.parametrize("retired", [["--global-context"], ["--feature-loss", "0.5"]])
def test_retired_experiments_are_no_training_options(colour_folder, isolated_home, retired):
    result = CliRunner().invoke(app, ["train", "expert", "x", str(colour_folder), *TINY, *retired])
    assert result.exit_code == 2 and "No such option" in result.output and retired[0] in result.output
    assert not (isolated_home / "experts").exists()


def test_an_expert_file_asking_for_the_retired_global_context_branch_is_refused_in_one_line(
    colour_folder, isolated_home
):
    fixture = Path(__file__).parent / "fixtures" / "expert-0.1.0.safetensors"
    meta = read_metadata(fixture).metadata
    path = isolated_home / "experts" / "scene.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(fixture.read_bytes())
    arguments = {"encoder": "efficientnet_lite0", "decoder_channels": [96, 64, 40, 24], "global_context": True}
    replace_metadata(path, {**meta, "architecture": "unet_lite", "arguments": arguments})
    result = CliRunner().invoke(
        app, ["train", "expert", "mine", str(colour_folder), "--init", "scene", "--epochs", "1"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    error = " ".join(result.output.split())
    assert error.startswith("error: ") and str(path) in error and "global-context branch was retired" in error, error
    assert sorted(p.name for p in path.parent.iterdir()) == ["scene.safetensors"], "nothing trained or installed"


def _training_field_defaults(cls) -> dict:
    from dataclasses import MISSING, fields

    return {f.name: f.default is not MISSING or f.default_factory is not MISSING for f in fields(cls)}


def test_the_toml_files_are_the_only_defaults_of_the_training_recipes():
    from colorize.pipelines.cli_train import train_classifier_command, train_expert_command
    from colorize.pipelines.train_classifier import ClassifierTrainConfig

    experts, classifier = load_config("experts"), load_config("classifier")
    recipes = {
        ExpertTrainConfig: {"architecture", "arguments", "work_size", *experts["training"]},
        ClassifierTrainConfig: {*classifier["model"], *classifier["training"]},
    }
    for cls, keys in recipes.items():
        defaults = {**_training_field_defaults(training.FitConfig), **_training_field_defaults(cls)}
        assert keys <= defaults.keys(), keys - defaults.keys()
        assert not [key for key in keys if defaults[key]], f"{cls.__name__} repeats defaults of the TOML"
    # The command line's options for them default to "not given" (None): the TOML's value then applies.
    commands = {
        train_expert_command: (ExpertTrainConfig, {"arch": "architecture"}),
        train_classifier_command: (ClassifierTrainConfig, {"arch": "architecture", "size": "input_size"}),
    }
    for command, (cls, renamed) in commands.items():
        options = {
            name: getattr(parameter.default, "default", parameter.default)
            for name, parameter in inspect.signature(command).parameters.items()
            if renamed.get(name, name) in recipes[cls]
        }
        assert len(options) >= 9 and all(default is None for default in options.values()), options


def test_the_command_line_trains_with_the_values_of_the_toml_files(colour_folder, isolated_home, tmp_path, monkeypatch):
    import colorize.configs

    folder = tmp_path / "configs"
    folder.mkdir()
    for name in ("experts", "classifier", "routing"):
        (folder / f"{name}.toml").write_text(colorize.configs.FOLDER.joinpath(f"{name}.toml").read_text())
    text = (folder / "experts.toml").read_text()
    assert "min_steps_per_epoch = 12" in text and "val_limit = 300" in text
    text = text.replace("min_steps_per_epoch = 12", "min_steps_per_epoch = 5").replace(
        "val_limit = 300", "val_limit = 7"
    )
    (folder / "experts.toml").write_text(text)
    monkeypatch.setattr(colorize.configs, "FOLDER", folder)

    result = CliRunner().invoke(app, ["train", "expert", "toml", str(colour_folder), *TINY])
    assert result.exit_code == 0, result.output
    recipe = read_metadata(isolated_home / "experts" / "toml.safetensors").metadata["training"]["recipe"]
    assert recipe["fit"]["min_steps_per_epoch"] == 5 and recipe["val_limit"] == 7
    assert recipe["fit"]["epochs"] == 1, "a flag still wins over the TOML"

    classifier_text = (folder / "classifier.toml").read_text().replace("patience = 2", "patience = 9")
    (folder / "classifier.toml").write_text(classifier_text)
    from colorize.pipelines.train_classifier import ClassifierTrainConfig

    assert ClassifierTrainConfig.from_defaults(tmp_path).fit.patience == 9


def test_out_names_the_weights_file_and_its_onnx_graph_goes_beside_it(colour_folder, isolated_home, tmp_path):
    result = CliRunner().invoke(
        app, ["train", "expert", "x", str(colour_folder), *TINY, "--out", str(tmp_path / "x.onnx")]
    )
    assert result.exit_code == 2 and "name a .safetensors file" in " ".join(result.output.split()), result.output
    assert not (tmp_path / "x.onnx").exists()
