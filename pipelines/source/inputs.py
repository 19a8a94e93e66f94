"""Inputs of a render: a still image or a video clip — the user's file, or one the project
makes itself so every preset runs with no input.

Frames are uint8 RGB (H, W, 3).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from pipelines.config.settings import DreamConfig, SequenceSettings, Settings, VideoSettings
from pipelines.source.fit import (
    budget_notice,
    budget_size,
    even_size,
    fit_notice,
    fit_read_size,
    fitted,
    place,
)
from render.encoding.encoder import AudioTrack
from render.errors import ConfigError, UserError, keyed
from render.masks import Masks, load_masks
from render.media import video as decode
from render.media.image import default_image, read_image, resize
from render.media.image_header import image_file_size
from render.memory import check_memory
from render.notify import Notify, stderr_notify

DEFAULT_SIZE = (640, 360)
GENERATED_FRAMES, GENERATED_FPS = 48, 24.0
MIN_FRAME_SIDE = 2  # MP4 needs 2x2; OpenCV's reflected-border warp hangs on 1-pixel sides


def input_read(read: Callable[[Path], Any], source: Path) -> Any:
    """`read(source)` of the `input` file; its failure said as the `input` key's (so with where
    the value came from: the command line or the preset file)."""
    with keyed("input", "input "):
        return read(source)


def check_frame_size(size: tuple[int, int], what: str) -> None:
    """Refuse frames of a zoom or video smaller than 2x2 pixels, before any work."""
    if min(size) < MIN_FRAME_SIDE:
        raise UserError(f"{what}: a zoom or video needs frames of at least "
                        f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} pixels, got {size[0]}x{size[1]}")


def _fits(size: tuple[int, int], what: str, key: str, advice: str = "use a smaller size"
          ) -> None:
    """check_memory, its refusal naming `key` (so it says where the value came from)."""
    with keyed(key):
        check_memory(size, what, advice=advice)


def still_input(settings: Settings, notify: Notify = stderr_notify,
                even: bool = False) -> np.ndarray:
    """uint8 RGB (H, W, 3): `input` (or the generated image) made `size` as `fit` says (a
    `size` from a sequence's preset file is a pixel budget: the input keeps its own shape);
    `even`: sides cropped to even (MP4). A size too large to dream in the free memory is
    refused before any work."""
    size, source = settings.size, settings.input
    sequence = isinstance(settings, SequenceSettings)  # the first frame of a sequence
    budget = isinstance(settings, SequenceSettings) and settings.size_budget
    own = image_file_size(source) if source else None  # from the header, before decoding
    if source and size and budget and own:
        size = budget_size(own, size)
    if size:
        _fits(size, "size", "size")
        if sequence:
            check_frame_size(size, "size")
    if source:
        if not size and own:
            _fits(own, f"input {source}:", "input", advice="set a smaller size=[width,height]")
        image = input_read(read_image, source)
        own = image.shape[1::-1]
        if settings.size and budget:
            size = budget_size(own, settings.size)
            if size != settings.size:
                notify(budget_notice(f"input {source}", own, size, settings.size))
            image = resize(image, size)  # the shapes differ by the rounding to even sides
        elif size:
            message = fit_notice(f"input {source}", own, size, settings.fit)
            if message:
                notify(message)
            image = fitted(image, size, settings.fit)
        else:
            _fits(own, f"input {source}:", "input", advice="set a smaller size=[width,height]")
            if sequence:
                check_frame_size(own, f"input {source}")
    else:
        image = default_image(size or DEFAULT_SIZE, seed=settings.seed)
    if even:
        w, h = even_size(image.shape[1::-1], notify)
        image = image[:h, :w]
    return image


@contextmanager
def reading(frames: Iterator[np.ndarray]) -> Iterator[Iterator[np.ndarray]]:
    """`frames` for a `with` block, closed when it ends however it ends: a decoder stops its
    ffmpeg process then, not when it is garbage-collected (a plain iterator has nothing to
    close)."""
    try:
        yield frames
    finally:
        if isinstance(frames, Generator):
            frames.close()


@dataclass(frozen=True)
class Clip:
    """A source video resolved for rendering: `count` frames of `size` (w, h) at `fps`."""

    frames: Callable[[], Iterator[np.ndarray]]  # a fresh iterator from frame 0
    count: int
    fps: float
    size: tuple[int, int]
    audio: AudioTrack | None = None
    record: dict[str, Any] = field(default_factory=dict)  # what the sidecar says about it

    def read(self) -> AbstractContextManager[Iterator[np.ndarray]]:
        """The frames from frame 0 for a `with` block (see reading)."""
        return reading(self.frames())


def generated_frames(size: tuple[int, int], count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """A clip the project makes itself: a textured background panning left under three
    textured discs that move on their own (so some areas are uncovered as they go)."""
    w, h = size
    pan = 2  # px per frame
    background = default_image((w + pan * count, h), seed)
    texture = default_image((w, h), seed + 1)
    rng = np.random.default_rng(seed)
    discs = [(rng.uniform(0.2, 0.8) * w, rng.uniform(0.25, 0.75) * h,
              int(rng.integers(-4, 5)), int(rng.integers(-3, 4)), int(rng.uniform(0.08, 0.16) * h))
             for _ in range(3)]
    for t in range(count):
        frame = background[:, pan * t: pan * t + w].copy()
        for x0, y0, vx, vy, r in discs:
            mask = np.zeros((h, w), np.uint8)
            cv2.circle(mask, (round(x0 + vx * t), round(y0 + vy * t)), r, 1, -1)
            moved = np.roll(texture, (vy * t, vx * t), axis=(0, 1))
            frame[mask.astype(bool)] = moved[mask.astype(bool)]
        yield frame


def _placed(frames: Iterator[np.ndarray], size: tuple[int, int],
            final: tuple[int, int]) -> Iterator[np.ndarray]:
    """Frames placed in `size` (see place), then cropped to `final` (even sides)."""
    with reading(frames):
        for frame in frames:
            yield place(frame, size)[:final[1], :final[0]]


def video_input(settings: VideoSettings, notify: Notify = stderr_notify, even: bool = False
                ) -> Clip:
    """The clip a video preset renders: `input` trimmed to start/end, at `fps`, made `size`
    as `fit` says (or fit inside `max_size`), at most `frames` long; or the generated clip.
    `even`: sides cropped to even (MP4), with a notice."""
    video, seq = settings.video, settings.sequence
    limit, size_key = seq.frames, "size" if settings.size else "max_size"
    if not settings.input:
        size = settings.size or video.max_size or DEFAULT_SIZE
        size = even_size(size, notify) if even else size
        _fits(size, size_key, size_key)
        check_frame_size(size, size_key)
        count = limit or GENERATED_FRAMES
        fps = seq.fps or GENERATED_FPS
        seed = settings.seed
        return Clip(lambda: generated_frames(size, count, seed), count, fps, size,
                    record={"input": None, "generated": True})
    start, end = video.start, video.end
    info = input_read(decode.probe, settings.input)
    fps = seq.fps or info.fps
    if not fps:
        raise UserError(f"{info.path}: frame rate unknown; set fps=")
    if settings.size and settings.size_budget:
        size = read = budget_size(info.size, settings.size)
        if size != settings.size:
            notify(budget_notice(str(info.path), info.size, size, settings.size))
    elif settings.size:
        size, read = settings.size, fit_read_size(info.size, settings.size, settings.fit)
        message = fit_notice(str(info.path), info.size, size, settings.fit)
        if message:
            notify(message)
    else:
        size = read = decode.fit_size(info.size, video.max_size or info.size)
    final = even_size(size, notify) if even else size
    _fits(read, "size" if settings.size else f"{info.path}: frame size", size_key,
          advice="set a smaller size or max_size")
    check_frame_size(final, size_key)
    count = decode.count_frames(info, fps, start, end)
    if limit:
        count = min(count, limit)
    if count < 2:
        where = f" between {start:g} s and {end:g} s" if end is not None else (
            f" after {start:g} s" if start else "")
        raise UserError(f"{info.path}: has {count} video frame{'s' * (count != 1)}{where}; "
                        "a video render needs at least 2 (use the still preset for one image)")
    stat = info.path.stat()
    # absolute: ffmpeg must not read a name like 'concat:a.mp4' as a protocol
    audio = AudioTrack(Path(decode.ffmpeg_path(info.path)), start, count / fps,
                       info.audio_codec) if info.audio_codec else None
    record = {"input": str(info.path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
              "source_size": list(info.size), "source_fps": info.fps,
              "source_duration": info.duration, "start": start, "end": end,
              "audio_codec": info.audio_codec}

    def frames() -> Iterator[np.ndarray]:
        decoded = decode.read_frames(info, fps, read, start, end)
        return decoded if read == final else _placed(decoded, size, final)

    return Clip(frames, count, float(fps), final, audio, record)


class FrameWindow:
    """Source frames by index, read forward once from a clip; a context manager (closing it
    stops the reader: the ffmpeg process of a file source).

    Indexing keeps frame 0 and the latest `keep`, so frame t-1 and t can be asked for in
    increasing t (as the scheduler does, also on resume) while a reader ahead of it (the flow
    thread) is up to `keep` - 2 frames further on. `take` hands out stacked ranges asked for in
    increasing order (a cluster's chunks), keeping frame 0 and nothing before the range."""

    def __init__(self, clip: Clip, keep: int = 2) -> None:
        self.clip = clip
        self.count = clip.count
        self.keep = keep
        self._stack = ExitStack()
        self._iter = self._stack.enter_context(clip.read())
        self._next = 0
        self._kept: dict[int, np.ndarray] = {}

    def __enter__(self) -> FrameWindow:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _read_one(self) -> None:
        frame = next(self._iter, None)
        if frame is None:
            raise UserError(f"the source video ended after {self._next} frames; expected "
                            f"{self.clip.count} (was it changed during the render?)")
        self._kept[self._next] = frame
        self._next += 1

    def _drop_before(self, oldest: int) -> None:
        self._kept = {k: v for k, v in self._kept.items() if k == 0 or k >= oldest}

    def __getitem__(self, t: int) -> np.ndarray:
        if t in self._kept:
            return self._kept[t]
        if t < self._next:
            raise IndexError(f"source frame {t} was already passed")
        while self._next <= t:
            self._read_one()
            self._drop_before(self._next - self.keep)
        return self._kept[t]

    def take(self, lo: int, hi: int) -> np.ndarray:
        """Frames lo..hi-1 stacked, uint8 (n, H, W, 3); frames before `lo` are dropped."""
        self._drop_before(lo)
        passed = [t for t in range(lo, min(hi, self._next)) if t not in self._kept]
        if passed:
            raise IndexError(f"source frame {passed[0]} was already passed")
        while self._next < hi:
            self._read_one()
        return np.stack([self._kept[t] for t in range(lo, hi)])

    def close(self) -> None:
        """Stop reading (ends the ffmpeg process of a file source)."""
        self._stack.close()


def masks(dream: DreamConfig, frames: int = 1, fps: float = 24.0) -> Masks | None:
    """The `dream.mask` of each of `frames` frames, or None without one. Read before the input
    and the model: a mask that is unreadable, too short or all black is a ConfigError on
    dream.mask (said with where the value came from)."""
    if dream.directed.mask is None:
        return None
    try:
        return load_masks(dream.directed.mask, frames, fps)
    except ConfigError:
        raise
    except UserError as exc:
        message = str(exc)
        if not message.startswith("dream.mask"):
            message = f"dream.mask: {message}"
        raise ConfigError("dream.mask", message) from None
