"""The H.264 MP4's ffmpeg arguments: the video stream (libx264, yuv420p, BT.709, even sides)
and the second run that adds the soundtrack (`AudioTrack`), cut or padded to the video's
length. Pure functions of their inputs; render.encoding.encoder runs them."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from fractions import Fraction

from render.encoding.options import Mp4Options

# audio codecs copied into an MP4 as they are: those browsers and QuickTime all play there.
# Anything else is encoded to AAC. MP4 can hold AC-3, E-AC-3, ALAC, Opus and FLAC too, but
# Chrome and Firefox play neither AC-3/E-AC-3 nor ALAC, and Opus/FLAC in MP4 were not verified
# in Safari/QuickTime, so they are not copied.
MP4_AUDIO_CODECS = ("aac", "mp3")
BT709 = "colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"


@dataclass(frozen=True)
class AudioTrack:
    """The audio of an MP4: the first audio stream of `path` from `start` seconds on, for at
    most `duration` seconds; stream-copied when every player plays `codec` in an MP4 (AAC,
    MP3), otherwise encoded to AAC. A file with no audio stream is fine (the MP4 is then
    silent)."""

    path: pathlib.Path
    start: float = 0.0
    duration: float | None = None
    codec: str | None = None

    @property
    def copy(self) -> bool:
        return self.codec in MP4_AUDIO_CODECS


def video_args(size: tuple[int, int], options: Mp4Options, faststart: bool) -> list[str]:
    """ffmpeg output arguments for the H.264 stream of frames of `size` (odd sides cropped by
    one pixel at the right/bottom); `faststart`: index in front (when no second run follows)."""
    width, height = size
    even_w, even_h = width - width % 2, height - height % 2
    filters = [] if (even_w, even_h) == (width, height) else [f"crop={even_w}:{even_h}:0:0"]
    filters += ["scale=out_color_matrix=bt709:out_range=tv", "format=yuv420p",
                f"setparams={BT709}"]
    return ["-vf", ",".join(filters), "-c:v", "libx264", "-pix_fmt", "yuv420p",
            "-crf", str(options.crf), "-preset", options.preset,
            *(["-movflags", "+faststart"] if faststart else []), "-f", "mp4"]


def audio_mux_args(video: pathlib.Path, track: AudioTrack, frames: int, rate: Fraction,
                   output: pathlib.Path) -> list[str]:
    """ffmpeg arguments that write `video` again with `track`, cut or padded with silence to
    exactly the video's length (frames / rate), so it ends with the last frame. (ffmpeg's
    -shortest, which finds the length while streaming, ended the audio 0.1-0.2 s late in
    about one file in five.)"""
    length = f"{float(frames / rate):.6f}"
    trim = ["-ss", f"{track.start:.6f}"] if track.start > 0 else []
    if track.duration is not None:
        trim += ["-t", f"{track.duration:.6f}"]
    if track.copy:  # copied as is (no filter possible): -t ends it with the video
        audio = ["-c:a", "copy", "-t", length]
    else:
        audio = ["-af", f"atrim=end={length},apad=whole_dur={length}",
                 "-c:a", "aac", "-b:a", "192k"]
    return ["-i", os.fspath(video), *trim, "-i", os.fspath(track.path),
            "-map", "0:v", "-map", "1:a:0?",  # '?': a source without audio is not an error
            "-c:v", "copy", *audio, "-movflags", "+faststart", "-f", "mp4", os.fspath(output)]
