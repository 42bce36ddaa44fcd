"""Peak memory of `colorize auto` by photo size and kind: what a photo of N megapixels costs.

    python benchmarks/memory.py              # about two minutes on 2 cores
    python benchmarks/memory.py --json memory.json

Each photo runs alone in a fresh process (one `colorize auto` per photo, default settings:
onnxruntime and the full-resolution work on every core), and the process's peak resident
memory is read from the kernel. The fixed part (Python, numpy, onnxruntime, the models: the
64-pixel photo's peak) is subtracted, and the rest divided by the photo's megapixels gives
the cost of a megapixel of that kind. Strips one pixel high or
wide are included because they once needed hundreds of times more than their pixels (a
16-bit one 8 GB).
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, when run as a script

from cli_runs import colorize_command, run_child  # noqa: E402


def _scene(width: int, height: int) -> np.ndarray:
    """A real photo (scikit-image's camera) stretched to the size: decoders and encoders see
    ordinary image content, not noise or a flat field."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.camera()).resize((width, height), Image.BILINEAR))


def _photos(folder: Path) -> dict[str, tuple[Path, float]]:
    """name -> (file, megapixels)."""
    import tifffile
    from PIL import Image

    made = {}
    for name, (width, height) in {
        "gray JPEG 0.004 MP (baseline)": (64, 64),
        "gray JPEG 12 MP": (4000, 3000),
        "gray JPEG 24 MP": (6000, 4000),
        "gray JPEG 48 MP": (8000, 6000),
    }.items():
        path = folder / f"{width}x{height}.jpg"
        Image.fromarray(_scene(width, height)).save(path, quality=90)
        made[name] = (path, width * height / 1e6)
    gray16 = _scene(6000, 4000).astype(np.uint16) * 257
    tifffile.imwrite(folder / "gray16.tif", gray16)
    made["gray 16-bit TIFF 24 MP"] = (folder / "gray16.tif", 24.0)
    tifffile.imwrite(folder / "rgb16.tif", np.dstack([gray16] * 3), photometric="rgb")
    made["RGB 16-bit TIFF 24 MP (--force)"] = (folder / "rgb16.tif", 24.0)
    strip = (np.arange(10_000_000) % 251).astype(np.uint8)
    Image.fromarray(strip.reshape(1, -1)).save(folder / "wide.png")
    made["strip 10,000,000 x 1 PNG"] = (folder / "wide.png", 10.0)
    Image.fromarray(np.ascontiguousarray(strip[:4_000_000].reshape(-1, 1))).save(folder / "tall.png")
    made["strip 1 x 4,000,000 PNG"] = (folder / "tall.png", 4.0)
    gray16 = strip.astype(np.uint16) * 257
    rgb, gray_alpha = np.stack([gray16] * 3, axis=-1), np.stack([gray16, 65535 - gray16], axis=-1)
    for kind, samples, width, height in (
        ("RGB", rgb, 10_000_000, 1),
        ("RGB", rgb, 1, 10_000_000),
        ("LA", gray_alpha, 10_000_000, 1),
    ):
        path = folder / f"{kind}16_{width}x{height}.png"
        _write_png16(path, samples.reshape(height, width, -1))
        made[f"16-bit {kind} strip {width:,} x {height:,} PNG"] = (path, 10.0)
    return made


def _write_png16(path: Path, samples: np.ndarray) -> None:
    """(H, W, 3) RGB or (H, W, 2) gray+alpha uint16 as a PNG, every row behind filter type 0.
    PIL writes no 16-bit colour PNG, and pypng's writer would hold every sample as a Python
    int: over 1.5 GB."""
    height, width, planes = samples.shape
    rows = samples.astype(">u2").view(np.uint8).reshape(height, -1)
    chunks = {
        b"IHDR": struct.pack(">IIBBBBB", width, height, 16, {3: 2, 2: 4}[planes], 0, 0, 0),
        b"IDAT": zlib.compress(np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()),
        b"IEND": b"",
    }
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + b"".join(
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
            for kind, data in chunks.items()
        )
    )


def _photos_made_apart(folder: Path) -> dict[str, tuple[Path, float]]:
    """``_photos``, made by a child process: a child's peak RSS starts from its parent's (the
    kernel carries the high-water mark across fork and exec), and making these photos takes
    this process far above what the smallest photo's run needs."""
    subprocess.run([sys.executable, __file__, "--make-photos", str(folder)], check=True)
    made = json.loads((folder / "photos.json").read_text())
    return {name: (Path(path), megapixels) for name, (path, megapixels) in made.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--make-photos", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_photos:
        made = _photos(args.make_photos)
        (args.make_photos / "photos.json").write_text(json.dumps({k: [str(p), mp] for k, (p, mp) in made.items()}))
        return 0
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (path, megapixels) in _photos_made_apart(folder).items():
            command = [
                *colorize_command(),
                "auto",
                str(path),
                "-o",
                str(folder / "out"),
                "--force",
                "--on-exists",
                "overwrite",
            ]
            measured = run_child(command)
            if measured["exit_code"] != 0:
                print(f"{name}: failed ({measured['stderr_tail']})", file=sys.stderr)
                return 1
            rows[name] = {
                "megapixels": megapixels,
                "peak_rss_mb": round(measured["peak_rss_mb"]),
                "wall_s": round(measured["wall_s"], 2),
            }
    baseline = next(iter(rows.values()))["peak_rss_mb"]
    print(f"{'photo':36s} {'MP':>6s} {'peak MB':>8s} {'over fixed':>10s} {'MB per MP':>9s} {'wall s':>7s}")
    for name, row in rows.items():
        extra = row["peak_rss_mb"] - baseline
        row["mb_per_megapixel"] = round(extra / row["megapixels"], 1) if row["megapixels"] >= 1 else None
        per = "" if row["mb_per_megapixel"] is None else f"{row['mb_per_megapixel']:.1f}"
        print(f"{name:36s} {row['megapixels']:6.1f} {row['peak_rss_mb']:8d} {extra:10d} {per:>9s} {row['wall_s']:7.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
