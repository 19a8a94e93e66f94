"""Read video frames through the bundled ffmpeg (imageio-ffmpeg): probe a file, then stream
its frames at a constant rate and a chosen size, within a time range.

Frames at this boundary are uint8, shape (H, W, 3), RGB order.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from render.errors import UserError
from render.media import ffmpeg
from render.media.ffmpeg import fps_fraction
from render.media.image import check_readable_file

# imageio-ffmpeg warns whenever the frames are read at another size than the file's: here that
# is always on purpose
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg says about a video file: frame size (w, h), rate, length, audio codec."""

    path: Path
    size: tuple[int, int]
    fps: float
    duration: float
    audio_codec: str | None


def ffmpeg_path(path: Path) -> str:
    """`path` as ffmpeg must be given it: absolute, so a file named like a protocol
    ('concat:a.mp4', 'pipe:1') is read as the plain file it is."""
    return os.fspath(path.absolute())


def _why(exc: BaseException) -> str:
    """What ffmpeg says is wrong, from imageio-ffmpeg's error (which holds its stderr), as
    " (reason)" to append to a message; "" when it says nothing useful."""
    reason = ffmpeg.stderr_reason(str(exc))
    return f" ({reason})" if reason else ""


def _not_a_video(path: Path, exc: BaseException) -> UserError:
    """A one-line UserError with the line of ffmpeg's output that says what is wrong."""
    return UserError(f"{path}: not a video ffmpeg can read{_why(exc)}")


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame size, rate, duration and audio codec of a video; a UserError when it is not one."""
    path = Path(path).expanduser()
    check_readable_file(path, "a video", "input video")
    reader = imageio_ffmpeg.read_frames(ffmpeg_path(path), output_params=["-an"])
    try:
        meta = next(reader)
    except (OSError, RuntimeError, ValueError, IndexError, KeyError, StopIteration) as exc:
        raise _not_a_video(path, exc) from None
    finally:
        reader.close()
    return VideoInfo(path, tuple(meta["size"]), float(meta.get("fps") or 0.0),
                     float(meta.get("duration") or 0.0),
                     (meta.get("audio_codec") or "").strip(",") or None)


def fit_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest even (w, h) with `size`'s aspect ratio inside `box`; never larger than
    `size` (rounded down to even)."""
    w, h = size
    scale = min(1.0, box[0] / w, box[1] / h)
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def _ffmpeg_params(info: VideoInfo, fps: float, size: tuple[int, int], start: float,
                   end: float | None) -> tuple[list[str], list[str]]:
    inputs = ["-ss", f"{start:.6f}"] if start > 0 else []
    rate = fps_fraction(fps)
    flags = "area" if size[0] * size[1] < info.size[0] * info.size[1] else "bicubic"
    vf = f"fps={rate.numerator}/{rate.denominator},scale={size[0]}:{size[1]}:flags={flags}"
    outputs = ["-an", "-sn", "-vf", vf]
    if end is not None:
        # the frame times k/fps inside [0, end - start); the fps filter may add one at the end
        count = max(0, math.ceil((end - start) * rate - 1e-9))
        inputs += ["-t", f"{end - start:.6f}"]
        outputs += ["-frames:v", str(count)]
    return inputs, outputs


def read_frames(info: VideoInfo, fps: float, size: tuple[int, int], start: float = 0.0,
                end: float | None = None) -> Iterator[np.ndarray]:
    """Frames of `info.path` from `start` to `end` seconds, at a constant `fps` (frames are
    dropped or repeated as ffmpeg's fps filter decides), resized to `size` (w, h)."""
    inputs, outputs = _ffmpeg_params(info, fps, size, start, end)
    reader = imageio_ffmpeg.read_frames(ffmpeg_path(info.path), input_params=inputs,
                                        output_params=outputs)
    try:
        try:
            next(reader)
        except (OSError, RuntimeError, StopIteration) as exc:
            raise _not_a_video(info.path, exc) from None
        w, h = size
        for raw in reader:
            yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    except RuntimeError as exc:  # ffmpeg stopped mid-frame: a truncated or broken file
        raise UserError(f"{info.path}: video is damaged{_why(exc)}") from None
    finally:
        reader.close()


def count_frames(info: VideoInfo, fps: float, start: float = 0.0,
                 end: float | None = None) -> int:
    """How many frames read_frames() yields at `fps` in the range (decodes it; the count does
    not depend on the frame size, so frames come out tiny)."""
    return sum(1 for _ in read_frames(info, fps, (2, 2), start, end))
