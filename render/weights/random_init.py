"""Random weights that are the same on every build (a resumed render, and every worker of a
cluster, continue with the same network), without seeding any global random generator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from render.models import ModelSpec

RANDOM_INIT_SEED = 1234


def random_network(spec: ModelSpec, top: bool = False) -> Any:
    """`spec`'s network with random weights that are the same on every build (a resumed
    render, every worker of a cluster, continue with the same network), without seeding any
    global random generator: each randomly initialised variable is drawn again by its own
    layer's initializer with a seed of its own (RANDOM_INIT_SEED + its index)."""
    network = spec.build(None, top=top)
    index = 0
    for layer in _leaf_layers(network):
        for variable in layer.weights:
            init = _initializer(layer, variable.name)
            config = init.get_config()
            if "seed" not in config:  # a constant: the same on every build already
                continue
            seeded = type(init).from_config({**config, "seed": RANDOM_INIT_SEED + index})
            variable.assign(seeded(variable.shape, variable.dtype))
            index += 1
    return network


def _leaf_layers(model: Any) -> Iterator[Any]:
    """The layers of `model` that hold variables themselves, nested models opened, in order."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _initializer(layer: Any, name: str) -> Any:
    """The initializer `layer` made its variable `name` with (Keras keeps it on the layer as
    `<name>_initializer`; a depthwise convolution's kernel as `depthwise_initializer`)."""
    for attr in (f"{name}_initializer", "depthwise_initializer" if name == "kernel" else ""):
        init = getattr(layer, attr, None) if attr else None
        if init is not None:
            return init
    raise RuntimeError(f"{type(layer).__name__} {layer.name}: no initializer found for its "
                       f"variable {name}, so its random weights could not be made repeatable")
