"""Lossless per-frame checkpoints in a work directory beside the output, so an interrupted
render continues after its last finished frame.

The directory is tied to the digest of the resolved preset: a changed preset starts afresh.
Frames are PNG (lossless uint8 RGB), each written atomically, so a kill mid-write leaves either
a complete frame or none.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from render.errors import UserError
from render.media import atomic_write_bytes, read_image, write_image

MANIFEST = "manifest.json"


def work_dir_for(output: Path) -> Path:
    """`out/zoom.mp4` -> `out/.zoom.mp4.work/`."""
    return output.with_name(f".{output.name}.work")


class CheckpointStore:
    """Finished frames of one render, keyed by frame index."""

    def __init__(self, directory: Path, digest: str, *, fresh: bool = False,
                 reuse_stale: bool = False) -> None:
        self.directory = directory
        self.digest = digest
        manifest = directory / MANIFEST
        stale = False
        if manifest.is_file():
            try:
                stale = json.loads(manifest.read_text()).get("digest") != digest
            except (OSError, ValueError):
                stale = True
        if directory.exists() and (fresh or (stale and not reuse_stale)):
            shutil.rmtree(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"work directory {directory}: cannot create ({exc.strerror})"
                            ) from exc
        atomic_write_bytes(manifest, json.dumps({"digest": digest}).encode())

    def path(self, t: int) -> Path:
        return self.directory / f"frame_{t:06d}.png"

    def finished(self) -> int:
        """Number of consecutive finished frames from frame 0."""
        n = 0
        while self.path(n).is_file():
            n += 1
        return n

    def load(self, t: int) -> np.ndarray:
        return read_image(self.path(t))

    def save(self, t: int, frame: np.ndarray) -> None:
        write_image(self.path(t), frame)

    def remove(self) -> None:
        """Delete the work directory once the outputs are safely in place."""
        shutil.rmtree(self.directory, ignore_errors=True)
