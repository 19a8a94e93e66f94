"""Cadence (dream every k-th frame, carry between) and the work the scheduler overlaps with the
dream: flow computed ahead in a thread, checkpoints written in a thread."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import QUIET, BrighteningEngine, interrupt_after, video_preset
from media_probe import make_clip

from pipelines import video
from pipelines.cli import main
from pipelines.config.settings import FlowConfig
from pipelines.sequence.checkpoints import CheckpointStore
from pipelines.sequence.scheduler import FramePlan, FrameScheduler
from pipelines.source.inputs import Clip, generated_frames
from pipelines.warp.affine import AffineMotion, affine_matrix, warp
from pipelines.warp.carry import FlowMotion, SharedWindow
from pipelines.warp.color import coherence_finish
from render.engine import DreamEngine, DreamSettings
from render.media.image import read_image
from render.objectives import layer

SETTINGS = DreamSettings(octaves=1, steps=2, step_size=0.05, tile=64)


def zoom_move(t: int, previous: np.ndarray) -> np.ndarray:
    return warp(previous, affine_matrix((80, 56), 1.05, 1.0, 0, 0))


def zoom_motion(first: np.ndarray) -> AffineMotion:
    return AffineMotion(first, lambda t: (1.05, 1.0, 0.0, 0.0))


class CountingEngine(DreamEngine):
    """The real engine, counting its dream calls."""

    calls = 0

    def dream(self, *args, **kwargs):
        self.calls += 1
        return super().dream(*args, **kwargs)


def test_cadence_dreams_every_kth_frame_and_carries_the_rest(tiny_cnn, photo, tmp_path):
    engine = CountingEngine(tiny_cnn, lambda x: x, layer("c2"), "none", 16)
    plan = lambda t: FramePlan(SETTINGS, dream=t % 3 == 0)  # noqa: E731
    sched = FrameScheduler(engine, zoom_motion(photo), plan,
                           CheckpointStore(tmp_path / "w", "d"), seed=0)
    frames = list(sched.frames(7))
    assert engine.calls == 3  # frames 0, 3 and 6
    assert [f.dream_seconds > 0 for f in frames] == [True, False, False, True, False, False,
                                                      True]
    # a carried frame is exactly the moved previous frame; a dreamed one is dream(moved)
    assert np.array_equal(frames[1].image, zoom_move(1, frames[0].image))
    assert np.array_equal(frames[2].image, zoom_move(2, frames[1].image))
    again = engine.dream(zoom_move(3, frames[2].image), SETTINGS, seed=3)
    assert np.array_equal(again, frames[3].image)


def test_checkpoint_write_error_stops_the_render_and_keeps_earlier_frames(tiny_cnn, photo,
                                                                          tmp_path):
    class FullDisk(CheckpointStore):
        def save(self, t, frame):
            if t == 2:
                raise OSError(28, "No space left on device")
            super().save(t, frame)

    store = FullDisk(tmp_path / "w", "d")
    engine = DreamEngine(tiny_cnn, lambda x: x, layer("c2"), "none", 16)
    sched = FrameScheduler(engine, zoom_motion(photo), lambda t: FramePlan(SETTINGS), store, 0)
    with pytest.raises(OSError, match="No space left"):
        for _ in sched.frames(6):
            pass
    assert store.finished() == 2


class InlineFlowMotion(FlowMotion):
    """FlowMotion that computes every flow when it is needed, in the main thread."""

    def prefetch(self, t: int) -> None:
        pass


def flow_scheduler(tmp_path, name, prefetch: bool, cadence: int = 1):
    frames = list(generated_frames((64, 48), 6, seed=2))
    window = SharedWindow(Clip(lambda: iter(frames), 6, 24.0, (64, 48)))
    flow = FlowConfig(method="dis", blend=0.8, mode="full", consistency=True)
    motion = (FlowMotion if prefetch else InlineFlowMotion)(flow, window)
    plan = lambda t: FramePlan(DreamSettings(), dream=t % cadence == 0)  # noqa: E731
    sched = FrameScheduler(BrighteningEngine(), motion, plan,
                           CheckpointStore(tmp_path / name, "d"), 0,
                           coherence_finish(window.__getitem__))
    return sched, motion


@pytest.mark.parametrize("cadence", [1, 2])
def test_flow_computed_ahead_in_a_thread_gives_the_same_frames(tmp_path, cadence):
    ahead, motion = flow_scheduler(tmp_path, "a", prefetch=True, cadence=cadence)
    inline, _ = flow_scheduler(tmp_path, "b", prefetch=False, cadence=cadence)
    out_ahead = [f.image for f in ahead.frames(6)]
    assert motion._ready == {}  # every prefetched flow was used
    out_inline = [f.image for f in inline.frames(6)]
    for a, b in zip(out_ahead, out_inline, strict=True):
        assert np.array_equal(a, b)
    motion.close()


def test_carried_frame_keeps_the_whole_dream_where_the_flow_is_trusted():
    frames = [np.full((24, 32, 3), 100, np.uint8)] * 3
    window = SharedWindow(Clip(lambda: iter(frames), 3, 24.0, (32, 24)))
    flow = FlowConfig(method="static", blend=0.5, mode="full", consistency=True)
    motion = FlowMotion(flow, window)
    dream = np.full((24, 32, 3), 180, np.uint8)
    assert np.array_equal(motion.carry(1, dream), dream)
    assert (motion.move(2, dream) == 140).all()  # dreamed frames blend with the source
    motion.close()


def test_video_cadence_resumes_to_identical_frames(tmp_path, monkeypatch):
    source = make_clip(tmp_path / "in.mp4", seconds=0.28, fps=25)  # 7 frames
    ref_dir, res_dir = tmp_path / "ref", tmp_path / "res"
    ref = tmp_path / "ref.mp4"
    video.run(video_preset(f"input={source}", f"output={ref}", f"frames_dir={ref_dir}",
                           "dream.cadence=2"), QUIET)
    record = json.loads((tmp_path / "ref.mp4.json").read_text())
    assert len(record["timings"]["frame_seconds"]) == 7
    assert record["timings"]["dream_seconds"] > 0
    out = tmp_path / "out.mp4"
    preset = video_preset(f"input={source}", f"output={out}", f"frames_dir={res_dir}",
                          "dream.cadence=2")
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        interrupt_after(m, 2)  # frames 0 and 2 dreamed, stopped while dreaming frame 4
        video.run(preset, QUIET)
    video.run(preset, QUIET)
    assert json.loads((tmp_path / "out.mp4.json").read_text())["resumed_frames"] == 4
    for t in range(7):
        name = f"frame_{t:06d}.png"
        assert np.array_equal(read_image(ref_dir / name), read_image(res_dir / name)), name


def test_cadence_needs_a_carrying_flow_method(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(["render", "video", "frames=3", "flow.method=none", "dream.cadence=2",
                 f"output={out}", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "dream.cadence" in err, err
    assert list(tmp_path.iterdir()) == []
