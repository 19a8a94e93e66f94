"""Batch norm folded into the convolution before it, for the network the engine dreams with.

At inference a BatchNormalization after a bias-free (or biased) convolution is a per-channel
affine map, so it can live in the convolution's kernel and bias: kernel * s and
(bias - mean) * s + beta, with s = gamma / sqrt(var + eps). The dream then runs one op per
conv instead of three (conv, Mul, AddV2), forward and backward; the activations are the same up
to float32 round-off (tests/test_fold.py). The packaged 2015 Inception is built folded already
(render/nets/inception_2015.py); this folds Keras' InceptionV3 and EfficientNet-Lite0.

A pair is folded only when the BN reads the conv alone, the conv feeds nothing else, the BN
normalises the channel axis, and neither is a layer the objective reads (its activation must
stay the one the user named). Folded networks are kept per network and process: an engine
build after the first costs nothing more.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection
from typing import Any

import numpy as np

from render.network_copy import rebuilt
from render.tf_runtime import tf

_FOLDED: weakref.WeakKeyDictionary[Any, dict[frozenset[str], Any]] = (
    weakref.WeakKeyDictionary())


def foldable_pairs(network: tf.keras.Model, keep: Collection[str] = ()) -> dict[str, str]:
    """{conv layer name: batch-norm layer name} of the pairs that can be folded (see module).
    The graph is read from each layer's first call, the one that built `network`: layers
    reused by other models (the engine's fast-gradient clone reuses them) have later calls."""
    import keras

    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    readers: dict[int, int] = {}  # id of a tensor of `network` -> how many layers read it
    for layer in network.layers:
        if layer._inbound_nodes:
            for tensor in layer._inbound_nodes[0].input_tensors:
                readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    for tensor in network.outputs:
        readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    pairs = {}
    for layer in network.layers:
        if (not isinstance(layer, keras.layers.BatchNormalization) or layer.name in keep
                or not layer._inbound_nodes or layer.axis not in (-1, 3, [3], [-1])):
            continue
        parents = layer._inbound_nodes[0].parent_nodes
        if len(parents) != 1:
            continue
        conv = parents[0].operation
        if (not isinstance(conv, convs) or conv.name in keep
                or parents[0] is not conv._inbound_nodes[0]
                or conv.get_config().get("activation") not in (None, "linear")):
            continue
        (out,) = conv._inbound_nodes[0].output_tensors
        if readers.get(id(out)) == 1:
            pairs[conv.name] = layer.name
    return pairs


def folded_weights(conv: Any, bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and bias of `conv` with batch norm `bn` after it folded in (float64 maths,
    float32 result)."""
    import keras

    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    bias = (np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias
            else np.zeros_like(mean))
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else np.zeros_like(mean)
    s = gamma / np.sqrt(var + bn.epsilon)
    if isinstance(conv, keras.layers.DepthwiseConv2D):  # out channel c = in * multiplier + m
        kernel = kernel * s.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * s
    return kernel.astype(np.float32), ((bias - mean) * s + beta).astype(np.float32)


def folded(network: tf.keras.Model, keep: Collection[str] = ()) -> tf.keras.Model:
    """`network` with its foldable conv + batch-norm pairs folded (itself when there are
    none); `keep`: layer names that must stay as they are (the ones the objective reads).
    Built once per network and `keep`."""
    pairs = foldable_pairs(network, keep)
    if not pairs:
        return network
    key = frozenset(pairs)
    kept = _FOLDED.setdefault(network, {})
    if key not in kept:
        kept[key] = _fold(network, pairs)
    return kept[key]


def _fold(network: tf.keras.Model, pairs: dict[str, str]) -> tf.keras.Model:
    bns = set(pairs.values())

    def edit(layer: Any, config: dict[str, Any]) -> None:
        if layer.name in pairs:
            config["use_bias"] = True

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name in bns:
            return args[0]  # the conv before it carries its work now
        return layer(*args, **kwargs)

    copy = rebuilt(network, edit, call, fresh=pairs)
    for conv, bn in pairs.items():
        copy.get_layer(conv).set_weights(list(folded_weights(network.get_layer(conv),
                                                             network.get_layer(bn))))
    return copy
