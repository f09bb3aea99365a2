"""Strips the notebooks' outputs before they are committed (CI executes them; git keeps code).

    python notebooks/strip.py                 # every notebook in this folder
    python notebooks/strip.py 02-cloudtrail.ipynb
    python notebooks/strip.py --check         # exit 1 if any notebook has outputs

Clears each code cell's outputs and execution count and the per-cell execution metadata that
nbclient and Jupyter record (timings, collapsed/scrolled state), drops widget state, and keeps
only the language's name in ``language_info`` (the kernel fills in its Python version).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
CELL_KEYS = ("execution", "collapsed", "scrolled", "ExecuteTime")
NOTEBOOK_KEYS = ("widgets",)


def strip(nb: nbformat.NotebookNode) -> bool:
    """Strips ``nb`` in place; True if anything changed."""
    changed = False
    for cell in nb.cells:
        for key in CELL_KEYS:
            changed |= cell.metadata.pop(key, None) is not None
        if cell.cell_type == "code":
            changed |= bool(cell.outputs) or cell.execution_count is not None
            cell.outputs = []
            cell.execution_count = None
    for key in NOTEBOOK_KEYS:
        changed |= nb.metadata.pop(key, None) is not None
    info = nb.metadata.get("language_info")
    if info is not None and set(info) != {"name"}:
        nb.metadata["language_info"] = {"name": info.get("name", "python")}
        changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all in notebooks/)")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if any has outputs")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(HERE.glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if strip(nb):
            dirty.append(path)
            if not args.check:
                nbformat.write(nb, path)
    verb = "has outputs" if args.check else "stripped"
    for path in dirty:
        print(f"{path}: {verb}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
