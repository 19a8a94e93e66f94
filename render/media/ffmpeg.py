"""The bundled ffmpeg (imageio-ffmpeg): finding it, running it, and turning what it prints on
stderr into one line a user can read.

* Commands are argument lists, never shell strings, so no file name is ever parsed by a shell.
* stderr goes to an anonymous temp file, never a pipe: a chatty ffmpeg cannot fill a pipe and
  deadlock whoever is writing to its stdin.
* Each run has its own session: Ctrl-C reaches only Python, which then stops ffmpeg itself,
  instead of ffmpeg finishing a truncated file on its own SIGINT.
* Waiting for an ffmpeg that has already failed is bounded (``EXIT_WAIT_SECONDS``); waiting
  for one to finish its work is not (an encode takes as long as it takes).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from typing import IO

import imageio_ffmpeg

from render.errors import UserError

__all__ = ["EXIT_WAIT_SECONDS", "Run", "exe", "stderr_reason"]

QUIET = ("-hide_banner", "-loglevel", "error", "-nostats", "-y")
EXIT_WAIT_SECONDS = 10  # how long a failed ffmpeg may take to finish writing its stderr


def exe() -> str:
    """Path of the bundled ffmpeg executable; a UserError when imageio-ffmpeg has none."""
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise UserError(f"ffmpeg not found: {exc}") from exc


class Run:
    """One ffmpeg process: ``ffmpeg -hide_banner -loglevel error -nostats -y *args``.

    ``stdin`` is a pipe when ``pipe_stdin`` (for streaming frames), else empty; stdout is
    discarded; stderr is kept for :meth:`failure`. :meth:`stop` ends it in every case and is
    safe to call any number of times.
    """

    def __init__(self, args: Sequence[str], *, pipe_stdin: bool = False) -> None:
        cmd = [exe(), *QUIET, *args]
        # Lives as long as the run; closed by stop().
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE if pipe_stdin else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr, start_new_session=True,
            )
        except OSError as exc:
            self._stderr.close()
            raise UserError(f"cannot start ffmpeg ({cmd[0]}): {exc}") from exc

    @property
    def stdin(self) -> IO[bytes]:
        assert self._proc.stdin is not None, "Run(pipe_stdin=True) has a stdin"
        return self._proc.stdin

    def wait(self) -> int:
        """Close stdin (end of input) and wait, however long, for ffmpeg to finish; its exit
        code."""
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):  # ffmpeg already exited; its exit code tells why
                self._proc.stdin.close()
        return self._proc.wait()

    def failure(self) -> tuple[int | None, str]:
        """(exit code, full stderr) of an ffmpeg that failed; waits a bounded time for it to
        exit (None when it did not)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=EXIT_WAIT_SECONDS)
        self._stderr.seek(0)
        return self._proc.returncode, self._stderr.read().decode("utf-8", "replace")

    def stop(self) -> None:
        """Kill ffmpeg if it still runs, reap it and release its pipes and stderr file."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        self._stderr.close()


# ffmpeg's banner, stream listing and progress, and imageio-ffmpeg's wrapping of its stderr
# ("Could not load meta information", "Could not read frame 7:"): never the reason
_NOISE = re.compile(r"ffmpeg version|Input #|Output #|Stream mapping:|Press \[q\]|frame=|size=|"
                    r"Consider increasing|Could not load meta information|Could not read frame|"
                    r"End of file reached before full frame|=== stderr ===")
# ffmpeg's closing cascade: lines that say *that* it failed, not why
_CASCADE = re.compile(r"Conversion failed|Nothing was written|Terminating thread|"
                      r"Error opening (input|output) files|"
                      r"Error opening (input|output) file \S.*\.$|"
                      r"Output file does not contain any stream")
_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")  # "[h264 @ 0x55d...] ", "[out#0/mp4 @ 0x...] "
_ERROR_CODE = re.compile(r"^.*error code: -?\d+ \((.*)\)$")  # "... error code: -28 (No space...)"
_SAYS_WHY = re.compile(r"invalid|error|not found|partial|corrupt|truncat|unsupported|no such|"
                       r"denied|no space|EOF", re.IGNORECASE)


def stderr_reason(text: str, *, errors_only: bool = False) -> str:
    """The line of ffmpeg's stderr that says what went wrong, cleaned for a one-line message
    ("" when there is none).

    The banner, the stream listing (indented lines), progress lines and the closing cascade
    ("Conversion failed!", "Nothing was written into output file") are left out, and so is
    the "[component @ 0x...] " prefix. `errors_only`: ffmpeg ran with ``-loglevel error`` (as
    :class:`Run` does), so every line is an error and the first one is the cause (later ones
    are its consequences). Otherwise (a full log, as imageio-ffmpeg reports it) the reason is
    the first line with an error word in it ("invalid", "not found", ...); lines without one
    are notices.
    """
    for raw in text.splitlines():
        if raw[:1].isspace():
            continue
        line = _ERROR_CODE.sub(r"\1", _PREFIX.sub("", raw).strip())
        if (line and not _NOISE.match(line) and not _CASCADE.match(line)
                and (errors_only or _SAYS_WHY.search(line))):
            return line
    return ""


def fps_fraction(fps: float) -> Fraction:
    """Exact rational frame rate; NTSC rates given as decimals (29.97) become N*1000/1001."""
    ntsc = round(fps * 1.001)
    if abs(fps - round(fps)) > 1e-3 and abs(fps - ntsc * 1000 / 1001) < 5e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)
