"""Faster input gradients for dreaming: stride-1 convolutions whose gradient with respect
to the image is computed as a forward convolution (faster on CPUs than TensorFlow's
Conv2DBackpropInput, equal up to rounding). For dreaming only: no kernel gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from render.tf_runtime import tf


def flipped_kernel(kernel: np.ndarray) -> np.ndarray:
    """The kernel of a stride-1 conv's input gradient: `kernel` (kh, kw, cin, cout) flipped in
    space with its in/out channels swapped."""
    return np.ascontiguousarray(np.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))


def _conv_input_gradient(dy: tf.Tensor, flipped: tf.Tensor, padding: str) -> tf.Tensor:
    """Input gradient of a stride-1 conv, computed as a forward conv of `dy`.

    d/dx of conv(x, w) is the full correlation of dy with w flipped in space and with its
    in/out channels swapped (`flipped_kernel`): an ordinary Conv2D with explicit padding. On
    CPU TensorFlow runs that faster than its Conv2DBackpropInput (2.3x for InceptionV3's 3x3
    stem convs, about 1.2x per step overall; bench/levers.py), and the result is the same up
    to rounding.
    """
    pads = [[0, 0]]
    for k in flipped.shape[:2]:
        if padding == "same":  # forward padded (k-1)//2 before, the rest after
            pads.append([k - 1 - (k - 1) // 2, (k - 1) // 2])
        else:
            pads.append([k - 1, k - 1])
    pads.append([0, 0])
    return tf.nn.conv2d(dy, flipped, 1, pads)


def _fast_conv(x: tf.Tensor, kernel: tf.Tensor, flipped: tf.Tensor, bias: tf.Tensor | None,
               padding: str) -> tf.Tensor:
    """Stride-1 NHWC conv (+ bias) whose gradient flows to `x` only, via
    `_conv_input_gradient`. The bias is added inside, so TensorFlow fuses it into the conv."""

    @tf.custom_gradient
    def conv(x: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
        y = tf.nn.conv2d(x, kernel, 1, padding.upper())
        if bias is not None:
            y = tf.nn.bias_add(y, bias)
        return y, lambda dy: _conv_input_gradient(dy, flipped, padding)

    return conv(x)


def _fast_gradient_eligible(layer: tf.keras.layers.Layer) -> bool:
    import keras

    return (
        type(layer) is keras.layers.Conv2D
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.padding in ("valid", "same")
        and layer.data_format == "channels_last"
        and layer.compute_dtype == "float32"
        and not getattr(layer, "lora_enabled", False)
        and getattr(layer, "quantization_mode", None) is None
    )


def with_fast_input_gradients(model: tf.keras.Model) -> tf.keras.Model:
    """`model` with every plain stride-1 Conv2D swapped for a stand-in that shares its
    weights and forward pass but computes the input gradient with a forward conv.

    Only the gradient w.r.t. the image is right: the stand-ins give no kernel gradient, so
    the result is for dreaming, never for training; they hold a flipped copy of the kernels
    taken when they are made. Other layers are reused as they are.
    """
    import keras

    class FastInputGradConv2D(keras.layers.Layer):
        """A stride-1 Conv2D (shared weights) with a faster input gradient."""

        def __init__(self, inner: keras.layers.Conv2D) -> None:
            super().__init__(name=inner.name, dtype=inner.dtype_policy)
            self.inner = inner
            # flipped once here, not in every step's graph (a Transpose and a ReverseV2 per
            # conv were 5% of a step); the network's weights are fixed while it dreams
            self.flipped = tf.constant(flipped_kernel(np.asarray(inner.kernel)))

        def call(self, x: tf.Tensor) -> tf.Tensor:
            conv = self.inner
            y = _fast_conv(x, tf.convert_to_tensor(conv.kernel), self.flipped,
                           tf.convert_to_tensor(conv.bias) if conv.use_bias else None,
                           conv.padding)
            return y if conv.activation is None else conv.activation(y)

        def compute_output_shape(self, input_shape: tuple) -> tuple:
            return self.inner.compute_output_shape(input_shape)

    return keras.models.clone_model(
        model,
        clone_function=lambda layer: (
            FastInputGradConv2D(layer) if _fast_gradient_eligible(layer) else layer
        ),
    )
