"""Dream masks (`dream.mask`, `Dreamer(...)(image, mask=...)`): where the dream may act.

White dreams, black stays untouched, grey in between. A mask is read as luminance in [0, 1],
stretched to the frame size and feathered (a Gaussian blur whose sigma is FEATHER of the
shorter side), and the engine multiplies the ascent *gradient* by it, so detail builds only
inside. A still mask applies to every frame (in image coordinates: it does not follow the
flow of a video); a mask video gives one mask per output frame, its own frames resampled to
the render's frame rate by ffmpeg, and must last at least as long as the render.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from render.errors import UserError
from render.media.image import check_readable_file, read_image, to_rgb8
from render.media.image_header import image_format

FEATHER = 0.01  # blur sigma as a fraction of the frame's shorter side
BLACK = 1.0 / 255.0  # a mask whose every pixel is at most this dreams nothing


def feathered(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB/gray mask -> float32 (h, w) in [0, 1] at `size` (w, h), edges feathered."""
    rgb = to_rgb8(mask)
    gray: np.ndarray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    if gray.shape[1::-1] != tuple(size):
        shrink = size[0] * size[1] < gray.shape[0] * gray.shape[1]
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if shrink
                          else cv2.INTER_LINEAR)
    sigma = max(0.5, FEATHER * min(size))
    return np.clip(cv2.GaussianBlur(gray, (0, 0), sigma), 0.0, 1.0)


def is_image_file(path: Path) -> bool:
    """Whether `path` holds a still image (by its signature), not a video."""
    with open(path, "rb") as fh:
        return image_format(fh.read(16)) is not None


def check_mask_file(path: str | os.PathLike, key: str = "dream.mask") -> Path:
    """A one-line UserError unless `path` is a readable, non-empty file (cheap: for config)."""
    p = Path(path).expanduser()
    try:
        check_readable_file(p, "a mask image or video", "mask")
    except UserError as exc:
        raise UserError(f"{key}: {exc}") from None
    return p


def _not_black(mask: np.ndarray, key: str, what: str) -> np.ndarray:
    if float(mask.max()) <= BLACK:
        raise UserError(f"{key}: {what} is all black, so nothing would be dreamed "
                        "(white dreams, black stays untouched)")
    return mask


def still_mask(source: str | os.PathLike | np.ndarray, size: tuple[int, int],
               key: str = "dream.mask") -> np.ndarray:
    """The feathered mask of an image file or array at `size` (w, h); UserError if unreadable
    or all black."""
    if isinstance(source, (str, os.PathLike)):
        p = check_mask_file(source, key)
        try:
            image = read_image(p)
        except UserError as exc:
            raise UserError(f"{key}: {exc}") from None
        what = str(p)
    else:
        image, what = np.asarray(source), "the mask"
    return _not_black(feathered(image, size), key, what)


class Masks:
    """Per-frame masks of a sequence: one still mask for every frame, or one per frame. Frames
    are kept as read (grey uint8, at most 1024 px a side) and feathered at that size when
    asked for (the engine stretches a mask to each octave; the feather is relative to the
    shorter side, so it is the same at any size)."""

    def __init__(self, frames: Sequence[np.ndarray], source: str) -> None:
        self.frames = tuple(frames)  # grey uint8; a single one = the same for every frame
        self.source = source
        self._last: tuple[int, np.ndarray] | None = None

    def at(self, t: int) -> np.ndarray:
        """Frame t's feathered mask, float32 in [0, 1] (h, w) at the mask's own size."""
        i = 0 if len(self.frames) == 1 else t
        if self._last is None or self._last[0] != i:
            frame = self.frames[i]
            self._last = (i, feathered(frame, frame.shape[1::-1]))
        return self._last[1]

    def record(self) -> dict[str, object]:
        return {"mask": self.source, "frames": len(self.frames), "feather": FEATHER}


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(to_rgb8(image), cv2.COLOR_RGB2GRAY)


def load_masks(path: str | os.PathLike, frames: int = 1, fps: float = 24.0,
               key: str = "dream.mask") -> Masks:
    """The masks of `frames` frames: a still image for all of them, or a video read at `fps`
    (its frames resampled to that rate), which must cover every frame. Read before the input
    and the model, so a bad mask is refused before anything else is said or done."""
    from render.media.video import fit_size

    p = check_mask_file(path, key)
    if is_image_file(p):
        try:
            image = read_image(p)
            h, w = image.shape[:2]
            if max(w, h) > 1024:
                image = cv2.resize(image, fit_size((w, h), (1024, 1024)),
                                   interpolation=cv2.INTER_AREA)
            grey = _grey(image)
        except UserError as exc:
            raise UserError(f"{key}: {exc}") from None
        _not_black(grey / 255.0, key, str(p))
        return Masks((grey,), str(p))
    from render.media.video import probe, read_frames

    try:
        info = probe(p)
        out: list[np.ndarray] = []
        for frame in read_frames(info, fps, fit_size(info.size, (1024, 1024))):
            out.append(_grey(frame))
            if len(out) == frames:
                break
    except UserError as exc:
        raise UserError(f"{key}: {exc}") from None
    if len(out) < frames:
        raise UserError(f"{key}: mask video {p} has {len(out)} frames at {fps:g} fps; the "
                        f"render needs {frames} (a mask video must last as long as the output)")
    if all(float(m.max()) / 255.0 <= BLACK for m in out):
        _not_black(out[0] / 255.0, key, str(p))
    return Masks(out, str(p))
