"""Tests for render.encoding.encoder: real ffmpeg round trips for MP4/GIF, atomic output,
failure cleanup."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from encode_kit import duration, encode_frames, gradient, listing, probe
from media_probe import read_audio, read_gif_info, read_mp4  # noqa: E402  (tests/ is on sys.path)

from render.encoding import encoder as encode
from render.encoding.encoder import FrameEncoder, output_kind
from render.encoding.gif_palette import gif_timing
from render.encoding.options import GifOptions, Mp4Options
from render.errors import UserError


def test_gif_reader_on_hand_built_gif() -> None:
    """The reader itself: a minimal 1x1 two-frame GIF with loop 7 and delays 3, 9."""

    def frame(delay: int) -> bytes:
        gce = b"\x21\xf9\x04\x00" + delay.to_bytes(2, "little") + b"\x00\x00"
        return gce + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00" + b"\x02\x02\x44\x01\x00"

    data = (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
        + b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x07\x00\x00"
        + frame(3) + frame(9) + b"\x3b"
    )  # fmt: skip
    info = read_gif_info(data)
    assert (info.width, info.height, info.loop, info.delays, info.frames) == (1, 1, 7, [3, 9], 2)
    assert info.table_sizes == [2]


# --------------------------------------------------------------------------- pure functions


def test_output_kind() -> None:
    assert output_kind("a/b.mp4") == "mp4"
    assert output_kind(Path("CLIP.MP4")) == "mp4"
    assert output_kind("loop.gif") == "gif"
    for bad in ("movie.avi", "movie", "movie.mp4.tmp"):
        with pytest.raises(UserError) as info:
            output_kind(bad)
        assert bad in str(info.value) and ".mp4" in str(info.value) and ".gif" in str(info.value)


@pytest.mark.parametrize(
    ("fps", "expected"),
    [(20, (5, 20.0)), (24, (4, 25.0)), (25, (4, 25.0)), (10, (10, 10.0)), (7, (14, 100 / 14)),
     (40, (3, 100 / 3)), (60, (2, 50.0)), (1000, (2, 50.0)), (0.5, (200, 0.5))],
)  # fmt: skip
def test_gif_timing(fps: float, expected: tuple[int, float]) -> None:
    assert gif_timing(fps) == pytest.approx(expected)
    assert isinstance(gif_timing(fps)[0], int)
    assert gif_timing(np.float32(fps)) == pytest.approx(expected)


@pytest.mark.parametrize("fps", [0, -5, float("nan"), float("inf")])
def test_invalid_fps_is_user_error(fps: float, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="fps"):
        gif_timing(fps)
    with pytest.raises(UserError, match="fps"):
        FrameEncoder(tmp_path / "x.mp4", (8, 8), fps)
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"size": (0, 8)}, "width"), ({"size": (8, -1)}, "height"), ({"size": (8.5, 8)}, "width"),
     ({"audio": "no-such-audio.wav"}, "no-such-audio.wav"),
     ({"size": (1, 9)}, "2x2")],
)  # fmt: skip
def test_bad_arguments_are_user_errors(kwargs: dict, match: str, tmp_path: Path) -> None:
    args = {"path": "x.mp4", "size": (8, 8), "fps": 10} | kwargs
    args["path"] = tmp_path / "out" / args["path"]
    with pytest.raises(UserError, match=re.escape(match)):
        FrameEncoder(**args)
    assert listing(tmp_path) == []  # nothing created, not even the directory


@pytest.mark.parametrize(
    ("make", "match"),
    [(lambda: Mp4Options(crf=60), "encode.crf: must be <= 51"),
     (lambda: Mp4Options(preset="turbo"), "encode.preset: 'turbo' is not allowed"),
     (lambda: GifOptions(colors=300), "gif.colors: must be <= 256"),
     (lambda: GifOptions(encoder="ffmpeg", dither="bayer:9"), "gif.dither: gif_dither"),
     (lambda: GifOptions(encoder="ffmpeg", dither="ordered"), "gif.dither: gif_dither"),
     (lambda: GifOptions(loop_count=-2), "gif.loop_count: must be >= -1")],
)  # fmt: skip
def test_bad_options_are_user_errors(make, match: str) -> None:
    with pytest.raises(UserError, match=re.escape(match)):
        make()


# --------------------------------------------------------------------------- MP4


@pytest.mark.parametrize(("fps", "frac"), [(24, 24.0), (29.97, 30000 / 1001)])
def test_mp4_round_trip(fps: float, frac: float, tmp_path: Path) -> None:
    w, h, n = 128, 96, 12
    frames = [gradient(w, h, shift=3 * i) for i in range(n)]
    out = encode_frames(tmp_path / "clip.mp4", frames, fps)
    assert out == tmp_path / "clip.mp4"
    assert listing(tmp_path) == ["clip.mp4"]  # no temp file left over

    meta, decoded = read_mp4(out)
    assert meta["size"] == (w, h)
    assert meta["fps"] == pytest.approx(fps, abs=0.005)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    nframes, secs = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert nframes == n and decoded.shape == (n, h, w, 3)
    assert secs == pytest.approx(n / frac, abs=0.01)
    # Same picture in the same order: each decoded frame is closest to its own source.
    errors = np.abs(decoded.astype(np.int16) - np.stack(frames)).mean(axis=(1, 2, 3))
    assert errors.max() < 3.0, errors
    assert np.abs(decoded[0].astype(np.int16) - frames[5]).mean() > 10


def test_mp4_odd_size_is_cropped_to_even(tmp_path: Path) -> None:
    w, h = 101, 57
    frames = [gradient(w, h, shift=i) for i in range(4)]
    out = encode_frames(tmp_path / "odd.mp4", frames, 12)
    meta, decoded = read_mp4(out)
    assert meta["size"] == (100, 56)
    # Cropped at the right/bottom edge (not scaled): pixels keep their coordinates.
    error = np.abs(decoded[0].astype(np.int16) - frames[0][:56, :100]).mean()
    assert error < 3.0


def test_audio_is_muxed_and_trimmed_to_video(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=5", str(wav)],
        check=True,
    )  # fmt: skip
    frames = [gradient(32, 32, shift=i) for i in range(24)]
    with_audio = encode_frames(tmp_path / "a.mp4", frames, 24, audio=wav)
    silent = encode_frames(tmp_path / "s.mp4", frames, 24)

    assert re.search(r"Stream #0:\d.*Audio: aac", probe(with_audio))
    assert "Audio:" not in probe(silent)
    assert duration(with_audio) == pytest.approx(1.0, abs=0.1)  # 5 s tone trimmed to 1 s
    assert imageio_ffmpeg.count_frames_and_secs(str(with_audio))[0] == 24


@pytest.mark.parametrize(("source", "codec", "frames", "fps", "slack"), [
    ("tone.wav", None, 30, 29.97, 0.001),  # re-encoded to AAC: cut to the sample
    ("tone.m4a", "aac", 24, 24, 1 / 24),  # copied: cut to the packet, within a frame
])  # fmt: skip
def test_audio_ends_with_the_last_frame_every_time(
    source: str, codec: str | None, frames: int, fps: float, slack: float, tmp_path: Path
) -> None:
    """-shortest used to end the audio 0.1-0.2 s late now and then; it is now cut to the
    video's length, which is known once the last frame is written."""
    audio = tmp_path / source
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=3", str(audio)],
        check=True,
    )  # fmt: skip
    length = frames / encode.fps_fraction(fps)
    for i in range(3):
        out = encode_frames(tmp_path / f"a{i}.mp4", [gradient(16, 16, shift=k) for k in
                            range(frames)], fps, audio=encode.AudioTrack(audio, codec=codec))
        assert 0 <= len(read_audio(out)) / 16000 - length <= slack
        assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == frames
    assert listing(tmp_path) == sorted([source, "a0.mp4", "a1.mp4", "a2.mp4"])  # no temps


