"""Video pipeline: flow warp, occlusion mask, carry, colour coherence, source reading, audio,
bad inputs and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import QUIET, BrighteningEngine, run_interrupted, video_preset
from media_probe import audio_streams, make_clip, read_audio, read_mp4

from pipelines import video
from pipelines.cli import main
from pipelines.config.settings import FlowConfig
from pipelines.sequence.checkpoints import CheckpointStore, work_dir_for
from pipelines.sequence.scheduler import FramePlan, FrameScheduler
from pipelines.source.inputs import Clip, FrameWindow, generated_frames
from pipelines.warp import color
from pipelines.warp.carry import FlowMotion, SharedWindow, carry
from pipelines.warp.color import coherence_finish
from pipelines.warp.flow import optical_flow, reliable_mask, warp_by_flow
from render.engine import DreamSettings
from render.errors import UserError
from render.media import video as decode
from render.media.image import default_image, read_image


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """`image` moved right by dx and down by dy (edges wrap)."""
    return np.roll(image, (dy, dx), axis=(0, 1))


def test_flow_warp_carries_a_dream_along_a_translating_texture():
    before = default_image((160, 120), seed=5)
    after = shifted(before, 3, 2)  # the source moves 3 px right, 2 px down
    dream = default_image((160, 120), seed=9)  # what was dreamed on `before`
    backward = optical_flow(after, before)
    carried = warp_by_flow(dream, backward)
    inner = (slice(16, -16), slice(16, -16))
    expected = shifted(dream, 3, 2)
    error = np.abs(carried[inner].astype(float) - expected[inner]).mean()
    unmoved = np.abs(dream[inner].astype(float) - expected[inner]).mean()
    assert error < 1.5 and unmoved > 5 * error
    assert np.allclose(backward[inner].mean(axis=(0, 1)), (-3, -2), atol=0.2)


def disc_frame(background: np.ndarray, texture: np.ndarray, cx: int) -> np.ndarray:
    frame = background.copy()
    yy, xx = np.mgrid[:background.shape[0], :background.shape[1]]
    inside = (xx - cx) ** 2 + (yy - 60) ** 2 <= 25**2
    frame[inside] = shifted(texture, cx, 0)[inside]
    return frame


def test_consistency_mask_marks_the_area_an_object_uncovers():
    background, texture = default_image((200, 120), seed=1), default_image((200, 120), seed=2)
    before, after = disc_frame(background, texture, 80), disc_frame(background, texture, 92)
    mask = reliable_mask(optical_flow(after, before), optical_flow(before, after))
    yy, xx = np.mgrid[:120, :200]
    old = (xx - 80) ** 2 + (yy - 60) ** 2 <= 25**2
    new = (xx - 92) ** 2 + (yy - 60) ** 2 <= 25**2
    uncovered = old & ~new  # background in frame t that the disc hid in frame t-1
    far = (np.abs(xx - 86) > 50) & (xx > 10) & (xx < 190)
    assert (~mask[uncovered]).mean() > 0.6
    assert mask[far].mean() > 0.95


def test_carry_blends_the_warped_dream_with_the_source():
    src0, src1 = default_image((40, 30), seed=1), default_image((40, 30), seed=2)
    dream = default_image((40, 30), seed=3)
    zero = np.zeros((30, 40, 2), np.float32)
    assert np.array_equal(carry(dream, src0, src1, zero, None, 1.0, "full"), dream)
    assert np.array_equal(carry(dream, src0, src1, None, np.zeros((30, 40)), 0.8, "full"),
                          src1)  # untrusted everywhere: the fresh source
    half = carry(dream, src0, src1, None, None, 0.5, "full").astype(float)
    assert np.abs(half - (dream / 2 + src1 / 2)).max() <= 1
    # residual: only what the dream added to frame t-1 moves on to frame t's source
    res = carry(dream, src0, src1, None, None, 1.0, "residual").astype(float)
    expected = np.clip(src1.astype(float) + dream - src0, 0, 255)
    assert np.abs(res - expected).max() <= 1


def test_match_stats_reaches_the_target_and_relative_target_follows_the_source():
    image = default_image((64, 48), seed=4)
    target = (np.array([60.0, 10.0, -5.0]), np.array([15.0, 8.0, 6.0]))
    mean, std = color.lab_stats(color.match_stats(image, target))
    assert np.allclose(mean, target[0], atol=1.0) and np.allclose(std, target[1], atol=1.0)
    s0 = color.lab_stats(image)
    d0 = (s0[0] + 5, s0[1] + 2)
    assert np.allclose(color.relative_target(s0, s0, d0)[0], d0[0])
    brighter = (s0[0] + np.array([10.0, 0, 0]), s0[1])
    assert np.allclose(color.relative_target(brighter, s0, d0)[0], d0[0] + [10, 0, 0])


@pytest.mark.parametrize("coherent", [True, False])
def test_colour_coherence_stops_brightness_drift(tmp_path, coherent):
    frames = [default_image((48, 32), seed=1)] * 8
    clip = Clip(lambda: iter(frames), 8, 24.0, (48, 32))
    window = SharedWindow(clip)
    flow = FlowConfig(method="static", blend=1.0, mode="full", consistency=True)
    scheduler = FrameScheduler(BrighteningEngine(), FlowMotion(flow, window),
                               lambda t: FramePlan(DreamSettings()), CheckpointStore(
                                   tmp_path / "w", "d"), 0,
                               coherence_finish(window.__getitem__) if coherent else None)
    out = [f.image for f in scheduler.frames(8)]
    drift = color.lab_stats(out[-1])[0][0] - color.lab_stats(out[0])[0][0]
    assert abs(drift) < 1.0 if coherent else drift > 20


def test_frame_window_reads_forward_and_keeps_frame_zero():
    frames = list(generated_frames((32, 24), 6, seed=1))
    window = FrameWindow(Clip(lambda: iter(frames), 6, 24.0, (32, 24)))
    assert np.array_equal(window[3], frames[3]) and np.array_equal(window[2], frames[2])
    assert np.array_equal(window[4], frames[4]) and np.array_equal(window[0], frames[0])
    with pytest.raises(IndexError):
        window[1]
    with pytest.raises(UserError, match="ended after 6 frames"):
        window[6]


def test_generated_clip_moves():
    a, b = list(generated_frames((64, 48), 2, seed=0))
    assert a.shape == (48, 64, 3) and not np.array_equal(a, b)


def test_video_keeps_frame_count_rate_and_even_size(tmp_path):
    source = make_clip(tmp_path / "in.mp4", seconds=0.6, fps=25, size="66x50")
    out = tmp_path / "out.mp4"
    assert video.run(video_preset(f"input={source}", f"output={out}"), QUIET) == [out]
    info = decode.probe(source)
    meta, frames = read_mp4(out)
    # 66x50 fit inside 64x48 keeping its aspect ratio, both sides even: 62x48
    assert frames.shape == (decode.count_frames(info, 25), 48, 62, 3) == (15, 48, 62, 3)
    assert meta["fps"] == 25 and audio_streams(out) == []  # a source without audio is fine
    record = json.loads((tmp_path / "out.mp4.json").read_text())
    assert record["clip"]["frames"] == 15 and record["audio"] is None
    assert record["flow"]["method"] == "dis"


def test_video_resamples_to_a_requested_rate_and_range(tmp_path):
    source = make_clip(tmp_path / "in.mp4", seconds=2, fps=25)
    out = tmp_path / "out.mp4"
    video.run(video_preset(f"input={source}", f"output={out}", "fps=10", "start=0.5",
                           "end=1.5"), QUIET)
    meta, frames = read_mp4(out)
    assert meta["fps"] == 10 and len(frames) == 10


def tone_change_time(samples: np.ndarray, rate: int = 16000) -> float:
    """When a 400 Hz tone turns into 1600 Hz: zero crossings per 10 ms window."""
    win = rate // 100
    n = len(samples) // win
    signs = np.signbit(samples[: n * win].reshape(n, win))
    crossings = (signs[:, 1:] != signs[:, :-1]).sum(axis=1)  # ~8 at 400 Hz, ~32 at 1600 Hz
    return float(np.argmax(crossings > 20) * win / rate)


TONE = "if(lt(t,1),sin(2*PI*400*t),sin(2*PI*1600*t))"  # 400 Hz, then 1600 Hz from 1.0 s


@pytest.mark.parametrize("suffix,codec,kept", [(".mp4", "aac", "copied"),
                                               (".mkv", "pcm_s16le", "aac")])
def test_video_keeps_trimmed_audio_in_sync(tmp_path, suffix, codec, kept):
    source = make_clip(tmp_path / f"in{suffix}", seconds=2, fps=25, audio=TONE)
    assert decode.probe(source).audio_codec == codec
    out = tmp_path / "out.mp4"
    video.run(video_preset(f"input={source}", f"output={out}", "start=0.5", "end=1.5"), QUIET)
    _, frames = read_mp4(out)
    assert len(frames) == 25 and audio_streams(out) == ["aac"]
    samples = read_audio(out)
    assert abs(len(samples) / 16000 - 1.0) < 0.05  # as long as the video
    assert abs(tone_change_time(samples) - 0.5) <= 0.03  # the 1.0 s change, 0.5 s in
    assert json.loads((tmp_path / "out.mp4.json").read_text())["audio"]["mux"] == kept


def test_audio_none_drops_the_track(tmp_path):
    source = make_clip(tmp_path / "in.mp4", seconds=0.4, audio=TONE)
    out = tmp_path / "out.mp4"
    video.run(video_preset(f"input={source}", f"output={out}", "audio=none"), QUIET)
    assert audio_streams(out) == []


def test_video_without_input_renders_the_generated_clip(tmp_path):
    out = tmp_path / "gen.gif"
    video.run(video_preset(f"output={out}", "frames=3", "fps=20"), QUIET)
    record = json.loads((tmp_path / "gen.gif.json").read_text())
    assert record["clip"]["generated"] and record["frames"] == 3 and record["size"] == [64, 48]


def bad_inputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    tone = tmp_path / "tone.m4a"
    from media_probe import ffmpeg

    ffmpeg("-f", "lavfi", "-i", "sine=d=0.5", str(tone))
    one = make_clip(tmp_path / "one.mp4", frames=1)
    two = make_clip(tmp_path / "two.mp4", seconds=0.5)
    return {
        "missing": (f"input={tmp_path / 'nope.mp4'}", "input video not found"),
        "text": (f"input={text}", "not a video ffmpeg can read"),
        "audio only": (f"input={tone}", "not a video ffmpeg can read"),
        "one frame": (f"input={one}", "has 1 video frame; a video render needs at least 2"),
        "zero frames": (f"input={two} start=3", "has 0 video frames after 3 s"),
        "bad range": (f"input={two} start=1 end=0.5", "end: must be after start"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "audio only", "one frame", "zero frames",
                                  "bad range"])
def test_bad_video_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    override, message = bad_inputs(tmp_path)[case]
    out = tmp_path / "out.mp4"
    code = main(["render", "video", *override.split(), f"output={out}", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not out.exists() and not work_dir_for(out).exists()


def test_interrupted_video_resumes_to_identical_frames(tmp_path, monkeypatch):
    source = make_clip(tmp_path / "in.mp4", seconds=0.28, fps=25)  # 7 frames
    ref_dir, res_dir = tmp_path / "ref", tmp_path / "res"
    video.run(video_preset(f"input={source}", f"output={tmp_path / 'ref.mp4'}",
                           f"frames_dir={ref_dir}"), QUIET)
    out = tmp_path / "out.mp4"
    preset = video_preset(f"input={source}", f"output={out}", f"frames_dir={res_dir}")
    run_interrupted(preset, monkeypatch, 4, run=video.run)
    assert not out.exists()
    video.run(preset, QUIET)
    assert json.loads((tmp_path / "out.mp4.json").read_text())["resumed_frames"] == 4
    names = sorted(p.name for p in ref_dir.glob("frame_*.png"))
    assert len(names) == 7
    for name in names:
        assert np.array_equal(read_image(ref_dir / name), read_image(res_dir / name)), name


def test_changed_input_file_does_not_reuse_frames(tmp_path, monkeypatch):
    source = make_clip(tmp_path / "in.mp4", seconds=0.28, fps=25)
    out = tmp_path / "out.mp4"
    preset = video_preset(f"input={source}", f"output={out}")
    run_interrupted(preset, monkeypatch, 3, run=video.run)
    make_clip(source, seconds=0.32, fps=25)  # same name, new content
    video.run(preset, QUIET)
    assert json.loads((tmp_path / "out.mp4.json").read_text())["resumed_frames"] == 0


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif"])
def test_reads_common_containers_at_a_constant_rate(tmp_path, suffix):
    source = make_clip(tmp_path / f"in{suffix}", seconds=0.8, fps=20, size="48x32")
    info = decode.probe(source)
    assert info.size == (48, 32)
    frames = list(decode.read_frames(info, 10, (24, 16)))
    assert len(frames) == decode.count_frames(info, 10) == 8
    assert frames[0].shape == (16, 24, 3) and frames[0].dtype == np.uint8


def test_video_crossfade_loop_shortens_clip_and_audio_alike(tmp_path):
    source = make_clip(tmp_path / "in.mp4", seconds=1, fps=25, audio=TONE)
    out = tmp_path / "out.mp4"
    video.run(video_preset(f"input={source}", f"output={out}", "loop.mode=crossfade",
                           "loop.frames=5"), QUIET)
    _, frames = read_mp4(out)
    assert len(frames) == 20  # the clip's own 5-frame tail is faded into its head
    assert abs(len(read_audio(out)) / 16000 - 0.8) < 0.05
