"""The `video` pipeline: dream a video without flicker. Frame t starts from the previous
dreamed frame carried along the optical flow of the source (t-1 -> t), takes the fresh source
frame where the flow cannot be trusted, is blended with the source frame, dreamed lightly and
colour-matched to the first dreamed frame."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipelines import color, loop
from pipelines.dreamer_config import model_record
from pipelines.flow import FLOW_METHODS, optical_flow, reliable_mask, warp_by_flow
from pipelines.frame_plan import plan_dreamer
from pipelines.lock import output_lock
from pipelines.presets import Preset
from pipelines.run_options import RunOptions
from pipelines.scheduler import Finish, FrameScheduler
from pipelines.schema import Field
from pipelines.sequence import SEQUENCE_SCHEMA, open_store, render_sequence, sequence_outputs
from pipelines.sources import Clip, FrameWindow, video_input
from render.errors import UserError

# dis/farneback: carry the dream along the flow; static: carry it without moving it;
# none: dream every frame independently (each with the dream.first_frame settings)
METHODS = (*FLOW_METHODS, "static", "none")
CARRY_MODES = ("full", "residual")

SCHEMA: dict[str, Any] = {
    **{k: v for k, v in SEQUENCE_SCHEMA.items() if k not in ("frames", "fps")},
    "frames": Field("int", None, low=2, high=100_000, nullable=True,
                    help="at most this many frames; omitted = the whole range"),
    "fps": Field("float", None, above=0, high=240, nullable=True,
                 help="output frame rate; omitted = the source's"),
    "start": Field("float", 0.0, low=0, high=1e7, help="seconds into the input"),
    "end": Field("float", None, above=0, high=1e7, nullable=True,
                 help="seconds into the input; omitted = to its end"),
    "max_size": Field("size", [640, 360], nullable=True,
                      help="fit inside [width, height], keeping the aspect ratio"),
    "audio": Field("choice", "source", choices=("source", "none"),
                   help="keep the input's audio in the MP4, or drop it"),
    "flow": {
        "method": Field("choice", "dis", choices=METHODS, help="optical flow on the source"),
        "mode": Field("choice", "full", choices=CARRY_MODES,
                      help="carry the whole dreamed frame, or only what the dream added"),
        "blend": Field("float", 0.8, low=0, high=1,
                       help="weight of the carried dream against the fresh source frame"),
        "consistency": Field("bool", True,
                             help="take the source frame where the flow is unreliable"),
    },
    "color": {
        "coherence": Field("bool", True, help="match colours to the first dreamed frame (LAB)"),
    },
}


def carry(previous_dream: np.ndarray, previous_source: np.ndarray, source: np.ndarray,
          backward: np.ndarray | None, trust: np.ndarray | None, blend: float,
          mode: str) -> np.ndarray:
    """The image frame t is dreamed from (uint8 RGB): the source frame plus, weighted by
    `blend` x `trust` (float32 HxW in 0..1), the previous dream carried along `backward`
    (flow t -> t-1; None = no motion) — whole (`full`) or as dream-minus-source (`residual`)."""
    src = source.astype(np.float32)
    carried = previous_dream.astype(np.float32)
    if mode == "residual":
        carried -= previous_source.astype(np.float32)
    if backward is not None:
        carried = warp_by_flow(carried, backward)
    if mode == "full":
        carried -= src
    weight = blend if trust is None else blend * trust[..., None]
    return np.clip(src + weight * carried + 0.5, 0, 255).astype(np.uint8)


def soft_trust(mask: np.ndarray) -> np.ndarray:
    """A bool reliability mask as float32 weights with soft edges (no seams at its borders)."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)


class SharedWindow:
    """A FrameWindow that the flow thread and the main thread can both read (one at a time)."""

    def __init__(self, window: FrameWindow) -> None:
        self.window = window
        self._lock = threading.Lock()

    def __getitem__(self, t: int) -> np.ndarray:
        with self._lock:
            return self.window[t]


@dataclass(frozen=True)
class Prepared:
    """What frame t needs from the source before the previous dream can be carried into it."""

    before: np.ndarray  # source t-1, uint8 RGB
    source: np.ndarray  # source t, uint8 RGB
    backward: np.ndarray | None  # flow t -> t-1, float32 HxWx2; None = no motion
    trust: np.ndarray | None  # float32 HxW in 0..1; None = trust everywhere


# frames whose flow is computed ahead: with cadence, a carried frame and the next dreamed one
# both get their flow while the dream before them runs
LOOKAHEAD = 2


