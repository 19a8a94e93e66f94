"""Seamless loops: how many frames to render for a loop, the order and cross-fade that turn
rendered frames into a loop, and the loop seam measure (|last - first| over the median step).

Crossfade: with rendered frames f_0 .. f_{T-1} and L fade frames, the loop has M = T - L frames;
out_i = f_i for i >= L, and for i < L out_i = a_i f_{M+i} + (1 - a_i) f_i with a_i = 1 - i/L. So
the last frame f_{M-1} is followed by f_M — one ordinary step of the sequence — and the head
fades from the continuation back to the start (keeping the contrast both frames have, see
`crossfade`). For a zoom both f_i and f_{M+i} keep zooming at
the same rate, so the loop keeps zooming through the seam. The file starts halfway through the
fade (out_{L/2} .. out_{M-1}, out_0 .. out_{L/2-1}): a loop plays the same either way, but the
file's wrap then falls where frames are blended, not on a plain step. Pingpong plays
f_0 .. f_{T-1} and back down to f_1.

Frames are uint8 RGB (H, W, 3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from render.errors import ConfigError


def rendered_count(frames: int, mode: str, fade: int, *, extend: bool) -> int:
    """Frames to render for a loop of `frames` output frames. `extend` (zoom): a crossfade
    renders `fade` extra frames; otherwise (video) the clip's own tail becomes the fade."""
    if mode == "crossfade":
        total = frames + fade if extend else frames
        if fade > total - fade:
            raise ConfigError("loop.frames", f"loop.frames: {fade} is too many for {frames} frames "
                            f"(at most {frames if extend else frames // 2})")
        return total
    return frames


def output_count(rendered: int, mode: str, fade: int) -> int:
    """Frames in the loop made of `rendered` frames."""
    if mode == "crossfade":
        return rendered - fade
    if mode == "pingpong":
        return max(rendered, 2 * rendered - 2)
    return rendered


def compose(frame: Callable[[int], np.ndarray], rendered: int, mode: str,
            fade: int) -> Iterator[np.ndarray]:
    """The loop's frames in play order; `frame(i)` returns rendered frame i."""
    if mode == "pingpong":
        order = [*range(rendered), *range(rendered - 2, 0, -1)]
        yield from (frame(i) for i in order)
        return
    if mode != "crossfade":
        yield from (frame(i) for i in range(rendered))
        return
    m = rendered - fade
    for i in (*range(fade // 2, m), *range(fade // 2)):
        if i >= fade:
            yield frame(i)
            continue
        yield crossfade(frame(m + i), frame(i), 1.0 - i / fade)


def crossfade(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """`weight` x a + (1 - weight) x b, keeping the contrast the two frames have: a plain mix of
    unrelated detail averages it away, and the seam of a loop looks hazy and double-exposed.
    Each channel's deviations from its mean are scaled back to the weighted mean of the two
    frames' standard deviations."""
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    mixed = weight * fa + (1.0 - weight) * fb
    mean = mixed.mean(axis=(0, 1))
    spread = mixed.std(axis=(0, 1))
    wanted = weight * fa.std(axis=(0, 1)) + (1.0 - weight) * fb.std(axis=(0, 1))
    scale = np.where(spread > 1e-3, wanted / np.maximum(spread, 1e-3), 1.0)
    return np.clip((mixed - mean) * scale + mean + 0.5, 0, 255).astype(np.uint8)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b).mean())


def max_step_ratio(frames: Sequence[np.ndarray]) -> float:
    """The largest change between frames played in a row (the wrap included) over the median:
    a jump anywhere in the loop shows here even when the wrap itself is smooth."""
    steps = [_diff(frames[(t + 1) % len(frames)], frames[t]) for t in range(len(frames))]
    return max(steps) / max(float(np.median(steps)), 1e-9)


def seam_ratio(frames: Sequence[np.ndarray]) -> float:
    """Loop seam: mean |last - first| over the median mean |f_{t+1} - f_t|, as played; <= 1
    means the loop point is no bigger a change than an ordinary step."""
    steps = [_diff(frames[t + 1], frames[t]) for t in range(len(frames) - 1)]
    return _diff(frames[-1], frames[0]) / max(float(np.median(steps)), 1e-9)


def compose_audio(pcm: np.ndarray, rate: int, fps: float, rendered: int,
                  fade: int) -> np.ndarray:
    """The soundtrack of a crossfade loop made as `compose` makes its frames: float PCM
    (samples, channels) of the `rendered` frames' time (padded with silence) becomes
    M = rendered - fade frames' worth whose first `fade` frames fade from the continuation
    (samples of frames M..M+fade-1) into the start, and the file starts fade // 2 frames in,
    so the sound loops at the same seam as the picture."""
    per = rate / fps
    m_len, fade_len = round((rendered - fade) * per), round(fade * per)
    need = m_len + fade_len
    padded = np.zeros((need, pcm.shape[1]), np.float32)
    padded[:min(len(pcm), need)] = pcm[:need]
    a = (1.0 - np.arange(fade_len) / max(fade_len, 1))[:, None]
    head = a * padded[m_len:m_len + fade_len] + (1.0 - a) * padded[:fade_len]
    looped = np.concatenate([head, padded[fade_len:m_len]]).astype(np.float32)
    start = round((fade // 2) * per)
    return np.concatenate([looped[start:], looped[:start]])
