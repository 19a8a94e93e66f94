"""Command-line switches every pipeline honours."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from render.notify import Notify, stderr_notify


@dataclass(frozen=True)
class RunOptions:
    """`force` re-renders from scratch; `reuse_frames` keeps checkpoints made with other
    settings; `quiet` hides progress; `notify` prints notices; `octaves`: a still writes each
    octave's image there as it finishes (octave_N.png), to watch it dream."""

    force: bool = False
    reuse_frames: bool = False
    quiet: bool = False
    notify: Notify = field(default=stderr_notify)
    preview: bool = False
    octaves: Path | None = None
