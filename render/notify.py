"""Notices: one line a render says to its user that is not an error (a fallback, a resumed
sequence, a rounded fps). Every default notice sink is `stderr_notify`, the one place a notice
is printed, so every notice reads alike (``dreamreel: ...``); callers that collect or silence
notices pass their own `Notify`."""

from __future__ import annotations

import sys
from collections.abc import Callable

Notify = Callable[[str], None]  # takes one notice (a line, without the "dreamreel:" prefix)


def stderr_notify(message: str) -> None:
    """The default notice sink: `message` as one line on stderr, after "dreamreel: ". A
    progress bar on stderr is cleared first and drawn again below the line, so a notice never
    lands on the end of the bar's line."""
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stderr):
        print(f"dreamreel: {message}", file=sys.stderr, flush=True)
