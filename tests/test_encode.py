"""Tests for render.encode: real ffmpeg round trips for MP4/GIF, atomic output, failure cleanup."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from media_probe import read_audio, read_gif_info, read_mp4  # noqa: E402  (tests/ is on sys.path)

from render import encode, ffmpeg
from render.encode import FrameEncoder, gif_timing, output_kind
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


# --------------------------------------------------------------------------- helpers


def gradient(width: int, height: int, shift: int = 0) -> np.ndarray:
    """Smooth RGB image (half-period sine waves over x, y and the diagonal), moved `shift` px.

    Smooth on purpose: MP4 stores chroma at half resolution (yuv420p), so sharp colour
    edges would measure the subsampling, not the encoder.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    x = np.pi * (x + shift) / width
    y = np.pi * y / height
    rgb = 0.5 + 0.45 * np.stack([np.sin(x), np.cos(y), np.sin(x + y)], axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


def probe(path: Path) -> str:
    """ffmpeg's stream description of `path` (there is no ffprobe in imageio-ffmpeg)."""
    res = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return res.stderr


def duration(path: Path) -> float:
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", probe(path)).groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def encode_frames(path: Path, frames: list[np.ndarray], fps: float, **kwargs) -> Path:
    h, w = frames[0].shape[:2]
    with FrameEncoder(path, (w, h), fps, **kwargs) as enc:
        for f in frames:
            enc.write(f)
    return enc.close()


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


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
     ({"crf": 60}, "crf"), ({"preset": "turbo"}, "preset"),
     ({"gif_colors": 300, "path": "x.gif"}, "gif_colors"),
     ({"gif_dither": "bayer:9", "path": "x.gif"}, "gif_dither"),
     ({"gif_dither": "ordered", "path": "x.gif"}, "gif_dither"),
     ({"gif_loop": -2, "path": "x.gif"}, "gif_loop"),
     ({"audio": "no-such-audio.wav"}, "no-such-audio.wav"),
     ({"size": (1, 9)}, "2x2")],
)  # fmt: skip
def test_bad_arguments_are_user_errors(kwargs: dict, match: str, tmp_path: Path) -> None:
    args = {"path": "x.mp4", "size": (8, 8), "fps": 10} | kwargs
    args["path"] = tmp_path / "out" / args["path"]
    with pytest.raises(UserError, match=re.escape(match)):
        FrameEncoder(**args)
    assert listing(tmp_path) == []  # nothing created, not even the directory


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
    out = encode_frames(tmp_path / "l.gif", frames, 10, gif_loop=loop)
    assert read_gif_info(out.read_bytes()).loop == expected


def test_gif_colors_limit_palette(tmp_path: Path) -> None:
    frames = [gradient(48, 48, shift=6 * i) for i in range(4)]

    def colours(path: Path) -> int:
        gen = imageio_ffmpeg.read_frames(str(path))
        next(gen)
        pixels = np.concatenate([np.frombuffer(f, np.uint8).reshape(-1, 3) for f in gen])
        return len(np.unique(pixels, axis=0))

    few = encode_frames(tmp_path / "few.gif", frames, 10, gif_colors=8)
    many = encode_frames(tmp_path / "many.gif", frames, 10, gif_colors=256)
    assert colours(few) <= 8
    assert colours(many) > 64


def test_gif_dither_modes_are_applied(tmp_path: Path) -> None:
    frames = [gradient(48, 32, shift=5 * i) for i in range(3)]
    outputs = {
        d: encode_frames(tmp_path / f"{d.replace(':', '_')}.gif", frames, 10,
                         gif_dither=d, gif_colors=16).read_bytes()
        for d in ("sierra2_4a", "floyd_steinberg", "bayer", "bayer:3", "none")
    }  # fmt: skip
    assert len(set(outputs.values())) == len(outputs)  # every mode changes the pixels


def test_gif_ignores_audio_with_notice(tmp_path: Path) -> None:
    notices: list[str] = []
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    encode_frames(tmp_path / "x.gif", [gradient(8, 8)] * 2, 10, audio=wav, notify=notices.append)
    assert len(notices) == 1 and "audio" in notices[0] and str(wav) in notices[0]


# --------------------------------------------------------------------------- lifecycle/failures


def test_abort_leaves_nothing_and_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    enc = FrameEncoder(target, (16, 16), 10)
    for i in range(30):
        enc.write(gradient(16, 16, shift=i))
    deadline = time.monotonic() + 10
    while not listing(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)  # ffmpeg opens its output once the encoder has initialised
    [temp] = listing(tmp_path)  # the hidden temp file is being written
    assert temp.startswith(".clip.part-") and temp.endswith(".mp4")
    enc.abort()
    enc.abort()
    assert listing(tmp_path) == []
    with pytest.raises(RuntimeError):
        enc.close()
    with pytest.raises(RuntimeError):
        enc.write(gradient(16, 16))


