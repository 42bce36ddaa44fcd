#!/usr/bin/env bash
# Train the four models colorize ships (general, landscape and people experts, and the scene
# classifier) from a folder laid out like ../shared/data/train:
#   DATA/{landscape,people,general}/*.jpg
# Usage: scripts/train_models.sh DATA MODEL_HOME
# Everything is written under MODEL_HOME (experts/, classifier/, runs/); an interrupted step
# is continued by running the same step again with --resume.
# CPU: about 2 hours 40 minutes on 2 cores; add --device cuda to each line on a GPU.
set -euo pipefail
data=${1:?usage: scripts/train_models.sh DATA MODEL_HOME}
export COLORIZE_HOME=${2:?usage: scripts/train_models.sh DATA MODEL_HOME}
# Keep glibc from handing memory back to the OS after every batch (about 2x faster on CPU).
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000

# 1. The general expert learns from every category, starting from ImageNet (needs colorize-experts[train]).
train_general() { colorize train expert general "$data/landscape" "$data/people" "$data/general" "$@"; }
train_general --init imagenet --epochs 4
# 2. Two more cycles of warm-up and cosine decay, because its ΔE was still falling: one epoch at
#    a quarter of the rate, then six at half of it. Like every epoch, their validation also
#    chooses the chroma gain the file ships with.
train_general --init general --epochs 1 --lr 0.0005 --run-dir "$COLORIZE_HOME/runs/general-epoch5"
train_general --init general --epochs 6 --lr 0.001 --run-dir "$COLORIZE_HOME/runs/general-epochs6-11"
# 3. More epochs at 128 px had stopped paying; two at 192 px (crops with 2.25x the pixels),
#    at a quarter of the rate, moved its whole ΔE/colour curve again.
train_general --init general --epochs 2 --lr 0.0005 --size 192 --run-dir "$COLORIZE_HOME/runs/general-192"
# 4. Each specialist is fine-tuned from the general expert on its own category, at 192 px too.
for category in landscape people; do
  colorize train expert "$category" "$data/$category" --init general --epochs 2 --lr 0.001 --size 192
done
# 5. The scene classifier, from one sub-folder per class.
colorize train classifier "$data" --epochs 2
colorize experts
