"""render.media.ffmpeg.stderr_reason: the one line of ffmpeg's stderr a user sees, on stderr texts
the bundled ffmpeg really printed (full logs as imageio-ffmpeg reports them while decoding,
and `-loglevel error` output while encoding)."""

from __future__ import annotations

import pytest

from render.media.ffmpeg import stderr_reason

BANNER = (
    "ffmpeg version n9.0.2 Copyright (c) 2000-2026 the FFmpeg developers\n"
    "  built with gcc 16.2.0 (crosstool-NG 1.29.0.7_b1a94f6)\n"
    "  configuration: --prefix=/ffbuild/prefix --enable-gpl --enable-libx264\n"
    "  libavutil      61.  1.102 / 61.  1.102\n"
)
DECODE_LOGS = [
    (  # truncated MP4
        "Could not load meta information\n=== stderr ===\n\n" + BANNER
        + "[in#0 @ 0x5568de6b9040] moov atom not found\n"
        "[in#0 @ 0x5568de6b8d00] Error opening input: Invalid data found when processing input\n"
        "Error opening input file /tmp/a.mp4.\n"
        "Error opening input files: Invalid data found when processing input\n",
        "moov atom not found",
    ),
    (  # truncated MKV: notices first, the reason after the stream listing
        "Could not load meta information\n=== stderr ===\n\n" + BANNER
        + "[in#0/matroska,webm @ 0x5592d278e040] File ended prematurely\n"
        "Consider increasing the value for the 'analyzeduration' (0) and 'probesize' options\n"
        "Input #0, matroska,webm, from '/tmp/b.mkv':\n"
        "  Stream #0:0: Video: h264, none(tv, progressive), 48x32, 25 fps\n"
        "Stream mapping:\n  Stream #0:0 -> #0:0 (h264 (native) -> rawvideo (native))\n"
        "Press [q] to stop, [?] for help\n"
        "[vf#0:0 @ 0x555992f94e80] Cannot determine format of input 0:0 after EOF\n"
        "[vf#0:0 @ 0x555992f94e80] Task finished with error code: -1094995529 (Invalid data "
        "found when processing input)\n"
        "[out#0/image2pipe @ 0x555992f92100] Nothing was written into output file, because at "
        "least one of its streams received no packets.\n"
        "frame=    0 fps=0.0 q=0.0 Lsize=       0KiB time=N/A bitrate=N/A speed=N/A\n"
        "Conversion failed!\n",
        "Cannot determine format of input 0:0 after EOF",
    ),
    (  # audio only: nothing but the cascade says anything, so there is no reason
        "Could not load meta information\n=== stderr ===\n\n" + BANNER
        + "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/tmp/tone.m4a':\n"
        "  Stream #0:0[0x1](und): Audio: aac (LC), 44100 Hz, mono, fltp, 70 kb/s (default)\n"
        "Output #0, image2pipe, to 'pipe:':\n"
        "[out#0/image2pipe @ 0x555efef28b40] Output file does not contain any stream\n"
        "Error opening output file -.\nError opening output files: Invalid argument\n",
        "",
    ),
    (  # broken mid-stream
        "Could not read frame 12:\nEnd of file reached before full frame could be read.\n"
        "=== stderr ===\n[h264 @ 0x55] Invalid NAL unit size (1234 > 567).\n",
        "Invalid NAL unit size (1234 > 567).",
    ),
]
ENCODE_ERRORS = [
    (  # MP4 on a full disk: the first line is the cause, the rest its cascade
        "[out#0/mp4 @ 0x55bfece93bc0] Could not write header (incorrect codec parameters ?): No "
        "space left on device\n"
        "[vf#0:0 @ 0x55bfece95580] Error sending frames to consumers: No space left on device\n"
        "[vf#0:0 @ 0x55bfece95580] Terminating thread with return code -28 (No space left on "
        "device)\n",
        "Could not write header (incorrect codec parameters ?): No space left on device",
    ),
    (
        "[out#0/mp4 @ 0x5562f53c0bc0] Error opening output /x/c.mp4: No such file or directory\n"
        "Error opening output file /x/c.mp4.\nError opening output files: No such file or "
        "directory\n",
        "Error opening output /x/c.mp4: No such file or directory",
    ),
    ("[AVFilterGraph @ 0x5568070ed2c0] No such filter: 'nosuchfilter'\n"
     "Error opening output file /tmp/o.mp4.\nError opening output files: Filter not found\n",
     "No such filter: 'nosuchfilter'"),
    ("[libx264 @ 0x1] broken encoder\nlater line\n", "broken encoder"),  # no error word needed
    ("", ""),
]


@pytest.mark.parametrize(("text", "reason"), DECODE_LOGS)
def test_reason_from_a_full_decode_log(text: str, reason: str) -> None:
    assert stderr_reason(text) == reason


@pytest.mark.parametrize(("text", "reason"), ENCODE_ERRORS)
def test_reason_from_error_only_output(text: str, reason: str) -> None:
    assert stderr_reason(text, errors_only=True) == reason
