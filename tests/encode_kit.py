"""Helpers of the encoder tests: smooth test frames, ffmpeg's stream description, durations,
and a one-call encode."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from render.encoding.encoder import FrameEncoder
from render.encoding.options import GifOptions

# the GIF encoder the encoder tests were written for: ffmpeg's palettegen, one clip palette
FFMPEG_GIF = GifOptions(encoder="ffmpeg", palette="clip")
IQ_GIF = GifOptions(encoder="imagequant", palette="clip")


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


def encode_frames(path: Path, frames: list[np.ndarray], fps: float, gif: GifOptions = FFMPEG_GIF,
                  **kwargs) -> Path:
    h, w = frames[0].shape[:2]
    with FrameEncoder(path, (w, h), fps, gif=gif, **kwargs) as enc:
        for f in frames:
            enc.write(f)
    return enc.close()


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))
