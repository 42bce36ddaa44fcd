"""scripts/pack_for_device.py: smaller photos under the same names and formats, within a size."""

import subprocess
import sys
from pathlib import Path

from conftest import SAFETY_TIMEOUT
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pack_for_device.py"


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=SAFETY_TIMEOUT
    )


def test_photos_keep_name_and_format_at_the_short_side_and_are_never_enlarged(tmp_path, photos):
    source = tmp_path / "train"
    (source / "people").mkdir(parents=True)
    (source / "general").mkdir()
    Image.fromarray(photos["astronaut"]).save(source / "people" / "astronaut.jpg", quality=95)
    Image.fromarray(photos["coffee"]).save(source / "general" / "coffee.webp", quality=95)
    Image.fromarray(photos["rocket"][:20, :30]).save(source / "general" / "small.png")
    done = _run(source, tmp_path / "packed", "--short-side", 32)
    assert done.returncode == 0, done.stderr
    packed = {p.relative_to(tmp_path / "packed").as_posix(): p for p in (tmp_path / "packed").rglob("*.*")}
    assert packed.keys() == {"people/astronaut.jpg", "general/coffee.webp", "general/small.png"}
    for name, fmt, size in (("people/astronaut.jpg", "JPEG", 32), ("general/coffee.webp", "WEBP", 32)):
        with Image.open(packed[name]) as image:
            assert image.format == fmt and min(image.size) == size, (name, image.format, image.size)
    with Image.open(packed["general/small.png"]) as image:
        assert image.size == (30, 20), "a photo smaller than the short side is not enlarged"

    too_big = _run(source, tmp_path / "again", "--short-side", 32, "--max-mib", 0.0001)
    assert too_big.returncode != 0 and "over --max-mib" in too_big.stderr
    assert _run(source, tmp_path / "packed").returncode != 0, "an existing folder is not written into"
