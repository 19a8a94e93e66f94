"""Inputs are never distorted: `fit` crops (cover), pads (contain) or stretches an input of
another aspect than `size`; a sequence preset's own `size` is a pixel budget for the input's
shape; odd MP4 sizes lose one pixel with a notice (issue 14, item 1)."""

from __future__ import annotations

from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from conftest import zoom_preset
from media_probe import read_mp4

from pipelines import zoom
from pipelines.config import presets
from pipelines.run_options import RunOptions
from pipelines.source.inputs import still_input, video_input
from render.media.image import write_image


def disc_image(size: tuple[int, int]) -> np.ndarray:
    """Grey, with a white disc in the middle: a disc stays round unless stretched."""
    w, h = size
    image = np.full((h, w, 3), 60, np.uint8)
    cv2.circle(image, (w // 2, h // 2), min(w, h) // 3, (255, 255, 255), -1)
    return image


def disc_roundness(image: np.ndarray) -> float:
    """Width over height of the bright disc (1.0 = round)."""
    ys, xs = np.nonzero(image[..., 0] > 128)
    return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)


def photo(tmp_path: Path, size: tuple[int, int]) -> Path:
    return write_image(tmp_path / f"photo-{size[0]}x{size[1]}.png", disc_image(size))


def first_frame(preset, even: bool = False) -> tuple[np.ndarray, list[str]]:
    notices: list[str] = []
    return still_input(preset.settings, notices.append, even=even), notices


@pytest.mark.parametrize("own,expected", [((426, 535), (428, 538)), ((548, 342), (608, 380))])
def test_zoom_renders_a_photo_in_its_own_shape_at_the_presets_pixel_count(tmp_path, own,
                                                                            expected):
    image, notices = first_frame(presets.load("zoom", [f"input={photo(tmp_path, own)}"]))
    assert image.shape[1::-1] == expected  # 640x360 = 230,400 px
    assert abs(disc_roundness(image) - 1) < 0.03
    assert len(notices) == 1 and f"{expected[0]}x{expected[1]}" in notices[0]
    assert "640x360 pixel count" in notices[0]


def test_the_loop_preset_keeps_a_portrait_photo_portrait(tmp_path):
    image, _ = first_frame(presets.load("loop", [f"input={photo(tmp_path, (426, 535))}"]))
    w, h = image.shape[1::-1]
    assert h > w and abs(w * h - 480 * 270) < 0.02 * 480 * 270 and w % 2 == h % 2 == 0


def test_a_command_line_size_is_exact_and_the_photo_is_cropped_to_cover_it(tmp_path):
    preset = presets.load("zoom", [f"input={photo(tmp_path, (548, 342))}", "size=[640,360]"])
    image, notices = first_frame(preset)
    assert image.shape[1::-1] == (640, 360)
    assert abs(disc_roundness(image) - 1) < 0.03
    assert len(notices) == 1 and "cropped" in notices[0] and "fit=contain" in notices[0]


def test_contain_pads_with_black_and_keeps_the_whole_photo(tmp_path):
    source = photo(tmp_path, (548, 342))
    image, notices = first_frame(presets.load("zoom", [f"input={source}", "size=[640,360]",
                                                       "fit=contain"]))
    assert image.shape[1::-1] == (640, 360) and "padded with black" in notices[0]
    assert abs(disc_roundness(image) - 1) < 0.03
    assert image[:, :31].max() == 0 and image[:, -32:].max() == 0  # 577 px wide: bars
    assert image[:, 31:-32].min() > 0
    assert image[180, 320].min() == 255


def test_stretch_distorts_as_asked_and_says_so(tmp_path):
    source = photo(tmp_path, (548, 342))
    image, notices = first_frame(presets.load("zoom", [f"input={source}", "size=[640,360]",
                                                       "fit=stretch"]))
    assert disc_roundness(image) > 1.08 and "stretched" in notices[0]


def test_the_still_preset_covers_an_exact_size(tmp_path):
    preset = presets.load("still", [f"input={photo(tmp_path, (300, 200))}", "size=[120,120]"])
    image, notices = first_frame(preset)
    assert image.shape[:2] == (120, 120) and abs(disc_roundness(image) - 1) < 0.05
    assert len(notices) == 1


@pytest.mark.parametrize("exact", [True, False])
def test_an_input_of_the_same_shape_gets_no_notice(tmp_path, exact):
    preset = presets.load("zoom", [f"input={photo(tmp_path, (1280, 720))}",
                                   *(["size=[640,360]"] if exact else [])])
    image, notices = first_frame(preset)
    assert image.shape[1::-1] == (640, 360) and notices == []


def test_an_odd_mp4_size_is_cropped_by_one_pixel_with_a_notice(tmp_path):
    image, notices = first_frame(presets.load("zoom", ["size=[321,241]"]), even=True)
    assert image.shape[1::-1] == (320, 240)
    assert len(notices) == 1 and "MP4 needs even sides" in notices[0]
    gif, quiet = first_frame(presets.load("zoom", ["size=[321,241]"]), even=False)
    assert gif.shape[1::-1] == (321, 241) and quiet == []


def test_a_zoom_render_to_mp4_says_it_cropped_an_odd_size(tmp_path):
    notices: list[str] = []
    preset = zoom_preset(tmp_path, "size=[65,49]", "frames=2", f"output={tmp_path / 'z.mp4'}")
    zoom.run(preset, RunOptions(quiet=True, notify=notices.append))
    meta, _ = read_mp4(tmp_path / "z.mp4")
    assert tuple(meta["size"]) == (64, 48)
    assert any("65x49" in n and "64x48" in n for n in notices)


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """A lossless clip (FFV1 in MKV) of uint8 RGB frames."""
    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="ffv1",
                                         pix_fmt_out="yuv444p", macro_block_size=1)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


@pytest.mark.parametrize("fit,bars", [("cover", False), ("contain", True)])
def test_a_video_forced_to_a_size_is_not_distorted(tmp_path, fit, bars):
    from conftest import video_preset

    clip = write_clip(tmp_path / "wide.mkv", [disc_image((96, 60))] * 3)
    notices: list[str] = []
    preset = video_preset(f"input={clip}", "size=[64,64]", f"fit={fit}")
    source = video_input(preset.settings, notices.append, even=True)
    frame = next(source.frames())
    assert source.size == (64, 64) and frame.shape == (64, 64, 3)
    assert abs(disc_roundness(frame) - 1) < 0.1
    assert (frame[:8].max() == 0) == bars and len(notices) == 1