class FlowMotion:
    """Motion source of the video pipeline: the previous dream carried into frame t as `flow`
    says. The source frames and optical flow of the next LOOKAHEAD frames are read and computed
    in a background thread (`prefetch`) while frame t-1 is dreamed."""

    def __init__(self, flow: Mapping[str, Any], window: SharedWindow) -> None:
        self.flow = flow
        self.window = window
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="flow")
        self._ready: dict[int, Future[Prepared]] = {}

    def prepare(self, t: int) -> Prepared:
        """Source frames t-1 and t, and the flow and trust between them."""
        method, before, source = self.flow["method"], self.window[t - 1], self.window[t]
        backward = trust = None
        if method in FLOW_METHODS:
            backward = optical_flow(source, before, method)
            if self.flow["consistency"]:
                forward = optical_flow(before, source, method)
                trust = soft_trust(reliable_mask(backward, forward))
        return Prepared(before, source, backward, trust)

    def prefetch(self, t: int) -> None:
        for ahead in range(t, min(t + LOOKAHEAD, self.window.window.clip.count)):
            if ahead not in self._ready:
                self._ready[ahead] = self._pool.submit(self.prepare, ahead)

    def _prepared(self, t: int) -> Prepared:
        pending = self._ready.pop(t, None)
        return pending.result() if pending is not None else self.prepare(t)

    def __call__(self, t: int, previous: np.ndarray) -> np.ndarray:
        """The image frame t is dreamed from."""
        p = self._prepared(t)
        if self.flow["method"] == "none":
            return p.source
        return carry(previous, p.before, p.source, p.backward, p.trust, self.flow["blend"],
                     self.flow["mode"])

    def carry_only(self, t: int, previous: np.ndarray) -> np.ndarray:
        """Frame t when it is not dreamed (cadence): the previous dream carried whole, the
        source only where the flow cannot be trusted."""
        p = self._prepared(t)
        return carry(previous, p.before, p.source, p.backward, p.trust, 1.0, self.flow["mode"])

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def flow_motion(flow: Mapping[str, Any], window: FrameWindow | SharedWindow) -> FlowMotion:
    """Motion source: the previous dream carried into frame t as `flow` says."""
    shared = window if isinstance(window, SharedWindow) else SharedWindow(window)
    return FlowMotion(flow, shared)


def color_finish(window: FrameWindow | SharedWindow) -> Finish:
    """Finish step: match frame t's colours to where the first dream took frame 0's, relative
    to frame t's own source (so lighting changes in the source stay)."""
    first_source = color.lab_stats(window[0])
    first_dream: list[color.Stats] = []  # frame 0's dream never changes: its stats once

    def finish(t: int, dreamed: np.ndarray, first: np.ndarray) -> np.ndarray:
        if t == 0:
            return dreamed
        if not first_dream:
            first_dream.append(color.lab_stats(first))
        target = color.relative_target(color.lab_stats(window[t]), first_source,
                                       first_dream[0])
        return color.match_stats(dreamed, target)

    return finish


def clip_record(clip: Clip, cfg: Mapping[str, Any], audio: bool) -> dict[str, Any]:
    """What the sidecar says about the source and how it was carried."""
    return {"clip": {**clip.record, "frames": clip.count, "fps": clip.fps,
                       "size": list(clip.size)},
            "audio": ("copied" if clip.audio.copy else "aac") if audio and clip.audio else None,
            "flow": dict(cfg["flow"]), "color": dict(cfg["color"])}


def run(preset: Preset, opts: RunOptions) -> list[Path]:
    """Render the dreamed clip to MP4/GIF (see pipelines.sequence)."""
    cfg = preset.config
    outputs = sequence_outputs(preset)
    method = cfg["flow"]["method"]
    if method == "none" and cfg["dream"]["cadence"] > 1:
        raise UserError("dream.cadence: needs a flow.method that carries the dream "
                        f"({', '.join(m for m in METHODS if m != 'none')}); with none every "
                        "frame is dreamed")
    clip = video_input(cfg)
    mode, fade = cfg["loop"]["mode"], cfg["loop"]["frames"]
    loop.rendered_count(clip.count, mode, fade, extend=False)
    dreamer, plan = plan_dreamer(cfg, clip.count, opts.notify,
                                 every_frame_first=method == "none")
    audio = None
    if cfg["audio"] == "source" and clip.audio is not None:  # as long as the output
        audio = replace(clip.audio, duration=loop.output_count(clip.count, mode, fade) / clip.fps)
    record = {"model": model_record(dreamer), **clip_record(clip, cfg, audio is not None)}
    salt = f"-{clip.record.get('bytes')}-{clip.record.get('mtime_ns')}"
    with output_lock(outputs):
        store = open_store(outputs, preset, opts, salt)
        window = SharedWindow(FrameWindow(clip, keep=LOOKAHEAD + 2))
        motion = flow_motion(cfg["flow"], window)
        finish = color_finish(window) if cfg["color"]["coherence"] else None
        scheduler = FrameScheduler(dreamer.engine, window[0], motion, plan, store, cfg["seed"],
                                   finish, carry=motion.carry_only, prefetch=motion.prefetch)
        try:
            return render_sequence(preset, opts, outputs, scheduler, clip.count, clip.fps,
                                   record, audio=audio, extend_loop=False)
        finally:
            motion.close()
            window.window.close()
