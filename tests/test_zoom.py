"""Zoom pipeline: motion, the frame scheduler, encoded outputs, resume and stale frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import QUIET, run_interrupted, zoom_preset
from media_probe import read_gif_info, read_mp4

from pipelines import zoom
from pipelines.run_options import RunOptions
from pipelines.sequence.checkpoints import CheckpointStore, work_dir_for
from pipelines.sequence.frame_plan import make_plan
from pipelines.sequence.scheduler import FramePlan, FrameScheduler
from pipelines.warp.affine import AffineMotion, affine_matrix, warp
from render.engine import DreamEngine, DreamSettings
from render.errors import UserError
from render.media.image import read_image
from render.objectives import layer


def test_identity_motion_leaves_frame_unchanged(photo):
    m = affine_matrix((80, 56), 1.0, 0.0, 0.0, 0.0)
    assert np.array_equal(warp(photo, m), photo)


def test_translation_moves_content_by_whole_pixels(photo):
    moved = warp(photo, affine_matrix((80, 56), 1.0, 0.0, 5.0, -3.0))
    assert np.array_equal(moved[10:40, 20:70], photo[13:43, 15:65])


def test_zoom_in_magnifies_the_centre():
    img = np.zeros((101, 101, 3), np.uint8)
    img[40:61, 40:61] = 255  # a 21 px square at the centre
    zoomed = warp(img, affine_matrix((101, 101), 2.0, 0.0, 0.0, 0.0))
    width = (zoomed[50, :, 0] > 127).sum()
    assert 40 <= width <= 44
    assert zoomed[:, :, 0].min() == 0  # reflected borders: no smearing of the square


def tiny_scheduler(tiny_cnn, photo, store, seed=0):
    engine = DreamEngine(tiny_cnn, lambda x: x, layer("c2"), "none", 16)
    settings = DreamSettings(octaves=1, steps=2, step_size=0.05, tile=64)
    motion = AffineMotion(photo, lambda t: (1.05, 1.0, 0.0, 0.0))
    return FrameScheduler(engine, motion, lambda t: FramePlan(settings), store, seed)


def test_scheduler_dreams_each_warped_previous_frame(tiny_cnn, photo, tmp_path):
    store = CheckpointStore(tmp_path / "w", "d1")
    frames = list(tiny_scheduler(tiny_cnn, photo, store).frames(4))
    assert [f.index for f in frames] == [0, 1, 2, 3] and not any(f.resumed for f in frames)
    assert store.finished() == 4
    # frame 2 is exactly dream(warp(frame 1)) with seed 0 + 2
    sched = tiny_scheduler(tiny_cnn, photo, CheckpointStore(tmp_path / "x", "d1"))
    again = sched.engine.dream(warp(frames[1].image, affine_matrix((80, 56), 1.05, 1.0, 0, 0)),
                               sched.plan(2).settings, seed=2)
    assert np.array_equal(again, frames[2].image)
    assert not np.array_equal(frames[2].image, frames[3].image)


def test_scheduler_resume_equals_uninterrupted(tiny_cnn, photo, tmp_path):
    full = [f.image for f in tiny_scheduler(
        tiny_cnn, photo, CheckpointStore(tmp_path / "a", "d")).frames(5)]
    store = CheckpointStore(tmp_path / "b", "d")
    for f in tiny_scheduler(tiny_cnn, photo, store).frames(5):
        if f.index == 2:
            break  # interrupted after frames 0..2 were checkpointed
    resumed = list(tiny_scheduler(tiny_cnn, photo, CheckpointStore(tmp_path / "b", "d")
                                  ).frames(5))
    assert [f.resumed for f in resumed] == [True, True, True, False, False]
    for a, b in zip(full, resumed, strict=True):
        assert np.array_equal(a, b.image)


def test_changed_digest_discards_stale_frames(tmp_path, photo):
    store = CheckpointStore(tmp_path / "w", "old")
    store.save(0, photo)
    assert CheckpointStore(tmp_path / "w", "old").finished() == 1
    assert CheckpointStore(tmp_path / "w", "new").finished() == 0


def test_zoom_writes_mp4_and_gif_with_sidecar(tmp_path):
    mp4, gif = tmp_path / "z.mp4", tmp_path / "z.gif"
    preset = zoom_preset(tmp_path, f"output=[{mp4},{gif}]")
    assert zoom.run(preset, QUIET) == [mp4, gif]
    meta, frames = read_mp4(mp4)
    assert frames.shape == (6, 48, 64, 3) and meta["fps"] == 20
    info = read_gif_info(gif.read_bytes())
    assert info.loop == 0 and info.delays == [5] * 6 and info.frames == 6
    record = json.loads((tmp_path / "z.mp4.json").read_text())
    assert record["frames"] == 6 and len(record["timings"]["frame_seconds"]) == 6
    assert record["model"]["weights"] == "random"
    assert not work_dir_for(mp4).exists()  # checkpoints go once the outputs are in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.gif", "z.gif.json", "z.mp4",
                                                          "z.mp4.json"]


def test_interrupted_render_resumes_to_identical_frames(tmp_path, monkeypatch):
    ref_dir, res_dir = tmp_path / "ref", tmp_path / "res"
    ref = tmp_path / "ref.mp4"
    zoom.run(zoom_preset(tmp_path, f"output={ref}", f"frames_dir={ref_dir}"), QUIET)

    out = tmp_path / "out.mp4"
    preset = zoom_preset(tmp_path, f"output={out}", f"frames_dir={res_dir}")
    run_interrupted(preset, monkeypatch, 3)
    assert not out.exists()  # nothing half-written under the output name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.mp4.part")] == []
    assert len(list(work_dir_for(out).glob("frame_*.png"))) == 3  # frames 0..2 kept

    zoom.run(preset, QUIET)
    record = json.loads((tmp_path / "out.mp4.json").read_text())
    assert record["resumed_frames"] == 3
    for t in range(6):
        name = f"frame_{t:06d}.png"
        assert np.array_equal(read_image(ref_dir / name), read_image(res_dir / name)), t
    assert np.array_equal(read_mp4(ref)[1], read_mp4(out)[1])


def test_changed_preset_does_not_reuse_frames(tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    run_interrupted(zoom_preset(tmp_path, f"output={out}"), monkeypatch, 3)
    zoom.run(zoom_preset(tmp_path, f"output={out}", "seed=1"), QUIET)
    assert json.loads((tmp_path / "out.mp4.json").read_text())["resumed_frames"] == 0


def test_reuse_frames_keeps_checkpoints_of_a_changed_preset(tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    run_interrupted(zoom_preset(tmp_path, f"output={out}"), monkeypatch, 2)
    zoom.run(zoom_preset(tmp_path, f"output={out}", "seed=1"),
             RunOptions(reuse_frames=True, quiet=True, notify=lambda s: None))
    assert json.loads((tmp_path / "out.mp4.json").read_text())["resumed_frames"] == 2


def test_force_starts_afresh(tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    preset = zoom_preset(tmp_path, f"output={out}")
    run_interrupted(preset, monkeypatch, 2)
    zoom.run(preset, RunOptions(force=True, quiet=True, notify=lambda s: None))
    assert json.loads((tmp_path / "out.mp4.json").read_text())["resumed_frames"] == 0


@pytest.mark.parametrize("override,message", [
    ("motion.zoom=0", "motion.zoom: 0 is not allowed; must be > 0"),
    ("motion.zoom='0:(1.02), 9:(1.05)'", "keyframe 9 is past the last frame"),
    ("motion.zoom='0:(1.02), 3:(0)'", "motion.zoom: 0 is not allowed"),
    ("motion.angle='0:1'", "malformed keyframe"),
    ("dream.steps='0:(2), 4:(0)'", "dream.steps: 0 is not allowed"),
    ("fps=0", "fps: must be > 0"),
    ("frames=-1", "frames: must be >= 1"),
    ("output=out/z.avi", "use one of .mp4, .gif"),
])
def test_bad_zoom_settings_fail_before_any_work(tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        zoom.run(zoom_preset(tmp_path, override), QUIET)


def test_scheduled_dream_settings_and_layer_weights(tmp_path):
    preset = zoom_preset(tmp_path, "dream.step_size='0:(0.01), 5:(0.05)'", "model.layer_cycle=0",
                         "model.layers={block4: '0:(1), 5:(0)', block8: 1}")
    model = preset.settings.model
    assert [(t.layer, t.weight) for t in model.layers] == [("block4", 1.0), ("block8", 1.0)]
    assert set(model.weight_schedules) == {"block4"}
    plan = make_plan(preset.settings.dream, model, model.layers)
    assert plan(5).settings.step_size == pytest.approx(0.05)
    assert plan(0).settings.octaves == 1
    assert list(plan(5).layer_weights) == [0.0, 1.0]
    assert plan(2).layer_weights[0] == pytest.approx(0.6)


def test_the_sidecar_says_which_layer_weights_are_scheduled(tmp_path, shared_engine):
    out = tmp_path / "out.mp4"
    zoom.run(zoom_preset(tmp_path, f"output={out}", "frames=2",
                         "model.layers={block4: '0.5 + 0.5 * sin(t)', block8: 2}"), QUIET)
    layers = json.loads((tmp_path / "out.mp4.json").read_text())["model"]["layers"]
    assert layers["block4"]["weight"] == "scheduled" and layers["block8"]["weight"] == 2.0


def test_another_input_under_the_same_name_does_not_resume(tmp_path, monkeypatch):
    from render.media.image import default_image, write_image

    photo, out = tmp_path / "in.png", tmp_path / "out.mp4"
    write_image(photo, default_image((64, 48), seed=1))
    run_interrupted(zoom_preset(tmp_path, f"input={photo}", f"output={out}"), monkeypatch, 3)
    write_image(photo, default_image((64, 48), seed=2))  # same name, same size, new picture
    zoom.run(zoom_preset(tmp_path, f"input={photo}", f"output={out}"), QUIET)
    assert json.loads((tmp_path / "out.mp4.json").read_text())["resumed_frames"] == 0


def test_the_sidecar_records_keyframes_where_they_were_used_and_a_gifs_played_rate(
        tmp_path, shared_engine):
    """frames=8 moves the preset's zoom keys (0 and 8 of 72 frames) to 0 and 1: the sidecar
    says so (it showed the file's keys); a 15 fps GIF plays at 100/7 fps (whole
    centiseconds), which its sidecar records (it said 15.0)."""
    import json

    from pipelines.cli import main

    gif, mp4 = tmp_path / "z.gif", tmp_path / "z.mp4"
    code = main(["render", "zoom", f"output=[{gif},{mp4}]", "frames=8", "fps=15",
                 "model.name=efficientnet_lite0", "model.weights=none", "size=[32,24]",
                 "dream.octaves=1", "dream.steps=1", "dream.first_frame.octaves=1",
                 "dream.first_frame.steps=1", "--quiet"])
    assert code == 0
    gif_record = json.loads((tmp_path / "z.gif.json").read_text())
    mp4_record = json.loads((tmp_path / "z.mp4.json").read_text())
    assert gif_record["config"]["motion"]["zoom"] == "0:(1.015), 1:(1.025)"
    assert gif_record["config"]["motion"]["angle"] == 0.15  # not moved: as the file wrote it
    assert gif_record["fps"] == pytest.approx(100 / 7) and mp4_record["fps"] == 15
