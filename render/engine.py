"""The gradient-ascent engine: octaves, roll, tiles and the ascent step.

`DreamEngine` is the stateful object: one per network + objective + smoothing, compiled once
and reused for every frame of a sequence. The steps of an octave run inside one tf.function
whose signature has dynamic height/width, so a new image size never re-traces; a large image
runs them a few at a time (STEP_PIXELS), because Ctrl-C and SIGTERM reach Python only between
calls (a 12000x8000 octave in one call ignored both for minutes).

Boundary arrays: `dream()` takes and returns uint8 RGB (H, W, 3). Inside, images are float32
in engine space: RGB in [-1, 1].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from render.device import gpus, onednn_enabled
from render.errors import UserError
from render.fold import folded
from render.gradients import SMOOTHING, condition
from render.input_gradients import with_fast_input_gradients
from render.media.image import resize
from render.objectives import LOGITS, GuideMatch, LayerMean, Objective
from render.precision import Float32Outputs, choose, network_at
from render.tf_runtime import tf
from render.transforms import jittered

OctaveCallback = Callable[[int, np.ndarray], None]  # (octave index, uint8 RGB image)
# at most this many guide feature vectors per guide term (evenly spaced over the guide): the
# guided term compares every position of a tile with every guide vector, and shallow layers
# have tens of thousands of positions (Google's notebook matched a 224 px guide at mixed4c:
# 196 vectors)
GUIDE_VECTORS = 2048
# pixels x steps per call of the octave graph: about a second of work on a 2-core CPU, so an
# interrupt is honoured that soon; smaller images still run a whole octave in one call
STEP_PIXELS = 2_000_000


def _mask_at(mask: np.ndarray | None, size: tuple[int, int]) -> tf.Tensor:
    """The gradient mask at octave size (w, h) as (h, w, 1) float32; all ones without a mask."""
    if mask is None:
        return tf.ones([size[1], size[0], 1], tf.float32)
    m = cv2.resize(np.asarray(mask, np.float32), size, interpolation=cv2.INTER_AREA
                   if size[0] < mask.shape[1] else cv2.INTER_LINEAR)
    return tf.constant(np.clip(m, 0.0, 1.0)[..., None])


@dataclass(frozen=True)
class DreamSettings:
    """Per-call knobs; changing them never re-traces the compiled step."""

    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    step_size: float = 0.01
    tile: int = 512


def octave_sizes(size: tuple[int, int], octaves: int, scale: float, min_size: int
                 ) -> list[tuple[int, int]]:
    """(width, height) of each octave, smallest first, ending at `size`.

    Octaves whose shorter side would fall below `min_size` are dropped: below that the
    network sees mush. The full size itself is always kept.
    """
    w, h = size
    sizes = []
    for i in range(octaves - 1, 0, -1):
        f = scale**i
        ow, oh = max(1, round(w / f)), max(1, round(h / f))
        if min(ow, oh) >= min_size:
            sizes.append((ow, oh))
    sizes.append((w, h))
    return sizes


def work_size(size: tuple[int, int], min_size: int) -> tuple[int, int]:
    """Size to dream at: `size`, scaled up if its shorter side is below `min_size`."""
    w, h = size
    if min(w, h) >= min_size:
        return size
    f = min_size / min(w, h)
    return max(min_size, math.ceil(w * f)), max(min_size, math.ceil(h * f))


def tile_edges(length: tf.Tensor, tile: tf.Tensor) -> tf.Tensor:
    """Edges splitting `length` into ceil(length / tile) near-equal tiles (no sliver tiles)."""
    n = tf.maximum(1, (length + tile - 1) // tile)
    return tf.cast(tf.round(tf.linspace(0.0, tf.cast(length, tf.float32), n + 1)), tf.int32)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # bilinear when enlarging: cubic would overshoot the carried detail
    return resize(img, size, grow=cv2.INTER_LINEAR)


def to_engine(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 engine space [-1, 1]."""
    return image.astype(np.float32) / 127.5 - 1.0


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float32 engine space -> uint8 RGB."""
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


class DreamEngine:
    """Gradient ascent on images for one network and one objective (render.objectives)."""

    def __init__(self, network: tf.keras.Model, preprocess: Callable[[tf.Tensor], tf.Tensor],
                 objective: Objective, smoothing: str, min_size: int,
                 fast_input_gradients: bool | None = None, precision: str = "float32",
                 fold_batch_norm: bool = True) -> None:
        """`fast_input_gradients` (see `with_fast_input_gradients`) defaults to on where it
        was measured to help: on the CPU with TensorFlow's oneDNN ops off (oneDNN's forward
        convs are the slower ones). False keeps TensorFlow's own conv gradient ops.
        `precision` (render.options.PRECISIONS; "auto" is resolved here) is the network's
        number format; the image and the update stay float32 (render.precision).
        `fold_batch_norm` (render.fold) is on unless a benchmark compares without it.
        The engine dreams with the weights `network` has now (the folded, reduced-precision
        and fast-gradient networks hold copies): after changing them, make a new engine."""
        if smoothing not in SMOOTHING:
            raise ValueError(f"smoothing must be one of {SMOOTHING}, got {smoothing!r}")
        import keras

        self.objective = objective
        self.smoothing = smoothing
        self.min_size = min_size
        self._preprocess = preprocess
        self._layer_names = self.objective.layers()
        names = {layer.name for layer in network.layers}
        if LOGITS in self._layer_names and LOGITS not in names:
            raise UserError(f"dream.classes: {network.name} has no ImageNet logits here")
        self.precision_choice = choose(precision, network)
        self.precision = self.precision_choice.precision
        # batch norm folded into the convs (render.fold), then the precision's clone: each
        # built once per network and process
        if fold_batch_norm:
            network = folded(network, keep=self._layer_names)
        network = network_at(network, self.precision)
        outputs = [network.get_layer(name).output for name in self._layer_names]
        self._features = keras.Model(network.inputs, outputs)
        if fast_input_gradients is None:
            fast_input_gradients = not gpus() and not onednn_enabled()
        if fast_input_gradients and self.precision == "float32":
            self._features = with_fast_input_gradients(self._features)
        if self.precision != "float32":
            self._features = Float32Outputs(self._features)
        depths = {n: out.shape[-1] for n, out in zip(self._layer_names, outputs, strict=True)}
        for _, term in self.objective:
            if not isinstance(term, (LayerMean, GuideMatch)):  # the terms with channels
                continue
            depth = depths[term.layer]
            bad = [c for c in term.channels if c >= depth]
            if bad:
                raise UserError(
                    f"model.layers.{term.layer}.channels: {bad[0]} out of range; "
                    f"{term.layer} has channels 0..{depth - 1}"
                )

        # Each engine traces once. TF's retracing warning counts traces per code object, so
        # engines' methods (or closures) would be counted together and five engines in a
        # process warned; a partial is keyed by itself. The loops are tf.while_loop: autograph
        # converting every called function was half of the ~2 s trace.
        self._octave = tf.function(
            functools.partial(self._run_octave), autograph=False,
            input_signature=[
                tf.TensorSpec([None, None, 3], tf.float32),  # image, engine space
                tf.TensorSpec([], tf.int32),  # first step to run
                tf.TensorSpec([], tf.int32),  # how many steps to run
                tf.TensorSpec([], tf.int32),  # steps of the whole octave
                tf.TensorSpec([], tf.float32),  # step size
                tf.TensorSpec([], tf.int32),  # tile
                tf.TensorSpec([2], tf.int32),  # stateless RNG seed
                tf.TensorSpec([len(self.objective)], tf.float32),  # term weights
                # one [positions, channels] guide feature matrix per guide term
                tuple(tf.TensorSpec([None, depths[g.layer] if not g.channels
                                     else len(g.channels)], tf.float32)
                      for g in self.objective.guides()),
                tf.TensorSpec([None, None, 1], tf.float32),  # gradient mask, 0..1
            ],
        )
        # One tile's forward and backward pass as a function graph of its own (never inlined
        # into the octave's loops). oneDNN's graph rewrite swaps a max-pool gradient for its fast
        # kernel only once it has swapped that pool's forward op, and it visits nodes in a
        # depth-first order that, in a graph with loops, can reach the gradient first: Eigen's
        # MaxPoolGrad then took a third of a bfloat16 InceptionV3 step. The tile's own graph has
        # no cycle, so every pool gets the fast kernel (README, Performance).
        self._patch_gradient = tf.function(functools.partial(self._gradient_of_patch),
                                           autograph=False, reduce_retracing=True,
                                           experimental_attributes={"_noinline": True})
        self._guide_cache: dict[tuple[int, int], tuple[tf.Tensor, ...]] = {}

    @property
    def trace_count(self) -> int:
        """How many times the octave step has been traced (should stay at 1)."""
        return int(self._octave.experimental_get_tracing_count())

    def _activations(self, batch: tf.Tensor) -> dict[str, tf.Tensor]:
        """Activations of every layer the objective reads, by name; `batch` in engine space."""
        acts = self._features(self._preprocess(batch), training=False)
        if not isinstance(acts, (list, tuple)):
            acts = [acts]
        return dict(zip(self._layer_names, acts, strict=True))

    def _loss(self, patch: tf.Tensor, weights: tf.Tensor,
              guides: tuple[tf.Tensor, ...] = ()) -> tf.Tensor:
        return self.objective.loss(self._activations(patch[None]), weights, guides)

    def guide_features(self, size: tuple[int, int], tile: int) -> tuple[tf.Tensor, ...]:
        """Each guide term's feature vectors at octave size `size` (w, h): the guide resized to
        the same pixel count (its own aspect kept, at most tile x tile), computed once per size
        (at most GUIDE_VECTORS of them)."""
        guides = self.objective.guides()
        if not guides:
            return ()
        if size not in self._guide_cache:
            feats = []
            for g in guides:
                gh, gw = g.image.shape[:2]
                f = min(math.sqrt(size[0] * size[1] / (gw * gh)), tile / max(gw, gh))
                gsize = (max(self.min_size, round(gw * f)), max(self.min_size, round(gh * f)))
                img = _resize(to_engine(g.image), gsize)
                acts = self._activations(tf.constant(img[None], tf.float32))
                vectors = g.flatten(acts[g.layer])
                count = int(vectors.shape[0])
                if count > GUIDE_VECTORS:  # bound the positions x guide-vectors product
                    pick = np.linspace(0, count - 1, GUIDE_VECTORS).round().astype(np.int32)
                    vectors = tf.gather(vectors, pick)
                feats.append(vectors)
            self._guide_cache[size] = tuple(feats)
        return self._guide_cache[size]

    def _tiled_gradient(self, img: tf.Tensor, tile: tf.Tensor, weights: tf.Tensor,
                        guides: tuple[tf.Tensor, ...] = (),
                        seed: tf.Tensor | None = None) -> tf.Tensor:
        """Gradient of the objective w.r.t. `img`, one tile at a time so memory stays bounded.
        With a `seed` and an objective that reads the logits, each tile is seen randomly
        zoomed, turned and shifted (render.transforms: class dreams paint what survives)."""
        shape = tf.shape(img)
        ys, xs = tile_edges(shape[0], tile), tile_edges(shape[1], tile)
        across = tf.size(xs) - 1
        robust = seed is not None and self.objective.needs_logits

        def add_tile(k: tf.Tensor, grad: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            iy, ix = k // across, k % across  # row by row
            tile_seed = (tf.random.experimental.stateless_fold_in(seed, iy * tf.size(xs) + ix)
                         if robust else tf.zeros([2], tf.int32))
            patch_grad = self._patch_gradient(img[ys[iy]:ys[iy + 1], xs[ix]:xs[ix + 1]],
                                              weights, guides, tile_seed, robust)
            return k + 1, grad + tf.pad(patch_grad, [[ys[iy], shape[0] - ys[iy + 1]],
                                                     [xs[ix], shape[1] - xs[ix + 1]], [0, 0]])

        tiles = (tf.size(ys) - 1) * across
        return tf.while_loop(lambda k, _: k < tiles, add_tile, (0, tf.zeros_like(img)))[1]

    def _gradient_of_patch(self, patch: tf.Tensor, weights: tf.Tensor,
                           guides: tuple[tf.Tensor, ...], seed: tf.Tensor,
                           robust: bool) -> tf.Tensor:
        """Gradient of the objective w.r.t. one tile (`robust`: seen jittered by `seed`)."""
        with tf.GradientTape() as tape:
            tape.watch(patch)
            loss = self._loss(jittered(patch, seed) if robust else patch, weights, guides)
        return tape.gradient(loss, patch)

    def _run_octave(self, img: tf.Tensor, first: tf.Tensor, count: tf.Tensor, steps: tf.Tensor,
                    step_size: tf.Tensor, tile: tf.Tensor, seed: tf.Tensor, weights: tf.Tensor,
                    guides: tuple[tf.Tensor, ...], mask: tf.Tensor) -> tf.Tensor:
        """Ascent steps first..first+count-1 of an octave of `steps`: roll, tiled gradient,
        unroll, condition, mask, step. The conditioned gradient is multiplied by `mask` (1
        dreams, 0 leaves the image alone)."""
        hw = tf.shape(img)[:2]
        denom = tf.cast(tf.maximum(steps - 1, 1), tf.float32)

        def step(i: tf.Tensor, img: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            # A random roll of the whole image each step hides tile seams and border effects.
            step_seed = tf.random.experimental.stateless_fold_in(seed, i)
            shift = tf.random.stateless_uniform(
                [2], seed=step_seed, minval=0, maxval=1 << 30, dtype=tf.int32) % hw
            rolled = tf.roll(img, shift, axis=[0, 1])
            grad = tf.roll(self._tiled_gradient(rolled, tile, weights, guides,
                                                tf.random.experimental.stateless_fold_in(
                                                    step_seed, -1)), -shift, axis=[0, 1])
            grad = condition(grad, self.smoothing, tf.cast(i, tf.float32) / denom) * mask
            return i + 1, tf.clip_by_value(img + step_size * grad, -1.0, 1.0)

        return tf.while_loop(lambda i, _: i < first + count, step, (first, img))[1]

    def dream(self, image: np.ndarray, settings: DreamSettings, seed: int = 0,
              layer_weights: Sequence[float] | None = None,
              callback: OctaveCallback | None = None, mask: np.ndarray | None = None
              ) -> np.ndarray:
        """Dream `image` (uint8 RGB HxWx3) and return the result at the same size.

        The detail gained at each octave is carried up to the next (Caffe notebook scheme).
        `layer_weights` overrides the objective's per-layer weights (for scheduled weights).
        `mask` (float HxW in [0, 1], any size: it is stretched to the image) scales the
        gradient: 1 dreams, 0 stays untouched (render.masks makes feathered ones).
        """
        h, w = image.shape[:2]
        size = work_size((w, h), self.min_size)
        base = _resize(to_engine(image), size)
        weights = tf.constant(self.objective.weights(layer_weights), tf.float32)
        detail = None
        img = base
        sizes = octave_sizes(size, settings.octaves, settings.octave_scale, self.min_size)
        for k, octave_size in enumerate(sizes):
            octave_base = _resize(base, octave_size)
            img = octave_base if detail is None else octave_base + _resize(detail, octave_size)
            x = tf.constant(img, tf.float32)
            args = (tf.constant(settings.steps, tf.int32),
                    tf.constant(settings.step_size, tf.float32),
                    tf.constant(settings.tile, tf.int32),
                    tf.constant([seed & 0x7FFFFFFF, k], tf.int32), weights,
                    self.guide_features(octave_size, settings.tile), _mask_at(mask, octave_size))
            per_call = max(1, STEP_PIXELS // (octave_size[0] * octave_size[1]))
            for first in range(0, settings.steps, per_call):  # Ctrl-C is seen between calls
                count = min(per_call, settings.steps - first)
                x = self._octave(x, tf.constant(first, tf.int32), tf.constant(count, tf.int32),
                                 *args)
            img = x.numpy()
            detail = img - octave_base
            if callback is not None:
                callback(k, to_uint8(img))
        if mask is not None and size != (w, h):
            # dreamed at a larger working size: bring back only what the dream changed, so the
            # resampling round trip does not blur the area the mask leaves untouched
            return to_uint8(to_engine(image) + _resize(img - base, (w, h)))
        return to_uint8(_resize(img, (w, h)))
