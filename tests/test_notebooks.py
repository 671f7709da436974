"""The lecture notebooks: each runs top to bottom, and is stored clean.

Every notebook is executed in a fresh ``python3`` kernel with
``PARLAB_SCALE=quick`` and the notebooks folder as working directory; a cell
that raises fails the test (nbclient raises ``CellExecutionError``). The
executed copy stays in memory, so the stored files are never rewritten.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import parlab.experiments

NOTEBOOKS_DIR = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
LECTURES = range(7)  # lectures 000 ... 004, then 005 and 006 beyond the lectures: one notebook each
CELL_TIMEOUT_S = 600
RUN_CALL = re.compile(r"""parlab\.experiments\.run\(\s*["'](L\d+\.\d+)["']""")


def lecture_of(notebook: Path) -> int:
    """The lecture number a notebook belongs to, from its ``NN_`` prefix."""
    return int(notebook.name.split("_", 1)[0])


def code_cells(notebook: Path) -> list:
    nb = nbformat.read(notebook, as_version=4)
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_one_notebook_per_lecture():
    # Also guards the parametrized tests below against an empty glob.
    assert sorted(lecture_of(p) for p in NOTEBOOKS) == list(LECTURES)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(notebook):
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"cells with outputs or execution counts: {dirty}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_every_experiment_of_its_lecture(notebook):
    catalog = parlab.experiments.catalog()
    of_lecture = catalog.lecture.str.split("_").str[0].astype(int) == lecture_of(notebook)
    registered = set(catalog.id[of_lecture])
    run = {m for cell in code_cells(notebook) for m in RUN_CALL.findall(cell.source)}
    assert registered, f"no experiments registered for lecture {lecture_of(notebook)}"
    assert run == registered


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_executes_without_error(notebook):
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    client.execute(env={**os.environ, "PARLAB_SCALE": "quick"})
    # Every code cell ran (an error would have raised above).
    assert all(cell.execution_count is not None
               for cell in nb.cells if cell.cell_type == "code")
