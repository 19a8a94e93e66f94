"""The levers that keep long sequences alive (issue 24): feedback noise, the layer cycle,
the zoom's colour/contrast hold and the video's strength hold. What they do to a render is
measured by bench/longevity.py; here, that each does what it says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import zoom_preset

from pipelines.config import presets
from pipelines.sequence.checkpoints import CheckpointStore
from pipelines.sequence.frame_plan import cycled, make_plan
from pipelines.sequence.scheduler import FramePlan, FrameScheduler
from pipelines.warp.affine import AffineMotion
from pipelines.warp.color import hold_finish, lab_stats
from pipelines.warp.feedback import add_noise
from pipelines.warp.finish import chain, video_finish
from pipelines.warp.strength import held, strength, strength_finish
from render.engine import DreamEngine, DreamSettings
from render.models import LayerTerm
from render.objectives import layer


def test_noise_is_grey_seeded_per_frame_and_of_the_level_asked():
    flat = np.full((120, 160, 3), 128, np.uint8)
    a = add_noise(flat, 8.0, seed=3, t=5)
    assert np.array_equal(a, add_noise(flat, 8.0, seed=3, t=5))  # a resumed frame is the same
    assert not np.array_equal(a, add_noise(flat, 8.0, seed=3, t=6))
    diff = a.astype(np.float32) - 128
    assert 7.0 < diff[..., 0].std() < 9.0
    assert np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])
    assert add_noise(flat, 0.0, 3, 5) is flat


def test_layer_cycle_lets_each_layer_lead_in_turn_at_a_constant_sum():
    period, n = 120, 3
    for t in range(0, 240, 7):
        assert sum(cycled(t, i, n, period) for i in range(n)) == pytest.approx(n / 2)
    leads = [max(range(n), key=lambda i, t=t: cycled(t, i, n, period)) for t in (0, 40, 80)]
    assert leads == [1, 2, 0]  # the middle layer first (frame 0 keeps the default look)
    assert cycled(17, 1, n, 0) == 1.0 and cycled(17, 0, 1, period) == 1.0  # off / one layer


def test_plan_cycles_weights_but_not_scheduled_layers():
    preset = presets.load("zoom", ["model.layer_cycle=60", "model.layers={mixed3: 1, "
                                   "mixed5: 2, mixed7: '0:(1), 10:(3)'}"])
    s = preset.settings
    terms = (LayerTerm("mixed3"), LayerTerm("mixed5", 2.0), LayerTerm("mixed7"))
    plan = make_plan(s.dream, s.model, terms)
    w0, w20 = plan(0).layer_weights, plan(20).layer_weights
    assert w0 is not None and w20 is not None
    assert w0[:2] == pytest.approx([0.25, 2.0])  # the middle layer leads at frame 0
    assert w20[:2] == pytest.approx([cycled(20, 0, 3, 60), 2.0 * cycled(20, 1, 3, 60)])
    assert w20[2] == pytest.approx(3.0)  # its own schedule wins
    fixed = make_plan(s.dream, presets.load("zoom", ["model.layer_cycle=0"]).settings.model,
                      terms)
    assert fixed(20).layer_weights is None


def test_hold_finish_brings_every_frame_back_to_frame_zeros_look(photo):
    finish = hold_finish()
    first = finish(0, photo, photo)
    assert first is photo
    # a frame gone dark and contrasty, as a long feedback zoom goes
    drifted = np.clip((photo.astype(np.float32) - 128) * 1.8 + 70, 0, 255).astype(np.uint8)
    back = finish(1, drifted, first)
    (m0, s0), (m1, s1), (md, sd) = lab_stats(photo), lab_stats(back), lab_stats(drifted)
    assert abs(m1[0] - m0[0]) < 0.1 * abs(md[0] - m0[0])
    assert abs(s1[0] - s0[0]) < 0.1 * abs(sd[0] - s0[0])


def test_strength_hold_caps_the_dream_at_a_multiple_of_frame_zeros(photo):
    rng = np.random.default_rng(0)
    source = photo
    first = np.clip(source + rng.normal(0, 10, source.shape), 0, 255).astype(np.uint8)
    base = strength(first, source)
    finish = strength_finish(lambda t: source, 1.2)
    assert finish(0, first, first) is first
    mild = np.clip(source + rng.normal(0, 8, source.shape), 0, 255).astype(np.uint8)
    assert finish(1, mild, first) is mild  # below the cap: untouched
    buried = np.clip(source + rng.normal(0, 40, source.shape), 0, 255).astype(np.uint8)
    capped = finish(2, buried, first)
    assert strength(capped, source) == pytest.approx(1.2 * base, rel=0.03)
    # what the dream painted stays, only less of it
    d, c = (buried.astype(np.float32) - source), (capped.astype(np.float32) - source)
    assert np.corrcoef(d.ravel(), c.ravel())[0, 1] > 0.95
    assert held(source, source, 0.0) is source


def test_video_finish_holds_strength_before_matching_colours(photo):
    video = presets.load("video", ["flow.max_strength=1", "color.coherence=true"]
                         ).settings.video
    finish = video_finish(video, lambda t: photo)
    assert finish is not None
    first = cv2.GaussianBlur(photo, (0, 0), 3)
    strong = cv2.GaussianBlur(photo, (0, 0), 9)
    out = finish(1, strong, finish(0, first, first))
    assert strength(out, photo) < strength(strong, photo)
    plain = presets.load("video", ["color.coherence=false", "flow.max_strength=null"]
                         ).settings.video
    assert video_finish(plain, lambda t: photo) is None
    assert chain(None, None) is None


def test_zoom_with_feedback_and_hold_resumes_identically(tiny_cnn, photo, tmp_path):
    """Noise is drawn from (seed, t) and the hold from the finished frame 0: a render stopped
    and resumed gives the frames an uninterrupted one does."""
    engine = DreamEngine(tiny_cnn, lambda x: x, layer("c2"), "none", 16)
    settings = DreamSettings(octaves=1, steps=2, step_size=0.05, tile=64)

    def scheduler(store):
        motion = AffineMotion(photo, lambda t: (1.05, 1.0, 0.0, 0.0), lambda t: 4.0, seed=7)
        return FrameScheduler(engine, motion, lambda t: FramePlan(settings), store, 7,
                              hold_finish())

    full = [f.image for f in scheduler(CheckpointStore(tmp_path / "a", "d")).frames(5)]
    store = CheckpointStore(tmp_path / "b", "d")
    for f in scheduler(store).frames(5):
        if f.index == 2:
            break
    resumed = [f.image for f in scheduler(CheckpointStore(tmp_path / "b", "d")).frames(5)]
    assert all(np.array_equal(a, b) for a, b in zip(full, resumed, strict=True))
    l0 = lab_stats(full[0])
    for frame in full[1:]:
        assert np.allclose(lab_stats(frame)[0][0], l0[0][0], atol=1.5)


def test_feedback_keys_are_checked_and_recorded(tmp_path):
    preset = zoom_preset(tmp_path, "feedback.noise=0:(2), 3:(6)", "color.coherence=true")
    s = preset.settings
    assert s.feedback.noise.at(3) == 6.0 and s.color_coherence
    assert preset.record()["config"]["feedback"] == {"noise": "0:(2), 3:(6)"}


def test_layer_cycle_moves_between_the_models_cycle_layers_unless_layers_are_named():
    from pipelines import dreaming
    from render.models import MODELS

    for spec in MODELS.values():
        assert len(spec.cycle_layers) >= 2 and set(spec.cycle_layers) <= set(spec.layers)
    cycling = presets.load("zoom", ["model.name=efficientnet_lite0", "model.weights=none",
                                    "model.layer_cycle=60"]).settings
    built = dreaming.build(cycling.model, cycling.dream, lambda m: None)
    assert [t.layer for t in built.terms] == list(MODELS["efficientnet_lite0"].cycle_layers)
    named = presets.load("zoom", ["model.name=efficientnet_lite0", "model.weights=none",
                                  "model.layer_cycle=60", "model.layers=[block3]"]).settings
    assert [t.layer for t in dreaming.build(named.model, named.dream, lambda m: None).terms] \
        == ["block3"]


def test_frames_carried_between_dreams_get_no_noise(photo):
    motion = AffineMotion(photo, lambda t: (1.05, 1.0, 0.0, 0.0), lambda t: 8.0, seed=1)
    plain = AffineMotion(photo, lambda t: (1.05, 1.0, 0.0, 0.0))
    assert np.array_equal(motion.carry(3, photo), plain.move(3, photo))
    assert not np.array_equal(motion.move(3, photo), plain.move(3, photo))
