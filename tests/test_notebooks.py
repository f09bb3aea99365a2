"""The showcase notebooks (notebooks/*.ipynb) run from top to bottom, and are committed with
their outputs stripped.

Each notebook is executed with nbclient in a kernel that runs this very interpreter
(``sys.executable``, through a kernelspec written to a temporary folder, so a ``python3``
kernelspec elsewhere on the machine cannot substitute another environment), with
``notebooks/`` as its working directory, as a reader would run it. The notebooks read the
real datasets in ``shared/data/real`` (found by walking up from ``notebooks/``, or named by
``RILLET_DATA``); without them the execution tests skip, except in CI (env ``CI`` set),
where they fail.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

# Both come with the test extra (pip install -e '.[test]').
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 120
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _data_folder() -> Path | None:
    """Where the notebooks will find the real data: the same rule as their first cell."""
    if os.environ.get("RILLET_DATA"):
        return Path(os.environ["RILLET_DATA"])
    for folder in [NOTEBOOKS_DIR, *NOTEBOOKS_DIR.parents]:
        if (folder / "shared" / "data" / "real").is_dir():
            return folder / "shared" / "data" / "real"
    return None


KERNEL = "rillet-test-python"


def _client(nb, spec_dir: Path, **options):
    """An nbclient NotebookClient whose kernel is ``sys.executable -m ipykernel``: its only
    kernelspec is written to ``spec_dir``. The client owns its kernel manager, so it shuts
    the kernel down and closes its sockets when the notebook is done."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    kernel = spec_dir / KERNEL
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (test)",
        "language": "python",
    }))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir)])

    class ThisPython(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(kernel_spec_manager=specs, **kwargs)

    return nbclient.NotebookClient(
        nb, kernel_manager_class=ThisPython, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, **options
    )


def test_the_notebooks_are_there() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01-quickstart.ipynb",
        "02-cloudtrail.ipynb",
        "03-late-data.ipynb",
        "04-iot.ipynb",
        "05-leaderboard.ipynb",
        "06-kinesis-application.ipynb",
    ], names


def test_the_kernel_runs_this_interpreter(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    _client(nb, tmp_path / "kernels").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; "
        f"run `python notebooks/strip.py` before committing"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    if _data_folder() is None:
        why = "the real datasets (shared/data/real, or RILLET_DATA) are not on this machine"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)

    nb = nbformat.read(path, as_version=4)
    client = _client(nb, tmp_path / "kernels", resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    started = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        failing = _failing_cell(nb)
        message = ANSI.sub("", str(e))  # the kernel colours its tracebacks
        pytest.fail(f"{path.name}, cell {failing}:\n{message}", pytrace=False)
    elapsed = time.monotonic() - started

    # A reader sees no warnings or tracebacks: nothing may go to stderr.
    noisy = [
        (i, out.get("text", "")) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
        for out in cell.outputs if out.output_type == "stream" and out.name == "stderr"
    ]
    assert not noisy, f"{path.name} wrote to stderr: {noisy}"
    print(f"{path.name}: executed in {elapsed:.1f} s")


def _failing_cell(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.outputs):
            return i
    return None
