"""Music videos: audio features on known signals, soundtracks muxed in sync (trimmed, from
audio.start, cross-faded at a loop's seam, replacing a video's sound), --preview, and the
one-line refusals of bad audio. librosa is slow to load: one module fixture warms it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import QUIET, video_preset, zoom_preset
from media_probe import audio_streams, make_clip, read_audio, read_mp4

from pipelines import zoom
from pipelines.audio import features as audio_features
from pipelines.audio import synth as audio_synth
from pipelines.cli import main
from pipelines.sequence import loop
from render.media import audio as audio_io

RATE = audio_features.SAMPLE_RATE


@pytest.fixture(scope="module")
def features():
    """audio_features.compute, with librosa loaded (and its compiled code warm) once."""
    audio_features.compute(np.zeros(RATE, np.float32), RATE, 10, 10, {"beat", "rms"}, set(), 4)
    return audio_features.compute


def decoded(tmp_path, pcm: np.ndarray, rate: int = audio_synth.RATE) -> np.ndarray:
    """`pcm` through a WAV file and the bundled ffmpeg, as a render reads a track."""
    path = audio_io.write_wav(tmp_path / "track.wav", pcm, rate)
    return audio_io.decode(path, RATE)[:, 0]


@pytest.mark.parametrize("fps", [24, 25])
def test_beat_peaks_land_on_the_click_track_beats(features, tmp_path, fps):
    pcm, times = audio_synth.click_track(120, 12, offset=0.27)
    found = features(decoded(tmp_path, pcm), RATE, fps, 12 * fps, {"beat"}, set(), 4.0)
    beat = found.values["beat"]
    peaks = np.flatnonzero(beat == 1.0)
    hits = sum(np.abs(peaks - t * fps).min() <= 1 for t in times)
    assert hits / len(times) >= 0.95 and len(peaks) <= len(times) + 1
    assert found.bpm == pytest.approx(120, abs=2)
    after = peaks[2]  # between beats it decays: e^-4 just before the next
    assert beat[after + 1] < 1 and np.all(np.diff(beat[after:peaks[3]]) < 0)


def test_loudness_and_bands_follow_the_signal(features, tmp_path):
    s = np.arange(2 * audio_synth.RATE) / audio_synth.RATE
    low, high = np.sin(2 * np.pi * 100 * s), np.sin(2 * np.pi * 3000 * s)
    pcm = np.where(s < 1, 0.8 * low, 0.1 * high).astype(np.float32)[:, None]
    found = features(decoded(tmp_path, pcm), RATE, 10, 20, {"rms"},
                     {(60.0, 250.0), (2000.0, 4000.0)}, 4.0)
    rms, bass, treble = (found.values[k] for k in ("rms", "band_60_250", "band_2000_4000"))
    for x in (rms, bass, treble):
        assert x.min() == 0 and x.max() == 1
    first, second = slice(1, 9), slice(11, 19)  # away from the change at frame 10
    assert rms[first].min() > 0.9 and rms[second].max() < 0.1
    assert bass[first].min() > 0.9 and bass[second].max() < 0.01
    assert treble[first].max() < 0.01 and treble[second].min() > 0.9


def test_features_are_cached_by_track_and_arguments(features, tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMREEL_CACHE", str(tmp_path / "cache"))
    pcm, _ = audio_synth.click_track(120, 4, offset=0.1)
    pcm = decoded(tmp_path, pcm)
    first = audio_features.cached(pcm, RATE, 24, 96, {"beat", "rms"}, {(60.0, 250.0)}, 4.0)
    calls = []
    monkeypatch.setattr(audio_features, "compute", lambda *a: calls.append(a) or first)
    again = audio_features.cached(pcm, RATE, 24, 96, {"rms", "beat"}, {(60.0, 250.0)}, 4.0)
    assert calls == [] and again.bpm == first.bpm and again.beat_frames == first.beat_frames
    assert again.values.keys() == first.values.keys() == {"beat", "rms", "band_60_250"}
    for name, value in first.values.items():
        np.testing.assert_array_equal(again.values[name], value)
    audio_features.cached(pcm, RATE, 24, 96, {"beat", "rms"}, {(60.0, 250.0)}, 2.0)
    assert len(calls) == 1  # another beat_decay is another analysis


def test_beat_curve_decays_between_beats():
    curve = audio_features.beat_curve((2, 6), 10, 4.0)
    assert list(curve[:2]) == [0, 0] and curve[2] == curve[6] == 1
    assert curve[4] == pytest.approx(np.exp(-2)) and curve[9] == pytest.approx(np.exp(-3))


def test_loop_audio_is_cross_faded_like_the_frames():
    per, rendered, fade = 100, 12, 4  # samples per frame
    pcm = (np.arange(rendered * per, dtype=np.float32) / per)[:, None]  # its own frame time
    out = loop.compose_audio(pcm, 1000, 10.0, rendered, fade)[:, 0]
    m = rendered - fade
    assert len(out) == m * per
    for k in range(m):  # file frame k plays loop frame i, as loop.compose orders frames
        i = (k + fade // 2) % m
        a = 1 - i / fade
        expected = i if i >= fade else a * (m + i) + (1 - a) * i
        assert out[k * per] == pytest.approx(expected, abs=1e-4)


def test_zoom_soundtrack_from_start_in_sync_with_its_features(tmp_path, features,
                                                             shared_engine):
    out = tmp_path / "z.mp4"
    zoom.run(zoom_preset(tmp_path, f"output={out}", "size=[32,24]", "audio=generated",
                         "frames=audio", "audio.start=2.5", "fps=10",
                         "motion.zoom=1 + 0.05 * beat"), QUIET)
    meta, frames = read_mp4(out)
    assert len(frames) == 15  # 4 s track from 2.5 s at 10 fps
    sound = read_audio(out)
    assert abs(len(sound) / 16000 - len(frames) / 10) <= 1 / 10  # within one frame
    track = audio_synth.drum_pattern(rate=16000)[int(2.5 * 16000):, 0]
    lags = range(-1600, 1601, 80)  # +-0.1 s: the sound starts where audio.start says
    best = max(lags, key=lambda lag: np.dot(sound[1600 + lag:12000 + lag], track[1600:12000]))
    assert abs(best) <= 16000 / 10  # at most one frame
    record = json.loads((tmp_path / "z.mp4.json").read_text())["audio"]
    assert record["start"] == 2.5 and record["mux"] == "aac"
    assert record["bpm"] == pytest.approx(120, abs=2) and len(record["features"]["beat"]) == 15
    assert record["source"].startswith("generated")


def test_a_crossfade_loop_loops_its_sound_and_a_file_replaces_a_videos(tmp_path, features,
                                                                         shared_engine):
    out = tmp_path / "loop.mp4"
    zoom.run(zoom_preset(tmp_path, f"output={out}", "size=[32,24]", "audio=generated",
                         "frames=8", "fps=10", "loop.mode=crossfade", "loop.frames=4"), QUIET)
    sound = read_audio(out)
    drums = audio_synth.drum_pattern(rate=16000)
    expected = loop.compose_audio(drums[:, :1], 16000, 10.0, 12, 4)[:, 0]
    assert len(sound) == pytest.approx(len(expected), abs=1600)  # 0.8 s, within a frame
    n = min(len(sound), len(expected))
    assert np.corrcoef(sound[:n], expected[:n])[0, 1] > 0.9
    # the looped track was made in the render's work directory, which is gone with it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.mp4", "loop.mp4.json"]

    tone = make_clip(tmp_path / "in.mp4", seconds=0.8, fps=10, audio="sin(2*PI*400*t)")
    wav = audio_io.write_wav(tmp_path / "khz.wav", (0.5 * np.sin(
        2 * np.pi * 1000 * np.arange(16000) / 16000))[:, None].astype(np.float32), 16000)
    clip = tmp_path / "clip.mp4"
    from pipelines import video
    video.run(video_preset(f"input={tone}", f"output={clip}", f"audio={wav}"), QUIET)
    replaced = read_audio(clip)
    crossings = np.count_nonzero(np.diff(np.signbit(replaced[800:-800])))
    assert crossings / (len(replaced) - 1600) * 16000 / 2 == pytest.approx(1000, rel=0.05)
    assert json.loads((tmp_path / "clip.mp4.json").read_text())["audio"]["source"] == str(wav)


def test_preview_draws_the_path_and_plot_without_dreaming(tmp_path, features, monkeypatch,
                                                          capsys):
    from pipelines import dreaming

    monkeypatch.setattr(dreaming, "build", lambda *a, **k: pytest.fail("preview dreamed"))
    gif = tmp_path / "m.gif"
    code = main(["render", "music", f"output={gif}", "size=[480,270]", "audio.start=3",
                 "--preview"])
    err = capsys.readouterr().err
    assert code == 0 and err.count("a GIF has no sound") == 1, err
    meta, frames = read_mp4(tmp_path / "m.preview.mp4")
    assert frames.shape == (24, 180, 320, 3) and audio_streams(tmp_path / "m.preview.mp4")
    assert not np.array_equal(frames[0], frames[-1])  # the camera moved
    png = (tmp_path / "m.preview.png").read_bytes()
    assert png.startswith(b"\x89PNG") and not gif.exists()


def test_a_soundtrack_on_a_pingpong_loop_is_refused(tmp_path, capsys):
    out = tmp_path / "out" / "z.mp4"
    code = main(["render", "music", f"output={out}", "loop.mode=pingpong", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "pingpong" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make,args,message", [
    (lambda d: make_clip(d / "silent.mp4", seconds=0.4), [], "has no audio stream"),
    (lambda d: (d / "song.mp3").write_text("not audio") and d / "song.mp3", [],
     "not an audio file ffmpeg can read"),
    (lambda d: d / "missing.wav", [], "audio file not found"),
    (lambda d: audio_io.write_wav(
        d / "short.wav", np.zeros((4410, 1), np.float32), 44100), ["audio.start=5"],
     "audio.start: 5 s is past the end"),
    (lambda d: audio_io.write_wav(d / "header-only.wav", np.zeros((0, 1), np.float32), 44100),
     [], "header-only.wav holds no sound"),  # was blamed on audio.start
])
def test_bad_soundtracks_are_one_line_before_any_work(make, args, message, tmp_path, capsys):
    track = make(tmp_path)
    out = tmp_path / "out" / "z.mp4"
    code = main(["render", "music", f"output={out}", f"audio={track}", *args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert f"command line: audio={track}" in err or "command line: audio.start" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("start", [20.0, 20.3])
def test_an_excerpts_beats_are_heard_with_the_song_around_it(features, tmp_path, start):
    """48 frames from 20 s into a 120 BPM click track: the beats land on the clicks (a short
    window heard alone got a false beat on frame 0 and missed the first click)."""
    from pipelines.audio import soundtrack

    pcm, times = audio_synth.click_track(120, 60, offset=0.27)
    wav = audio_io.write_wav(tmp_path / "song.wav", pcm, audio_synth.RATE)
    preset = zoom_preset(tmp_path, f"audio.file={wav}", f"audio.start={start}", "fps=24",
                         "frames=48", "motion.zoom=1 + 0.05 * beat")
    track = soundtrack.open_track(preset.settings.audio)
    values, record = soundtrack.variables(preset.settings, track, 24.0, 48)
    expected = [(t - start) * 24 for t in times if 0 <= t - start < 2]
    found = record["beat_frames"]
    assert len(found) == len(expected) == 4
    assert all(abs(f - e) <= 1 for f, e in zip(found, expected, strict=True))
    assert record["bpm"] == pytest.approx(120, abs=2)
    # before the first beat of the excerpt the curve decays from the beat before it
    assert 0 < values["beat"][0] < 1


def test_a_whole_songs_preview_plot_shows_ranges_and_a_detailed_start():
    """A 4-minute render (5760 frames, a beat every 12) drew its beat lines and curves as a
    solid block; now each series is drawn as its range per pixel column over the whole
    length, without beat lines, beside its first 10 s in full detail with the beats."""
    from pipelines import preview
    from pipelines.config.expressions import plain_variables

    count, fps = 5760, 24.0
    values = {"beat": audio_features.beat_curve(tuple(range(3, count, 12)), count, 4.0),
              "bpm": 120.0}
    preset = zoom_preset(None, f"frames={count}", "fps=24", "audio=generated",
                         "motion.zoom=1 + 0.02 * beat")
    settings = preset.settings.resolved(count, {**plain_variables(count, fps), **values})
    fig = preview.figure(settings, values, count, fps, "music")
    over, detail = fig.axes[0], fig.axes[1]  # the first row: overview, then detail
    assert over.get_xlim()[1] == pytest.approx(count / fps, rel=0.01)  # seconds, all of it
    assert detail.get_xlim()[1] <= 10 * fps  # frames of the first 10 s
    assert len(over.lines) == 1 and len(over.collections) == 1  # mean line and range band
    assert len(detail.lines) == 1 + 20  # the curve and the 20 beats of the first 10 s
    short = preview.figure(settings, {"beat": values["beat"][:96], "bpm": 120.0}, 96, fps,
                           "music")
    assert len(short.axes) == len(fig.axes) // 2  # a short render: one column, as before
