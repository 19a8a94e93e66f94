"""The objective as composable terms, like lucid's objectives.

    0.5 * layer("mixed4") + channel("mixed4", 7, 19) + class_("goldfish")
    guide("cat.jpg", "block6") + layer("block8")

An `Objective` is a weighted sum of terms. Each term reads the activations of some network
layers and returns a scalar to maximise:

- `LayerMean`: mean activation of a layer (optionally only some channels), the classic dream.
- `GuideMatch`: Google's guided dream: at every position of the layer, the dot product with the
  best-matching feature vector of a guide image (the guide's features are computed once per
  layer and octave size by the engine and passed in as a tensor).
- `ClassLogits`: mean of some ImageNet logits (render.classes resolves the names).

Weights travel as one float tensor (one per term), so scheduled weights never re-trace the
engine's compiled octave step; guide features travel as one [positions, channels] tensor per
guide term with a dynamic first dimension, for the same reason.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from render.classes import class_indices, class_name
from render.errors import UserError
from render.models import Layers, LayerTerm
from render.tf_runtime import tf

LOGITS = "logits"  # the layer name a network's ImageNet class scores have (pre-softmax)


@dataclass(frozen=True)
class LayerMean:
    """Mean activation of `layer` (only `channels`, when given)."""

    layer: str
    channels: tuple[int, ...] = ()

    def reads(self) -> tuple[str, ...]:
        return (self.layer,)

    def value(self, acts: Mapping[str, tf.Tensor], guide: tf.Tensor | None) -> tf.Tensor:
        act = acts[self.layer]
        if self.channels:
            act = tf.gather(act, list(self.channels), axis=-1)
        return tf.reduce_mean(act)

    def record(self) -> dict[str, Any]:
        return {"term": "layer", "layer": self.layer, "channels": list(self.channels)}


@dataclass(frozen=True, eq=False)  # compared by identity: it holds an image
class GuideMatch:
    """Guided dream at `layer`: each position is pushed towards the guide image's feature
    vector it already matches best (max dot product), as in Google's DeepDream notebook."""

    layer: str
    image: np.ndarray = field(repr=False)  # uint8 RGB guide
    channels: tuple[int, ...] = ()
    source: str = "array"  # where the guide came from, for sidecars

    def reads(self) -> tuple[str, ...]:
        return (self.layer,)

    def flatten(self, act: tf.Tensor) -> tf.Tensor:
        """(1, h, w, C) activations -> (h*w, C') feature vectors (selected channels)."""
        if self.channels:
            act = tf.gather(act, list(self.channels), axis=-1)
        return tf.reshape(act, [-1, tf.shape(act)[-1]])

    def value(self, acts: Mapping[str, tf.Tensor], guide: tf.Tensor | None) -> tf.Tensor:
        assert guide is not None
        x = self.flatten(acts[self.layer])
        best = tf.argmax(tf.matmul(x, guide, transpose_b=True), axis=1)
        target = tf.stop_gradient(tf.gather(guide, best))
        # per position and channel, in units of the guide's RMS feature, so its weight mixes
        # with layer means on a comparable scale
        scale = tf.cast(tf.shape(x)[1], tf.float32) * (
            tf.sqrt(tf.reduce_mean(tf.square(guide))) + 1e-6)
        return tf.reduce_mean(tf.reduce_sum(x * target, axis=1)) / scale

    def record(self) -> dict[str, Any]:
        return {"term": "guide", "layer": self.layer, "channels": list(self.channels),
                "guide": self.source, "guide_size": list(self.image.shape[1::-1])}


@dataclass(frozen=True)
class ClassLogits:
    """Mean of the ImageNet logits `classes` (indices)."""

    classes: tuple[int, ...]

    def reads(self) -> tuple[str, ...]:
        return (LOGITS,)

    def value(self, acts: Mapping[str, tf.Tensor], guide: tf.Tensor | None) -> tf.Tensor:
        return tf.reduce_mean(tf.gather(acts[LOGITS], list(self.classes), axis=-1))

    def record(self) -> dict[str, Any]:
        return {"term": "classes", "classes": {str(i): class_name(i) for i in self.classes}}


Term = LayerMean | GuideMatch | ClassLogits


