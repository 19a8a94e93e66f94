"""The `zoom` pipeline: an infinite dream zoom. Each frame is the previous dreamed frame,
zoomed/rotated/translated by keyframed motion, then dreamed again."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import loop, schedule
from pipelines.dreamer_config import model_record
from pipelines.frame_plan import plan_dreamer
from pipelines.lock import output_lock
from pipelines.motion import affine_matrix, warp
from pipelines.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.scheduler import FrameScheduler
from pipelines.schema import Field
from pipelines.sequence import SEQUENCE_SCHEMA, open_store, render_sequence, sequence_outputs
from pipelines.sources import still_input

MOTION_KEYS = ("zoom", "angle", "translate_x", "translate_y")

SCHEMA: dict[str, Any] = {
    **SEQUENCE_SCHEMA,
    "motion": {
        "zoom": Field("schedule", 1.03, above=0, high=10, help="scale per frame (>1 zooms in)"),
        "angle": Field("schedule", 0.0, low=-180, high=180, help="degrees per frame"),
        "translate_x": Field("schedule", 0.0, low=-10_000, high=10_000, help="px per frame"),
        "translate_y": Field("schedule", 0.0, low=-10_000, high=10_000, help="px per frame"),
    },
}


def motion_schedules(cfg: Mapping[str, Any]) -> dict[str, schedule.Schedule]:
    """Parse and check the `motion.*` schedules against the clip length, before any work."""
    frames, how = cfg["frames"], cfg["interpolation"]
    bounds = SCHEMA["motion"]
    return {f"motion.{k}": schedule.check(
        f"motion.{k}", schedule.parse(f"motion.{k}", cfg["motion"][k], how), frames,
        low=bounds[k].low, above=bounds[k].above, high=bounds[k].high) for k in MOTION_KEYS}


def zoom_motion(scheds: Mapping[str, schedule.Schedule], size: tuple[int, int]):
    """Motion source: warp the previous dream by the affine motion at frame t."""

    def move(t: int, previous: np.ndarray) -> np.ndarray:
        m = affine_matrix(size, *(scheds[f"motion.{k}"].at(t) for k in MOTION_KEYS))
        return warp(previous, m)

    return move


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render the zoom sequence to MP4/GIF (see pipelines.sequence)."""
    cfg = preset.config
    outputs = sequence_outputs(preset)
    scheds = motion_schedules(cfg)
    loop.rendered_count(cfg["frames"], cfg["loop"]["mode"], cfg["loop"]["frames"], extend=True)
    first = still_input(cfg)
    h, w = first.shape[:2]
    dreamer, plan = plan_dreamer(cfg, cfg["frames"], opts.notify)
    with output_lock(outputs):
        store = open_store(outputs, preset, opts)
        scheduler = FrameScheduler(dreamer.engine, first, zoom_motion(scheds, (w, h)), plan,
                                   store, cfg["seed"])
        return render_sequence(preset, opts, outputs, scheduler, cfg["frames"], cfg["fps"],
                               {"model": model_record(dreamer)})
