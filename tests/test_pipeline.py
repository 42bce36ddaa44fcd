"""pipelines.inference: the Python API on real photos with the bundled models."""

import os
import sys

import numpy as np
import pytest
from conftest import close_up_face_rgb
from PIL import Image
from skimage.color import rgb2lab

from colorize.pipelines.inference import Pipeline, PipelineError
from colorize.router import UnknownExpertError


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline.from_config(home="/nonexistent-colorize-home")


def _gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def test_output_keeps_input_luminance(pipeline, photos):
    gray = _gray(photos["astronaut"])
    result = pipeline.colorize(Image.fromarray(gray))
    out = (result.rgb * 255 + 0.5).astype(np.uint8)
    l_in = rgb2lab(np.repeat(gray[..., None], 3, -1))[..., 0]
    l_out = rgb2lab(out)[..., 0]
    diff = np.abs(l_out - l_in)
    # 8-bit rounding of RGB moves L by under half a unit; clipping of out-of-gamut chroma
    # near black and white can move a few pixels more.
    assert diff.mean() < 0.5 and np.percentile(diff, 99) < 2.0, (diff.mean(), np.percentile(diff, 99), diff.max())


def test_output_has_colour_and_the_input_size(pipeline, photos):
    gray = _gray(photos["coffee"])
    result = pipeline.colorize(gray.astype(np.float32) / 255)
    assert result.rgb.shape == (*gray.shape, 3)
    chroma = np.hypot(*np.moveaxis(rgb2lab(result.rgb)[..., 1:], -1, 0))
    assert chroma.mean() > 2.0, f"mean chroma {chroma.mean():.2f}: the expert predicted almost no colour"


def test_batch_of_mixed_sizes_matches_single_images(pipeline, photos):
    images = [_gray(photos["chelsea"]), _gray(photos["rocket"])[:37, :53], np.full((3, 2), 128, np.uint8)]
    batch = pipeline.colorize_lightness([_lightness(g) for g in images])
    for gray, result in zip(images, batch):
        single = pipeline.colorize(gray.astype(np.float32) / 255)
        assert result.rgb.shape == (*gray.shape, 3)
        assert np.abs(result.rgb - single.rgb).max() < 2e-3
        assert result.route.expert == single.route.expert


def _lightness(gray: np.ndarray) -> np.ndarray:
    from colorize.core.color import lightness_from_array

    return lightness_from_array(gray.astype(np.float32) / 255)


def test_every_route_names_a_reason_and_probabilities(pipeline, photos):
    routes = pipeline.route([_lightness(_gray(rgb)) for rgb in photos.values()])
    for r in routes:
        assert r.reason in ("classified", "low confidence → general")
        assert set(r.probabilities) == {"landscape", "people", "general"}
        assert abs(sum(r.probabilities.values()) - 1) < 1e-4


def test_forced_expert_skips_the_classifier(photos):
    forced = Pipeline.from_config(expert="landscape", home="/nonexistent-colorize-home")
    assert forced.classifier is None
    assert forced.colorize(_gray(photos["astronaut"]).astype(np.float32) / 255).route.reason == "forced"


def test_unknown_forced_expert_is_refused():
    with pytest.raises(UnknownExpertError, match="general"):
        Pipeline.from_config(expert="nope", home="/nonexistent-colorize-home")


def test_threshold_one_sends_everything_to_general(photos):
    face = _lightness(_gray(close_up_face_rgb()))
    assert Pipeline.from_config(home="/nonexistent-colorize-home").route([face])[0].expert == "people"
    strict = Pipeline.from_config(threshold=1.0, home="/nonexistent-colorize-home")
    routes = strict.route([face] + [_lightness(_gray(rgb)) for rgb in photos.values()])
    assert {r.expert for r in routes} == {"general"}
    assert routes[0].reason == "low confidence → general"


