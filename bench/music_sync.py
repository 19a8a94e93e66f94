"""Music-video measures (issue 16), not in `make bench` (it renders the music preset in full):

    .venv/bin/python -m bench.music_sync [--json out.json] [--skip-full]

1. beats: on a synthetic 120 BPM click track (60 s; 24, 25, 30 fps; clicks starting 0, 13 and
   270 ms in), the share of clicks with a `beat` peak within +-1 frame (and on the exact
   frame), and the peaks that match no click;
2. sync: rendered MP4s (zoom with frames: audio and audio.start, a crossfade loop, a video
   whose sound a file replaces): video duration (frames / fps) against the decoded audio's,
   in frames, and the audio's offset against the track (cross-correlation), in frames;
3. zoom: a zoom with `motion.zoom: 1 + 0.03 * beat` (no rotation, light dream) rendered small;
   the zoom between consecutive rendered frames is measured (the scale whose warp of frame
   t-1 best matches frame t) and correlated with the schedule;
4. preview: wall time of `render music --preview` over the full `render music`, each a fresh
   process as a user runs them (interleaved, min of the repeats).

Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> str:
    from render.device import cpu_info

    info = cpu_info()
    simd = [f for f in info["flags"] if f.startswith(("avx", "amx", "fma"))]
    return f"{info['model']}, {os.cpu_count()} cores, {' '.join(simd)}"


def beats() -> list[dict[str, Any]]:
    from pipelines.audio import features as audio_features
    from pipelines.audio import synth as audio_synth
    from render.media import audio as audio_io

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for offset in (0.0, 0.013, 0.27):
            pcm, times = audio_synth.click_track(120, 60, offset=offset)
            wav = audio_io.write_wav(Path(tmp) / "click.wav", pcm, audio_synth.RATE)
            y = audio_io.decode(wav, audio_features.SAMPLE_RATE)[:, 0]
            for fps in (24, 25, 30):
                frames = 60 * fps
                found = audio_features.compute(y, audio_features.SAMPLE_RATE, fps, frames,
                                               {"beat"}, set(), 4.0)
                peaks = np.flatnonzero(found.values["beat"] == 1.0)
                miss = [np.abs(peaks - t * fps).min() for t in times]
                near = sum(m <= 1 for m in miss)
                exact = sum(np.abs(peaks - round(t * fps)).min() == 0 for t in times)
                extra = sum(np.abs(times * fps - p).min() > 1 for p in peaks)
                rows.append({"offset_s": offset, "fps": fps, "clicks": len(times),
                             "within_1_frame": round(float(near) / len(times), 4),
                             "exact_frame": round(float(exact) / len(times), 4),
                             "extra_peaks": int(extra), "bpm": round(found.bpm, 2)})
                print(rows[-1])
    return rows


def _run(*args: str) -> float:
    """Wall seconds of `python -m pipelines render ARGS --quiet` in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines", "render", *args, "--quiet"], check=True,
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def _av(path: Path, fps: float) -> tuple[int, float]:
    from tests.media_probe import read_audio, read_mp4

    _, frames = read_mp4(path)
    sound = read_audio(path)
    return len(frames), len(sound) / 16000 * fps - len(frames)


def _offset_frames(sound: np.ndarray, track: np.ndarray, fps: float) -> float:
    """Lag (in frames) of `sound` against `track`, by cross-correlation over +-0.2 s."""
    n = min(len(sound), len(track)) - 6400
    lags = range(-3200, 3201, 16)
    best = max(lags, key=lambda lag: float(np.dot(sound[3200 + lag:3200 + lag + n - 3200],
                                                   track[3200:n])))
    return best / 16000 * fps


