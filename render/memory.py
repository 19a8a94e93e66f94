"""Refuse a frame size whose estimated peak memory does not fit in what is free, before the
work starts, instead of being killed by the kernel's OOM killer later."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from pathlib import Path

from render.errors import UserError

# Rough peak memory per pixel, to refuse a size before it gets the process OOM-killed:
# reading (the file, the decoded pixels at up to 16-bit RGBA, float conversions) and dreaming
# (the engine's float32 image, gradient, rolled and smoothed copies, octave images; measured
# peak growth: 189 B/px dreaming 2048x2048 with efficientnet_lite0, 2 octaves, tile 512).
READ_BYTES_PER_PIXEL = 48
DREAM_BYTES_PER_PIXEL = 200
MEMORY_HEADROOM = 0.8  # use at most this share of the memory that is free


def available_memory() -> int | None:
    """Bytes this process can still allocate: the system's available memory, capped by the
    room left under a container's (cgroup) memory limit; None when unknown."""
    room = []
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                room.append(int(line.split()[1]) * 1024)
    if not room:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            room.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes",
                                    "memory/memory.usage_in_bytes")):
        with contextlib.suppress(OSError, ValueError):
            base = Path("/sys/fs/cgroup")
            limit = int((base / limit_file).read_text().strip())
            if limit < 2**60:  # "max" (ValueError) or a huge number: no limit
                room.append(max(0, limit - int((base / usage_file).read_text().strip())))
    return min(room) if room else None


def check_memory(size: tuple[int, int], what: str, bytes_per_pixel: int = DREAM_BYTES_PER_PIXEL,
                 doing: str = "to dream", extra: int = 0,
                 advice: str = "use a smaller size") -> None:
    """Refuse (one-line UserError) a `size` (w, h) whose estimated peak memory is more than
    MEMORY_HEADROOM of the free memory, instead of being killed by the kernel's OOM killer
    later. The message compares like with like: the need against what is free when it is
    more than that, else against the share that may be used."""
    w, h = size
    need = w * h * bytes_per_pixel + extra
    free = available_memory()
    if free is not None and need > free * MEMORY_HEADROOM:
        have = gigabytes(free, math.floor)
        room = (f"but only {have} is free" if need > free else
                f"and {have} is free, but at most {MEMORY_HEADROOM:.0%} of it "
                f"({gigabytes(free * MEMORY_HEADROOM, math.floor)}) is used, to leave room "
                f"for the model, the encoder and the system")
        raise UserError(
            f"{what} {w}x{h} needs about {gigabytes(need, math.ceil)} of memory {doing}, {room}; "
            f"{advice}")


def gigabytes(n: float, rounding: Callable[[float], int]) -> str:
    """`n` bytes in GB to 0.1 GB, rounded the way that keeps a need printed above a limit
    (a need rounded up, a limit rounded down: 17.86 > 17.84 must not read 17.9 and 17.9)."""
    tenths = n / 2**30 * 10
    return f"{rounding(tenths + (1e-6 if rounding is math.floor else -1e-6)) / 10:.1f} GB"
