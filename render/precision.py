"""The number format the network computes in (`dream.precision`), and the network cast to it.

Reduced precision applies to the network only: its weights and activations. The image, the
gradient normalisation and the ascent update stay float32; the network's input is cast down
inside its first layer and its outputs are cast back up before the loss is reduced.

`auto` follows measurements, never guesswork (README, "Precision"): bfloat16 on a CPU whose
TensorFlow runs oneDNN kernels and which has bfloat16 arithmetic (`amx_bf16` or `avx512_bf16`
in /proc/cpuinfo), except for networks with depthwise convolutions (measured slower in bf16
there); bfloat16 on GPUs with bf16 tensor cores (compute capability >= 8.0), float16 on GPUs
with fp16 tensor cores only (7.x); float32 everywhere else.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from render.device import cpu_info, gpu_capabilities, onednn_enabled
from render.network_copy import rebuilt
from render.options import PRECISIONS
from render.tf_runtime import tf

# CPU flags that give oneDNN bfloat16 arithmetic (AMX tiles, or AVX-512 BF16 dot products)
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Backward-pass scale for reduced precision: a mean over ~1e6 activations has per-element
# gradients near 1e-6, under float16's normal range; a power of two scales exactly and the
# gradient normalisation makes the result independent of it.
GRAD_SCALE = 1024.0


@dataclass(frozen=True)
class Choice:
    """The precision used and why (for sidecars and benchmarks)."""

    precision: str
    requested: str
    reason: str

    def record(self) -> dict[str, str]:
        return {"used": self.precision, "requested": self.requested, "reason": self.reason}


def rule(cpu_flags: Iterable[str], onednn: bool, gpu_caps: Sequence[tuple[int, int]],
         depthwise: bool = False) -> tuple[str, str]:
    """(precision, reason) that `auto` picks for these machine facts and a network with
    (`depthwise`) or without depthwise convolutions (pure, for tests)."""
    if gpu_caps:
        major, minor = gpu_caps[0]
        if (major, minor) >= (8, 0):
            return "bfloat16", f"GPU compute capability {major}.{minor}: bf16 tensor cores"
        if major == 7:
            return "float16", f"GPU compute capability {major}.{minor}: fp16 tensor cores"
        return "float32", f"GPU compute capability {major}.{minor}: no tensor cores"
    flags = set(cpu_flags)
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if found and onednn and depthwise:
        return "float32", (f"CPU with {found[0]} and oneDNN on, but depthwise convolutions "
                           "are slower in bf16 there")
    if found and onednn:
        return "bfloat16", f"CPU with {found[0]} and oneDNN on"
    if found:
        return "float32", f"CPU with {found[0]} but oneDNN off (bf16 is no faster without it)"
    return "float32", "CPU without bf16 arithmetic (amx_bf16/avx512_bf16)"


def has_depthwise(network: tf.keras.Model | None) -> bool:
    """Whether `network` has depthwise convolutions (MobileNet/EfficientNet style)."""
    if network is None:
        return False
    import keras

    return any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in network.layers)


def choose(requested: str = "auto", network: tf.keras.Model | None = None) -> Choice:
    """Resolve `requested` (one of PRECISIONS) on this machine, for `network` if given."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return Choice(requested, requested, "asked for")
    precision, reason = rule(cpu_info()["flags"], onednn_enabled(), gpu_capabilities(),
                             has_depthwise(network))
    return Choice(precision, "auto", reason)


_CLONES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def network_at(network: tf.keras.Model, precision: str) -> tf.keras.Model:
    """`network` itself for float32, else a clone whose layers compute in `precision` and
    hold their weights in it (values copied from `network`, rounded once). The clone is made
    once per network, precision and process (it took 3-5 s for InceptionV3, paid again by
    every engine build: tests, batch inputs, cluster workers)."""
    if precision == "float32":
        return network
    kept = _CLONES.setdefault(network, {})
    if precision not in kept:
        kept[precision] = _clone_at(network, precision)
    return kept[precision]


def _clone_at(network: tf.keras.Model, precision: str) -> tf.keras.Model:
    def edit(layer: Any, config: dict[str, Any]) -> None:
        config["dtype"] = precision

    return rebuilt(network, edit)


def _scale_gradient(x: tf.Tensor, factor: float) -> tf.Tensor:
    """`x` unchanged; the gradient flowing back through it is multiplied by `factor`."""

    @tf.custom_gradient
    def scaled(t: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
        return tf.identity(t), lambda dy: dy * tf.cast(factor, dy.dtype)

    return scaled(x)


class Float32Outputs:
    """Calls a reduced-precision feature model on float32 input, returning float32 outputs.

    The backward pass is scaled up by GRAD_SCALE at the outputs and down again at the input,
    so small gradients survive float16 without changing the float32 gradient it returns.
    """

    def __init__(self, model: tf.keras.Model) -> None:
        self.model = model

    def __call__(self, x: tf.Tensor, training: bool = False) -> list[tf.Tensor] | tf.Tensor:
        acts = self.model(_scale_gradient(x, 1.0 / GRAD_SCALE), training=training)
        if isinstance(acts, (list, tuple)):
            return [_scale_gradient(tf.cast(a, tf.float32), GRAD_SCALE) for a in acts]
        return _scale_gradient(tf.cast(acts, tf.float32), GRAD_SCALE)
