"""render.encoding.encoder's failures and life cycle: abort, exceptions, disk full, a dying ffmpeg,
unwritable places; nothing partial is ever left under the output name."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from encode_kit import FFMPEG_GIF, encode_frames, gradient, listing
from media_probe import read_mp4  # noqa: E402  (tests/ is on sys.path)

from render.encoding import encoder as encode
from render.encoding.encoder import FrameEncoder
from render.errors import UserError
from render.media import ffmpeg

# --------------------------------------------------------------------------- lifecycle/failures


def test_abort_leaves_nothing_and_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    enc = FrameEncoder(target, (16, 16), 10, gif=FFMPEG_GIF)
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
    with pytest.raises(KeyError), FrameEncoder(target, (16, 16), 10, gif=FFMPEG_GIF) as enc:
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
    with FrameEncoder(tmp_path / "c.gif", (8, 8), 10, gif=FFMPEG_GIF) as enc:
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
    encoder = FrameEncoder(target, (16, 16), 10, gif=FFMPEG_GIF)
    with pytest.raises(UserError) as info, encoder as enc:
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
