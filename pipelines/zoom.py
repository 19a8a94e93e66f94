"""The `zoom` pipeline: an infinite dream zoom. Each frame is the previous dreamed frame,
zoomed/rotated/translated by keyframed motion, then dreamed again."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import schedule
from pipelines.dreamer_config import make_dreamer, model_record
from pipelines.motion import affine_matrix, warp
from pipelines.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.scheduler import FramePlan, FrameScheduler
from pipelines.schema import Field
from pipelines.sequence import open_store, render_sequence, sequence_outputs
from pipelines.sources import still_input
from render.encode import GIF_DITHERS, X264_PRESETS
from render.engine import DreamSettings

MOTION_KEYS = ("zoom", "angle", "translate_x", "translate_y")
# schedulable dream settings, with the bounds every keyframe must respect
DREAM_BOUNDS = {"steps": {"low": 1, "high": 1000}, "step_size": {"above": 0, "high": 1.0},
                "octaves": {"low": 1, "high": 12}, "octave_scale": {"above": 1.0, "high": 4.0}}

SEQUENCE_SCHEMA: dict[str, Any] = {
    "frames": Field("int", 48, low=1, high=100_000, help="number of frames"),
    "fps": Field("float", 24.0, above=0, high=240, help="frames per second"),
    "interpolation": Field("choice", "linear", choices=schedule.INTERPOLATIONS,
                           help="between keyframes: linear or smooth (monotone cubic)"),
    "frames_dir": Field("path", nullable=True, help="also keep every frame as PNG here"),
    "dream": {
        **{k: Field("schedule", d, **b) for (k, b), d in zip(
            DREAM_BOUNDS.items(), (4, 0.015, 2, 1.4), strict=True)},
        "first_frame": {
            "steps": Field("int", None, low=1, high=1000, nullable=True),
            "octaves": Field("int", None, low=1, high=12, nullable=True),
            "step_size": Field("float", None, above=0, high=1.0, nullable=True),
        },
    },
    "encode": {
        "crf": Field("int", 18, low=0, high=51, help="H.264 quality (lower = better)"),
        "preset": Field("choice", "medium", choices=tuple(X264_PRESETS)),
    },
    "gif": {
        "dither": Field("str", "sierra2_4a", help=f"one of {', '.join(GIF_DITHERS)}"),
        "colors": Field("int", 256, low=2, high=256),
        "loop_count": Field("int", 0, low=-1, high=65535, help="0 = loop forever"),
    },
}

SCHEMA: dict[str, Any] = {
    **SEQUENCE_SCHEMA,
    "motion": {
        "zoom": Field("schedule", 1.03, above=0, high=10, help="scale per frame (>1 zooms in)"),
        "angle": Field("schedule", 0.0, low=-180, high=180, help="degrees per frame"),
        "translate_x": Field("schedule", 0.0, low=-10_000, high=10_000, help="px per frame"),
        "translate_y": Field("schedule", 0.0, low=-10_000, high=10_000, help="px per frame"),
    },
}


def build_schedules(cfg: Mapping[str, Any]) -> dict[str, schedule.Schedule]:
    """Parse and check every scheduled key against the clip length, before any work."""
    frames, how = cfg["frames"], cfg["interpolation"]
    out = {}
    bounds = SCHEMA["motion"]
    for key in MOTION_KEYS:
        f = bounds[key]
        out[f"motion.{key}"] = schedule.check(
            f"motion.{key}", schedule.parse(f"motion.{key}", cfg["motion"][key], how), frames,
            low=f.low, above=f.above, high=f.high)
    for key, b in DREAM_BOUNDS.items():
        out[f"dream.{key}"] = schedule.check(
            f"dream.{key}", schedule.parse(f"dream.{key}", cfg["dream"][key], how), frames, **b)
    return out


def split_layer_schedules(layers: Any, frames: int, how: str
                          ) -> tuple[Any, dict[str, schedule.Schedule]]:
    """Layer weights may be schedules: return layers with frame-0 weights, plus the schedules."""
    if not isinstance(layers, Mapping):
        return layers, {}
    plain, scheds = {}, {}
    for name, value in layers.items():
        weight = value.get("weight", 1.0) if isinstance(value, Mapping) else value
        if isinstance(weight, str):
            key = f"model.layers.{name}"
            scheds[name] = schedule.check(key, schedule.parse(key, weight, how), frames)
            weight = scheds[name].at(0)
        plain[name] = {**value, "weight": weight} if isinstance(value, Mapping) else weight
    return plain, scheds


def make_plan(cfg: Mapping[str, Any], scheds: Mapping[str, schedule.Schedule],
              layer_scheds: Mapping[str, schedule.Schedule], layer_names: list[str],
              base_weights: list[float]):
    """FramePlan for frame t: scheduled dream settings; frame 0 takes dream.first_frame."""
    first = cfg["dream"]["first_frame"]
    tile = cfg["dream"]["tile"]

    def plan(t: int) -> FramePlan:
        steps = round(scheds["dream.steps"].at(t))
        octaves = round(scheds["dream.octaves"].at(t))
        step_size = scheds["dream.step_size"].at(t)
        if t == 0:
            steps = first["steps"] or steps
            octaves = first["octaves"] or octaves
            step_size = first["step_size"] or step_size
        settings = DreamSettings(octaves, scheds["dream.octave_scale"].at(t), steps, step_size,
                                 tile)
        weights = None
        if layer_scheds:
            weights = [layer_scheds[n].at(t) if n in layer_scheds else w
                       for n, w in zip(layer_names, base_weights, strict=True)]
        return FramePlan(settings, weights)

    return plan


def zoom_motion(cfg: Mapping[str, Any], scheds: Mapping[str, schedule.Schedule],
                size: tuple[int, int]):
    """Motion source: warp the previous dream by the affine motion at frame t."""

    def move(t: int, previous: np.ndarray) -> np.ndarray:
        m = affine_matrix(size, *(scheds[f"motion.{k}"].at(t) for k in MOTION_KEYS))
        return warp(previous, m)

    return move


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render the zoom sequence to MP4/GIF (see pipelines.sequence)."""
    cfg = preset.config
    outputs = sequence_outputs(preset)
    scheds = build_schedules(cfg)
    layers, layer_scheds = split_layer_schedules(cfg["model"]["layers"], cfg["frames"],
                                                 cfg["interpolation"])
    first = still_input(cfg)
    h, w = first.shape[:2]
    store = open_store(outputs, preset, opts)
    dreamer = make_dreamer({**cfg, "model": {**cfg["model"], "layers": layers}}, opts.notify)
    names = [t.layer for t in dreamer.objective]
    plan = make_plan(cfg, scheds, layer_scheds, names, [t.weight for t in dreamer.objective])
    scheduler = FrameScheduler(dreamer.engine, first, zoom_motion(cfg, scheds, (w, h)), plan,
                               store, cfg["seed"])
    return render_sequence(preset, opts, outputs, scheduler, cfg["frames"], cfg["fps"],
                           {"model": model_record(dreamer)})
