"""Speed per precision, and against the TensorFlow tutorial loop (issue 15).

    .venv/bin/python -m bench.precision [--models inception_v3] [--json PATH]

In one process, variants interleaved (A B C, C B A, ...), the minimum of the repeats taken
(the machine may be shared; the minimum is the run least disturbed by others):
- the tutorial loop (bench/reference.py's TiledGradients: one tf.function call per step, roll,
  float32) against our engine in float32 and in the `auto` precision, at identical settings:
  inception_v3, layers mixed3 + mixed5, 512x512, one octave of 10 steps, no smoothing;
- ms/step of each model at 512 px in float32 and in the auto precision (the model's default
  layers, no smoothing, one tile);
- dense matmul FLOP/s per precision, and each engine figure's useful FLOP/s (counted by
  bench/efficiency.step_flops) as a share of the best matmul peak of the precision it used.
Every row names its precision; the record names the CPU, its flags, oneDNN and the device.
Not a test.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import efficiency as ef
from bench.reference import TiledGradients
from render import device
from render.engine import DreamEngine
from render.models import parse_layers
from render.objectives import from_layer_terms
from render.precision import choose
from render.tf_runtime import tf

MODELS = ("inception_v3", "vgg16", "efficientnet_lite0")
SIZE = 512
TUTORIAL_LAYERS = ("mixed3", "mixed5")
TUTORIAL_STEPS = 10
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def machine() -> dict[str, Any]:
    """What every figure here depends on: CPU, its relevant flags, oneDNN, device, auto."""
    cpu = device.cpu_info()
    auto = choose("auto")
    return {"cpu_model": cpu["model"], "cpu_flags": [f for f in FLAGS if f in cpu["flags"]],
            "onednn": device.onednn_enabled(), **device.describe(),
            "gpu_capabilities": [list(c) for c in device.gpu_capabilities()],
            "auto_precision": auto.precision, "auto_reason": auto.reason}


def interleaved_min(variants: dict[str, Callable[[], Any]], repeats: int
                    ) -> dict[str, dict[str, Any]]:
    """Min and all wall seconds (and process CPU seconds) per variant, alternating order."""
    for fn in variants.values():
        fn()  # trace and warm up
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(repeats):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            start, cstart = time.perf_counter(), time.process_time()
            variants[name]()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cstart)
    return {k: {"min_s": min(wall[k]), "runs_s": [round(x, 3) for x in wall[k]],
                "cpu_s": [round(x, 3) for x in cpu[k]]} for k in variants}


def matmul_peaks(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best dense n x n matmul GFLOP/s for float32 and each reduced precision."""
    peaks = {}
    for name in ("float32", "bfloat16", "float16"):
        dtype = tf.as_dtype(name)
        a = tf.cast(tf.random.stateless_normal([n, n], seed=[1, 2]), dtype)
        b = tf.cast(tf.random.stateless_normal([n, n], seed=[3, 4]), dtype)
        product = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
        res = interleaved_min({name: lambda a=a, b=b, p=product: p(a, b).numpy()}, repeats)
        peaks[name] = 2.0 * n**3 / res[name]["min_s"] / 1e9
    return peaks


def octave_runners(precisions: Sequence[str] = ("float32", "auto")
                   ) -> tuple[dict[str, Callable[[], np.ndarray]], dict[str, str]]:
    """One octave at the issue's settings: the tutorial loop (float32) and our engine in each
    of `precisions`, as {name: run} and {name: precision used}."""
    loaded = ef.load("inception_v3")
    spec = loaded.spec
    terms = parse_layers(spec, list(TUTORIAL_LAYERS))
    import keras

    features = keras.Model(loaded.network.inputs,
                           [loaded.network.get_layer(t.layer).output for t in terms])
    tiled = TiledGradients(features, spec.preprocess, [t.weight for t in terms])
    img0 = tf.constant(np.random.default_rng(0).uniform(-1, 1, (SIZE, SIZE, 3)), tf.float32)
    size, tile = tf.constant([SIZE, SIZE]), tf.constant(SIZE)

    def tutorial() -> np.ndarray:
        img = img0
        for _ in range(TUTORIAL_STEPS):
            img = tf.clip_by_value(img + 0.01 * tiled(img, size, tile), -1, 1)
        return img.numpy()

    weights = tf.constant([t.weight for t in terms], tf.float32)

    def ours(engine: DreamEngine) -> Callable[[], np.ndarray]:
        steps, ones = tf.constant(TUTORIAL_STEPS), tf.ones([SIZE, SIZE, 1])
        return lambda: engine._octave(img0, tf.constant(0), steps, steps, tf.constant(0.01),
                                      tile, tf.constant([0, 0]), weights, (), ones).numpy()

    runs: dict[str, Callable[[], np.ndarray]] = {"tutorial float32": tutorial}
    used = {"tutorial float32": "float32"}
    for p in precisions:
        engine = DreamEngine(loaded.network, spec.preprocess, from_layer_terms(terms), "none",
                             spec.min_size, precision=p)
        name = f"ours {p}" if p == engine.precision else f"ours {p} ({engine.precision})"
        runs[name], used[name] = ours(engine), engine.precision
    return runs, used


