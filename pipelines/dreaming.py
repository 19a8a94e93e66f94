"""The engine a preset asks for: its typed model and dream settings handed to
render.build.build_engine, and the engine settings of a single dreamed image."""

from __future__ import annotations

from pipelines.config.settings import DreamConfig, ModelConfig
from render.build import BuiltEngine, build_engine
from render.device import default_tile
from render.engine import DreamSettings
from render.models import MODELS, LayerTerm
from render.notify import Notify
from render.objectives import LayerObjective, read_guide


def build(model: ModelConfig, dream: DreamConfig, notify: Notify, *,
          all_layers: bool = False) -> BuiltEngine:
    """Load the model and compile the engine for the objective the keys describe (layers
    parsed by the config, a guide image read now, classes resolved); `all_layers`: every
    layer when none are named (the layer gallery). A sequence with `model.layer_cycle` and
    no layers named cycles between the model's `cycle_layers` instead of its default ones."""
    directed = dream.directed
    guide, source = read_guide(directed.guide) if directed.guide is not None else (None, "")
    layers = "all" if all_layers and model.layers is None else model.layers
    if layers is None and model.layer_cycle:  # the model's own layers to cycle between
        layers = tuple(LayerTerm(name) for name in MODELS[model.name].cycle_layers)
    wanted = LayerObjective(layers, guide, source, directed.classes, directed.class_weight)
    return build_engine(model.name, wanted, model.weights, dream.smoothing, notify,
                        dream.precision)


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
