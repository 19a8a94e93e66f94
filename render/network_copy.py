"""A network rebuilt layer by layer with edited configs and its weights copied in: how the
engine makes its folded (render.fold) and reduced-precision (render.precision) networks."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from render.tf_runtime import tf


def rebuilt(network: tf.keras.Model, edit: Callable[[Any, dict[str, Any]], None],
            call_function: Callable[..., Any] | None = None,
            fresh: Collection[str] = ()) -> tf.keras.Model:
    """A copy of `network` whose layers are made from their configs after `edit(layer,
    config)`; `call_function` as keras.models.clone_model takes it. Weights are copied by
    layer name, except for the layers named in `fresh` (the caller sets theirs)."""
    import keras

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        edit(layer, config)
        for key in config:  # the values are copied in below: skip drawing random ones (~40%)
            if key.endswith("_initializer"):
                config[key] = "zeros"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(network, clone_function=clone,
                                    call_function=call_function)
    by_name = {layer.name: layer for layer in network.layers}
    for dst in copy.layers:
        src = by_name.get(dst.name)  # None: a fresh Input layer, no weights
        if src is not None and src.weights and dst.name not in fresh:
            dst.set_weights([w.numpy() for w in src.weights])
    return copy