@dataclass(frozen=True)
class Objective:
    """A weighted sum of terms; build with `layer`, `channel`, `guide`, `class_`, `+`, `*`."""

    terms: tuple[tuple[float, Term], ...]

    def __add__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.terms + other.terms)

    def __mul__(self, k: float) -> Objective:
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k):
            return NotImplemented
        return Objective(tuple((w * k, t) for w, t in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __iter__(self) -> Iterator[tuple[float, Term]]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def layers(self) -> tuple[str, ...]:
        """Every layer some term reads, once each, in first-use order."""
        return tuple(dict.fromkeys(n for _, t in self.terms for n in t.reads()))

    @property
    def needs_logits(self) -> bool:
        return any(isinstance(t, ClassLogits) for _, t in self.terms)

    def guides(self) -> tuple[GuideMatch, ...]:
        """The guide terms, in order (the engine passes one feature tensor per guide term)."""
        return tuple(t for _, t in self.terms if isinstance(t, GuideMatch))

    def layer_slots(self) -> tuple[int, ...]:
        """Indices of the per-layer terms (layer means and guides): what `layer_weights`
        (the layer gallery's one-hot weights, keyframed `model.layers` weights) re-weight."""
        return tuple(i for i, (_, t) in enumerate(self.terms)
                     if isinstance(t, (LayerMean, GuideMatch)))

    def weights(self, layer_weights: Sequence[float] | None = None) -> list[float]:
        """One weight per term; `layer_weights` replaces those of `layer_slots()` in order."""
        out = [w for w, _ in self.terms]
        if layer_weights is not None:
            slots = self.layer_slots()
            if len(layer_weights) != len(slots):
                raise ValueError(f"{len(layer_weights)} layer weights for {len(slots)} "
                                 "layer terms")
            for i, w in zip(slots, layer_weights, strict=True):
                out[i] = float(w)
        return out

    def loss(self, acts: Mapping[str, tf.Tensor], weights: tf.Tensor,
             guides: Sequence[tf.Tensor]) -> tf.Tensor:
        """The weighted sum, traced inside the engine's tf.function."""
        total = tf.constant(0.0)
        guide_iter = iter(guides)
        for i, (_, term) in enumerate(self.terms):
            guide = next(guide_iter) if isinstance(term, GuideMatch) else None
            total += weights[i] * term.value(acts, guide)
        return total

    def record(self) -> list[dict[str, Any]]:
        """What a sidecar says about the objective."""
        return [{**t.record(), "weight": w} for w, t in self.terms]


def layer(name: str, channels: Sequence[int] | int | None = None) -> Objective:
    """Mean activation of layer `name` (optionally some channels)."""
    if isinstance(channels, int):
        channels = [channels]
    return Objective(((1.0, LayerMean(name, tuple(channels or ()))),))


def channel(name: str, *channels: int) -> Objective:
    """Mean activation of some channels of layer `name`."""
    return layer(name, channels)


def guide(image: str | os.PathLike | np.ndarray, layer_name: str,
          channels: Sequence[int] = ()) -> Objective:
    """Guided dream at `layer_name` towards `image` (a path, or an array)."""
    rgb, source = read_guide(image)
    return Objective(((1.0, GuideMatch(layer_name, rgb, tuple(channels), source)),))


def class_(*classes: str | int) -> Objective:
    """Mean logit of ImageNet classes by name ("goldfish", case-insensitive) or number."""
    return Objective(((1.0, ClassLogits(class_indices(classes, "class_"))),))


def read_guide(image: str | os.PathLike | np.ndarray, key: str = "dream.guide"
               ) -> tuple[np.ndarray, str]:
    """(uint8 RGB, where it came from) of a guide given as a path or an array."""
    from render.media.image import read_image, to_rgb8

    if isinstance(image, (str, os.PathLike)):
        try:
            return read_image(image), str(image)
        except UserError as exc:
            raise UserError(f"{key}: {exc}") from None
    return to_rgb8(np.asarray(image)), "array"


@dataclass(frozen=True)
class LayerObjective:
    """The objective the preset keys describe, before the model is known: the `model.layers`
    terms (None: the model's default; "all": every layer), a guide image (`dream.guide`, uint8
    RGB, and where it came from) and ImageNet classes (`dream.classes`, logit indices) with
    their weight."""

    layers: Layers = None
    guide: np.ndarray | None = field(default=None, compare=False)
    guide_source: str = "array"
    classes: tuple[int, ...] = ()
    class_weight: float = 1.0


def from_layer_terms(terms: Sequence[LayerTerm], wanted: LayerObjective | None = None
                     ) -> Objective:
    """The objective `wanted` describes, for the model's resolved `terms`: each term as a
    layer mean, or, with a guide image, as a guide match at that layer with the same weight
    (keyframed layer weights apply to it alike); plus the class term when classes are named."""
    wanted = wanted or LayerObjective()
    parts: list[tuple[float, Term]] = []
    for t in terms:
        if wanted.guide is None:
            parts.append((t.weight, LayerMean(t.layer, t.channels)))
        else:
            parts.append((t.weight, GuideMatch(t.layer, wanted.guide, t.channels,
                                               wanted.guide_source)))
    if wanted.classes:
        parts.append((wanted.class_weight, ClassLogits(tuple(wanted.classes))))
    return Objective(tuple(parts))


def layer_terms(objective: Objective) -> tuple[LayerTerm, ...]:
    """The per-layer terms of `objective` (layer means and guides, in order): what
    `layer_weights` re-weight and what a sidecar lists as layers."""
    return tuple(LayerTerm(t.layer, w, t.channels) for w, t in objective
                 if isinstance(t, (LayerMean, GuideMatch)))
