"""Pick the router's confidence threshold from a `colorize eval --compare` JSON.

Run `colorize eval DATA --holdout 0.1 --part validation --compare auto,general,landscape,people --json > E.json`
first: it scores every photo with every expert, so any threshold can be replayed here
without running a network again. Below the threshold a photo goes to the general expert.
Choose on the validation part; the test part (the default of `--holdout`) is for reporting.

    python scripts/choose_threshold.py E.json
"""

import json
import sys

import numpy as np

from colorize.configs import load_config

FALLBACK = "general"


def replay(images: list[dict], threshold: float) -> dict:
    """Per-photo ΔE and PSNR of the expert each photo would go to at ``threshold``."""
    delta_e, psnr, fallbacks = [], [], 0
    for image in images:
        probabilities = image["auto"]["probabilities"]
        top = max(probabilities, key=probabilities.get)
        expert = top if probabilities[top] >= threshold else FALLBACK
        fallbacks += expert != top
        delta_e.append(image[expert]["delta_e"])
        psnr.append(image[expert]["psnr"])
    return {"delta_e": np.array(delta_e), "psnr": np.array(psnr), "fallbacks": fallbacks}


def paired_difference(delta_e: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    """Mean per-photo ΔE difference from ``base`` and its standard error: paired, because
    most photos go to the same expert at both thresholds."""
    difference = delta_e - base
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference)))


def main(path: str) -> None:
    images = [image for image in json.load(open(path))["images"] if image["status"] == "ok"]
    configured = float(load_config("routing")["threshold"])
    base = replay(images, configured)["delta_e"]
    print(f"{len(images)} photos; differences are against the configured threshold {configured}")
    print("threshold  mean ΔE2000  mean PSNR  sent to general when unsure  ΔE difference ± standard error")
    differences = {}
    for threshold in np.round(np.arange(0.3, 1.0, 0.05), 2):
        result = replay(images, float(threshold))
        mean, error = differences[float(threshold)] = paired_difference(result["delta_e"], base)
        print(
            f"{threshold:9.2f}  {result['delta_e'].mean():11.4f}  {result['psnr'].mean():9.4f}  "
            f"{result['fallbacks']:27d}  {mean:+.4f} ± {error:.4f}"
        )
    best = min(differences, key=lambda t: differences[t][0])
    mean, error = differences[best]
    # A gain inside two standard errors is what another sample of photos could take back.
    verdict = "move to it" if -mean > 2 * error else "keep the configured one (within 2 standard errors)"
    print(f"best: {best} (ΔE {mean:+.4f} ± {error:.4f} against {configured}): {verdict}")


if __name__ == "__main__":
    main(sys.argv[1])
