#!/usr/bin/env bash
# Reproduce the bundled models from a folder laid out like ../shared/data/train:
#   DATA/{landscape,people,general}/*.jpg
# Usage: scripts/train_bundled.sh DATA [MODEL_HOME]
# Trains into MODEL_HOME (default ./runs/bundled), then copies the results into the package's
# weights folders. CPU: about an hour on 2 cores; add --device cuda to each line on a GPU.
set -euo pipefail
data=${1:?usage: scripts/train_bundled.sh DATA [MODEL_HOME]}
export COLORIZE_HOME=${2:-runs/bundled}
# Keep glibc from handing memory back to the OS after every batch (about 2x faster on CPU).
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
here=$(cd "$(dirname "$0")/.." && pwd)

# 1. The general expert learns from every category, starting from ImageNet (needs colorize[train]).
colorize train expert general "$data/landscape" "$data/people" "$data/general" --init imagenet --epochs 4
# 2. Each specialist is fine-tuned from the general expert on its own category.
for category in landscape people; do
  colorize train expert "$category" "$data/$category" --init general --epochs 2 --lr 0.001
done
# 3. The scene classifier, from one sub-folder per class.
colorize train classifier "$data" --epochs 2

for name in general landscape people; do
  cp "$COLORIZE_HOME/experts/$name.safetensors" "$here/experts/weights/$name.safetensors"
done
cp "$COLORIZE_HOME/classifier/classifier.safetensors" "$here/classifier/weights/classifier.safetensors"
colorize experts
