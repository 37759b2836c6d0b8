"""Every top-level notebook executes top to bottom in SMOKE mode (CI=1), as a user would run it.

They run in a scratch folder, not in the checkout: their relative paths (data/world-smoke,
data/runs, ...) then land there, and the user's data/ is never touched (a smoke run in data/runs
would otherwise become "the newest run" of their next `predict`). The kernel imports the package
from this checkout (PYTHONPATH), and one folder serves the whole module, so encoder.ipynb reuses
the world and the GAN that gan.ipynb made, as it would in the checkout.
"""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REAL_SAMPLES, ROOT

NOTEBOOKS = [
    "download_images.ipynb",
    "filter_images.ipynb",
    "download_satellite_images.ipynb",
    "gan.ipynb",
    "encoder.ipynb",
    "conditional.ipynb",
]


def test_notebooks_are_committed_without_outputs():
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not any(c.get("outputs") for c in code), f"{name} has outputs; clear them before committing"
        assert not any(c.get("execution_count") for c in code), f"{name} has execution counts"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and 'SMOKE = "CI" in os.environ' in tagged[0].source, name


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Where the notebooks run: their `data/...` folders are made here."""
    return tmp_path_factory.mktemp("notebooks")


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, workspace, monkeypatch):
    monkeypatch.setenv("CI", os.environ.get("CI", "true"))
    # filter_images.ipynb's default is relative to the checkout ("../shared/real-samples")
    monkeypatch.setenv("SAT2SCAPE_REAL_SAMPLES", str(REAL_SAMPLES))
    # the kernel sees this checkout's package even where it is not installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(workspace)
    nb = nbformat.read(ROOT / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(workspace)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
