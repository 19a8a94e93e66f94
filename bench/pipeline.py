"""Pipeline overhead and cadence speed: the share of a render's wall time spent outside the
dream step (decode, flow, warp, colour, checkpoints, encode), for the zoom and video pipelines
at 640x360, and how much faster `dream.cadence: k` renders a video.

    .venv/bin/python bench/pipeline.py [--frames 16] [--repeats 3] [--json PATH]

Wall time is the pipeline's `run()` after the model is loaded (model loading and TensorFlow
start-up are reported separately as `setup_seconds`); dream time is the sum of
`DreamEngine.dream` calls, timed by wrapping it. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipelines.config import presets
from pipelines.registry import runner
from pipelines.run_options import RunOptions
from render.engine import DreamEngine

QUIET = RunOptions(quiet=True, notify=lambda message: None)


@contextmanager
def timed_dreams() -> Iterator[list[tuple[float, float]]]:
    """Record (start time, seconds) of every DreamEngine.dream call made inside the block."""
    seconds: list[tuple[float, float]] = []
    original = DreamEngine.dream

    def dream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            seconds.append((start, time.perf_counter() - start))

    DreamEngine.dream = dream  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        DreamEngine.dream = original  # type: ignore[method-assign]


def render(preset: str, overrides: list[str]) -> dict[str, float]:
    """Render `preset` once into a temporary directory. Setup is everything before the first
    dream call (input probing, model loading); the overhead is the rest of the wall time
    outside dream calls, as a fraction of the wall time after setup."""
    with tempfile.TemporaryDirectory() as tmp:
        loaded = presets.load(preset, [*overrides, f"output={Path(tmp) / 'out.mp4'}"])
        run = runner(loaded.settings.pipeline)
        with timed_dreams() as dreams:
            start = time.perf_counter()
            run(loaded, QUIET)
            end = time.perf_counter()
    setup = dreams[0][0] - start
    dream = sum(seconds for _, seconds in dreams)
    wall = end - start - setup
    after_first = end - dreams[0][0] - dreams[0][1]
    return {"setup_seconds": round(setup, 2), "wall_seconds": round(wall, 2),
            "dream_seconds": round(dream, 2), "dream_calls": len(dreams),
            "overhead": round(1 - dream / wall, 4),
            "seconds_after_first_frame": round(after_first, 2)}


def median_render(preset: str, overrides: list[str], repeats: int) -> dict[str, float]:
    """`render` repeated; each figure is the median over the repeats."""
    runs = [render(preset, overrides) for _ in range(repeats)]
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def run(frames: int = 16, repeats: int = 3, cadences: Sequence[int] = (1, 2, 4)
        ) -> dict[str, Any]:
    """Overhead of zoom and video at 640x360 (the presets' size), and video cadence speed-ups
    against k = 1: for the whole render after setup, and for the frames after frame 0 (whose
    full dream every k shares)."""
    size = "size=[640,360]"
    overhead = {"zoom": median_render("zoom", [f"frames={frames}", size], repeats)}
    cadence = {k: median_render("video", [f"frames={frames}", f"dream.cadence={k}"], repeats)
               for k in cadences}
    overhead["video"] = cadence[1]
    base = cadence[cadences[0]]
    for row in cadence.values():
        row["speedup"] = round(base["wall_seconds"] / row["wall_seconds"], 2)
        row["speedup_after_first_frame"] = round(
            base["seconds_after_first_frame"] / row["seconds_after_first_frame"], 2)
    return {"frames": frames, "repeats": repeats, "overhead": overhead,
            "cadence": {str(k): row for k, row in cadence.items()}}


def markdown(results: dict[str, Any]) -> str:
    """The overhead and cadence tables of `run()` results."""
    lines = [f"{results['frames']} frames at 640x360, median of {results['repeats']} renders",
             "", "| pipeline | wall s (after setup) | dream s | overhead |", "|---|---|---|---|"]
    for name, row in results["overhead"].items():
        lines.append(f"| {name} | {row['wall_seconds']:.1f} | {row['dream_seconds']:.1f} | "
                     f"{row['overhead']:.1%} |")
    lines += ["", "| video cadence | wall s | speed-up | s after frame 0 | speed-up |",
              "|---|---|---|---|---|"]
    for k, row in results["cadence"].items():
        lines.append(f"| {k} | {row['wall_seconds']:.1f} | {row['speedup']:.2f}x | "
                     f"{row['seconds_after_first_frame']:.1f} | "
                     f"{row['speedup_after_first_frame']:.2f}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.frames, args.repeats)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
