#!/usr/bin/env bash
# Validation on whole held-out sources: a random split flatters, because photos of one source
# share cameras, subjects and processing. This trains the bundled recipe
# (scripts/train_models.sh) without the named sources, then scores it on them.
# Usage: scripts/validate_by_source.sh DATA OUT SOURCE [SOURCE...]
#   DATA holds manifest.csv (category, file, source_repo_or_package) and the photos it lists.
# Writes OUT/split/{train,heldout}/, OUT/models/, OUT/eval.json and prints the table.
set -euo pipefail
usage="usage: scripts/validate_by_source.sh DATA OUT SOURCE [SOURCE...]"
data=${1:?$usage}; out=${2:?$usage}; shift 2
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
holds=(); for source in "$@"; do holds+=(--hold "$source"); done
python "$here/scripts/split_by_source.py" "$data" "$out/split" "${holds[@]}"
"$here/scripts/train_models.sh" "$out/split/train" "$out/models"
# Up to 150 photos per category keep the scoring to minutes.
COLORIZE_HOME=$out/models colorize eval "$out/split/heldout" --limit 150 \
  --compare auto,general,landscape,people --json > "$out/eval.json"
