"""Gradient ascent raises each objective term, as lucid checks for each of its objectives: on
a tiny random-weight CNN (with a 1000-way "logits" head for the class term), a few dream steps
must raise the term's own value by a clear margin, and the same steps with the term negated
must lower it; under a mask the value still rises and the pixels outside it stay as they were.
"""

from __future__ import annotations

import numpy as np
import pytest

from render.engine import DreamEngine, DreamSettings, to_engine
from render.media.image import default_image
from render.objectives import Objective, channel, class_, guide, layer
from render.tf_runtime import tf

# one octave, so the guide features the engine dreams with are those of the full image size,
# the size the value is measured at
SETTINGS = DreamSettings(octaves=1, steps=6, step_size=0.05, tile=512)
SIZE = (64, 48)
MARGIN = 0.25  # a dream moves its term's value by at least this fraction of it (measured: 0.4-1.9)


def identity(x):
    return x


def build_net():
    """c1 -> c2 -> c3 (stride 2) -> global average -> Dense "logits" (1000 classes), every
    random weight drawn from its own seeded initializer (no global seed)."""
    import keras

    def conv(filters, stride, name, seed):
        return keras.layers.Conv2D(filters, 3, stride, padding="same", activation="relu",
                                   kernel_initializer=keras.initializers.HeNormal(seed),
                                   name=name)

    inp = keras.Input((None, None, 3))
    x = conv(8, 1, "c1", 1)(inp)
    x = conv(12, 1, "c2", 2)(x)
    x = conv(16, 2, "c3", 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(1000, kernel_initializer=keras.initializers.GlorotUniform(4),
                           name="logits")(x)
    return keras.Model(inp, x)


@pytest.fixture(scope="module")
def net():
    return build_net()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return default_image(SIZE, seed=3)


GUIDE = default_image(SIZE, seed=11)[::-1]  # another cloudscape, upside down

TERMS = {
    "layer": lambda: layer("c2"),
    "channel": lambda: channel("c3", 2, 9),
    "guide": lambda: guide(GUIDE, "c3"),
    "class": lambda: class_("goldfish", 207),
}


def term_value(engine: DreamEngine, image: np.ndarray) -> float:
    """The engine's single term, unweighted, on `image` (guide features at its size)."""
    ((_, term),) = engine.objective.terms
    acts = engine._activations(tf.constant(to_engine(image)[None]))
    guides = engine.guide_features(image.shape[1::-1], SETTINGS.tile)
    return float(term.value(acts, guides[0] if guides else None))


@pytest.mark.parametrize("name", TERMS)
def test_dreaming_a_term_raises_it_and_dreaming_its_negation_lowers_it(net, image, name):
    objective: Objective = TERMS[name]()
    up = DreamEngine(net, identity, objective, "none", 16)
    down = DreamEngine(net, identity, -objective, "none", 16)
    before = term_value(up, image)
    assert term_value(down, image) == before  # the same term, measured alike
    raised = term_value(up, up.dream(image, SETTINGS, seed=1))
    lowered = term_value(up, down.dream(image, SETTINGS, seed=1))
    step = MARGIN * abs(before)
    assert step > 0
    assert raised > before + step, (before, raised)
    assert lowered < before - step, (before, lowered)


def test_a_masked_dream_raises_the_term_and_leaves_the_outside_untouched(net, image):
    engine = DreamEngine(net, identity, layer("c2"), "none", 16)
    w = SIZE[0]
    mask = np.zeros(image.shape[:2], np.float32)
    mask[:, : w // 2] = 1.0  # the left half dreams
    before = term_value(engine, image)
    out = engine.dream(image, SETTINGS, seed=1, mask=mask)
    assert term_value(engine, out) > before + MARGIN * abs(before)
    assert np.array_equal(out[:, w // 2:], image[:, w // 2:])
    assert np.abs(out[:, : w // 2].astype(int) - image[:, : w // 2]).mean() > 1.0


def test_only_class_dreams_see_their_tiles_jittered(net, monkeypatch):
    """Class terms see each tile randomly zoomed, turned and shifted (so the class is painted
    in shapes that survive rescaling, not as a one-alignment noise pattern); layer terms are
    dreamed exactly as without the transform."""
    import render.engine as engine_module
    from render.engine import DreamSettings

    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    s = DreamSettings(octaves=1, steps=3, step_size=0.05)

    def dream(objective, untransformed):
        with monkeypatch.context() as m:
            if untransformed:
                m.setattr(engine_module, "jittered", lambda patch, seed: patch)
            engine = DreamEngine(net, identity, objective, "none", 16)
            return engine.dream(image, s, seed=1)

    layers = layer("c2")
    np.testing.assert_array_equal(dream(layers, False), dream(layers, True))
    both = layer("c2") + class_(3)
    jittered, plain = dream(both, False), dream(both, True)
    assert np.abs(jittered.astype(int) - plain).mean() > 0.5
    np.testing.assert_array_equal(dream(both, False), jittered)  # seeded: repeatable


def test_the_jitter_zooms_turns_and_shifts_about_the_centre():
    from render.transforms import jittered

    patch = np.zeros((65, 65, 3), np.float32)
    patch[30:35, 30:35] = 1.0  # a dot at the centre stays near it
    moved = [jittered(tf.constant(patch), tf.constant([k, 7])).numpy() for k in range(6)]
    for out in moved:
        assert out.shape == patch.shape
        ys, xs = np.nonzero(out[..., 0] > 0.5)
        assert abs(ys.mean() - 32) <= 7 and abs(xs.mean() - 32) <= 7
    assert len({out.tobytes() for out in moved}) == 6  # a fresh transform per seed
