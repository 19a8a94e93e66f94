"""What a model costs: seconds per frame of the shipped zoom preset at 640x360 for each model
(inception_v3, vgg16, efficientnet_lite0), with the weights each one resolved to.

    .venv/bin/python -m bench.models [--frames 8] [--models vgg16] [--json PATH]

Each model renders the zoom preset (its own frame-0 and per-frame dream settings, only
`model.name` changed) for 1 + frames frames into a temporary directory; the figures come from
the render's own sidecar: frame 0's seconds (the full dream of `dream.first_frame`) and the
median seconds of the frames after it (warp + the lighter per-frame dream + checkpoint), plus
an estimate of the whole 72-frame preset (frame 0 + 71 x the median; model loading and
encoding not included). The record names the CPU (model, SIMD flags, whether TensorFlow's
oneDNN ops are on), because these figures depend on it. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.pipeline import QUIET
from pipelines.config import presets
from pipelines.registry import runner

MODELS = ("inception_v3", "vgg16", "efficientnet_lite0")
SIZE = (640, 360)
# SIMD and matrix features that decide how fast TensorFlow's CPU kernels are
FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu() -> dict[str, Any]:
    """CPU model, the FLAGS it has (render.device.cpu_info) and whether oneDNN ops are on."""
    from render import device

    info = device.cpu_info()
    flags = set(info["flags"])
    return {"cpu_model": info["model"], "cpu_flags": [f for f in FLAGS if f in flags],
            "onednn": device.onednn_enabled()}


def measure(model: str, frames: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Render the zoom preset with `model` for 1 + `frames` frames (plus preset `overrides`,
    e.g. dream.precision=float32); its per-frame timings and the precision used."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "zoom.mp4"
        loaded = presets.load("zoom", [f"model.name={model}", f"frames={frames + 1}",
                                       f"size=[{SIZE[0]},{SIZE[1]}]", f"output={output}",
                                       *overrides])
        start = time.perf_counter()
        runner(loaded.settings.pipeline)(loaded, QUIET)
        wall = time.perf_counter() - start
        record = json.loads(output.with_name(output.name + ".json").read_text())
    seconds = record["timings"]["frame_seconds"]
    after = statistics.median(seconds[1:])
    dream = loaded.settings.dream
    return {"weights": record["model"]["weights"], "used": record["model"]["used"],
            "precision": record["model"]["precision"]["used"],
            "layers": list(record["model"]["layers"]),
            "per_frame": {"steps": dream.steps.at(1), "octaves": dream.octaves.at(1)},
            "frame0_seconds": round(seconds[0], 2),
            "seconds_per_frame": round(after, 2),
            "min_max_after_frame0": [round(min(seconds[1:]), 2), round(max(seconds[1:]), 2)],
            "preset_72_frames_estimate_seconds": round(seconds[0] + 71 * after),
            "wall_seconds": round(wall, 1)}


def run(frames: int = 8, models: Sequence[str] = MODELS) -> dict[str, Any]:
    """Every model in `models`, one render each (in this order, in this process)."""
    return {"size": list(SIZE), "frames_after_frame0": frames, **cpu(),
            "rows": {m: measure(m, frames) for m in models}}


def markdown(results: dict[str, Any]) -> str:
    """The per-model table of `run()` results."""
    lines = [f"zoom preset at {results['size'][0]}x{results['size'][1]}, median of "
             f"{results['frames_after_frame0']} frames after frame 0; {results['cpu_model']} "
             f"({', '.join(results['cpu_flags'])}; oneDNN "
             f"{'on' if results['onednn'] else 'off'})", "",
             "| model | weights | s/frame (min-max) | frame 0 s | 72 frames, est. |",
             "|---|---|---|---|---|"]
    base = results["rows"].get("inception_v3", {}).get("seconds_per_frame")
    for name, row in results["rows"].items():
        lo, hi = row["min_max_after_frame0"]
        ratio = f", {row['seconds_per_frame'] / base:.1f}x" if base else ""
        lines.append(f"| {name} | {row['weights']} | {row['seconds_per_frame']:.2f} "
                     f"({lo:.2f}-{hi:.2f}{ratio}) | {row['frame0_seconds']:.1f} | "
                     f"{row['preset_72_frames_estimate_seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.frames, args.models)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
