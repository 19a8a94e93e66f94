"""Command-line switches every pipeline honours."""

from __future__ import annotations

from dataclasses import dataclass, field

from render.notify import Notify, stderr_notify


@dataclass(frozen=True)
class RunOptions:
    """`force` re-renders from scratch; `reuse_frames` keeps checkpoints made with other
    settings; `quiet` hides progress; `notify` prints notices."""

    force: bool = False
    reuse_frames: bool = False
    quiet: bool = False
    notify: Notify = field(default=stderr_notify)
    preview: bool = False
