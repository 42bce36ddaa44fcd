#!/usr/bin/env bash
# On a lent GPU machine (the device tool's `run`, from the repository root): fine-tune the
# general expert on photos carried by scripts/pack_for_device.py for at most SECONDS, and leave
# the weights, the log and what the machine was in $OUT. A run cut short by the time limit
# keeps its best epoch so far (training writes it after every epoch's validation).
#   run(command="bash scripts/device_train.sh .data/device_data 480 --epochs 40", carry=[".data/device_data"])
# Extra arguments go to `colorize train expert` after the defaults below, so they win.
# The same script runs on a CPU for a check: add --device cpu --epochs 1 --max-steps 2.
set -euo pipefail
data=${1:?usage: scripts/device_train.sh DATA SECONDS [train flags]}
seconds=${2:?usage: scripts/device_train.sh DATA SECONDS [train flags]}
shift 2
out=${OUT:?the device tool sets OUT; set it to a folder for a check elsewhere}
# The repository root is the package: importable as colorize without installing anything
# (the machine's python3 already has torch, timm, typer, rich, scikit-image, safetensors).
mkdir -p /tmp/device-pkg && ln -sfn "$PWD" /tmp/device-pkg/colorize
export PYTHONPATH=/tmp/device-pkg COLORIZE_HOME=/tmp/device-home PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no GPU") > "$out/device.txt" 2>&1
status=0
timeout --signal=TERM --kill-after=60 "$seconds" python3 -c "from colorize.pipelines.cli import main; main()" \
  train expert gpu-general "$data/landscape" "$data/people" "$data/general" \
  --init general --size 112 --batch-size 256 --lr 0.002 --workers 12 --device cuda --force \
  --run-dir /tmp/device-run "$@" > "$out/train.log" 2>&1 || status=$?
echo "exit status $status after at most $seconds s" >> "$out/train.log"
for made in "$COLORIZE_HOME/experts/gpu-general.safetensors" /tmp/device-run/best.safetensors; do
  if [ -f "$made" ]; then cp "$made" "$out/gpu-general.safetensors"; break; fi
done
ls -la "$out"
