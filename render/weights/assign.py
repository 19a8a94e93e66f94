"""Set converted arrays on a Keras model's layers, checked both ways: every weight of the model
gets an array of its shape, and every array is used (so a conversion that drifts from the
graph fails loudly instead of dreaming with half-initialised layers).

Arrays are keyed ``<layer name>/<index in layer.get_weights()>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from render.errors import UserError


def assign(model: Any, converted: Mapping[str, np.ndarray], what: str,
           unused_ok: Callable[[str], bool] = lambda key: False) -> None:
    """Copy `converted` into `model` (a keras.Model); `what` names the weights in errors;
    `unused_ok(key)` marks arrays the model may legitimately leave unused."""
    used: set[str] = set()
    for layer in model.layers:
        current = layer.get_weights()
        if not current:
            continue
        names = [f"{layer.name}/{i}" for i in range(len(current))]
        missing = [n for n in names if n not in converted]
        if missing:
            raise UserError(f"{what}: no value for layer weights {missing[:3]}")
        new = [np.asarray(converted[n], dtype=np.float32) for n in names]
        for n, old, arr in zip(names, current, new, strict=True):
            if old.shape != arr.shape:
                raise UserError(f"{what}: {n} has shape {arr.shape}, the model expects "
                                f"{old.shape}")
        layer.set_weights(new)
        used.update(names)
    unused = sorted(k for k in converted if k not in used and not unused_ok(k))
    if unused:
        raise UserError(f"{what}: unused arrays {unused[:5]} ({len(unused)})")
