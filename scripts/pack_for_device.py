"""Shrink a folder of training photos so it travels with a call to a lent GPU machine.

A call carries the working tree and the paths it names, 64 MiB together, and the tree itself
is about 31 MiB (the bundled weights). So the photos go at a smaller short side, each under
its own name and format (the held-out split hashes file names, so the validation photos stay
the same ones), into a folder git ignores; it stops with an error if the result would not fit.

    python scripts/pack_for_device.py SPLIT/train .data/device_data --short-side 112
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from colorize.pipelines.photo_folders import list_images

FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".png": "PNG"}


def shrink(source: Path, target: Path, short_side: int, quality: int) -> int:
    """Write ``source`` at ``short_side`` (never enlarged) to ``target``; returns its bytes."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        scale = short_side / min(image.size)
        if scale < 1:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, FORMATS[source.suffix.lower()], quality=quality)
    return target.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="photos in category sub-folders (symbolic links are followed)")
    parser.add_argument("out", type=Path, help="a folder git ignores, to name in the call's carry")
    parser.add_argument("--short-side", type=int, default=112)
    parser.add_argument("--quality", type=int, default=70)
    parser.add_argument("--max-mib", type=float, default=32.0, help="refuse a result larger than this")
    args = parser.parse_args()
    if args.out.exists():
        sys.exit(f"{args.out} exists; remove it or name another folder")
    total, count = 0, 0
    for path in list_images(args.data_dir):
        relative = path.relative_to(args.data_dir)
        if path.suffix.lower() not in FORMATS:
            continue
        total += shrink(path, args.out / relative, args.short_side, args.quality)
        count += 1
        if count % 1000 == 0:
            print(f"{count} photos, {total / 2**20:.1f} MiB", flush=True)
    print(f"{count} photos, {total / 2**20:.1f} MiB in {args.out}")
    if total > args.max_mib * 2**20:
        sys.exit(f"{total / 2**20:.1f} MiB is over --max-mib {args.max_mib:g}: lower --short-side or --quality")


if __name__ == "__main__":
    main()
