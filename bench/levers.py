"""Speed levers for the dream engine, each measured against a baseline in the same run:
fast input gradients (our Conv2D stand-in), XLA, thread counts, oneDNN, tile size, mixed
precision, batch norm folded into the convolutions (render.fold) and a tile's gradient in a
graph of its own (oneDNN's pool gradients) and the reduced-precision network built once.

    .venv/bin/python bench/levers.py [--levers fast xla threads onednn tile precision fold
        pools clone]
        [--json PATH]

Thread counts and TF_ENABLE_ONEDNN_OPTS only take effect in a fresh process, so those levers
run one child process per variant, alternating variants over rounds; the others alternate
variants inside this process. Shared machine: read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script or imported as bench.levers
    sys.path.insert(0, str(HERE))

from process_levers import onednn_lever, threads_lever  # noqa: E402

LEVERS = ("fast", "xla", "threads", "onednn", "tile", "precision", "fold", "pools", "clone")


def _interleaved(variants: dict[str, Callable[[], Any]], rounds: int, per_round: int = 1
                 ) -> dict[str, dict[str, float]]:
    """Median seconds per call of each variant, alternating variants every round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm-up and trace
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            for _ in range(per_round):
                start = time.perf_counter()
                variants[name]()
                times[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(t), "runs_s": [round(x, 4) for x in t]}
            for name, t in times.items()}


def fast_gradients_lever(model: str = "inception_v3", size: int = 512, steps: int = 4,
                         rounds: int = 4) -> dict[str, Any]:
    """Engine ms/step with the fast conv input gradient vs TensorFlow's own, plus how far
    the two gradients differ (max |diff| / max |grad|)."""
    import efficiency as ef

    from render.engine import DreamSettings
    from render.media.image import default_image
    from render.tf_runtime import tf

    loaded = ef.load(model)
    fast = ef.make_engine(loaded, fast_input_gradients=True)
    plain = ef.make_engine(loaded, fast_input_gradients=False)
    image = default_image((size, size))
    settings = DreamSettings(octaves=1, steps=steps, tile=max(512, size))
    res = _interleaved({"tf_gradient": lambda: plain.dream(image, settings),
                        "fast_gradient": lambda: fast.dream(image, settings)}, rounds)
    img = tf.random.stateless_uniform([size, size, 3], seed=[1, 2], minval=-1.0, maxval=1.0)
    weights = tf.constant(fast.objective.weights(), tf.float32)
    g_plain = plain._tiled_gradient(img, tf.constant(size), weights).numpy()
    g_fast = fast._tiled_gradient(img, tf.constant(size), weights).numpy()
    rel = float(abs(g_plain - g_fast).max() / abs(g_plain).max())
    base, new = res["tf_gradient"]["median_s"], res["fast_gradient"]["median_s"]
    return {"lever": "fast_input_gradients", "model": model, "size": size,
            "ms_per_step": {k: 1e3 * v["median_s"] / steps for k, v in res.items()},
            "speedup": base / new, "gradient_rel_diff": rel}