def test_class_mapped_to_a_missing_expert_falls_back(tmp_path, photos):
    # A user's routing.toml may not name a missing expert (an error at start-up); a policy
    # whose expert has no weights, here built directly, still falls back and says so.
    from colorize.experts.store import ModelStore
    from colorize.router import RoutingPolicy

    policy = RoutingPolicy(threshold=0.0, class_to_expert={"people": "portraits-1920s", "landscape": "portraits-1920s"})
    full = Pipeline.from_config(home=tmp_path)
    pipeline = Pipeline(full.classifier, ModelStore(home=tmp_path), policy)
    routes = pipeline.route([_lightness(_gray(rgb)) for rgb in photos.values()])
    assert all(r.expert == "general" for r in routes)
    assert any(r.reason == "missing expert → general" for r in routes)


def test_pipeline_without_classifier_needs_a_forced_expert(tmp_path):
    from colorize.experts.store import ModelStore
    from colorize.router import RoutingPolicy

    with pytest.raises(PipelineError, match="--expert"):
        Pipeline(None, ModelStore(home=tmp_path), RoutingPolicy())


def test_large_photo_is_downsampled_once_without_changing_the_result(pipeline, photos):
    big = np.asarray(Image.fromarray(_gray(photos["astronaut"])).resize((700, 500), Image.BICUBIC))
    lightness = _lightness(big)
    shared = pipeline.predict([lightness])[0]
    direct_route = pipeline.route([lightness])[0]
    direct_ab = pipeline.predict_small_ab([lightness], [direct_route])[0]
    assert shared.route.expert == direct_route.expert
    # The expert sees exactly the same input; the classifier a resampled one.
    assert np.allclose(shared.small_ab, direct_ab, atol=1e-4), float(np.abs(shared.small_ab - direct_ab).max())
    for label, p in direct_route.probabilities.items():
        assert abs(shared.route.probabilities[label] - p) < 0.05, (label, p, shared.route.probabilities[label])


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_compose_on_worker_threads_equals_one_thread(pipeline, photos, dtype):
    from concurrent.futures import ThreadPoolExecutor

    lightness = _lightness(_gray(photos["coffee"]))
    prediction = pipeline.predict([lightness])[0]
    with ThreadPoolExecutor(2) as pool:
        threaded = prediction.compose(pool.map, dtype)
    single = prediction.compose(map, dtype)
    assert threaded.dtype == dtype and np.array_equal(threaded, single)
    assert np.array_equal(pipeline.colorize_lightness([lightness])[0].rgb, prediction.compose())


def test_eight_bit_compose_gives_the_bytes_of_the_float_one(pipeline, photos):
    """The 8-bit path reads an 8-bit gamma table; its bytes must be what a file of the
    float result would hold, (rgb * 255 + 0.5) truncated, to the last pixel."""
    from colorize.core.color import compose_upsampled

    lightness = _lightness(_gray(photos["astronaut"]))
    prediction = pipeline.predict([lightness])[0]
    small_ab = prediction.small_ab * 1.6  # saturated enough that some pixels leave the gamut
    floats = compose_upsampled(prediction.lightness, small_ab, np.float32)
    eight_bits = compose_upsampled(prediction.lightness, small_ab, np.uint8)
    assert np.array_equal(eight_bits, (floats * 255 + 0.5).astype(np.uint8))
    assert len(np.unique(eight_bits)) > 200


