"""Lossless per-frame checkpoints in a work directory beside the output, so an interrupted
render continues after its last finished frame.

The directory is tied to the digest of the resolved preset: a changed preset starts afresh
(with a notice saying how many frames are discarded). Frames are PNG (lossless uint8 RGB), each
written atomically, so a kill mid-write leaves either a complete frame or none. A frame that is
there but damaged (a truncated or emptied file, another size) is found when it is reused: it and
every frame after it are rendered again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from render.errors import UserError
from render.media.image import atomic_write_bytes, read_image, write_image
from render.media.image_header import image_file_size

MANIFEST = "manifest.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def work_dir_for(output: Path) -> Path:
    """`out/zoom.mp4` -> `out/.zoom.mp4.work/`."""
    return output.with_name(f".{output.name}.work")


def _count(directory: Path) -> int:
    n = 0
    while (directory / f"frame_{n:06d}.png").is_file():
        n += 1
    return n


class CheckpointStore:
    """Finished frames of one render, keyed by frame index.

    `fresh` discards every frame; frames made for another digest are discarded unless
    `reuse_stale` (then the manifest is only rewritten once `expect` accepted their size).
    `notify` gets the notices (discarded, resumed or damaged frames)."""

    def __init__(self, directory: Path, digest: str, *, fresh: bool = False,
                 reuse_stale: bool = False,
                 notify: Callable[[str], None] | None = None) -> None:
        self.directory = directory
        self.digest = digest
        self.notify = notify or (lambda message: None)
        self.size: tuple[int, int] | None = None
        manifest = directory / MANIFEST
        stale = False
        if manifest.is_file():
            try:
                stale = json.loads(manifest.read_text()).get("digest") != digest
            except (OSError, ValueError):
                stale = True
        if directory.exists() and (fresh or (stale and not reuse_stale)):
            if stale and not fresh and (n := _count(directory)):
                self.notify(f"preset changed: discarding {n} finished frames in {directory} "
                            "(--reuse-frames keeps them)")
            shutil.rmtree(directory, ignore_errors=True)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"work directory {directory}: cannot create ({exc.strerror})"
                            ) from exc
        self._adopting = stale and reuse_stale and not fresh
        if not self._adopting:
            self._write_manifest()

    def _write_manifest(self) -> None:
        atomic_write_bytes(self.directory / MANIFEST, json.dumps({"digest": self.digest}).encode())
        self._adopting = False

    def path(self, t: int) -> Path:
        return self.directory / f"frame_{t:06d}.png"

    def finished(self) -> int:
        """Number of consecutive finished frames from frame 0."""
        return _count(self.directory)

    def kept_bytes(self) -> int:
        """Bytes the finished frames take on disk."""
        total = 0
        for t in range(self.finished()):
            with contextlib.suppress(OSError):
                total += self.path(t).stat().st_size
        return total

    def expect(self, size: tuple[int, int], reuse: bool = False) -> None:
        """Frames of this render are `size` (w, h). With `reuse` (--reuse-frames), frames
        already there of another size are refused in one line, since they cannot be
        continued; without it, such frames are re-rendered when they come up (`resume`)."""
        self.size = size
        have = image_file_size(self.path(0)) if self.finished() else None
        if reuse and have is not None and tuple(have) != tuple(size):
            raise UserError(
                f"--reuse-frames: the finished frames in {self.directory} are "
                f"{have[0]}x{have[1]}, but this render is {size[0]}x{size[1]} (size or "
                f"max_size changed); frames of another size cannot be continued: set the old "
                f"size again, or drop --reuse-frames to start afresh")
        if self._adopting:
            self._write_manifest()

    def problem(self, t: int) -> str | None:
        """Why checkpoint t cannot be reused (damaged, not 8-bit RGB, another size), or None.
        Cheap checks of the header; `resume` decodes it."""
        p = self.path(t)
        try:
            with open(p, "rb") as fh:
                head = fh.read(33)
                fh.seek(max(fh.seek(0, os.SEEK_END) - 12, 0))
                tail = fh.read(12)
        except OSError as exc:
            return f"cannot read ({exc.strerror})"
        if len(head) < 33 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
            return "empty or damaged" if head else "empty"
        if tail[4:8] != b"IEND":  # every PNG ends with its IEND chunk
            return "cut short"
        if head[24:26] != b"\x08\x02":  # bit depth 8, colour type 2 (RGB): what we write
            return "not an 8-bit RGB PNG"
        w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if self.size is not None and (w, h) != tuple(self.size):
            return f"{w}x{h}, but this render is {self.size[0]}x{self.size[1]}"
        return None

    def checked(self, count: int) -> int:
        """Finished checkpoints (at most `count`) up to the first `problem` finds; that one
        and every later one are removed, with a notice (so it comes before 'resuming
        after')."""
        finished = min(self.finished(), count)
        for t in range(finished):
            if self.problem(t) is not None:
                self.resume(t)  # says why, and removes it and the later ones
                return t
        return finished

    def resume(self, t: int) -> np.ndarray | None:
        """Checkpoint t, checked (decodes, 8-bit RGB, the expected size); None when it is
        unusable: then it and every later checkpoint are removed, with a notice."""
        why = self.problem(t)
        image = None
        if why is None:
            try:
                image = read_image(self.path(t))
            except UserError as exc:
                why = str(exc).removeprefix(f"{self.path(t)}: ").removeprefix(
                    "not a readable image: ")
        if image is not None:
            return image
        later = self.finished() - t
        self.notify(f"checkpoint {self.path(t)} is unusable ({why}): rendering frame {t} "
                    f"and the {later - 1} after it again" if later > 1 else
                    f"checkpoint {self.path(t)} is unusable ({why}): rendering frame {t} again")
        self.discard_from(t)
        return None

    def discard_from(self, t: int) -> None:
        """Remove checkpoints t, t+1, ... (every later frame depends on frame t)."""
        end = self.finished()
        for k in range(end - 1, t - 1, -1):  # last first: the frames left stay consecutive
            self.path(k).unlink(missing_ok=True)

    def load(self, t: int) -> np.ndarray:
        return read_image(self.path(t))

    def save(self, t: int, frame: np.ndarray) -> None:
        if self._adopting:
            self._write_manifest()
        write_image(self.path(t), frame)

    def remove(self) -> None:
        """Delete the work directory once the outputs are safely in place."""
        shutil.rmtree(self.directory, ignore_errors=True)
