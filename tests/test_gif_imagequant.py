"""GIFs from libimagequant (gif.encoder: imagequant) and gifsicle's lossy pass: the same
guarantees as the ffmpeg GIFs (loop flag, whole-centisecond delays, atomic output), what a
viewer shows is what was quantized, unchanged regions cost almost nothing, and bad keys stop
the render before anything is written."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from encode_kit import FFMPEG_GIF, IQ_GIF, encode_frames, gradient, listing
from media_probe import read_gif_info

from pipelines.cli import main
from render.encoding import gif_imagequant, gifsicle
from render.encoding.options import GifOptions
from render.errors import UserError


def decode(path: Path) -> np.ndarray:
    gen = imageio_ffmpeg.read_frames(str(path))
    w, h = next(gen)["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


def noisy(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A picture LZW cannot shrink much: smooth colours plus noise."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 40, (height, width, 3))
    return np.clip(gradient(width, height).astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("fps", "loop", "delay", "expected_loop"),
                         [(20, 0, 5, 0), (25, 3, 4, 3), (10, -1, 10, None)])
def test_imagequant_gif_loop_flag_and_delays(tmp_path: Path, fps: int, loop: int, delay: int,
                                             expected_loop: int | None) -> None:
    frames = [gradient(40, 30, shift=4 * i) for i in range(6)]
    out = encode_frames(tmp_path / "loop.gif", frames, fps, gif=replace(IQ_GIF, loop_count=loop))
    info = read_gif_info(out.read_bytes())
    assert (info.width, info.height, info.frames) == (40, 30, 6)
    assert info.loop == expected_loop and info.delays == [delay] * 6
    assert listing(tmp_path) == ["loop.gif"]


def test_imagequant_gif_delay_never_below_two_centiseconds(tmp_path: Path) -> None:
    notices: list[str] = []
    frames = [gradient(16, 16, shift=i) for i in range(3)]
    out = encode_frames(tmp_path / "fast.gif", frames, 100, notify=notices.append, gif=IQ_GIF)
    assert read_gif_info(out.read_bytes()).delays == [2] * 3
    assert len(notices) == 1 and "2 cs" in notices[0]


@pytest.mark.parametrize("palette", gif_imagequant.IQ_PALETTES)
@pytest.mark.parametrize("dither", [0.0, 1.0])
def test_what_a_viewer_shows_is_what_was_quantized(tmp_path: Path, palette: str,
                                                   dither: float) -> None:
    """Cropped rectangles and transparent pixels rebuild exactly the pictures libimagequant
    chose (frame differencing loses nothing); each palette has at most `colors` entries."""
    frames = [gradient(48, 32, shift=3 * i) for i in range(4)]
    frames[2] = frames[1].copy()  # a repeated frame
    frames[3][5:15, 5:15] = 0
    shown, pictures = None, []
    for indices, rgb, transparent in gif_imagequant.quantize(frames, 64, dither, palette):
        assert len(rgb) <= 64  # with the transparent entry
        picture = rgb[indices]
        if shown is not None:
            picture[indices == transparent] = shown[indices == transparent]
        shown = picture
        pictures.append(picture)
    path = gif_imagequant.write_gif(tmp_path / "x.gif", frames, 5, 0, colors=64,
                                    dither=dither, palette=palette)
    assert np.array_equal(decode(path), np.stack(pictures))
    # and so does the file the encoder leaves after gifsicle's lossless pass
    out = encode_frames(tmp_path / "enc.gif", frames, 20,
                        gif=replace(IQ_GIF, colors=64, palette=palette, dither_level=dither))
    assert np.array_equal(decode(out), np.stack(pictures))


def _shown(frames: list[np.ndarray], temporal: bool) -> np.ndarray:
    """The pictures a viewer sees, frame palettes, full dither."""
    shown, pictures = None, []
    for indices, rgb, transparent in gif_imagequant.quantize(frames, 64, 1.0, "frame",
                                                             temporal):
        picture = rgb[indices]
        if shown is not None:
            picture[indices == transparent] = shown[indices == transparent]
        shown = picture
        pictures.append(picture)
    return np.stack(pictures)


def test_the_dither_does_not_crawl_over_still_areas() -> None:
    """Left half still, right half noise: remapped over the shown picture, the still half
    keeps most of its dithered pixels from frame to frame; remapped alone, each new palette
    re-dithers all of it."""
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(6):
        frame = gradient(64, 48)
        frame[:, 32:] = rng.integers(0, 255, (48, 32, 3))
        frames.append(frame)

    def changed(pictures: np.ndarray) -> float:
        still = pictures[:, :, :32]
        return float(np.mean(np.any(still[1:] != still[:-1], axis=-1)))

    assert changed(_shown(frames, temporal=True)) < 0.5 * changed(_shown(frames, temporal=False))


def test_unchanged_regions_cost_almost_nothing(tmp_path: Path) -> None:
    """A small square moving over a still, noisy picture: every frame after the first stores
    only the rectangle that changed."""
    still = noisy(96, 64)
    frames = []
    for i in range(8):
        frame = still.copy()
        frame[10:20, 4 + 6 * i:14 + 6 * i] = (255, 0, 0)
        frames.append(frame)
    one = encode_frames(tmp_path / "one.gif", frames[:1], 10, gif=IQ_GIF).stat().st_size
    clip = encode_frames(tmp_path / "clip.gif", frames, 10, gif=IQ_GIF).stat().st_size
    assert clip < 1.5 * one  # 8 full frames would be about 8 times one


def test_dither_level_and_colours_are_applied(tmp_path: Path) -> None:
    frames = [gradient(48, 32, shift=5 * i) for i in range(3)]
    flat = encode_frames(tmp_path / "flat.gif", frames, 10, gif=replace(IQ_GIF, colors=8))
    dithered = encode_frames(tmp_path / "d.gif", frames, 10,
                             gif=replace(IQ_GIF, colors=8, dither_level=1.0))
    assert flat.read_bytes() != dithered.read_bytes()
    for path in (flat, dithered):
        assert len(np.unique(decode(path).reshape(-1, 3), axis=0)) <= 8


def test_gifsicle_is_found_without_path(monkeypatch: pytest.MonkeyPatch) -> None:
    gifsicle.gifsicle_exe.cache_clear()
    monkeypatch.setenv("PATH", "")
    try:
        exe = gifsicle.gifsicle_exe()
        assert exe is not None and os.access(exe, os.X_OK)
    finally:
        gifsicle.gifsicle_exe.cache_clear()


@pytest.mark.parametrize("encoder", ["imagequant", "ffmpeg"])
def test_lossy_makes_the_gif_smaller_and_keeps_its_timing(tmp_path: Path, encoder: str) -> None:
    frames = [noisy(64, 48, seed=i) for i in range(4)]
    options = replace(FFMPEG_GIF, encoder=encoder)
    plain = encode_frames(tmp_path / "plain.gif", frames, 20, gif=options)
    lossy = encode_frames(tmp_path / "lossy.gif", frames, 20,
                          gif=replace(options, lossy=120, loop_count=2))
    assert lossy.stat().st_size < plain.stat().st_size
    info = read_gif_info(lossy.read_bytes())
    assert info.frames == 4 and info.delays == [5] * 4 and info.loop == 2
    assert listing(tmp_path) == ["lossy.gif", "plain.gif"]  # no temp left behind


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    from render.encoding.encoder import FrameEncoder

    with pytest.raises(KeyError), FrameEncoder(tmp_path / "x.gif", (16, 16), 10, gif=IQ_GIF) as enc:
        enc.write(gradient(16, 16))
        raise KeyError("boom")
    assert listing(tmp_path) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"encoder": "gifski"}, "gif.encoder: 'gifski' is not allowed"),
    ({"dither_level": 1.5}, "gif.dither_level: must be <= 1"),
    ({"lossy": 999}, "gif.lossy: must be <= 200"),
    ({"palette": "scene"}, "gif.palette: 'scene' is not allowed"),
    ({"palette": "group", "encoder": "ffmpeg"}, "gif.palette: group needs gif.encoder"),
    ({"dither_level": 0.5, "encoder": "ffmpeg"}, "gif.dither_level: is imagequant's"),
])
def test_bad_encoder_options_are_user_errors(kwargs: dict, message: str) -> None:
    """Options check themselves when made, with the message a preset's key gets."""
    with pytest.raises(UserError, match=re.escape(message)):
        GifOptions(**kwargs)