def xla_lever(model: str = "inception_v3", size: int = 512, rounds: int = 4
              ) -> dict[str, Any]:
    """XLA (jit_compile=True) on one static-shape gradient step vs the plain tf.function,
    with XLA's compile time; also whether the engine's dynamic-shape octave compiles."""
    import efficiency as ef

    from render.tf_runtime import tf

    loaded = ef.load(model)
    engine = ef.make_engine(loaded)
    tf_engine = ef.make_engine(loaded, fast_input_gradients=False)
    weights = tf.constant(engine.objective.weights(), tf.float32)
    img = tf.random.stateless_uniform([size, size, 3], seed=[1, 2], minval=-1.0, maxval=1.0)

    def stepper(eng: Any) -> Callable[[tf.Tensor], tf.Tensor]:
        def step(x: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = eng._loss(x, weights)
            grad = tape.gradient(loss, x)
            return tf.clip_by_value(x + 0.01 * grad / (tf.math.reduce_std(grad) + 1e-8), -1, 1)

        return step

    spec = [tf.TensorSpec([size, size, 3], tf.float32)]
    fns = {"plain": tf.function(stepper(engine), input_signature=spec),
           "xla": tf.function(stepper(engine), input_signature=spec, jit_compile=True),
           "xla_tf_gradients": tf.function(stepper(tf_engine), input_signature=spec,
                                           jit_compile=True)}
    first = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn(img).numpy()
        first[name] = time.perf_counter() - start
    res = _interleaved({k: (lambda fn=fn: fn(img).numpy()) for k, fn in fns.items()},
                       rounds, per_round=2)
    octave_xla = {}
    for name, eng in (("fast_gradients", engine), ("tf_gradients", tf_engine)):
        octave = tf.function(eng._run_octave, jit_compile=True)
        try:
            one = tf.constant(1)
            octave(img, tf.constant(0), one, one, tf.constant(0.01), tf.constant(size),
                   tf.constant([0, 0]), weights, (), tf.ones([size, size, 1])).numpy()
            octave_xla[name] = "compiles"
        except Exception as exc:  # XLA reports unsupported dynamic shapes as various errors
            octave_xla[name] = f"fails: {type(exc).__name__}: {_first_line(exc)}"
    return {"lever": "xla", "model": model, "size": size,
            "ms_per_step": {k: 1e3 * v["median_s"] for k, v in res.items()},
            "speedup": res["plain"]["median_s"] / res["xla"]["median_s"],
            "compile_s": {k: first[k] - res[k]["median_s"] for k in ("xla", "xla_tf_gradients")},
            "trace_s_plain": first["plain"] - res["plain"]["median_s"],
            "engine_octave_jit_compile": octave_xla}


def _first_line(exc: Exception) -> str:
    """The informative part of an XLA error: its first line, from the failing op's message."""
    text = str(exc).splitlines()[0]
    return text[text.find(")") + 1:].strip()[:200] if "RET_CHECK" in text else text[:200]


def tile_lever(model: str = "inception_v3", size: int = 1024, tiles: Sequence[int] = (256, 512,
               1024), steps: int = 2, rounds: int = 2) -> dict[str, Any]:
    """Engine ms/step at size x size for each tile size (one compiled engine for all)."""
    import efficiency as ef

    from render.engine import DreamSettings
    from render.media.image import default_image

    engine = ef.make_engine(ef.load(model))
    image = default_image((size, size))
    variants = {
        str(t): (lambda t=t: engine.dream(image, DreamSettings(octaves=1, steps=steps, tile=t)))
        for t in tiles
    }
    res = _interleaved(variants, rounds)
    best = min(v["median_s"] for v in res.values())
    return {"lever": "tile", "model": model, "size": size,
            "ms_per_step": {k: 1e3 * v["median_s"] / steps for k, v in res.items()},
            "relative_to_best": {k: v["median_s"] / best for k, v in res.items()}}


def _mixed_step(feats: Any, preprocess: Callable[[Any], Any], weights: Sequence[float]
                ) -> Callable[[Any], Any]:
    """Input gradient of the objective, casting (b)float16 activations to float32."""
    from render.tf_runtime import tf

    def step(x: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            acts = feats(preprocess(x[None]), training=False)
            loss = tf.add_n([w * tf.reduce_mean(tf.cast(a, tf.float32))
                             for w, a in zip(weights, acts, strict=True)])
        return tape.gradient(loss, x)

    return step


def precision_lever(model: str = "inception_v3", size: int = 512, rounds: int = 2
                    ) -> dict[str, Any]:
    """One gradient step with the network built under float32 vs Keras mixed precision
    policies (bfloat16, float16 compute); this CPU has no bf16/fp16 arithmetic."""
    import efficiency as ef
    import keras

    from render.models import parse_layers
    from render.tf_runtime import tf

    img = tf.random.stateless_uniform([size, size, 3], seed=[1, 2], minval=-1.0, maxval=1.0)
    steps = {}
    for policy in ("float32", "mixed_bfloat16", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            loaded = ef.load(model)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        spec = loaded.spec
        terms = parse_layers(spec, None)
        feats = keras.Model(loaded.network.inputs,
                            [loaded.network.get_layer(t.layer).output for t in terms])

        fn = tf.function(_mixed_step(feats, spec.preprocess, [t.weight for t in terms]),
                         input_signature=[tf.TensorSpec([size, size, 3], tf.float32)])
        steps[policy] = lambda fn=fn: fn(img).numpy()
    res = _interleaved(steps, rounds)
    base = res["float32"]["median_s"]
    return {"lever": "precision", "model": model, "size": size,
            "ms_per_step": {k: 1e3 * v["median_s"] for k, v in res.items()},
            "relative_to_float32": {k: v["median_s"] / base for k, v in res.items()}}


def fold_lever(models: Sequence[str] = ("efficientnet_lite0", "inception_v3"), size: int = 512,
               steps: int = 4, rounds: int = 4) -> list[dict[str, Any]]:
    """Engine ms/step with batch norm folded into the convs vs left as it is, per model
    (Lite0 with its real weights; InceptionV3 is Keras' architecture, random weights), and
    the largest difference of the dreamed layers' activations (relative to their range)."""
    import efficiency as ef

    from render.engine import DreamSettings
    from render.media.image import default_image
    from render.tf_runtime import tf

    out = []
    image = default_image((size, size))
    settings = DreamSettings(octaves=1, steps=steps, tile=max(512, size))
    for model in models:
        loaded = ef.load(model)
        plain = ef.make_engine(loaded, fold_batch_norm=False)
        fold = ef.make_engine(loaded)
        res = _interleaved({"bn_kept": lambda p=plain: p.dream(image, settings),
                            "bn_folded": lambda f=fold: f.dream(image, settings)}, rounds)
        x = tf.random.stateless_uniform([1, size, size, 3], seed=[1, 2], minval=-1, maxval=1)
        a, b = plain._activations(x), fold._activations(x)
        rel = max(float(tf.reduce_max(tf.abs(a[k] - b[k])) / tf.reduce_max(tf.abs(a[k])))
                  for k in a)
        base, new = res["bn_kept"]["median_s"], res["bn_folded"]["median_s"]
        out.append({"lever": "fold_batch_norm", "model": model, "size": size,
                    "ms_per_step": {k: 1e3 * v["median_s"] / steps for k, v in res.items()},
                    "speedup": base / new, "activation_rel_diff": rel})
    return out


def pools_lever(model: str = "inception_v3", size: int = 512, steps: int = 4, rounds: int = 4,
                precisions: Sequence[str] = ("float32", "auto")) -> list[dict[str, Any]]:
    """Engine ms/step with each tile's gradient in a function graph of its own (the engine as
    it is) vs inlined into the octave's loops, where oneDNN's rewrite can leave max-pool
    gradients on Eigen's kernel; per precision, with the largest output difference."""
    import efficiency as ef
    import numpy as np

    from render.engine import DreamEngine, DreamSettings
    from render.media.image import default_image
    from render.models import parse_layers
    from render.objectives import from_layer_terms

    loaded = ef.load(model)
    spec = loaded.spec
    objective = from_layer_terms(parse_layers(spec, None))  # the model's default layers
    image = default_image((size, size))
    settings = DreamSettings(octaves=1, steps=steps, tile=max(512, size))
    out = []
    for precision in precisions:
        engines = {}
        for variant in ("inlined", "own_graph"):
            engine = DreamEngine(loaded.network, spec.preprocess, objective, "none",
                                 spec.min_size, precision=precision)
            if variant == "inlined":  # before the first trace: the tile's gradient in the loop
                engine._patch_gradient = engine._gradient_of_patch
            engines[variant] = engine
        res = _interleaved({k: lambda e=e: e.dream(image, settings)
                            for k, e in engines.items()}, rounds)
        a, b = (e.dream(image, settings).astype(np.int16) for e in engines.values())
        base, new = res["inlined"]["median_s"], res["own_graph"]["median_s"]
        out.append({"lever": "pools_on_onednn", "model": model, "size": size,
                    "precision": engines["own_graph"].precision,
                    "ms_per_step": {k: 1e3 * v["median_s"] / steps for k, v in res.items()},
                    "speedup": base / new, "max_output_diff": int(np.abs(a - b).max())})
    return out


def clone_lever(model: str = "inception_v3", precision: str = "bfloat16") -> dict[str, Any]:
    """Seconds to build an engine: float32, then `precision` twice (the first makes the folded
    network's reduced-precision clone, the second reuses it: render.precision.network_at)."""
    import efficiency as ef

    from render.engine import DreamEngine
    from render.models import parse_layers
    from render.objectives import from_layer_terms

    loaded = ef.load(model)  # a fresh load: nothing folded or cloned yet
    spec = loaded.spec
    objective = from_layer_terms(parse_layers(spec, None))
    seconds = {}
    for name, p in (("float32", "float32"), (f"{precision} first", precision),
                    (f"{precision} again", precision)):
        start = time.perf_counter()
        DreamEngine(loaded.network, spec.preprocess, objective, "none", spec.min_size,
                    precision=p)
        seconds[name] = time.perf_counter() - start
    return {"lever": "precision_clone_once", "model": model, "size": 0,
            "ms_per_step": {k: 1e3 * v for k, v in seconds.items()},  # here: ms per build
            "unit": "ms per engine build"}


RUNNERS: dict[str, Callable[[], dict[str, Any] | list[dict[str, Any]]]] = {
    "fast": fast_gradients_lever,
    "xla": xla_lever,
    "threads": threads_lever,
    "onednn": onednn_lever,
    "tile": tile_lever,
    "precision": precision_lever,
    "fold": fold_lever,
    "pools": pools_lever,
    "clone": clone_lever,
}


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """One line per variant: ms/step and its ratio to the lever's baseline."""
    lines = ["| lever | model @ size | variant | ms/step | vs baseline |", "|---|---|---|---|---|"]
    for r in results:
        ms = r["ms_per_step"]
        base = next(iter(ms.values()))
        for variant, value in ms.items():
            lines.append(f"| {r['lever']} | {r['model']} @ {r['size']} | {variant} | "
                         f"{value:.0f} | {value / base:.2f} |")
        extra = {k: v for k, v in r.items() if k in (
            "compile_s", "engine_octave_jit_compile", "gradient_rel_diff", "activation_rel_diff",
            "matmul_gflops", "precision", "max_output_diff", "unit")}
        if extra:
            lines.append(f"| | | {json.dumps(extra, default=str)[:300]} | | |")
    return "\n".join(lines)


def run(names: Sequence[str], show: bool = True) -> list[dict[str, Any]]:
    """The rows of the levers `names` (printed as each finishes when `show`); a lever that
    fails is said on stderr and the others still run."""
    results = []
    for name in names:
        try:
            got = RUNNERS[name]()
        except Exception as exc:  # one broken lever must not lose the others' numbers
            print(f"lever {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        got = got if isinstance(got, list) else [got]
        results.extend(got)
        if show:
            print(markdown(got), flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Run the chosen levers, print a markdown table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=LEVERS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.levers)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
