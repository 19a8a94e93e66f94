"""Keyframes of a preset file follow the clip's length; only keys the command line set that are
past the end are refused (issue 14, item 4)."""

from __future__ import annotations

import pytest

from pipelines.config import presets
from pipelines.config.keyframes import parse, rescaled, truncated
from render.errors import ConfigError, UserError


def test_the_zoom_preset_renders_eight_frames():
    # pipelines/presets/zoom.yaml: motion.zoom "0:(1.015), 8:(1.025)" for 72 frames
    zoom = presets.load("zoom", ["frames=8"]).settings.motion.zoom
    assert zoom.frames == (0, 1) and zoom.values == (1.015, 1.025)  # 8 * 7 / 71 -> 1


def test_preset_keys_keep_their_place_in_a_longer_clip():
    zoom = presets.load("zoom", ["frames=600"]).settings.motion.zoom
    assert zoom.frames == (0, round(8 * 599 / 71))


def test_preset_keys_are_untouched_when_frames_is_the_files():
    zoom = presets.load("zoom", ["fps=30"]).settings.motion.zoom
    assert zoom.frames == (0, 8)


def test_a_command_line_key_past_the_end_is_refused_with_its_origin():
    with pytest.raises(UserError, match=r"^command line: motion.zoom=0:\(1\), 8:\(1.1\): "
                                        r"motion.zoom: keyframe 8 is past the last frame"):
        presets.load("zoom", ["frames=8", "motion.zoom=0:(1), 8:(1.1)"])


def test_a_preset_file_key_past_its_own_end_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text('pipeline: zoom\nframes: 10\nmotion: {zoom: "0:(1.0), 12:(1.1)"}\n')
    with pytest.raises(UserError, match=rf"^{path}: motion.zoom: keyframe 12 is past"):
        presets.load(str(path))


def test_layer_weight_schedules_from_the_file_are_scaled_too(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text('pipeline: zoom\nframes: 101\nmodel: {name: efficientnet_lite0, '
                    'layers: {block6: "0:(0), 50:(1), 100:(2)"}}\n')
    settings = presets.load(str(path), ["frames=11"]).settings
    assert settings.model.weight_schedules["block6"].frames == (0, 5, 10)


def test_scaling_keeps_the_key_nearest_its_place_when_two_land_on_one_frame():
    sched = parse("k", "0:(1), 36:(2), 71:(3)")
    assert rescaled(sched, 72, 2).frames == (0, 1)
    assert rescaled(sched, 72, 2).values == (1, 3)  # 36 -> 0.51 loses to 71 -> 1.0


def test_truncating_holds_the_value_the_schedule_had_at_the_last_frame():
    sched = truncated(parse("k", "0:(0), 10:(10), 20:(20)"), 16)
    assert sched.frames == (0, 10, 15) and sched.values == (0, 10, 15)


def test_video_keys_from_the_file_are_cut_at_the_clips_end(tmp_path):
    path = tmp_path / "clip.yaml"
    path.write_text('pipeline: video\ndream: {steps: "0:(1), 100:(3)"}\n')
    settings = presets.load(str(path)).settings.fit_keyframes(51)
    assert settings.dream.steps.frames == (0, 50) and settings.dream.steps.values == (1, 2)


def test_video_keys_from_the_command_line_past_the_end_are_refused_with_their_origin():
    preset = presets.load("video", ["dream.steps=0:(1), 100:(3)"])
    with pytest.raises(ConfigError) as caught:
        preset.settings.fit_keyframes(48)
    assert str(preset.refuse(caught.value)).startswith(
        "command line: dream.steps=0:(1), 100:(3): dream.steps: keyframe 100 is past")