def test_exception_inside_with_aborts_and_keeps_old_output(tmp_path: Path) -> None:
    target = tmp_path / "loop.gif"
    target.write_bytes(b"previous render")
    with pytest.raises(KeyError), FrameEncoder(target, (16, 16), 10) as enc:
        enc.write(gradient(16, 16))
        raise KeyError("boom")
    assert listing(tmp_path) == ["loop.gif"]
    assert target.read_bytes() == b"previous render"


def test_frame_mismatch_is_value_error(tmp_path: Path) -> None:
    with FrameEncoder(tmp_path / "c.mp4", (16, 8), 10) as enc:
        for bad in (np.zeros((16, 8, 3), np.uint8), np.zeros((8, 16, 3), np.float32),
                    np.zeros((8, 16, 4), np.uint8), np.zeros((8, 16), np.uint8)):  # fmt: skip
            with pytest.raises(ValueError, match=r"\(8, 16, 3\)"):
                enc.write(bad)
        enc.write(np.asfortranarray(gradient(16, 8)))  # non-contiguous input is fine
    meta, decoded = read_mp4(tmp_path / "c.mp4")
    assert decoded.shape == (1, 8, 16, 3)


def test_close_without_frames_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    enc = FrameEncoder(tmp_path / "c.mp4", (16, 16), 10)
    with pytest.raises(RuntimeError, match="no frames"):
        enc.close()
    assert listing(tmp_path) == []


def test_close_twice_returns_path(tmp_path: Path) -> None:
    with FrameEncoder(tmp_path / "c.gif", (8, 8), 10) as enc:
        enc.write(gradient(8, 8))
        first = enc.close()
    assert enc.close() == first == tmp_path / "c.gif"
    enc.abort()  # after a successful close abort must not delete the output
    assert first.is_file()


def test_unwritable_directory_is_user_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod does not make the directory unwritable")
        with pytest.raises(UserError) as info, FrameEncoder(locked / "c.mp4", (16, 16), 10) as enc:
            for _ in range(50):
                enc.write(gradient(16, 16))
        assert str(locked / "c.mp4") in str(info.value)
        assert "\n" not in str(info.value)
        assert listing(locked) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("name", ["c.mp4", "c.gif"])
def test_disk_full_is_user_error_without_partial_output(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real ffmpeg writing to /dev/full (every write fails with ENOSPC) via a temp symlink."""
    temp = tmp_path / ".full.part"
    temp.symlink_to("/dev/full")
    monkeypatch.setattr(encode, "_temp_path", lambda path: temp)
    target = tmp_path / name
    with pytest.raises(UserError) as info, FrameEncoder(target, (16, 16), 10) as enc:
        for i in range(5):
            enc.write(gradient(16, 16, shift=i))
    message = str(info.value)
    assert message.startswith(f"{target}: ffmpeg failed")
    assert "No space left on device" in message and "\n" not in message
    assert "@ 0x" not in message  # ffmpeg's "[muxer @ 0x...]" prefix is stripped
    assert listing(tmp_path) == []  # temp (symlink) removed, no output under the real name


def test_ffmpeg_dying_midstream_is_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "sys.stderr.write('[out#0/mp4 @ 0x1234] Error opening output file: Read-only fs\\n"
        "later cascade line\\n')\nsys.exit(1)\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "exe", lambda: str(fake))
    out_dir = tmp_path / "out"
    with pytest.raises(UserError) as info, FrameEncoder(out_dir / "c.mp4", (64, 64), 10) as enc:
        for _ in range(200):  # far more than a pipe buffer: write() sees the broken pipe
            enc.write(gradient(64, 64))
    assert str(info.value) == (
        f"{out_dir / 'c.mp4'}: ffmpeg failed (exit code 1): Error opening output file: Read-only fs"
    )
    assert "later cascade line" in str(info.value.__cause__)
    assert listing(out_dir) == []


def test_output_path_that_is_a_directory_is_user_error(tmp_path: Path) -> None:
    target = tmp_path / "clip.gif"
    target.mkdir()
    with pytest.raises(UserError, match="cannot move output into place"):
        encode_frames(target, [gradient(8, 8)] * 2, 10)
    assert listing(tmp_path) == ["clip.gif"] and listing(target) == []  # temp file removed
