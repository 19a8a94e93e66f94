"""render.media.image.atomic_write_bytes, the one atomic writer (images, sidecars, checkpoints)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from render.errors import UserError
from render.media.image import atomic_write_bytes


def test_atomic_write_is_all_or_nothing_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "new" / "a.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and os.listdir(target.parent) == ["a.json"]

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"three")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(UserError, match=r"a\.json: cannot write \(No space left on device\)"):
        atomic_write_bytes(target, b"four")
    assert target.read_bytes() == b"two" and os.listdir(target.parent) == ["a.json"]
