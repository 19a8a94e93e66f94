"""Seconds per gradient step at a given size, per model: median of several timed octaves.

    .venv/bin/python bench/step_time.py --size 512 --models inception_v3 efficientnet_lite0

Random weights for the Keras models (timing does not depend on weight values); the offline
EfficientNet-Lite0 uses its real weights. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from render.engine import DreamEngine, DreamSettings
from render.media import default_image
from render.models import load_model, parse_layers


def step_seconds(model: str, size: int, steps: int, repeats: int) -> float:
    """Median wall time of one ascent step on a size x size image (one octave, one tile)."""
    loaded = load_model(model, "imagenet" if model == "efficientnet_lite0" else "none")
    spec = loaded.spec
    engine = DreamEngine(loaded.network, spec.preprocess, parse_layers(spec, None),
                         spec.smoothing, spec.min_size)
    image = default_image((size, size))
    settings = DreamSettings(octaves=1, steps=steps, tile=max(512, size))
    engine.dream(image, settings)  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.dream(image, settings)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["inception_v3", "efficientnet_lite0"])
    args = parser.parse_args()
    print(f"| model | s/step at {args.size}x{args.size} |\n|---|---|")
    for model in args.models:
        print(f"| {model} | {step_seconds(model, args.size, args.steps, args.repeats):.3f} |")


if __name__ == "__main__":
    main()
