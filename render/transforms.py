"""Transformation robustness for class dreams (lucid's `optvis.transform`): before the network
sees a tile, it is scaled, rotated and shifted by a small random amount, fresh every step.

Why: a class logit is easy to raise with a pattern that works at one exact pixel alignment (an
adversarial pattern: fine coloured noise the classifier reads as the class but a person does
not see, and that no longer reads as the class once the picture is rescaled). A pattern that
must survive small zooms, turns and shifts has to be made of larger, coherent shapes, which
is what a person sees. Layer terms do not need it (their patterns are already the visible
ones), so the engine uses it only when the objective reads the logits.

Boundary: `jittered(patch, seed)` takes and returns float32 (H, W, 3) in engine space; the
transform is differentiable (bilinear resampling, edges reflected).
"""

from __future__ import annotations

import math

from render.tf_runtime import tf

# Ranges measured at bench/directed.py's settings (goldfish/mushroom on three skimage photos,
# Lite0, 448x336, 4 octaves of 30 steps of 0.03; an AMD EPYC, AVX2):
# the class's probability on a cropped and 1.3x enlarged copy of the dream went from 0.26 to
# 0.41 on average with these; milder ranges (0.85-1.15, 10 degrees, 4% shift) did not help,
# since the engine's per-step roll and its octaves already give some of this robustness.
SCALE = (0.7, 1.3)  # random zoom per step
DEGREES = 20.0  # random turn per step, either way
SHIFT = 0.1  # random shift per step, a share of the tile's side


def jittered(patch: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """`patch` zoomed, turned and shifted about its centre by random amounts drawn from the
    stateless `seed` ([2] int32), same size."""
    u = tf.random.stateless_uniform([4], seed=seed)
    scale = SCALE[0] + (SCALE[1] - SCALE[0]) * u[0]
    angle = (2.0 * u[1] - 1.0) * DEGREES * math.pi / 180.0
    hw = tf.cast(tf.shape(patch)[:2], tf.float32)
    shift = (2.0 * u[2:] - 1.0) * SHIFT * hw  # (dy, dx)
    cy, cx = (hw[0] - 1.0) / 2.0, (hw[1] - 1.0) / 2.0
    # output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): the inverse map
    # of "zoom by scale and turn by angle about the centre, then shift"
    c, s = tf.cos(angle) / scale, tf.sin(angle) / scale
    x0, y0 = cx + shift[1], cy + shift[0]
    transform = tf.stack([c, -s, cx - c * x0 + s * y0, s, c, cy - s * x0 - c * y0,
                          0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=patch[None], transforms=transform, output_shape=tf.shape(patch)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    return tf.ensure_shape(out[0], patch.shape)  # keep the static channel count