@pytest.mark.parametrize(("override", "message"), [
    ("gif.encoder=gifski", "gif.encoder"),
    ("gif.dither_level=2", "gif.dither_level: must be <= 1"),
    ("gif.lossy=-1", "gif.lossy: must be >= 0"),
    ("gif.lossy=fast", "gif.lossy"),
    ("gif.encoder=ffmpeg gif.palette=group", "group needs gif.encoder: imagequant"),
    ("gif.dither=sierra2_4a", "imagequant dithers by gif.dither_level"),
    ("gif.encoder=ffmpeg gif.dither_level=0.5", "ffmpeg dithers by gif.dither"),
])
def test_bad_gif_keys_exit_2_before_anything_is_written(tmp_path: Path, capsys, override: str,
                                                       message: str) -> None:
    out = tmp_path / "x.gif"
    code = main(["render", "loop", f"output={out}", *override.split(), "--quiet"])
    err = capsys.readouterr().err
    culprit = override.split()[-1]
    assert code == 2 and f"command line: {culprit}" in err and message in err, err
    assert len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_failing_gifsicle_is_one_line_and_leaves_nothing(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from render.encoding.encoder import FrameEncoder

    monkeypatch.setattr(gifsicle, "gifsicle_exe", lambda: "/bin/false")
    failed = r"x\.gif: gifsicle failed \(exit code 1\)"
    with pytest.raises(UserError, match=failed), \
            FrameEncoder(tmp_path / "x.gif", (16, 16), 10, gif=IQ_GIF) as enc:
        enc.write(gradient(16, 16))
    assert listing(tmp_path) == []