def tutorial_comparison(repeats: int = 3) -> dict[str, Any]:
    """The tutorial loop against our engine, float32 and auto, at the issue's settings."""
    runs, used = octave_runners()
    res = interleaved_min(runs, repeats)
    base = res["tutorial float32"]["min_s"]
    return {"model": "inception_v3", "layers": list(TUTORIAL_LAYERS), "size": SIZE,
            "steps": TUTORIAL_STEPS, "smoothing": "none", "octaves": 1, "precision": used,
            "ms_per_step": {k: 1e3 * v["min_s"] / TUTORIAL_STEPS for k, v in res.items()},
            "speedup_vs_tutorial": {k: base / v["min_s"] for k, v in res.items()},
            "runs": res}


def model_rows(models: Sequence[str], peaks: list[dict[str, float]], steps: int = 3,
               repeats: int = 3) -> list[dict[str, Any]]:
    """ms/step at SIZE px per model in float32 and auto; the matmul peaks measured just before
    each model are appended to `peaks` (run() divides by the best of the run)."""
    from render.engine import DreamSettings
    from render.media.image import default_image

    rows = []
    image = default_image((SIZE, SIZE))
    settings = DreamSettings(octaves=1, steps=steps, tile=SIZE)
    for model in models:
        loaded = ef.load(model)
        spec = loaded.spec
        terms = parse_layers(spec, None)
        gflop = ef.step_flops(loaded, SIZE)["gflop"]
        peaks.append(matmul_peaks(repeats=3))
        objective = from_layer_terms(terms)
        engines = {p: DreamEngine(loaded.network, loaded.preprocess, objective, "none",
                                  spec.min_size, precision=p) for p in ("float32", "auto")}
        res = interleaved_min({p: (lambda e=e: e.dream(image, settings))
                               for p, e in engines.items()}, repeats)
        for p, e in engines.items():
            ms = 1e3 * res[p]["min_s"] / steps
            rows.append({"model": model, "size": SIZE, "requested": p, "precision": e.precision,
                         "ms_per_step": ms, "gflop_per_step": gflop,
                         "gflops_per_s": gflop / (ms / 1e3),
                         "local_peak_gflops": peaks[-1][e.precision],
                         "peak_precision": e.precision, "runs_s": res[p]["runs_s"],
                         "cpu_s": res[p]["cpu_s"]})
        rows[-1]["speedup_vs_float32"] = rows[-2]["ms_per_step"] / rows[-1]["ms_per_step"]
    return rows


def run(models: Sequence[str] = MODELS) -> dict[str, Any]:
    """Everything this part measures, as one JSON-able dict."""
    info = machine()
    peaks = [matmul_peaks()]
    tutorial = tutorial_comparison()
    rows = model_rows(models, peaks)
    peaks.append(matmul_peaks())
    best = {k: max(p[k] for p in peaks) for k in peaks[0]}
    for r in rows:  # the best peak of the run: the machine is shared, the peak noisy
        r["share_of_peak"] = r["gflops_per_s"] / best[r["peak_precision"]]
    return {"machine": info, "matmul_peak_gflops": best, "matmul_peaks_in_run": peaks,
            "tutorial": tutorial, "rows": rows}


def markdown(results: dict[str, Any]) -> str:
    """The precision part as markdown tables."""
    m = results["machine"]
    t = results["tutorial"]
    lines = [f"{m['cpu_model']} ({', '.join(m['cpu_flags'])}), oneDNN "
             f"{'on' if m['onednn'] else 'off'}, device {m['device']}; auto -> "
             f"{m['auto_precision']} ({m['auto_reason']})",
             "matmul peak GFLOP/s: " + ", ".join(
                 f"{k} {v:.0f}" for k, v in results["matmul_peak_gflops"].items()), "",
             f"tutorial loop vs ours: inception_v3 {'+'.join(t['layers'])}, {t['size']}x"
             f"{t['size']}, {t['steps']} steps, no smoothing (min of interleaved runs)", "",
             "| variant | precision | ms/step | vs tutorial |", "|---|---|---|---|"]
    for k, ms in t["ms_per_step"].items():
        lines.append(f"| {k} | {t['precision'][k]} | {ms:.0f} | "
                     f"{t['speedup_vs_tutorial'][k]:.2f}x |")
    lines += ["", "| model | size | precision | ms/step | GFLOP/step | GFLOP/s "
                  "| share of that precision's matmul peak | vs float32 |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        speed = f"{r['speedup_vs_float32']:.2f}x" if "speedup_vs_float32" in r else "-"
        lines.append(f"| {r['model']} | {r['size']} | {r['precision']} ({r['requested']}) | "
                     f"{r['ms_per_step']:.0f} | {r['gflop_per_step']:.1f} | "
                     f"{r['gflops_per_s']:.0f} | {100 * r['share_of_peak']:.0f}% | {speed} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the tables and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.models)
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
