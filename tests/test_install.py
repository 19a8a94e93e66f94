"""dreamreel works installed, not only from a checkout: a plain (non-editable) install has every
subpackage and the shipped presets, and reads nothing from beside the packages.

The project is built and installed without dependencies into a temporary folder (from a copy
of its sources, so the checkout gets no build/ or egg-info); that folder alone is then on
PYTHONPATH, and the commands run from another folder. The dependencies are this interpreter's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "render", "pipelines")
TINY = ["size=[64,48]", "model.name=efficientnet_lite0", "model.weights=none",
        "dream.steps=1", "dream.octaves=1", "--quiet"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The folder dreamreel was installed into (pip --target, no deps, no index)."""
    where = tmp_path_factory.mktemp("install")
    src = where / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    target = where / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return target


# `python -m pipelines ARGS`, which then writes where every dreamreel module it imported came
# from to modules.json: a subpackage missing from the install could otherwise be found in the
# checkout by an editable install's finder, and the test would pass for the wrong reason
AS_MAIN = """
import json, runpy, sys
sys.argv = ["pipelines", *sys.argv[1:]]
try:
    runpy.run_module("pipelines", run_name="__main__", alter_sys=True)
finally:
    with open("modules.json", "w") as fh:
        json.dump({name: getattr(module, "__file__", None)
                   for name, module in list(sys.modules.items())
                   if name.split(".")[0] in ("render", "pipelines")}, fh)
"""


def dreamreel(args: list[str], installed: Path, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m pipelines ARGS` from `cwd` with only the installed folder on PYTHONPATH;
    fails the test when a dreamreel module came from anywhere else."""
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run([sys.executable, "-c", AS_MAIN, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    modules = json.loads((cwd / "modules.json").read_text())
    assert "pipelines.cli" in modules and "render.errors" in modules
    strays = {name: path for name, path in modules.items()
              if path is None or not Path(path).resolve().is_relative_to(installed.resolve())}
    assert not strays, f"not from the install: {strays}"
    return done


def test_installed_list_shows_every_shipped_preset(installed, tmp_path):
    shipped = sorted(p.name for p in (ROOT / "pipelines" / "presets").glob("*.yaml"))
    assert {"still.yaml", "zoom.yaml", "video.yaml"} <= set(shipped)
    assert sorted(p.name for p in (installed / "pipelines" / "presets").glob("*")) == shipped
    done = dreamreel(["list"], installed, tmp_path)
    assert done.returncode == 0, done.stderr
    # `list` sorts by name (music before music-hd; the file names sort the other way)
    assert [line.split()[0] for line in done.stdout.splitlines()] == sorted(
        name.removesuffix(".yaml") for name in shipped)


def test_installed_entry_point_runs(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run([str(installed / "bin" / "dreamreel"), "list"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "zoom" in done.stdout.split()


def test_installed_renders_a_zoom(installed, tmp_path):
    """One frame to MP4: the preset, the sequence, the model and the encoder, all installed."""
    done = dreamreel(["render", "zoom", "output=z.mp4", "frames=1", "dream.first_frame.steps=1",
                      "dream.first_frame.octaves=1", *TINY], installed, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "z.mp4").stat().st_size > 0
    record = json.loads((tmp_path / "z.mp4.json").read_text())
    assert Path(record["source"]) == (installed / "pipelines" / "presets" / "zoom.yaml").resolve()
