"""Test set-up: no network, a private Keras cache and converted-model cache per session, a
tiny CNN built in the test for fast engine checks, and the helpers several test modules share
(`from conftest import ...`)."""

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
    from render.media.image import default_image

    return default_image((80, 56), seed=3)


def _quiet():
    from pipelines.run_options import RunOptions

    return RunOptions(quiet=True, notify=lambda message: None)


QUIET = _quiet()


def zoom_preset(tmp_path, *overrides: str):
    """A tiny, fast zoom preset (random-weight Lite0, 6 frames of 64x48)."""
    from pipelines.config import presets

    return presets.load("zoom", [
        "model.name=efficientnet_lite0", "model.weights=none", "size=[64,48]", "frames=6",
        "fps=20", "motion.zoom=1.05", "dream.octaves=1", "dream.steps=2",
        "dream.first_frame.octaves=1", "dream.first_frame.steps=2", *overrides])


def video_preset(*overrides: str):
    """A tiny, fast video preset (random-weight Lite0, fit inside 64x48)."""
    from pipelines.config import presets

    return presets.load("video", [
        "model.name=efficientnet_lite0", "model.weights=none", "max_size=[64,48]",
        "dream.octaves=1", "dream.steps=1", "dream.first_frame.octaves=1",
        "dream.first_frame.steps=2", *overrides])


class BrighteningEngine:
    """Stands in for the dream engine: every dream adds 12 grey levels (a drifting dream)."""

    def dream(self, image, settings, seed=0, layer_weights=None, mask=None):
        return np.clip(image.astype(int) + 12, 0, 255).astype(np.uint8)


def interrupt_after(monkeypatch, calls: int) -> None:
    """Make the engine raise KeyboardInterrupt (Ctrl-C) on dream call `calls` + 1."""
    from render.engine import DreamEngine

    original = DreamEngine.dream
    count = {"n": 0}

    def dream(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DreamEngine, "dream", dream)


def run_interrupted(preset, monkeypatch, calls: int, run=None) -> None:
    """Render `preset` with `run` (default: the zoom pipeline) but stop it (Ctrl-C) when
    frame `calls` starts dreaming."""
    if run is None:
        from pipelines import zoom

        run = zoom.run
    with monkeypatch.context() as m:
        interrupt_after(m, calls)
        with pytest.raises(KeyboardInterrupt):
            run(preset, QUIET)


FREE_MEMORY = 8 << 30  # what the memory estimate is told is free, so results do not vary


@pytest.fixture
def pinned_memory(monkeypatch):
    """Size refusals do not depend on how much memory the test machine has free."""
    from render import memory

    monkeypatch.setattr(memory, "available_memory", lambda: FREE_MEMORY)


_NETWORKS: dict = {}
_ENGINES: dict = {}


@pytest.fixture
def shared_engine(monkeypatch):
    """Renders reuse one network and compiled engine per model and objective (building and
    tracing them takes seconds); everything else a render does is real."""
    from render import build as build_module

    real_load, real_engine = build_module.load_model, build_module.DreamEngine

    def load_model(name, weights="imagenet", notify=None, top=False):
        key = (name, str(weights), top)
        if key not in _NETWORKS:
            _NETWORKS[key] = real_load(name, weights, notify or (lambda m: None), top=top)
        return _NETWORKS[key]

    def engine(network, preprocess, objective, smoothing, min_size, precision="float32"):
        key = (id(network), tuple(objective), smoothing, min_size, precision)
        if key not in _ENGINES:
            _ENGINES[key] = real_engine(network, preprocess, objective, smoothing, min_size,
                                        precision=precision)
        return _ENGINES[key]

    monkeypatch.setattr(build_module, "load_model", load_model)
    monkeypatch.setattr(build_module, "DreamEngine", engine)
