"""Audio through the bundled ffmpeg: probe a file for its audio stream, decode it to float PCM,
and write PCM back as a WAV (a soundtrack made or changed here, muxed by render.encoding.encoder).

Any file ffmpeg reads works (wav, mp3, m4a, flac, ogg, or a video's sound). Commands are
argument lists (never a shell); files are given absolute, so a name like 'pipe:1' is a file.
"""

from __future__ import annotations

import os
import re
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render.errors import UserError
from render.media import ffmpeg
from render.media.image import check_readable_file

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")


@dataclass(frozen=True)
class AudioInfo:
    """A file's first audio stream: its codec and the file's length in seconds (None when
    ffmpeg does not know it)."""

    path: Path
    codec: str
    duration: float | None


def _absolute(path: Path) -> str:
    return os.fspath(path.absolute())


def probe(path: Path) -> AudioInfo:
    """The audio stream of `path`; a one-line UserError when the file cannot be read or has no
    audio stream."""
    path = Path(path).expanduser()
    check_readable_file(path, "an audio", "audio file")
    try:  # no output file: ffmpeg lists the streams, then exits with 1 ("no output")
        text = subprocess.run([ffmpeg.exe(), "-hide_banner", "-nostdin", "-i", _absolute(path)],
                              capture_output=True, timeout=60).stderr.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{path}: cannot probe the audio ({exc})") from None
    if "Input #0" not in text:
        reason = ffmpeg.stderr_reason(text) or "unknown format"
        reason = reason.replace(_absolute(path), str(path))
        raise UserError(f"{path}: not an audio file ffmpeg can read ({reason})")
    stream = _AUDIO.search(text)
    if stream is None:
        raise UserError(f"{path}: has no audio stream")
    m = _DURATION.search(text)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    return AudioInfo(path, stream.group(1), duration)


def decode(path: Path, rate: int, channels: int = 1, start: float = 0.0,
           duration: float | None = None) -> np.ndarray:
    """The first audio stream of `path` from `start` seconds on (at most `duration` seconds)
    as float32 PCM of shape (samples, channels) at `rate` Hz."""
    trim = ["-ss", f"{start:.6f}"] if start > 0 else []
    trim += ["-t", f"{duration:.6f}"] if duration is not None else []
    cmd = [ffmpeg.exe(), *ffmpeg.QUIET, "-nostdin", *trim, "-i", _absolute(Path(path)),
           "-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(rate), "-f", "f32le", "-"]
    try:
        done = subprocess.run(cmd, capture_output=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot decode the audio ({exc})") from None
    if done.returncode != 0:
        reason = ffmpeg.stderr_reason(done.stderr.decode("utf-8", "replace"), errors_only=True)
        raise UserError(f"{path}: cannot decode the audio ({reason or 'ffmpeg failed'})")
    pcm = np.frombuffer(done.stdout, dtype="<f4")
    return pcm[:len(pcm) // channels * channels].reshape(-1, channels).astype(np.float32)


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    """Write float PCM (samples, channels) in -1..1 as a 16-bit WAV."""
    data = np.clip(np.round(pcm * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.tobytes())
    return path
