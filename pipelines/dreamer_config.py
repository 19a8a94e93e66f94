"""Build the engine a preset asks for: the bridge from preset keys to `render.Dreamer`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from render.dreamer import Dreamer
from render.engine import DreamSettings
from render.models import Notify


def make_dreamer(config: Mapping[str, Any], notify: Notify) -> Dreamer:
    """A Dreamer for the preset's model, layers and dream settings."""
    model, dream = config["model"], config["dream"]
    return Dreamer(
        model=model["name"], layers=model["layers"], weights=model["weights"],
        smoothing=dream["smoothing"], seed=config["seed"], notify=notify,
        **settings_kwargs(dream),
    )


def settings_kwargs(dream: Mapping[str, Any]) -> dict[str, Any]:
    """The DreamSettings fields found in a `dream` section (scheduled ones are left to the
    frame plan)."""
    return {k: dream[k] for k in DreamSettings.__dataclass_fields__
            if isinstance(dream.get(k), (int, float))}


def model_record(dreamer: Dreamer) -> dict[str, Any]:
    """What the sidecar says about the model actually used."""
    loaded = dreamer.loaded
    return {
        "requested": loaded.requested,
        "used": loaded.spec.name,
        "weights": loaded.weights,
        "fallback_notice": loaded.notice,
        "layers": {t.layer: {"weight": t.weight, "channels": list(t.channels)}
                   for t in dreamer.objective},
        "smoothing": dreamer.engine.smoothing,
    }
