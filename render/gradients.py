"""Gradient conditioning for the ascent step: optional smoothing, then normalisation.

Raw input gradients of a CNN are high-frequency noise; smoothing them gives larger, calmer
patterns (most useful for depthwise-conv nets such as EfficientNet). All functions take and
return float32 tensors of shape (H, W, 3) and are traced inside the engine's tf.function.
"""

from __future__ import annotations

import numpy as np

from render.options import SMOOTHING
from render.tf_runtime import tf

_BINOMIAL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32)
_LAP_KERNEL = (_BINOMIAL / _BINOMIAL.sum())[:, :, None, None] * np.eye(3, dtype=np.float32)


def normalize_std(grad: tf.Tensor) -> tf.Tensor:
    """Scale to unit RMS so the step size means the same thing at every layer and octave."""
    return grad / (tf.sqrt(tf.reduce_mean(tf.square(grad))) + 1e-8)


def _gaussian_kernel(sigma: tf.Tensor, radius: int = 4) -> tf.Tensor:
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-tf.square(x) / (2.0 * tf.square(sigma)))
    return k / tf.reduce_sum(k)


def _separable_blur(img: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    k = _gaussian_kernel(sigma)
    n = tf.shape(k)[0]
    kx = tf.tile(tf.reshape(k, [1, n, 1, 1]), [1, 1, 3, 1])
    ky = tf.tile(tf.reshape(k, [n, 1, 1, 1]), [1, 1, 3, 1])
    out = tf.nn.depthwise_conv2d(img[None], kx, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(out, ky, [1, 1, 1, 1], "SAME")[0]


def gaussian_cascade(grad: tf.Tensor, progress: tf.Tensor) -> tf.Tensor:
    """Average of three Gaussian blurs (sigma x0.5, x1, x2); sigma grows 0.5 -> 2.5 over an octave.

    `progress` in [0, 1] is the step's position within the octave: early steps keep detail,
    later ones favour broad structure.
    """
    sigma = 0.5 + 2.0 * tf.cast(progress, tf.float32)
    blurs = [_separable_blur(grad, sigma * f) for f in (0.5, 1.0, 2.0)]
    return tf.add_n(blurs) / 3.0


def _lap_split(img: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    lo = tf.nn.conv2d(img, _LAP_KERNEL, [1, 2, 2, 1], "SAME")
    lo2 = tf.nn.conv2d_transpose(lo, _LAP_KERNEL * 4, tf.shape(img), [1, 2, 2, 1])
    return lo, img - lo2


def laplacian_normalize(grad: tf.Tensor, levels: int = 4) -> tf.Tensor:
    """Normalise each band of a Laplacian pyramid separately, then merge (TF1 DeepDream example).

    Equalising the bands lifts low frequencies that raw gradients starve, giving smoother,
    less noisy patterns.
    """
    img = grad[None]
    bands = []
    for _ in range(levels):
        img, hi = _lap_split(img)
        bands.append(normalize_std(hi))
    out = normalize_std(img)
    for hi in reversed(bands):
        out = tf.nn.conv2d_transpose(out, _LAP_KERNEL * 4, tf.shape(hi), [1, 2, 2, 1]) + hi
    return out[0]


def condition(grad: tf.Tensor, smoothing: str, progress: tf.Tensor) -> tf.Tensor:
    """Smooth (per `smoothing`, one of SMOOTHING) and normalise a raw input gradient."""
    if smoothing == "gaussian":
        grad = gaussian_cascade(grad, progress)
    elif smoothing == "laplacian":
        grad = laplacian_normalize(grad)
    elif smoothing != "none":
        raise ValueError(f"smoothing must be one of {SMOOTHING}, got {smoothing!r}")
    return normalize_std(grad)
