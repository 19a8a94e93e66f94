"""The finish step of a dreamed video's frame: the dream's strength held (pipelines.warp.
strength), then its colours matched (pipelines.warp.color), both against the frame's own
source frame. Images are uint8 RGB (H, W, 3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipelines.config.settings import VideoConfig
from pipelines.warp.color import coherence_finish
from pipelines.warp.strength import Finish, strength_finish


def video_finish(video: VideoConfig, source: Callable[[int], np.ndarray], *, offset: int = 0,
                 first: tuple[np.ndarray, np.ndarray] | None = None) -> Finish | None:
    """Frame t's finish step (the scheduler's t is the clip's `offset` + t; None: nothing to
    do): `flow.max_strength`, then `color.coherence`. `first`: the clip's frame 0 as source
    and as dreamed, for a chunk that does not start there (a cluster worker's)."""
    limit = video.flow.max_strength
    return chain(
        strength_finish(source, limit, offset=offset, first=first) if limit else None,
        coherence_finish(source, offset=offset, first=first) if video.color_coherence else None)


def chain(*steps: Finish | None) -> Finish | None:
    """One finish step doing `steps` in order (None ones skipped; None if all are)."""
    done = [s for s in steps if s is not None]
    if not done:
        return None
    if len(done) == 1:
        return done[0]

    def finish(t: int, dreamed: np.ndarray, first_frame: np.ndarray) -> np.ndarray:
        for step in done:
            dreamed = step(t, dreamed, first_frame)
        return dreamed

    return finish
