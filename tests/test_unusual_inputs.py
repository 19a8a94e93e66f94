"""Unusual but valid inputs render: pixel formats, tiny and odd sizes, unicode paths and
missing directories (issue 7, section 1)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_probe import read_gif_info, read_mp4
from robustness_kit import clip, image, render_argv

from pipelines.cli import main
from pipelines.outputs import sidecar_path
from pipelines.sequence.checkpoints import work_dir_for
from render.media.image import default_image, read_image

pytestmark = pytest.mark.usefixtures("pinned_memory")  # refusals must not depend on free memory

# ---------------------------------------------------------------- §1 unusual inputs that work


def _pil_image(path: Path, pixels: np.ndarray, palette: bool = False, **save) -> Path:
    """Save with Pillow (OpenCV writes neither palette nor gray+alpha PNGs)."""
    pil = pytest.importorskip("PIL.Image")
    if palette:
        img = pil.new("P", pixels.shape[1::-1])
        img.putdata(pixels.flatten().tolist())
        img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0, 0, 0] * 253)
    else:
        img = pil.fromarray(pixels)
    img.save(path, **save)
    return path


def pixel_formats(tmp: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """An image file per unusual pixel format, with the uint8 RGB it should read as."""
    gray = np.tile(np.arange(0, 240, 8, np.uint8), (20, 1))  # 20x30
    rgb = default_image((30, 20), seed=1)
    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    over_white = np.rint(rgb * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255))
    index = (np.arange(600).reshape(20, 30) % 3).astype(np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)[index]
    cv2.imwrite(str(tmp / "gray.png"), gray)
    cv2.imwrite(str(tmp / "gray.jpg"), gray)
    cv2.imwrite(str(tmp / "gray16.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp / "rgba.png"), np.dstack([rgb[..., ::-1], alpha]))
    cv2.imwrite(str(tmp / "rgba16.png"), np.dstack([rgb[..., ::-1], alpha]).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp / "rgb16.tif"), rgb[..., ::-1].astype(np.uint16) * 257)
    grey3 = np.repeat(gray[..., None], 3, axis=2)
    gray_over_white = np.rint(grey3 * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255))
    return {
        "gray png": (tmp / "gray.png", grey3),
        "gray jpeg": (tmp / "gray.jpg", grey3),
        "16-bit gray": (tmp / "gray16.png", grey3),
        "rgba": (tmp / "rgba.png", over_white),
        "16-bit rgba": (tmp / "rgba16.png", over_white),
        "16-bit rgb tiff": (tmp / "rgb16.tif", rgb),
        "gray+alpha": (_pil_image(tmp / "la.png", np.dstack([gray, alpha])), gray_over_white),
        "palette": (_pil_image(tmp / "p.png", index, palette=True), palette),
        "palette with transparency": (_pil_image(tmp / "pt.png", index, palette=True,
                                                 transparency=2),
                                      np.where(index[..., None] == 2, 255, palette)),
    }


FORMATS = ["gray png", "gray jpeg", "16-bit gray", "rgba", "16-bit rgba", "16-bit rgb tiff",
           "gray+alpha", "palette", "palette with transparency"]


@pytest.mark.parametrize("kind", FORMATS)
def test_unusual_pixel_formats_are_converted_and_render(tmp_path, capfd, shared_engine, kind):
    path, expected = pixel_formats(tmp_path)[kind]
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 30, 3)
    assert np.abs(rgb.astype(int) - expected).max() <= (4 if path.suffix == ".jpg" else 1)
    out = tmp_path / "out.png"
    assert main(render_argv("still", [f"input={path}", "size=null", f"output={out}"],
                            tmp_path)[0]) == 0, capfd.readouterr().err
    assert read_image(out).shape == (20, 30, 3)


@pytest.mark.parametrize("preset,overrides,shape", [
    ("still", ["input={t}/one.png", "size=null"], (1, 1, 3)),
    ("still", ["size=[3,5]"], (5, 3, 3)),
    ("layers", ["size=[3,5]"], (13, 18, 3)),  # two 3x5 tiles and the gaps around them
    ("zoom", ["size=[3,5]", "output={t}/out.gif"], (2, 5, 3)),
    ("zoom", ["size=[3,5]"], (2, 4, 2)),  # MP4 frames are even: cropped, not padded
    ("zoom", ["size=[33,25]"], (2, 24, 32)),
    ("video", ["input={t}/in.mp4", "max_size=null", "size=[33,25]"], (3, 24, 32)),
])
def test_tiny_and_odd_sizes_render(tmp_path, shared_engine, preset, overrides, shape):
    image(tmp_path, "one.png", (1, 1))
    clip(tmp_path, size="50x30")
    argv, (out,) = render_argv(preset, [o.format(t=tmp_path) for o in overrides], tmp_path)
    assert main(argv) == 0
    if out.suffix == ".png":
        assert read_image(out).shape == shape
    elif out.suffix == ".gif":
        info = read_gif_info(out.read_bytes())
        assert (info.frames, info.height, info.width) == shape
    else:
        assert read_mp4(out)[1].shape[:3] == shape
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name)) == [
        out.name, out.name + ".json"]
    assert not work_dir_for(out).exists()


def test_unicode_spaces_and_missing_directories(tmp_path, shared_engine):
    """Unicode and spaces in every path ffmpeg sees; missing output directories are made."""
    src = clip(tmp_path, "ünï cödé – clip.mp4")
    gif = tmp_path / "nëw dir" / "and one more" / "dräum ☃.gif"
    mp4 = tmp_path / "nëw dir" / "zöom out.mp4"
    assert main(render_argv("video", [f"input={src}", f"output={gif}"], tmp_path)[0]) == 0
    assert read_gif_info(gif.read_bytes()).frames == 3
    assert main(render_argv("zoom", [f"input={image(tmp_path, 'ïn pút.png')}", f"output={mp4}"],
                            tmp_path)[0]) == 0
    assert read_mp4(mp4)[1].shape == (2, 24, 32, 3)
    assert json.loads(sidecar_path(gif).read_text())["clip"]["input"] == str(src)


