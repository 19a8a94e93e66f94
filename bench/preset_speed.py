"""Seconds per frame of the zoom and video presets at 640x360, float32 against
`dream.precision: auto`, interleaved in one process (issue 15's before/after).

    .venv/bin/python -m bench.preset_speed [--rounds 2] [--frames 7]

Prints one line per render and, last, a JSON object: per "preset requested->used", a
[frame 0 seconds, median seconds of the later frames] pair per round, with the CPU."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from pipelines.config import presets
from pipelines.registry import runner
from pipelines.run_options import RunOptions
from render import device

QUIET = RunOptions(quiet=True, notify=lambda message: None)


def measure(preset: str, precision: str, frames: int) -> tuple[str, list[float]]:
    """Render `preset` at 640x360 and read its sidecar's per-frame timings."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "out.mp4"
        loaded = presets.load(preset, [f"frames={frames}", "size=[640,360]",
                                       f"output={output}", f"dream.precision={precision}"])
        runner(loaded.settings.pipeline)(loaded, QUIET)
        record = json.loads(output.with_name("out.mp4.json").read_text())
    seconds = record["timings"]["frame_seconds"]
    key = f"{preset} {precision}->{record['model']['precision']['used']}"
    return key, [round(seconds[0], 2), round(statistics.median(seconds[1:]), 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=7)
    args = parser.parse_args()
    rows: dict[str, Any] = {"cpu": device.cpu_info(), "onednn": device.onednn_enabled()}
    for _ in range(args.rounds):
        for preset in ("zoom", "video"):
            for precision in ("float32", "auto"):
                key, pair = measure(preset, precision, args.frames)
                rows.setdefault(key, []).append(pair)
                print(key, pair, flush=True)
    print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
