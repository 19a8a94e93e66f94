"""The per-frame dream plan of a sequence: keyframed dream settings and layer weights,
resolved to the engine settings of frame t. Shared by every sequence pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipelines import schedule
from pipelines.dreamer_config import make_dreamer
from pipelines.scheduler import FramePlan
from render.device import default_tile
from render.dreamer import Dreamer
from render.engine import DreamSettings
from render.models import Notify

# schedulable dream settings, with the bounds every keyframe must respect
DREAM_BOUNDS = {"steps": {"low": 1, "high": 1000}, "step_size": {"above": 0, "high": 1.0},
                "octaves": {"low": 1, "high": 12}, "octave_scale": {"above": 1.0, "high": 4.0}}

Plan = Callable[[int], FramePlan]


def dream_schedules(cfg: Mapping[str, Any], frames: int) -> dict[str, schedule.Schedule]:
    """Parse and check the scheduled `dream.*` keys against the clip length."""
    how = cfg["interpolation"]
    return {f"dream.{key}": schedule.check(
        f"dream.{key}", schedule.parse(f"dream.{key}", cfg["dream"][key], how), frames, **b)
        for key, b in DREAM_BOUNDS.items()}


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
              base_weights: list[float], *, every_frame_first: bool = False) -> Plan:
    """FramePlan for frame t. Frame 0 (every frame, with `every_frame_first`) takes the
    `dream.first_frame` settings where they are given; with `dream.cadence` k, only every
    k-th frame is dreamed."""
    first = cfg["dream"]["first_frame"]
    tile = cfg["dream"]["tile"] or default_tile()
    cadence = cfg["dream"]["cadence"]

    def plan(t: int) -> FramePlan:
        steps = round(scheds["dream.steps"].at(t))
        octaves = round(scheds["dream.octaves"].at(t))
        step_size = scheds["dream.step_size"].at(t)
        if t == 0 or every_frame_first:
            steps = first["steps"] or steps
            octaves = first["octaves"] or octaves
            step_size = first["step_size"] or step_size
        settings = DreamSettings(octaves, scheds["dream.octave_scale"].at(t), steps, step_size,
                                 tile)
        weights = None
        if layer_scheds:
            weights = [layer_scheds[n].at(t) if n in layer_scheds else w
                       for n, w in zip(layer_names, base_weights, strict=True)]
        return FramePlan(settings, weights, dream=t % cadence == 0)

    return plan


def plan_dreamer(cfg: Mapping[str, Any], frames: int, notify: Notify, *,
                 every_frame_first: bool = False) -> tuple[Dreamer, Plan]:
    """Check the dream schedules, then build the Dreamer and the per-frame plan."""
    scheds = dream_schedules(cfg, frames)
    layers, layer_scheds = split_layer_schedules(cfg["model"]["layers"], frames,
                                                 cfg["interpolation"])
    dreamer = make_dreamer({**cfg, "model": {**cfg["model"], "layers": layers}}, notify)
    plan = make_plan(cfg, scheds, layer_scheds, [t.layer for t in dreamer.objective],
                     [t.weight for t in dreamer.objective], every_frame_first=every_frame_first)
    return dreamer, plan
