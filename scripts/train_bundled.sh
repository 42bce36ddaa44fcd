#!/usr/bin/env bash
# Reproduce the bundled models: train them (scripts/train_models.sh) into MODEL_HOME
# (default ./runs/bundled), then copy them into the package's weights folders. The classifier
# shipped is scripts/train_portrait_classifier.sh's (its people class: close-up faces), and the
# general expert's calibration shift comes after, from scripts/calibrate_bundled.sh (MODELS.md).
# Usage: scripts/train_bundled.sh DATA [MODEL_HOME]
set -euo pipefail
data=${1:?usage: scripts/train_bundled.sh DATA [MODEL_HOME]}
home=${2:-runs/bundled}
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/train_models.sh" "$data" "$home"
for name in general landscape people; do
  cp "$home/experts/$name.safetensors" "$here/experts/weights/$name.safetensors"
done
"$here/scripts/train_portrait_classifier.sh" "$data" "$home/portrait-classifier"
cp "$home/portrait-classifier/classifier.safetensors" "$here/classifier/weights/classifier.safetensors"
COLORIZE_HOME=$home colorize experts
