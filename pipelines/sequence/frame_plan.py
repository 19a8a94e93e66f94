"""The per-frame dream plan of a sequence: keyframed dream settings and layer weights,
resolved to the engine settings of frame t. Shared by every sequence pipeline."""

from __future__ import annotations

import math
from collections.abc import Callable

from pipelines.config.settings import DreamConfig, ModelConfig
from pipelines.sequence.scheduler import FramePlan
from render.device import default_tile
from render.engine import DreamSettings
from render.masks import Masks
from render.models import LayerTerm

Plan = Callable[[int], FramePlan]


def cycled(t: int, i: int, n: int, period: int) -> float:
    """Layer i of n's weight factor at frame t, cycling over `period` frames (0 = 1): raised
    cosines shifted by 1/n of a period, so each layer leads in turn and the factors always
    sum to n/2. The middle layer leads at frame 0 (the look nearest a model's default layers:
    with the shallowest leading, frame 0 is circles, not dog faces), then the deeper ones.
    A feedback zoom with fixed weights converges on the one texture those layers like best;
    moving the lead between shallow and deep layers keeps repainting it."""
    if not period or n < 2:
        return 1.0
    return 0.5 + 0.5 * math.cos(2 * math.pi * (t / period - (i - n // 2) / n))


def make_plan(dream: DreamConfig, model: ModelConfig, objective: tuple[LayerTerm, ...], *,
              every_frame_first: bool = False, masks: Masks | None = None,
              start: int = 0) -> Plan:
    """FramePlan for frame t. Frame `start` (every frame, with `every_frame_first`) takes the
    `dream.first_frame` settings where they are given and is always dreamed: it is frame 0,
    or the first frame of a chunk that a cluster worker dreams afresh. With `dream.cadence`
    k, only every k-th frame is dreamed. Layers with keyframed weights
    (`model.weight_schedules`) are re-weighted per frame; the others keep their weight in
    `objective`; with `model.layer_cycle` P, the others' weights cycle over P frames (see
    `cycled`). `masks`: frame t's gradient mask (`dream.mask`)."""
    first = dream.first_frame
    tile = dream.tile or default_tile()
    scheds = model.weight_schedules
    cycle = model.layer_cycle

    def plan(t: int) -> FramePlan:
        steps = round(dream.steps.at(t))
        octaves = round(dream.octaves.at(t))
        step_size = dream.step_size.at(t)
        if t == start or every_frame_first:
            steps = first.steps or steps
            octaves = first.octaves or octaves
            step_size = first.step_size or step_size
        settings = DreamSettings(octaves, dream.octave_scale.at(t), steps, step_size, tile)
        weights = None
        if scheds or cycle:
            weights = [scheds[term.layer].at(t) if term.layer in scheds
                       else term.weight * cycled(t, i, len(objective), cycle)
                       for i, term in enumerate(objective)]
        return FramePlan(settings, weights, dream=t == start or t % dream.cadence == 0,
                         mask=None if masks is None else masks.at(t))

    return plan
