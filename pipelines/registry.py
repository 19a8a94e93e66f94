"""The pipelines a preset can name: a table of module names imported lazily (as imageio v3's
plugin table), so loading the table imports no pipeline and no TensorFlow. Each module has
`run(preset, opts) -> list[Path]`; its preset keys live in pipelines.config.keys."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from pipelines.config.presets import Preset
from pipelines.run_options import RunOptions

PIPELINES: dict[str, str] = {
    "still": "pipelines.still",
    "layers": "pipelines.layers",
    "zoom": "pipelines.zoom",
    "video": "pipelines.video",
}

Run = Callable[[Preset, RunOptions], list[Path]]


def runner(name: str) -> Run:
    """The `run` function of pipeline `name` (imports it, and so TensorFlow, now)."""
    return importlib.import_module(PIPELINES[name]).run
