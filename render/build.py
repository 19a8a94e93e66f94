"""Build the dreaming engine for a model name and an objective: load the network (with its
offline fallback), resolve the layer objective (plus a guide image and ImageNet classes, see
render.objectives), compile the DreamEngine. The notebook `Dreamer` and every pipeline build
their engine here."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from render.engine import DreamEngine
from render.errors import UserError
from render.models import LayerTerm
from render.notify import Notify, stderr_notify
from render.objectives import LayerObjective, Objective, from_layer_terms, layer_terms
from render.weights.resolve import LoadedModel, load_model, resolve_objective


@dataclass(frozen=True)
class BuiltEngine:
    """A compiled engine and an honest account of the model and objective behind it."""

    loaded: LoadedModel
    engine: DreamEngine

    @property
    def terms(self) -> tuple[LayerTerm, ...]:
        """The objective's per-layer terms (what `layer_weights` re-weight)."""
        return layer_terms(self.engine.objective)

    def record(self, scheduled: Collection[str] = ()) -> dict[str, Any]:
        """What a sidecar says about the model actually used; the layers in `scheduled` have
        a weight per frame (keyframes or an expression: the resolved preset says which)."""
        loaded = self.loaded
        return {
            "requested": loaded.requested,
            "used": loaded.spec.name,
            "weights": loaded.weights,
            "fallback_notice": loaded.notice,
            "layers": {t.layer: {"weight": "scheduled" if t.layer in scheduled else t.weight,
                                 "channels": list(t.channels)}
                       for t in self.terms},
            "smoothing": self.engine.smoothing,
            "objective": self.engine.objective.record(),
            "precision": self.engine.precision_choice.record(),
        }


def build_engine(model: str, wanted: LayerObjective | Objective | None = None,
                 weights: str | None = "imagenet", smoothing: str | None = None,
                 notify: Notify = stderr_notify, precision: str = "auto") -> BuiltEngine:
    """Load `model` and compile the engine for `wanted`: the objective the preset keys
    describe (render.objectives.LayerObjective; None = the model's default layers), resolved
    against the model actually loaded (a fallback dreams its own defaults), or an explicit
    Objective. `smoothing=None` takes the model's default; `precision` is the network's number
    format (render.precision; "auto" picks it for this machine)."""
    wanted = wanted or LayerObjective()
    needs_logits = (wanted.needs_logits if isinstance(wanted, Objective)
                    else bool(wanted.classes))
    loaded = load_model(model, weights, notify, top=needs_logits)
    layers = None if isinstance(wanted, Objective) else wanted.layers
    terms = resolve_objective(loaded, layers, notify)  # also tells of a fallback
    if isinstance(wanted, Objective):
        unknown = [t.layer for t in layer_terms(wanted) if t.layer not in loaded.spec.layers]
        if unknown:
            raise UserError(f"objective: unknown layer {unknown[0]!r} for {loaded.spec.name}; "
                            f"valid: {', '.join(loaded.spec.layers)}")
        objective = wanted
    else:
        objective = from_layer_terms(terms, wanted)
    spec = loaded.spec
    engine = DreamEngine(loaded.network, loaded.preprocess or spec.preprocess, objective,
                         smoothing or spec.smoothing, spec.min_size, precision=precision)
    return BuiltEngine(loaded, engine)
