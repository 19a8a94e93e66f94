"""Test set-up: no network, a private Keras cache and converted-model cache per session, and a
tiny CNN built in the test for fast engine checks."""

from __future__ import annotations

import os
import tempfile

_TMP = tempfile.mkdtemp(prefix="dreamreel-tests-")
os.environ["DREAMREEL_OFFLINE"] = "1"  # CI has no internet: never try to download weights
os.environ.setdefault("DREAMREEL_CACHE", os.path.join(_TMP, "cache"))
os.environ["KERAS_HOME"] = os.path.join(_TMP, "keras")  # a developer's real cache must not leak in

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def build_tiny_cnn(pointwise: bool = False):
    """A 3-layer CNN (layers c1, c2, c3) with fixed random weights; fully convolutional."""
    import keras

    keras.utils.set_random_seed(1)
    k = 1 if pointwise else 3
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, k, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(12, k, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(16, k, strides=1 if pointwise else 2, padding="same",
                            activation="relu", name="c3")(x)
    return keras.Model(inp, x)


@pytest.fixture(scope="session")
def tiny_cnn():
    return build_tiny_cnn()


@pytest.fixture
def photo() -> np.ndarray:
    """A small textured uint8 RGB image."""
    from render.media import default_image

    return default_image((80, 56), seed=3)