_STRIP_PEAK = """
import resource, sys
import numpy as np
from PIL import Image
from colorize.pipelines.inference import Pipeline
from colorize.core.color import lightness_from_array

pipeline = Pipeline.from_config()
strip = (np.arange(4_000_000) % 251).astype(np.uint8).reshape(sys.argv[1] == "tall" and (-1, 1) or (1, -1))
lightness = lightness_from_array(strip)
pipeline.predict([lightness[:, :64, :64]])[0].compose()  # models loaded, buffers warm
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = pipeline.predict([lightness])[0].compose(dtype=np.uint8)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert result.shape == (*strip.shape, 3)
print((after - before) // 1024)
"""


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["wide", "tall"])
def test_a_photo_one_pixel_high_needs_no_more_memory_than_its_pixels(shape):
    """A 4,000,000 x 1 strip is 4 MP of work; it once widened every source row of the chroma
    to its full width (3.6 GB) and resized through a 4,000,000 x 224 intermediate."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _STRIP_PEAK, shape],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 600, f"peak grew by {done.stdout.split()[-1]} MB for a 4 MP strip"


# The README's Python API example, as written there, in a process that watches the one
# process-wide setting colorize makes (glibc's memory policy, core.cpu.keep_freed_memory).
_README_EXAMPLE = """
import sys
from colorize.core import cpu
calls = []
real = cpu.keep_freed_memory
cpu.keep_freed_memory = lambda: calls.append(1) or real()  # before inference imports it
from colorize.pipelines.inference import Pipeline

pipeline = Pipeline.from_config(**eval(sys.argv[2]))
result = pipeline.colorize(sys.argv[1])
result.save(sys.argv[1].replace(".jpg", "_colour.jpg"))
print(len(calls), "torch" in sys.modules, result.route.expert, result.rgb.shape)
"""


def test_the_python_api_leaves_the_process_as_it_was_and_needs_no_torch(tmp_path, photos):
    import subprocess

    path = tmp_path / "old.jpg"
    Image.fromarray(_gray(photos["chelsea"])).save(path)
    said = {}
    for arguments in ("{}", "{'tune': True}"):
        done = subprocess.run(
            [sys.executable, "-c", _README_EXAMPLE, str(path), arguments], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        said[arguments] = done.stdout.split(maxsplit=3)
    tuned, torch_loaded, expert, shape = said["{}"]
    assert tuned == "0", "Pipeline.from_config() changed glibc's memory policy for the whole process"
    assert said["{'tune': True}"][0] == "1", "tune=True is what asks for it"
    assert torch_loaded == "False", "the Python API loaded torch"
    assert (tmp_path / "old_colour.jpg").is_file()
    assert expert in {"landscape", "people", "general"} and shape.startswith("(")


def test_the_python_api_takes_a_path_and_saves_as_the_command_line_does(pipeline, tmp_path, photos):
    from colorize.core.images import decode, read_marker

    gray16 = (_gray(photos["astronaut"]).astype(np.uint16) * 257)[:40, :56]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the path is decoded upright, as auto decodes it
    source = tmp_path / "old.png"
    Image.fromarray(gray16).save(source, exif=exif.tobytes())
    result = pipeline.colorize(str(source))
    assert result.rgb.shape == (56, 40, 3) and result.to_image().size == (40, 56)
    written = result.save(tmp_path / "out.png")
    decoded = decode(written)
    assert decoded.bits == 16 and decoded.data.shape == (56, 40, 3)  # the 16 bits kept, as auto keeps them
    assert read_marker(written).startswith("colorized by expert")
    from_pil = pipeline.colorize(Image.open(source).convert("L"))
    assert from_pil.save(tmp_path / "plain.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    with pytest.raises(ValueError, match="extension"):
        from_pil.save(tmp_path / "no-extension")


@pytest.mark.parametrize(
    "expert, reason",
    [("people", "classified"), ("general", "low confidence → general"), ("portraits-1920s", "forced")],
)
def test_the_route_an_output_records_reads_back_from_its_marker(expert, reason):
    from colorize.pipelines.inference import provenance_note, route_from_note
    from colorize.router import Route

    note = provenance_note(Route(expert, 0.9, {"people": 0.9}, reason))
    for marker in (note, f"colorize: {note}"):  # a PNG text chunk, an EXIF Software tag
        back = route_from_note(marker)
        assert (back.expert, back.reason) == (expert, reason), (marker, back)
    assert route_from_note("GIMP 2.10") is None and route_from_note(None) is None
