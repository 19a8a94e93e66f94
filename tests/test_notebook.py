"""notebooks/dreamreel.ipynb runs top to bottom and shows images (executed with nbclient).

The kernel is this test's own interpreter (the project's .venv), through a kernelspec written
into a temporary JUPYTER_PATH directory: a `python3` kernelspec installed elsewhere on the
machine (another Python, without TensorFlow) can never be picked up, and nothing is installed.
The checkout under test comes first on the kernel's PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "dreamreel.ipynb"
KERNEL = "dreamreel-test-venv"
IMAGE_TYPES = ("image/png", "image/gif", "image/jpeg")


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """A kernelspec named KERNEL that starts ipykernel with sys.executable."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dreamreel test (.venv)", "language": "python",
        "env": {"PYTHONPATH": pythonpath},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


def images_in(cell) -> int:
    return sum(1 for out in cell.get("outputs", [])
               if out.get("output_type") in ("display_data", "execute_result")
               and any(t in out.get("data", {}) for t in IMAGE_TYPES))


def test_notebook_runs_and_displays_images(venv_kernel, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=venv_kernel, timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as exc:  # the failing cell and its traceback, first lines
        pytest.fail(f"a notebook cell failed:\n{str(exc)[:3000]}")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "not every code cell ran"
    shown = [images_in(c) for c in code]
    # every cell after the imports shows at least one picture: the live view, the gallery,
    # guided, class, masked dreams and the zoom GIF
    assert all(n >= 1 for n in shown), shown
    gifs = [o for c in code for o in c.get("outputs", []) if "image/gif" in o.get("data", {})]
    assert gifs, "the zoom is not shown"
    # no warnings in the reader's way (a TqdmWarning from skimage's loader and TensorFlow's
    # retracing warning, counted across the notebook's five engines, were printed)
    said = [o.get("text", "") for c in code for o in c.get("outputs", [])
            if o.get("output_type") == "stream"]
    assert not [s for s in said if "IProgress not found" in s or "retracing" in s], said