def test_short_audio_does_not_cut_the_video(tmp_path: Path) -> None:
    wav = tmp_path / "blip.wav"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=0.5", str(wav)],
        check=True,
    )  # fmt: skip
    frames = [gradient(32, 32, shift=i) for i in range(48)]
    out = encode_frames(tmp_path / "a.mp4", frames, 24, audio=wav)
    assert imageio_ffmpeg.count_frames_and_secs(str(out)) == (48, pytest.approx(2.0, abs=0.01))
    assert duration(out) == pytest.approx(2.0, abs=0.25)  # audio padded with silence
    assert "Audio: aac" in probe(out)


def test_audio_source_without_audio_stream_gives_silent_video(tmp_path: Path) -> None:
    src = encode_frames(tmp_path / "src.mp4", [gradient(16, 16)] * 3, 10)
    out = encode_frames(tmp_path / "out.mp4", [gradient(16, 16)] * 5, 10, audio=src)
    assert "Audio:" not in probe(out)
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 5


def test_missing_output_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "new" / "nested" / "clip.mp4"
    out = encode_frames(target, [gradient(16, 16)] * 2, 10)
    assert out == target and target.is_file()
    assert listing(target.parent) == ["clip.mp4"]


def test_existing_output_is_replaced_on_success(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    encode_frames(target, [gradient(16, 16)] * 2, 10)
    assert target.read_bytes()[4:8] == b"ftyp"
    assert listing(tmp_path) == ["clip.mp4"]


