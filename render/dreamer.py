"""The original notebook's interface: `Dreamer(...)(image)` returns the dreamed image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from render.build import build_engine
from render.classes import class_indices
from render.device import default_tile
from render.engine import DreamSettings, OctaveCallback
from render.finish.options import FinishOptions
from render.finish.upscale import Upscaler
from render.media.image import read_image, to_rgb8
from render.models import get_spec, parse_layers
from render.notify import Notify, stderr_notify
from render.objectives import LayerObjective, Objective, read_guide


class Dreamer:
    """A model, an objective and dream settings, ready to dream any number of images.

    `layers=None` and `smoothing=None` pick the model's defaults, `tile=None` the device's.
    `weights` is "imagenet" (offline: weights packaged for the same model family, else a
    fallback to efficientnet_lite0 with a notice), None/"none" for random initialisation, or a
    weights file. `guide` (a path or an image) guides every layer term towards that image;
    `classes` (ImageNet names or numbers) adds a class term of weight `class_weight` (models
    with a classifier only: efficientnet_lite0); `objective` (render.objectives, e.g.
    `0.5 * layer("block6") + class_("goldfish")`) replaces layers, guide and classes.
    `upscale` (2, 3, 4) enlarges every dream by `upscale_model` (render.finish.upscale:
    compact or x4plus Real-ESRGAN, or lanczos), as `finish.upscale` does in a preset.
    """

    def __init__(self, model: str = "inception_v3", layers: Any = None, octaves: int = 4,
                 octave_scale: float = 1.4, steps: int = 10, step_size: float = 0.01,
                 tile: int | None = None, seed: int = 0, weights: str | None = "imagenet",
                 smoothing: str | None = None, notify: Notify = stderr_notify, *,
                 guide: str | os.PathLike | np.ndarray | None = None,
                 classes: str | int | Sequence[str | int] = (), class_weight: float = 1.0,
                 objective: Objective | None = None, precision: str = "auto",
                 upscale: int = 1, upscale_model: str = "compact") -> None:
        FinishOptions(upscale=upscale, upscale_model=upscale_model)  # checked before the model
        wanted: LayerObjective | Objective
        if objective is not None:
            wanted = objective
        else:
            guide_image, source = read_guide(guide, "guide") if guide is not None else (None, "")
            indices = class_indices(classes, "classes") if classes not in ((), []) else ()
            terms = layers if layers in (None, "all") else parse_layers(get_spec(model), layers)
            wanted = LayerObjective(terms, guide_image, source, indices, class_weight)
        self.built = build_engine(model, wanted, weights, smoothing, notify, precision)
        self.loaded, self.objective, self.engine = (self.built.loaded, self.built.terms,
                                                    self.built.engine)
        self.settings = DreamSettings(octaves, octave_scale, steps, step_size,
                                      tile or default_tile())
        self.seed = seed
        self.upscaler = Upscaler(upscale, upscale_model) if upscale > 1 else None
        if self.upscaler and self.upscaler.fallback:
            notify(f"upscale: {self.upscaler.fallback}; upscaling with Lanczos instead")

    @property
    def model_name(self) -> str:
        """The model actually dreaming (differs from the request after a fallback)."""
        return self.loaded.spec.name

    def __call__(self, image: str | os.PathLike | np.ndarray,
                 callback: OctaveCallback | None = None,
                 layer_weights: Sequence[float] | None = None,
                 mask: str | os.PathLike | np.ndarray | None = None, **overrides: Any
                 ) -> np.ndarray:
        """Dream `image` (a path, or an HxW[xC] array of any common dtype); returns uint8
        RGB of the same height and width (times `upscale`). `callback(octave, image)` sees
        each octave's result. `layer_weights` re-weights the objective's layers; `mask` (a
        path or an image: white dreams, black stays untouched; feathered) confines the dream;
        keyword overrides (steps=..., seed=...) apply to this call only."""
        from render.masks import still_mask

        rgb = read_image(image) if isinstance(image, (str, os.PathLike)) else to_rgb8(image)
        gradient_mask = None if mask is None else still_mask(mask, rgb.shape[1::-1], "mask")
        seed = overrides.pop("seed", self.seed)
        settings = DreamSettings(**{**self.settings.__dict__, **overrides})
        dreamed = self.engine.dream(rgb, settings, seed=seed, layer_weights=layer_weights,
                                    callback=callback, mask=gradient_mask)
        return self.upscaler(dreamed) if self.upscaler else dreamed