def sync(work: Path) -> list[dict[str, Any]]:
    from pipelines.audio import synth as audio_synth
    from render.media import audio as audio_io
    from tests.media_probe import make_clip, read_audio

    tiny = ["model.name=efficientnet_lite0", "model.weights=none", "dream.octaves=1",
            "dream.steps=1", "dream.first_frame.octaves=1", "dream.first_frame.steps=1"]
    rows = []
    for fps in (24, 25, 29.97):
        out = work / f"sync-{fps}.mp4"
        _run("music", f"output={out}", "size=[64,36]", f"fps={fps}", "audio.start=1.3", *tiny)
        frames, diff = _av(out, fps)
        track = audio_synth.drum_pattern(rate=16000)[int(1.3 * 16000):, 0]
        rows.append({"case": f"zoom frames: audio, start 1.3 s, {fps} fps", "frames": frames,
                     "audio_minus_video_frames": round(diff, 3),
                     "offset_frames": round(_offset_frames(read_audio(out), track, fps), 3)})
        print(rows[-1])
    out = work / "loop.mp4"
    _run("music", f"output={out}", "size=[64,36]", "loop.mode=crossfade", "loop.frames=12",
         *tiny)
    frames, diff = _av(out, 24)
    rows.append({"case": "zoom crossfade loop (frames: audio, 12-frame fade)", "frames": frames,
                 "audio_minus_video_frames": round(diff, 3)})
    print(rows[-1])
    clip = make_clip(work / "in.mp4", seconds=3, fps=25, audio="sin(2*PI*400*t)")
    wav = audio_io.write_wav(work / "drums.wav", audio_synth.drum_pattern(), audio_synth.RATE)
    out = work / "video.mp4"
    _run("video", f"input={clip}", f"output={out}", f"audio={wav}", "max_size=[64,48]", *tiny)
    frames, diff = _av(out, 25)
    track = audio_synth.drum_pattern(rate=16000)[:, 0]
    rows.append({"case": "video, a file replaces the sound, 25 fps", "frames": frames,
                 "audio_minus_video_frames": round(diff, 3),
                 "offset_frames": round(_offset_frames(read_audio(out), track, 25), 3)})
    print(rows[-1])
    return rows


def zoom_follows(work: Path) -> dict[str, Any]:
    import cv2

    from pipelines.warp.affine import affine_matrix, warp
    from tests.media_probe import read_mp4

    out = work / "zoom-follow.mp4"
    k = 0.03
    _run("music", f"output={out}", "size=[320,180]", "motion.angle=0",
         f"motion.zoom=1 + {k} * beat", "dream.step_size=0.002", "dream.octaves=1",
         "dream.steps=2", "encode.crf=10")
    record = json.loads(out.with_name(out.name + ".json").read_text())
    beat = np.array(record["audio"]["features"]["beat"])
    _, frames = read_mp4(out)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    size = (gray[0].shape[1], gray[0].shape[0])
    grid = np.arange(0.995, 1.045, 0.0005)
    crop = (slice(20, -20), slice(36, -36))  # away from the reflected borders
    measured = []
    for t in range(1, len(gray)):
        errors = [float(np.mean((warp(gray[t - 1], affine_matrix(size, s, 0, 0, 0))[crop]
                                 - gray[t][crop]) ** 2)) for s in grid]
        measured.append(grid[int(np.argmin(errors))])
    scheduled = 1 + k * beat[1:len(gray)]
    r = float(np.corrcoef(measured, scheduled)[0, 1])
    slope = float(np.polyfit(beat[1:len(gray)], np.array(measured) - 1, 1)[0])
    row = {"frames": len(gray), "correlation": round(r, 4), "k_scheduled": k,
           "k_measured": round(slope, 4),
           "median_abs_error": round(float(np.median(np.abs(np.array(measured) - scheduled))),
                                     5)}
    print(row)
    return row


def preview_share(work: Path, repeats: int = 2) -> dict[str, Any]:
    previews, fulls = [], []
    for i in range(repeats):
        previews.append(_run("music", f"output={work}/music-{i}.mp4", "--preview"))
        if i == 0:  # one full render (minutes); previews around it
            fulls.append(_run("music", f"output={work}/music-full.mp4", "--force"))
    row = {"preview_s": [round(p, 2) for p in previews],
           "full_s": [round(f, 2) for f in fulls],
           "share": round(min(previews) / min(fulls), 4)}
    print(row)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-full", action="store_true", help="no full render (no share)")
    parser.add_argument("--only", nargs="*", default=["beats", "sync", "zoom", "preview"])
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"cpu": _cpu()}
    with tempfile.TemporaryDirectory(prefix="music-sync-") as tmp:
        work = Path(tmp)
        if "beats" in args.only:
            results["beats"] = beats()
        if "sync" in args.only:
            results["sync"] = sync(work)
        if "zoom" in args.only:
            results["zoom"] = zoom_follows(work)
        if "preview" in args.only and not args.skip_full:
            results["preview"] = preview_share(work)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
