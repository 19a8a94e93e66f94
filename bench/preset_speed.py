"""Seconds per frame of the zoom and video presets at 640x360, float32 against
`dream.precision: auto`, interleaved in one process, with frame 0's time beside them (issues 15
and 28). Part `presets` of `make bench`.

    .venv/bin/python -m bench.preset_speed [--rounds 2] [--frames 7] [--json PATH]

Each render's sidecar gives frame 0's seconds (the full dream of `dream.first_frame`, plus the
engine's one-time trace and graph optimisation: a new engine per render) and the median of
the later frames; each row takes the median of the rounds for both (the first render in the
process also pays TensorFlow's own warm-up, as every command-line render does). The engine's
one-time setup is measured apart (a fresh engine's first one-step call at 128x128 less its
second), so each row also says frame 0 without it: roughly the dream work of frame 0 against a
later frame's (oneDNN's setup for the 640x360 shapes stays in)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.models import cpu
from bench.pipeline import QUIET
from pipelines.config import presets
from pipelines.registry import runner

PRESETS = ("zoom", "video")
PRECISIONS = ("float32", "auto")


def measure(preset: str, precision: str, frames: int) -> tuple[str, list[float]]:
    """Render `preset` at 640x360: ("preset requested->used", [frame 0 s, later s/frame])."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "out.mp4"
        loaded = presets.load(preset, [f"frames={frames}", "size=[640,360]",
                                       f"output={output}", f"dream.precision={precision}"])
        runner(loaded.settings.pipeline)(loaded, QUIET)
        record = json.loads(output.with_name("out.mp4.json").read_text())
    seconds = record["timings"]["frame_seconds"]
    key = f"{preset} {precision}->{record['model']['precision']['used']}"
    return key, [round(seconds[0], 2), round(statistics.median(seconds[1:]), 2)]


def engine_setup_seconds(precision: str, model: str = "inception_v3") -> float:
    """Seconds a fresh engine spends once, on its first call: tracing the octave function and
    TensorFlow's graph optimisation (the network itself is built before)."""
    import time

    from render.build import build_engine
    from render.engine import DreamSettings
    from render.media.image import default_image

    engine = build_engine(model, precision=precision, notify=QUIET.notify).engine
    image, one = default_image((128, 128)), DreamSettings(octaves=1, steps=1)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        engine.dream(image, one)
        seconds.append(time.perf_counter() - start)
    return seconds[0] - seconds[1]


def run(rounds: int = 2, frames: int = 7) -> dict[str, Any]:
    """Every preset x precision, `rounds` times alternating; per row the rounds' pairs, the
    median frame 0 and later frame, their ratio, and the ratio without the engine's one-time
    setup."""
    setup = {p: round(min(engine_setup_seconds(p) for _ in range(2)), 2) for p in PRECISIONS}
    pairs: dict[str, list[list[float]]] = {}
    for _ in range(rounds):
        for preset in PRESETS:
            for precision in PRECISIONS:
                key, pair = measure(preset, precision, frames)
                pairs.setdefault(key, []).append(pair)
    rows = {}
    for key, got in pairs.items():
        first = statistics.median(p[0] for p in got)
        later = statistics.median(p[1] for p in got)
        once = setup[key.split()[1].split("->")[0]]
        rows[key] = {"frame0_seconds": first, "seconds_per_frame": later,
                     "frame0_vs_later": round(first / later, 2), "engine_setup_seconds": once,
                     "frame0_dream_vs_later": round((first - once) / later, 2), "rounds": got}
    return {"size": [640, 360], "frames": frames, **cpu(), "rows": rows}


def markdown(results: dict[str, Any]) -> str:
    """One line per preset and precision."""
    lines = [f"presets at 640x360, {results['frames']} frames; {results['cpu_model']} "
             f"({', '.join(results['cpu_flags'])}; oneDNN "
             f"{'on' if results['onednn'] else 'off'})", "",
             "| preset requested->used | s/frame after frame 0 | frame 0 s | frame 0 / later | "
             "engine setup s (in frame 0) | frame 0 less setup / later |",
             "|---|---|---|---|---|---|"]
    for key, row in results["rows"].items():
        lines.append(f"| {key} | {row['seconds_per_frame']:.2f} | {row['frame0_seconds']:.2f} "
                     f"| {row['frame0_vs_later']:.1f}x | {row['engine_setup_seconds']:.2f} | "
                     f"{row['frame0_dream_vs_later']:.1f}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.rounds, args.frames)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
