"""A copy of a model file with new metadata and the same weights, in the file's own format.

``.safetensors`` through experts/networks.py (torch); ``.onnx`` with the onnx package alone:
the graph is kept as it is, only the ``colorize`` entry of its ``metadata_props`` is replaced.
The scripts that write a file's record into it (calibrate_shift.py, record_heldout.py) go
through here, whichever format the scored file is in.

    python scripts/model_copy.py relative FILE... --under /path/of/checkout/ --under /path/of/data/

rewrites each file in place with every path in its metadata under one of those folders made
relative to it (training records the folders it read as given, absolute; a file that ships
should not carry the layout of the machine it was made on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from colorize.core.files import atomic_write
from colorize.core.locations import ONNX_SUFFIX
from colorize.core.modelfile import METADATA_KEY


def write_copy(model: Path, metadata: dict[str, Any], out: Path) -> Path:
    """Write ``out``: ``model``'s weights with ``metadata`` (whole). ``out`` must be of the
    same format (suffix) as ``model``: one format is not made from the other here."""
    model, out = Path(model), Path(out)
    if model.suffix.lower() != out.suffix.lower():
        raise ValueError(f"{out}: name the copy {out.with_suffix(model.suffix).name}, in the format of {model.name}")
    if model.suffix.lower() != ONNX_SUFFIX:
        from colorize.experts.networks import replace_metadata

        return replace_metadata(model, metadata, out=out)
    import onnx

    graph = onnx.load_from_string(model.read_bytes())
    kept = [(entry.key, entry.value) for entry in graph.metadata_props if entry.key != METADATA_KEY]
    del graph.metadata_props[:]
    for key, value in [*kept, (METADATA_KEY, json.dumps(metadata, sort_keys=True))]:
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    data = graph.SerializeToString()
    return atomic_write(out, lambda handle: handle.write(data))


def relative_paths(value: Any, roots: list[str]) -> Any:
    """``value`` (metadata: dicts, lists, strings) with each string that starts with one of
    ``roots`` (folders, ending in "/") cut to what follows it."""
    if isinstance(value, dict):
        return {key: relative_paths(item, roots) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_paths(item, roots) for item in value]
    if isinstance(value, str):
        for root in roots:
            if value.startswith(root):
                return value[len(root) :]
    return value


def main() -> None:
    import argparse

    from colorize.core.modelfile import read_metadata

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    relative = commands.add_parser("relative", help="make the metadata's paths under folders relative to them")
    relative.add_argument("files", nargs="+", type=Path)
    relative.add_argument("--under", action="append", required=True, help="a folder (repeat for more)")
    args = parser.parse_args()
    roots = [root.rstrip("/") + "/" for root in args.under]
    for path in args.files:
        metadata = read_metadata(path).metadata
        write_copy(path, relative_paths(metadata, roots), path)
        print(path)


if __name__ == "__main__":
    main()
