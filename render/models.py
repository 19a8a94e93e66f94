"""Model zoo: which ImageNet CNNs we can dream with (layers, default objective, smoothing,
smallest octave, how to build each) and the layer objective each one is asked to maximise.
Where a model's weights come from is render.weights.resolve.

Every network here takes float32 images in *engine space*: RGB in [-1, 1], shape (1, H, W, 3);
`ModelSpec.preprocess` maps that to what the Keras weights were trained on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from render.errors import UserError, show


@dataclass(frozen=True)
class LayerTerm:
    """One term of the objective: mean activation of `layer` (optionally some channels) x weight."""

    layer: str
    weight: float = 1.0
    channels: tuple[int, ...] = ()


# a parsed layer objective: terms, every layer of the model ("all"), or the model's default
Layers = tuple[LayerTerm, ...] | Literal["all"] | None


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a model: its layers, defaults and how to build it."""

    name: str
    layers: tuple[str, ...]  # dreamable layers, shallow to deep
    default_layers: Mapping[str, float]
    min_size: int  # smallest octave side (px) at which the net still sees structure
    smoothing: str  # default gradient smoothing (see render.gradients)
    keras_weights_file: str | None = None  # file name in Keras's cache, for Keras models
    logits: bool = False  # can be built with its ImageNet classifier (a "logits" layer)
    # the layers a sequence's `model.layer_cycle` moves between when no layers are named:
    # shallow to deep around the default ones (pipelines.sequence.frame_plan.cycled)
    cycle_layers: tuple[str, ...] = ()
    # Keras' full weights (with the classifier), in Keras's cache: where `logits` needs them
    keras_top_weights_file: str | None = None

    def build(self, weights: str | None, top: bool = False) -> Any:
        """Build the network, headless unless `top` (then with a "logits" layer: pre-softmax
        ImageNet scores; only where `logits`); `weights` is None, "imagenet" or a file path."""
        if top:
            if not self.logits:
                raise UserError(f"dream.classes: {self.name} has no ImageNet classifier here; "
                                f"models with one: {classifier_note()}")
            return _TOP_BUILDERS[self.name](weights)
        return _BUILDERS[self.name](weights)

    def preprocess(self, x: Any) -> Any:
        """Map engine-space images ([-1, 1] RGB) to the input space of the network `build`
        makes (Keras weights); a packaged network's is `LoadedModel.preprocess`."""
        return _PREPROCESS[self.name](x)


def _inception(weights: str | None) -> Any:
    import keras

    return keras.applications.InceptionV3(
        include_top=False, weights=weights, input_shape=(None, None, 3)
    )


def _vgg16(weights: str | None) -> Any:
    import keras

    return keras.applications.VGG16(include_top=False, weights=weights, input_shape=(None, None, 3))


def _lite0(weights: str | None) -> Any:
    from render.nets.efficientnet_lite import efficientnet_lite0

    return efficientnet_lite0(weights=weights, include_top=False)


def _inception_top(weights: str | None) -> Any:
    """InceptionV3 with its ImageNet classifier at any input size. Keras builds the top only
    for 299x299 inputs, so its weights (a full-weights file) are copied, layer by layer in
    build order, onto the dynamic-size network plus the same pooling and a Dense "logits"."""
    import keras

    head = _inception(None)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(head.output)
    x = keras.layers.Dense(1000, name="logits")(x)
    model = keras.Model(head.inputs, x, name="inception_v3")
    if weights is not None:
        full = keras.applications.InceptionV3(include_top=True, weights=weights,
                                              classifier_activation=None)
        src = [layer for layer in full.layers if layer.weights]
        dst = [layer for layer in model.layers if layer.weights]
        for s, d in zip(src, dst, strict=True):
            d.set_weights(s.get_weights())
    return model


def _lite0_top(weights: str | None) -> Any:
    from render.nets.efficientnet_lite import efficientnet_lite0

    return efficientnet_lite0(weights=weights, include_top=True)


def _identity(x: Any) -> Any:
    return x


def _vgg_preprocess(x: Any) -> Any:
    import tensorflow as tf

    # Caffe convention: BGR, 0..255, ImageNet channel means subtracted.
    bgr = tf.reverse((x + 1.0) * 127.5, axis=[-1])
    return bgr - tf.constant([103.939, 116.779, 123.68], tf.float32)


def _lite_preprocess(x: Any) -> Any:
    from render.nets.efficientnet_lite import preprocess

    return preprocess((x + 1.0) * 127.5)


_BUILDERS: dict[str, Callable[[str | None], Any]] = {
    "inception_v3": _inception,
    "vgg16": _vgg16,
    "efficientnet_lite0": _lite0,
}
_TOP_BUILDERS: dict[str, Callable[[str | None], Any]] = {
    "efficientnet_lite0": _lite0_top,
    "inception_v3": _inception_top,
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
        cycle_layers=("mixed3", "mixed5", "mixed7"),
        min_size=128,
        smoothing="laplacian",
        keras_weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        logits=True,
        keras_top_weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    ),
    "vgg16": ModelSpec(
        name="vgg16",
        layers=VGG_LAYERS,
        default_layers={"block4_conv3": 1.0, "block5_conv1": 0.5},
        cycle_layers=("block3_conv3", "block4_conv3", "block5_conv1"),
        min_size=64,
        smoothing="gaussian",
        keras_weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "efficientnet_lite0": ModelSpec(
        name="efficientnet_lite0",
        layers=tuple(f"block{i}" for i in range(1, 17)) + ("head",),
        default_layers={"block6": 1.0, "block8": 1.0},
        cycle_layers=("block5", "block7", "block9"),
        min_size=96,
        smoothing="gaussian",
        logits=True,
    ),
}

# models whose ImageNet classifier we can build (class objectives, `dream.classes`); those
# with a keras_top_weights_file only when that file is in Keras's cache
LOGIT_MODELS = tuple(name for name, spec in MODELS.items() if spec.logits)


def classifier_note() -> str:
    """Which models can take class objectives, for error messages."""
    return ", ".join(name + (f" (with Keras' full weights {MODELS[name].keras_top_weights_file}"
                             " in ~/.keras/models)" if MODELS[name].keras_top_weights_file
                             else "") for name in LOGIT_MODELS)

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
