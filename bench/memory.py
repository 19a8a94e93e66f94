"""Peak resident memory of dreaming one large frame (tiled), each in a fresh process.

    .venv/bin/python bench/memory.py [--sizes 1920x1080 3840x2160] [--models inception_v3]

The child loads the model, dreams one frame with the engine's defaults (4 octaves, tile 512)
and reports its peak RSS (VmHWM) before and after the dream. Not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from render.objectives import from_layer_terms

ROOT = Path(__file__).resolve().parent.parent


def high_water_gb() -> float:
    """This process's peak resident memory in GB. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over from the parent across fork and exec, so a child of a large benchmark
    process would report the parent's peak."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(model: str, width: int, height: int, steps: int) -> dict[str, float]:
    """Runs in the child process: dream one frame, return memory figures in GB."""
    from render.engine import DreamEngine, DreamSettings
    from render.media.image import default_image
    from render.models import parse_layers
    from render.weights.resolve import load_model

    loaded = load_model(model, "imagenet" if model == "efficientnet_lite0" else "none")
    spec = loaded.spec
    objective = from_layer_terms(parse_layers(spec, None))
    engine = DreamEngine(loaded.network, spec.preprocess, objective, spec.smoothing,
                         spec.min_size)
    before = high_water_gb()
    engine.dream(default_image((width, height)), DreamSettings(steps=steps))
    peak = high_water_gb()
    return {"rss_before_dream_gb": round(before, 3), "peak_rss_gb": round(peak, 3)}


def measure(model: str, width: int, height: int, steps: int = 2) -> dict[str, float]:
    """Peak RSS of a fresh process dreaming one width x height frame with `model`."""
    code = ("import json, sys; from bench.memory import child; "
            f"print(json.dumps(child({model!r}, {width}, {height}, {steps})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, env=None)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "3840x2160"])
    parser.add_argument("--models", nargs="+", default=["inception_v3", "efficientnet_lite0"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = {}
    print("| model | size | RSS before dream GB | peak RSS GB |\n|---|---|---|---|")
    for model in args.models:
        for size in args.sizes:
            w, h = map(int, size.split("x"))
            row = rows[f"{model} {size}"] = measure(model, w, h)
            print(f"| {model} | {size} | {row['rss_before_dream_gb']} | {row['peak_rss_gb']} |",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
