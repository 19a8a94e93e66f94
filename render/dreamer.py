"""The original notebook's interface: `Dreamer(...)(image)` returns the dreamed image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from render.build import build_engine
from render.device import default_tile
from render.engine import DreamSettings, OctaveCallback
from render.media import read_image, to_rgb8
from render.models import Notify, stderr_notify


class Dreamer:
    """A model, an objective and dream settings, ready to dream any number of images.

    `layers=None` and `smoothing=None` pick the model's defaults, `tile=None` the device's.
    `weights` is "imagenet" (offline: weights packaged for the same model family, else a
    fallback to efficientnet_lite0 with a notice), None/"none" for random initialisation, or a
    weights file.
    """

    def __init__(self, model: str = "inception_v3", layers: Any = None, octaves: int = 4,
                 octave_scale: float = 1.4, steps: int = 10, step_size: float = 0.01,
                 tile: int | None = None, seed: int = 0, weights: str | None = "imagenet",
                 smoothing: str | None = None, notify: Notify = stderr_notify,
                 precision: str = "auto") -> None:
        self.built = build_engine(model, layers, weights, smoothing, notify, precision)
        self.loaded, self.objective, self.engine = (self.built.loaded, self.built.objective,
                                                    self.built.engine)
        self.settings = DreamSettings(octaves, octave_scale, steps, step_size,
                                      tile or default_tile())
        self.seed = seed

    @property
    def model_name(self) -> str:
        """The model actually dreaming (differs from the request after a fallback)."""
        return self.loaded.spec.name

    def __call__(self, image: str | os.PathLike | np.ndarray,
                 callback: OctaveCallback | None = None,
                 layer_weights: Sequence[float] | None = None, **overrides: Any) -> np.ndarray:
        """Dream `image` (a path, or an HxW[xC] array of any common dtype); returns uint8
        RGB of the same height and width. `callback(octave, image)` sees each octave's result.
        `layer_weights` re-weights the objective's layers; keyword overrides (steps=...,
        seed=...) apply to this call only."""
        rgb = read_image(image) if isinstance(image, (str, os.PathLike)) else to_rgb8(image)
        seed = overrides.pop("seed", self.seed)
        settings = DreamSettings(**{**self.settings.__dict__, **overrides})
        return self.engine.dream(rgb, settings, seed=seed, layer_weights=layer_weights,
                                 callback=callback)
