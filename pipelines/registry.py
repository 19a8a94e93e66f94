"""The pipelines a preset can name, each with its extra preset keys and its entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import layers, still, video, zoom
from pipelines.presets import Preset
from pipelines.run_options import RunOptions


@dataclass(frozen=True)
class Pipeline:
    """A pipeline: its preset keys beyond the common ones, and its run function."""

    schema: dict[str, Any]
    run: Callable[[Preset, RunOptions], list[Path]]


PIPELINES: dict[str, Pipeline] = {
    "still": Pipeline(still.SCHEMA, still.run),
    "layers": Pipeline(layers.SCHEMA, layers.run),
    "zoom": Pipeline(zoom.SCHEMA, zoom.run),
    "video": Pipeline(video.SCHEMA, video.run),
}
