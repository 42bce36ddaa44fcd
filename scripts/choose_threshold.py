"""Pick the router's confidence threshold from a `colorize eval --compare` JSON.

Run `colorize eval DATA --holdout 0.1 --part validation --compare auto,general,landscape,people --json E.json`
first: it scores every photo with every expert, so any threshold can be replayed here
without running a network again. Below the threshold a photo goes to the general expert.
Choose on the validation part; the test part (the default of `--holdout`) is for reporting.

    python scripts/choose_threshold.py E.json
"""

import json
import sys

import numpy as np

FALLBACK = "general"


def replay(images: list[dict], threshold: float) -> dict[str, float]:
    delta_e, psnr, fallbacks = [], [], 0
    for image in images:
        probabilities = image["auto"]["probabilities"]
        top = max(probabilities, key=probabilities.get)
        expert = top if probabilities[top] >= threshold else FALLBACK
        fallbacks += expert != top
        delta_e.append(image[expert]["delta_e"])
        psnr.append(image[expert]["psnr"])
    return {"delta_e": float(np.mean(delta_e)), "psnr": float(np.mean(psnr)), "fallbacks": fallbacks}


def main(path: str) -> None:
    images = [image for image in json.load(open(path))["images"] if image["status"] == "ok"]
    print(f"{len(images)} photos")
    print("threshold  mean ΔE2000  mean PSNR  sent to general when unsure")
    for threshold in np.round(np.arange(0.3, 1.0, 0.05), 2):
        result = replay(images, float(threshold))
        print(f"{threshold:9.2f}  {result['delta_e']:11.4f}  {result['psnr']:9.4f}  {result['fallbacks']:5d}")


if __name__ == "__main__":
    main(sys.argv[1])
