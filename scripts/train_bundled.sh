#!/usr/bin/env bash
# Reproduce the bundled models: train them (scripts/train_models.sh) into MODEL_HOME
# (default ./runs/bundled), then export them as ONNX (what the package ships and runs) into
# the package's weights folders. The classifier shipped is scripts/train_portrait_classifier.sh's
# (its people class: close-up faces), and the general expert's calibration shift comes after,
# from scripts/calibrate_bundled.sh (MODELS.md).
# Usage: scripts/train_bundled.sh DATA [MODEL_HOME]
set -euo pipefail
data=${1:?usage: scripts/train_bundled.sh DATA [MODEL_HOME]}
home=${2:-runs/bundled}
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/train_models.sh" "$data" "$home"
for name in general landscape people; do
  colorize export "$home/experts/$name.safetensors" --out "$here/experts/weights/$name.onnx"
done
"$here/scripts/train_portrait_classifier.sh" "$data" "$home/portrait-classifier"
colorize export "$home/portrait-classifier/classifier.safetensors" --out "$here/classifier/weights/classifier.onnx"
COLORIZE_HOME=$home colorize experts
