"""Write a copy of an expert whose colour is shifted by a constant chosen on new sources.

An expert can sit a little off in colour on average on photos of sources it never trained on
(the bundled general expert paints them redder than they are: MODELS.md, "A red cast on new
sources"). ``scripts/shift_trial.py`` scores a grid of constant a/b shifts on two folders:

* CHOOSING: photos of sources the expert never saw; the shift is chosen here;
* GUARD: validation photos of the sources it trained on; a shift may cost them at most
  ``--budget`` of ΔE, so photos like the training ones do not pay for the new sources;
* TEST (optional): photos of other sources it never saw, scored for the record only.

The rule: the shift with the lowest mean ΔE on CHOOSING among those within the budget on
GUARD, at the expert's own gain. The copy keeps the tensors; its metadata gains
``normalization.ab_shift`` and a ``calibration`` record (the rule, each folder's sources and
photo count, ΔE and PSNR before and after), so the file explains its own colour. The copy is
in the scored file's format: ``.onnx`` for the bundled experts and for a user's expert once
colorize has exported it, ``.safetensors`` for one named with ``--weights``.

    python scripts/shift_trial.py CHOOSING --expert general --json choosing.json
    python scripts/shift_trial.py GUARD --expert general --json guard.json
    python scripts/calibrate_shift.py choosing.json guard.json general-calibrated.onnx \\
        --manifest DATA/manifest.csv
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from model_copy import write_copy  # noqa: E402
from shift_trial import variant  # noqa: E402  (the trial's own key for each shift)

BASE = variant(0.0, 0.0)


def mean(rows: list[dict], key: str) -> float:
    return statistics.fmean(row[key] for row in rows)


def choose_shift(choosing: list[dict], guard: list[dict], shifts: list[tuple[float, float]], budget: float) -> str:
    """The key of the shift the rule picks, at the file's own gain (the no-shift key when none
    beats it within the budget)."""
    allowed = mean(guard, BASE) * (1 + budget)
    candidates = [variant(da, db) for da, db in shifts if mean(guard, variant(da, db)) <= allowed]
    return min(candidates, key=lambda key: (mean(choosing, key), key != BASE))


def _summary(rows: list[dict], key: str, sources: dict[tuple[str, str], str]) -> dict:
    named = sorted({sources.get((row["category"], Path(row["path"]).name), "(not in the manifest)") for row in rows})
    return {
        "photos": len(rows),
        "sources": named,
        "delta_e": round(mean(rows, key), 4),
        "delta_e_unshifted": round(mean(rows, BASE), 4),
        "psnr": round(mean(rows, f"{key} psnr"), 4),
        "psnr_unshifted": round(mean(rows, f"{BASE} psnr"), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("choosing", type=Path, help="shift_trial.py JSON on photos of sources the expert never saw")
    parser.add_argument("guard", type=Path, help="shift_trial.py JSON on validation photos of its training sources")
    parser.add_argument(
        "out", type=Path, help="the calibrated copy to write (.onnx or .safetensors, as the scored file)"
    )
    parser.add_argument("--test", type=Path, help="shift_trial.py JSON on other new sources, recorded, not chosen on")
    parser.add_argument("--budget", type=float, default=0.01, help="ΔE a shift may cost on GUARD (0.01: 1 %%)")
    parser.add_argument("--manifest", type=Path, help="CSV naming each photo's source, recorded in the file")
    args = parser.parse_args()

    from colorize.core.modelfile import file_sha256, read_metadata

    paths = [args.choosing, args.guard, *([args.test] if args.test else [])]
    trials = [json.loads(path.read_text()) for path in paths]
    model = Path(trials[0]["path"])
    for trial, path in zip(trials, paths):
        if not model.is_file() or trial["sha256"] != file_sha256(model):
            sys.exit(f"{path}: scored a weights file that is not {model} as it is now; run the trial again")
        if trial.get("saturation", 1.0) != 1.0:
            sys.exit(f"{path}: scored at saturation {trial['saturation']}, not the file's own gain")
    if args.out.resolve() == model.resolve():
        sys.exit(f"{args.out}: is the file the trials scored; write the calibrated copy elsewhere")
    if args.out.suffix.lower() != model.suffix.lower():
        sys.exit(f"{args.out}: the trials scored {model}; write the copy in its format ({model.suffix})")
    sources = {}
    if args.manifest:
        from by_source import source_of

        sources = source_of(args.manifest)
    choosing, guard = trials[0]["rows"], trials[1]["rows"]
    shifts = [tuple(shift) for shift in trials[0]["shifts"]]
    key = choose_shift(choosing, guard, shifts, args.budget)
    shift = next(shift for shift in shifts if variant(*shift) == key)

    metadata = read_metadata(model).metadata
    metadata["normalization"] = {**metadata.get("normalization", {}), "ab_shift": list(shift)}
    metadata["calibration"] = {
        "ab_shift": list(shift),
        "rule": f"lowest mean ΔE on the choosing photos among shifts costing at most {args.budget:g} "
        "of ΔE on the guard photos, at the file's own gain",
        "uncalibrated_sha256": trials[0]["sha256"],
        "choosing": _summary(choosing, key, sources),
        "guard": _summary(guard, key, sources),
        **({"test": _summary(trials[2]["rows"], key, sources)} if args.test else {}),
        "candidates": [list(s) for s in shifts],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_copy(model, metadata, args.out)
    before, after = mean(choosing, BASE), mean(choosing, key)
    print(f"{args.out}: ab shift {shift} (ΔE on the choosing photos {before:.3f} -> {after:.3f})")


if __name__ == "__main__":
    main()
