"""The notebooks run top to bottom on the bundled default run's output (nbclient, a real kernel)."""
from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


def with_parameters(notebook, **values):
    """Override values of the cell tagged `parameters` (appended to it, as papermill injects them)."""
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    source = cells[0].source
    for name, value in values.items():
        assert f"\n{name} = " in f"\n{source}", f"no parameter {name}"
    cells[0].source = source + "\n" + "\n".join(f"{k} = {v!r}" for k, v in values.items())
    return notebook


def run_notebook(path, **parameters):
    notebook = with_parameters(nbformat.read(path, as_version=4), **parameters)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()  # raises if a cell fails
    return notebook


def outputs_of(notebook, output_type=None):
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if output_type is None or o["output_type"] == output_type]


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(NOTEBOOKS) if f.endswith(".ipynb")))
def test_notebook_runs_on_the_default_run(name, default_run):
    out, stats = default_run
    notebook = run_notebook(os.path.join(NOTEBOOKS, name), OUTPUT=str(out))
    assert not outputs_of(notebook, "error")
    images = [o for o in outputs_of(notebook) if "image/png" in o.get("data", {})]
    assert len(images) >= 5  # funnel, entries, images, captions, duplicates, shards, gallery
    html = " ".join(o.get("data", {}).get("text/html", "") for o in outputs_of(notebook))
    assert f"{stats['inputs']:,}" in html or str(stats["inputs"]) in html
    assert "metaclip:no_match" in html
    assert "kept_rate" in html and "200 px or more" in html  # the SQL questions asked of the ledger
