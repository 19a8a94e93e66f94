"""The engine a preset asks for: its typed model and dream settings handed to
render.build.build_engine, and the engine settings of a single dreamed image."""

from __future__ import annotations

from typing import Any

from pipelines.config.settings import DreamConfig, ModelConfig
from render.build import BuiltEngine, build_engine
from render.device import default_tile
from render.engine import DreamSettings
from render.notify import Notify
from render.objectives import read_guide


def layer_objective(model: ModelConfig, all_layers: bool = False) -> Any:
    """The objective in render.models.parse_layers' terms (None = the model's default)."""
    if all_layers and model.layers is None:
        return "all"
    if isinstance(model.layers, tuple):
        return {t.layer: {"weight": t.weight, "channels": list(t.channels)}
                for t in model.layers}
    return model.layers


def build(model: ModelConfig, dream: DreamConfig, notify: Notify, *,
          all_layers: bool = False) -> BuiltEngine:
    """Load the model and compile the engine; `all_layers`: every layer when none are named
    (the layer gallery). A guide image (`dream.guide`) is read first, classes come resolved."""
    directed = dream.directed
    guide = read_guide(directed.guide) if directed.guide is not None else (None, "")
    return build_engine(model.name, layer_objective(model, all_layers), model.weights,
                        dream.smoothing, notify, guide=guide[0], guide_source=guide[1],
                        classes=directed.classes, class_weight=directed.class_weight,
                        precision=dream.precision)


def directed_salt(dream: DreamConfig) -> str:
    """Size and time stamp of the guide and mask files, for checkpoint salts: frames dreamed
    with another guide or mask under the same file name are not resumed."""
    parts = []
    for path in (dream.directed.guide, dream.directed.mask):
        if path is not None:
            try:
                st = path.stat()
            except OSError:  # read already; gone since: nothing to tell frames apart by
                continue
            parts.append(f"-{st.st_size}-{st.st_mtime_ns}")
    return "".join(parts)


def image_settings(dream: DreamConfig) -> DreamSettings:
    """Engine settings for one image (a still, a gallery tile): the values at frame 0."""
    return DreamSettings(round(dream.octaves.at(0)), dream.octave_scale.at(0),
                         round(dream.steps.at(0)), dream.step_size.at(0),
                         dream.tile or default_tile())
