"""Batch norm folded into the convolutions (render.fold): the dreamed layers' activations are
the same within float32 round-off, only foldable pairs are folded, the layers an objective
reads are left alone, and the folded network (and a reduced-precision clone) is built once."""

from __future__ import annotations

import numpy as np
import pytest

from render.fold import foldable_pairs, folded
from render.tf_runtime import tf


def randomised_bn(net, seed: int = 0):
    """`net` with batch-norm statistics far from the identity (fresh ones are 0/1, which
    would hide a wrong fold)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.normal(0, 0.2, n),
                      "moving_mean": rng.normal(0, 0.3, n),
                      "moving_variance": rng.uniform(0.5, 2, n)}
            layer.set_weights([values[w.path.split("/")[-1]] for w in layer.weights])
    return net


def outputs(net, names, x):
    import keras

    model = keras.Model(net.inputs, [net.get_layer(n).output for n in names])
    return [o.numpy() for o in model(x)]


@pytest.fixture(scope="module")
def lite0():
    from render.nets.efficientnet_lite import build_efficientnet_lite0

    return randomised_bn(build_efficientnet_lite0(include_top=True))


def test_lite0_folded_gives_the_same_activations(lite0):
    import keras

    names = ["block3", "block6", "block9", "logits"]
    net = folded(lite0, keep=names)
    assert not [layer for layer in net.layers
                if isinstance(layer, keras.layers.BatchNormalization)]
    x = tf.random.stateless_uniform([1, 96, 128, 3], seed=[1, 2], minval=-1, maxval=1)
    for name, a, b in zip(names, outputs(lite0, names, x), outputs(net, names, x),
                          strict=True):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max(), name


def test_a_layer_the_objective_reads_is_not_folded_away(lite0):
    pairs = foldable_pairs(lite0)
    conv, bn = next(iter(pairs.items()))
    assert conv not in foldable_pairs(lite0, keep=[bn])
    assert conv not in foldable_pairs(lite0, keep=[conv])
    net = folded(lite0, keep=[bn])
    x = tf.random.stateless_uniform([1, 64, 64, 3], seed=[3, 4], minval=-1, maxval=1)
    a, b = outputs(lite0, [bn], x)[0], outputs(net, [bn], x)[0]
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def test_only_a_conv_read_by_its_batch_norm_alone_is_folded():
    import keras

    inp = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="a")(inp)
    a_bn = keras.layers.BatchNormalization(name="a_bn")(a)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a_bn)  # also read by `skip`
    b_bn = keras.layers.BatchNormalization(name="b_bn")(b)
    skip = keras.layers.Add(name="skip")([b, b_bn])
    c = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="c")(skip)
    c_bn = keras.layers.BatchNormalization(name="c_bn")(c)
    d = keras.layers.Conv2D(8, 1, activation="relu", name="d")(c_bn)
    d_bn = keras.layers.BatchNormalization(name="d_bn")(d)  # after a ReLU: not foldable
    net = randomised_bn(keras.Model(inp, d_bn), seed=5)
    assert foldable_pairs(net) == {"a": "a_bn", "c": "c_bn"}
    x = tf.random.stateless_uniform([1, 20, 24, 3], seed=[5, 6], minval=-1, maxval=1)
    want = net(x).numpy()
    got = folded(net)(x).numpy()
    assert np.abs(want - got).max() <= 1e-5 * np.abs(want).max()


def test_the_folded_and_reduced_precision_networks_are_built_once(lite0):
    from render.precision import network_at

    assert folded(lite0, keep=["block6"]) is folded(lite0, keep=["block6"])
    base = folded(lite0, keep=["block6"])
    assert network_at(base, "bfloat16") is network_at(base, "bfloat16")
    assert network_at(base, "float32") is base


def test_an_engine_folds_even_after_another_engine_reused_the_layers():
    """The fast-gradient clone reuses the network's layers (they get more calls); the pairs
    are still found from the calls that built the network (first seen as no fold at all)."""
    import keras

    from render.engine import DreamEngine
    from render.nets.efficientnet_lite import build_efficientnet_lite0
    from render.objectives import layer

    net = randomised_bn(build_efficientnet_lite0(include_top=False), seed=7)
    objective = layer("block6")
    DreamEngine(net, lambda x: x, objective, "none", 32, fast_input_gradients=True,
                fold_batch_norm=False)
    engine = DreamEngine(net, lambda x: x, objective, "none", 32, fast_input_gradients=True)
    assert not [layer for layer in engine._features.layers
                if isinstance(layer, keras.layers.BatchNormalization)]
