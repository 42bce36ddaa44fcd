"""Write scikit-image's public-domain/CC0 colour sample photos into category folders.

They come from none of the training sources, so `colorize eval` on them is a small
out-of-distribution check whose contact sheet may be shared freely.

    python scripts/sample_truths.py OUT_DIR
"""

import sys
from pathlib import Path

from PIL import Image
from skimage import data

CATEGORIES = {
    "people": ["astronaut"],
    "general": ["coffee", "chelsea"],
    "landscape": ["rocket"],
}


def main(out: Path) -> None:
    for category, names in CATEGORIES.items():
        (out / category).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.fromarray(getattr(data, name)()).convert("RGB").save(out / category / f"{name}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
