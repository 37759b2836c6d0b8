"""Every top-level notebook executes top to bottom in SMOKE mode (CI=1), as a user would run it."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOKS = [
    "download_images.ipynb",
    "filter_images.ipynb",
    "download_satellite_images.ipynb",
    "gan.ipynb",
    "encoder.ipynb",
]


def test_notebooks_are_committed_without_outputs():
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not any(c.get("outputs") for c in code), f"{name} has outputs; clear them before committing"
        assert not any(c.get("execution_count") for c in code), f"{name} has execution counts"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and 'SMOKE = "CI" in os.environ' in tagged[0].source, name


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, monkeypatch):
    monkeypatch.setenv("CI", os.environ.get("CI", "true"))
    monkeypatch.chdir(ROOT)
    nb = nbformat.read(ROOT / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
