"""Build the dreaming engine for a model name and an objective: load the network (with its
offline fallback), resolve the layer objective (plus a guide image and ImageNet classes, see
render.objectives), compile the DreamEngine. The notebook `Dreamer` and every pipeline build
their engine here."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from render.engine import DreamEngine
from render.errors import UserError
from render.models import LayerTerm
from render.notify import Notify
from render.objectives import Objective, from_layer_terms
from render.weights.resolve import LoadedModel, load_model, resolve_objective


@dataclass(frozen=True)
class BuiltEngine:
    """A compiled engine and an honest account of the model and objective behind it."""

    loaded: LoadedModel
    objective: tuple[LayerTerm, ...]  # the per-layer terms (what `layer_weights` re-weight)
    engine: DreamEngine

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
                       for t in self.objective},
            "smoothing": self.engine.smoothing,
            "objective": self.engine.objective.record(),
            "precision": self.engine.precision_choice.record(),
        }


def build_engine(model: str, layers: Any = None, weights: str | None = "imagenet",
                 smoothing: str | None = None, notify: Notify | None = None, *,
                 guide: np.ndarray | None = None, guide_source: str = "array",
                 classes: Sequence[int] = (), class_weight: float = 1.0,
                 objective: Objective | None = None,
                 precision: str = "auto") -> BuiltEngine:
    """Load `model`, resolve `layers` (see render.models.parse_layers) and compile the engine;
    `smoothing=None` takes the model's default. `guide` (uint8 RGB) turns each layer term into
    a guided one, `classes` (logit indices) adds a class term of weight `class_weight`; an
    explicit `objective` (render.objectives) replaces all of these. `precision` is the
    network's number format (render.precision; "auto" picks it for this machine)."""
    kwargs = {} if notify is None else {"notify": notify}
    needs_logits = bool(classes) or (objective is not None and objective.needs_logits)
    loaded = load_model(model, weights, **kwargs, **({"top": True} if needs_logits else {}))
    terms = resolve_objective(loaded, layers, **kwargs)
    if objective is None:
        objective = from_layer_terms(terms, guide, guide_source, classes, class_weight)
    else:
        unknown = [t.layer for _, t in objective if hasattr(t, "layer")
                   and t.layer not in loaded.spec.layers]
        if unknown:
            raise UserError(f"objective: unknown layer {unknown[0]!r} for {loaded.spec.name}; "
                            f"valid: {', '.join(loaded.spec.layers)}")
        terms = tuple(LayerTerm(t.layer, w, t.channels) for w, t in objective
                      if hasattr(t, "layer"))
    spec = loaded.spec
    engine = DreamEngine(loaded.network, loaded.preprocess, objective,
                         smoothing or spec.smoothing, spec.min_size, precision=precision)
    return BuiltEngine(loaded, terms, engine)
