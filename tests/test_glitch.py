"""A damaged source frame (a green band in one frame) is not dragged along the flow: the dream
is not carried through it, like a cut (issue 14, item 6)."""

from __future__ import annotations

import numpy as np
from media_probe import make_clip

from pipelines.config.settings import FlowConfig
from pipelines.sequence.checkpoints import CheckpointStore
from pipelines.sequence.scheduler import FramePlan, FrameScheduler
from pipelines.source.inputs import Clip, generated_frames
from pipelines.warp.carry import FlowMotion, SharedWindow
from pipelines.warp.flow import glitch_mask
from render.engine import DreamSettings
from render.media import video as decode

SIZE, COUNT, GLITCH = (96, 64), 12, 5
BAND = slice(24, 34)


def clips() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The generated clip, and the same with a green band across frame GLITCH."""
    clean = list(generated_frames(SIZE, COUNT, seed=2))
    damaged = [f.copy() for f in clean]
    damaged[GLITCH][BAND] = (0, 255, 0)
    return clean, damaged


def test_glitch_mask_finds_the_band_and_nothing_in_a_clean_clip():
    clean, damaged = clips()
    mask = glitch_mask(*damaged[GLITCH - 1: GLITCH + 2])
    assert mask is not None and mask[BAND].mean() > 0.9 and mask[44:].mean() == 0
    assert all(glitch_mask(*clean[t - 1: t + 2]) is None for t in range(1, COUNT - 1))
    assert glitch_mask(*damaged[GLITCH - 2: GLITCH + 1]) is None  # its neighbours: no


def test_a_moving_test_pattern_has_no_glitch(tmp_path):
    info = decode.probe(make_clip(tmp_path / "t.mp4", seconds=2, size="320x240"))
    frames = list(decode.read_frames(info, info.fps, info.size))
    assert all(glitch_mask(*frames[t - 1: t + 2]) is None for t in range(1, len(frames) - 1))


def test_a_cut_is_not_a_glitch():
    a = list(generated_frames(SIZE, 3, seed=2))
    b = list(generated_frames(SIZE, 3, seed=7))
    assert glitch_mask(a[0], a[1], b[0]) is None and glitch_mask(a[1], b[0], b[1]) is None


class Identity:
    """Stands in for the dream engine: a dream that adds nothing, so the output shows only
    what is carried."""

    def dream(self, image, settings, seed=0, layer_weights=None, mask=None):
        return image


def render(frames: list[np.ndarray], tmp_path, name: str, notices: list[str]) -> np.ndarray:
    window = SharedWindow(Clip(lambda: iter(frames), COUNT, 24.0, SIZE))
    motion = FlowMotion(FlowConfig(), window, notices.append)
    scheduler = FrameScheduler(Identity(), motion, lambda t: FramePlan(DreamSettings()),
                               CheckpointStore(tmp_path / name, "d"), 0)
    return np.stack([f.image for f in scheduler.frames(COUNT)]).astype(float)


def green_excess(frames: np.ndarray, sources: list[np.ndarray]) -> np.ndarray:
    """Per frame: how much greener than its source frame the band's rows are."""
    green = lambda x: x[..., 1] - (x[..., 0] + x[..., 2]) / 2  # noqa: E731
    return (green(frames) - green(np.stack(sources).astype(float)))[:, BAND].mean(axis=(1, 2))


def test_the_band_is_not_carried_past_the_damaged_frame(tmp_path):
    clean, damaged = clips()
    notices: list[str] = []
    out = render(damaged, tmp_path, "d", notices)
    excess = green_excess(out, clean)
    assert excess[GLITCH] > 200  # the damaged frame itself shows its band: it is the source
    # without the reset the band stayed: 12.4, 9.0, 7.8, 5.8, 4.5, 3.5 grey levels greener
    assert np.abs(excess[GLITCH + 1:]).max() < 1.5, excess.round(1)
    assert np.array_equal(out[GLITCH + 1][BAND], damaged[GLITCH + 1][BAND])  # a fresh start
    far = np.abs(out - render(clean, tmp_path, "c", []))[:, 50:].mean(axis=(1, 2, 3))
    assert far.max() < 1, far.round(2)  # rows far from the band: as in the clean clip
    assert len(notices) == 1 and f"source frame {GLITCH} looks damaged" in notices[0]
