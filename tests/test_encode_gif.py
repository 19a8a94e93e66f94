"""render.encoding.encoder's GIFs: exact delays, loop counts, palettes, dithers, audio ignored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from encode_kit import FFMPEG_GIF, encode_frames, gradient, listing
from media_probe import read_gif_info  # noqa: E402  (tests/ is on sys.path)

# --------------------------------------------------------------------------- GIF


def test_gif_loops_forever_with_exact_delay(tmp_path: Path) -> None:
    notices: list[str] = []
    frames = [gradient(40, 30, shift=4 * i) for i in range(6)]
    out = encode_frames(tmp_path / "loop.gif", frames, 20, notify=notices.append)
    info = read_gif_info(out.read_bytes())
    assert (info.width, info.height) == (40, 30)
    assert info.loop == 0
    assert info.frames == 6
    assert info.delays == [5] * 6
    assert notices == []
    assert listing(tmp_path) == ["loop.gif"]


def test_gif_fps_not_whole_centiseconds_is_rounded_with_one_notice(tmp_path: Path) -> None:
    notices: list[str] = []
    frames = [gradient(40, 30, shift=4 * i) for i in range(5)]
    out = encode_frames(tmp_path / "loop.gif", frames, 24, notify=notices.append)
    assert len(notices) == 1
    assert "24 fps" in notices[0] and "25 fps" in notices[0] and "4 cs" in notices[0]
    info = read_gif_info(out.read_bytes())
    assert info.delays == [4] * 5 and info.frames == 5


@pytest.mark.parametrize(("loop", "expected"), [(3, 3), (-1, None)])
def test_gif_loop_count(loop: int, expected: int | None, tmp_path: Path) -> None:
    frames = [gradient(16, 16, shift=i) for i in range(3)]
    out = encode_frames(tmp_path / "l.gif", frames, 10, gif=replace(FFMPEG_GIF, loop_count=loop))
    assert read_gif_info(out.read_bytes()).loop == expected


def test_gif_colors_limit_palette(tmp_path: Path) -> None:
    frames = [gradient(48, 48, shift=6 * i) for i in range(4)]

    def colours(path: Path) -> int:
        gen = imageio_ffmpeg.read_frames(str(path))
        next(gen)
        pixels = np.concatenate([np.frombuffer(f, np.uint8).reshape(-1, 3) for f in gen])
        return len(np.unique(pixels, axis=0))

    few = encode_frames(tmp_path / "few.gif", frames, 10, gif=replace(FFMPEG_GIF, colors=8))
    many = encode_frames(tmp_path / "many.gif", frames, 10, gif=replace(FFMPEG_GIF, colors=256))
    assert colours(few) <= 8
    assert colours(many) > 64


def test_gif_dither_modes_are_applied(tmp_path: Path) -> None:
    frames = [gradient(48, 32, shift=5 * i) for i in range(3)]
    outputs = {
        d: encode_frames(tmp_path / f"{d.replace(':', '_')}.gif", frames, 10,
                         gif=replace(FFMPEG_GIF, dither=d, colors=16)).read_bytes()
        for d in ("sierra2_4a", "floyd_steinberg", "bayer", "bayer:3", "none")
    }  # fmt: skip
    assert len(set(outputs.values())) == len(outputs)  # every mode changes the pixels


def test_gif_ignores_audio_with_notice(tmp_path: Path) -> None:
    notices: list[str] = []
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    encode_frames(tmp_path / "x.gif", [gradient(8, 8)] * 2, 10, audio=wav, notify=notices.append)
    assert len(notices) == 1 and "audio" in notices[0] and str(wav) in notices[0]


