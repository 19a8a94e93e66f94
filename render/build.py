"""Build the dreaming engine for a model name and an objective: load the network (with its
offline fallback), resolve the layer objective, compile the DreamEngine. The notebook
`Dreamer` and every pipeline build their engine here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from render.engine import DreamEngine
from render.models import LayerTerm, Notify
from render.weights.resolve import LoadedModel, load_model, resolve_objective


@dataclass(frozen=True)
class BuiltEngine:
    """A compiled engine and an honest account of the model and objective behind it."""

    loaded: LoadedModel
    objective: tuple[LayerTerm, ...]
    engine: DreamEngine

    def record(self) -> dict[str, Any]:
        """What a sidecar says about the model actually used."""
        loaded = self.loaded
        return {
            "requested": loaded.requested,
            "used": loaded.spec.name,
            "weights": loaded.weights,
            "fallback_notice": loaded.notice,
            "layers": {t.layer: {"weight": t.weight, "channels": list(t.channels)}
                       for t in self.objective},
            "smoothing": self.engine.smoothing,
            "precision": self.engine.precision_choice.record(),
        }


def build_engine(model: str, layers: Any = None, weights: str | None = "imagenet",
                 smoothing: str | None = None, notify: Notify | None = None,
                 precision: str = "auto") -> BuiltEngine:
    """Load `model`, resolve `layers` (see render.models.parse_layers) and compile the engine;
    `smoothing=None` takes the model's default; `precision` is the network's number format
    (render.precision; "auto" picks it for this machine)."""
    kwargs = {} if notify is None else {"notify": notify}
    loaded = load_model(model, weights, **kwargs)
    objective = resolve_objective(loaded, layers, **kwargs)
    spec = loaded.spec
    engine = DreamEngine(loaded.network, loaded.preprocess, objective,
                         smoothing or spec.smoothing, spec.min_size, precision=precision)
    return BuiltEngine(loaded, objective, engine)
