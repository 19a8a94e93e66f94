"""Engine efficiency: useful FLOPs of one gradient step
divided by the step time, as a fraction of this machine's dense float32 matmul FLOP/s measured
in the same run.

    .venv/bin/python bench/efficiency.py [--models inception_v3 efficientnet_lite0]
        [--sizes 256 512 1024] [--json PATH]

Random weights for InceptionV3 (timing does not depend on weight values; Keras ImageNet
weights need the internet); EfficientNet-Lite0 uses its real offline weights. Not a test:
numbers depend on the machine and on whatever else runs on it, so only ratios measured in
one run mean much. The speed levers (fast gradients, XLA, threads, oneDNN, tile, precision)
are measured by bench/levers.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from render.engine import DreamEngine, DreamSettings
from render.media.image import default_image
from render.models import parse_layers
from render.objectives import from_layer_terms
from render.tf_runtime import tf
from render.weights.resolve import LoadedModel, load_model

MODELS = ("inception_v3", "efficientnet_lite0")
SIZES = (256, 512, 1024)
STEPS = 5  # ascent steps per timed octave
REPEATS = {256: 5, 512: 3, 1024: 2}  # timed octaves per size, after one warm-up

# Ops doing a dense dot product per output element: FLOPs = 2 * MACs (see step_flops).
_CONV_OPS = ("Conv2D", "Conv2DBackpropInput")
_DEPTHWISE_OPS = ("DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropInput")
_MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
_POOL_OPS = ("AvgPool", "MaxPool", "AvgPoolGrad", "MaxPoolGrad")
# Pure data movement, shapes or bookkeeping: no arithmetic counted.
_FREE_OPS = frozenset({
    "Const", "Placeholder", "ReadVariableOp", "VarHandleOp", "Identity", "IdentityN",
    "Reshape", "Shape", "ShapeN", "Size", "Slice", "StridedSlice", "StridedSliceGrad",
    "ConcatV2", "ConcatOffset", "Tile", "Transpose", "Pack", "Unpack", "Fill", "ZerosLike",
    "OnesLike", "NoOp", "GatherV2", "Cast", "BroadcastTo", "BroadcastGradientArgs", "Pad",
    "ExpandDims", "Squeeze", "Range",
})


def load(model: str) -> LoadedModel:
    """`model` with the weights we time it with: real offline ones for Lite0, random otherwise."""
    return load_model(model, "imagenet" if model == "efficientnet_lite0" else "none")


def make_engine(loaded: LoadedModel, smoothing: str = "none", layers: Any = None,
                fast_input_gradients: bool | None = None,
                fold_batch_norm: bool = True) -> DreamEngine:
    """An engine on `loaded` with the model's default layers (or `layers`)."""
    spec = loaded.spec
    objective = from_layer_terms(parse_layers(spec, layers))
    return DreamEngine(loaded.network, spec.preprocess, objective, smoothing,
                       spec.min_size, fast_input_gradients=fast_input_gradients,
                       fold_batch_norm=fold_batch_norm)


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list]:
    """Median wall time of `fn()` over `repeats` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def matmul_peak(n: int = 3072, repeats: int = 7) -> dict[str, Any]:
    """Dense float32 matmul FLOP/s: median time of an n x n @ n x n product (2 n^3 FLOPs).

    The product is reduced to a scalar inside the tf.function so the timing includes no copy
    back to NumPy.
    """
    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    seconds, times = median_seconds(lambda: product(a, b).numpy(), repeats, warmup=2)
    flops = 2.0 * n**3
    return {"n": n, "seconds": seconds, "gflops": flops / seconds / 1e9,
            "runs_s": [round(t, 4) for t in times]}


def _elements(shape: tf.TensorShape) -> int:
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or any(d is None for d in dims):
        raise ValueError(f"step_flops needs static shapes, got {shape}")
    return int(np.prod(dims, dtype=np.int64))


def _op_flops(op: tf.Operation) -> tuple[str, float]:
    """(class, FLOPs) of one graph op; class is "dense", "other" or "free"."""
    kind = op.type
    if kind in _CONV_OPS:
        # Both produce/consume an activation tensor against a [kh, kw, cin, cout] filter:
        # MACs = elements of the cout-side tensor x kh x kw x cin.
        kh, kw, cin, _ = op.inputs[1].shape.as_list()
        cout_side = op.outputs[0] if kind == "Conv2D" else op.inputs[2]
        return "dense", 2.0 * _elements(cout_side.shape) * kh * kw * cin
    if kind in _DEPTHWISE_OPS:
        kh, kw, _, _ = op.inputs[1].shape.as_list()
        out_side = op.outputs[0] if kind == "DepthwiseConv2dNative" else op.inputs[2]
        return "dense", 2.0 * _elements(out_side.shape) * kh * kw
    if kind in _MATMUL_OPS:
        a = op.inputs[0].shape.as_list()
        transpose_a = op.get_attr("transpose_a" if kind == "MatMul" else "adj_x")
        k = a[-2] if transpose_a else a[-1]
        return "dense", 2.0 * _elements(op.outputs[0].shape) * k
    if kind in _FREE_OPS or not op.outputs:
        return "free", 0.0
    if kind in _POOL_OPS:
        window = op.get_attr("ksize")
        big = op.outputs[0] if kind in ("AvgPool", "MaxPool") else op.inputs[-1]
        return "other", float(_elements(big.shape) * window[1] * window[2])
    if not op.outputs[0].dtype.is_floating:
        return "free", 0.0
    return "other", float(sum(_elements(t.shape) for t in op.outputs))


def _reachable(graph: tf.Graph, outputs: Iterable[tf.Tensor]) -> list[tf.Operation]:
    """Ops the given outputs depend on, walking data and control inputs backwards."""
    seen: dict[str, tf.Operation] = {}
    stack = [t.op for t in outputs]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen[op.name] = op
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return list(seen.values())


def _count(ops: Sequence[tf.Operation]) -> dict[str, Any]:
    dense = other = 0.0
    by_op: dict[str, float] = {}
    for op in ops:
        kind, flops = _op_flops(op)
        if kind == "dense":
            dense += flops
            by_op[op.type] = by_op.get(op.type, 0.0) + flops
        elif kind == "other":
            other += flops
    return {"dense": dense, "other": other, "by_op": by_op}


def step_flops(model: str | LoadedModel, size: int, layers: Any = None) -> dict[str, Any]:
    """Useful FLOPs of ONE gradient step on a size x size image, counted from the graph.

    Rule: trace a concrete tf.function with static shape [size, size, 3] computing the
    engine's objective (the model's default layers unless `layers`, weighted mean
    activations, same preprocess) and d loss / d input. Keep only the ops reachable backwards
    from the gradient (and loss) output: this drops the filter-gradient ops that
    tape.gradient also builds and that TensorFlow prunes at run time. Count 2 x MACs for
    Conv2D, DepthwiseConv2dNative, their BackpropInput ops and MatMul/BatchMatMul ("dense",
    the FLOPs the efficiency uses). Every other float op counts 1 FLOP per output element,
    pooling ops kh x kw per element of the larger tensor ("other", reported separately; data
    movement such as slices, concat and reshapes counts 0). Forward = ops the loss depends
    on; backward = the rest. Smoothing and the step update are not counted. The graph is
    TensorFlow's own gradient (fast_input_gradients=False), so the count is the textbook
    work whichever way the engine computes it.
    """
    loaded = load(model) if isinstance(model, str) else model
    engine = make_engine(loaded, layers=layers, fast_input_gradients=False)
    weights = tf.constant(engine.objective.weights(), tf.float32)

    def loss_and_grad(img: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = engine._loss(img, weights)
        return loss, tape.gradient(loss, img)

    concrete = tf.function(loss_and_grad).get_concrete_function(
        tf.TensorSpec([size, size, 3], tf.float32))
    loss_out, grad_out = concrete.outputs
    forward = _count(_reachable(concrete.graph, [loss_out]))
    total = _count(_reachable(concrete.graph, [loss_out, grad_out]))
    return {
        "model": loaded.spec.name,
        "size": size,
        "layers": list(engine.objective.layers()),
        "gflop": total["dense"] / 1e9,
        "forward_gflop": forward["dense"] / 1e9,
        "backward_gflop": (total["dense"] - forward["dense"]) / 1e9,
        "other_gflop": total["other"] / 1e9,
        "by_op_gflop": {k: round(v / 1e9, 4) for k, v in sorted(total["by_op"].items())},
    }


def step_time(engine: DreamEngine, size: int, steps: int = STEPS, repeats: int = 3,
              tile: int | None = None, size_hw: tuple[int, int] | None = None
              ) -> dict[str, Any]:
    """Seconds per ascent step of `engine`: one octave of `steps` steps, median of `repeats`
    timed dreams after one warm-up (which also traces). Tile defaults to >= the image side
    (one tile)."""
    w, h = size_hw or (size, size)
    image = default_image((w, h))
    settings = DreamSettings(octaves=1, steps=steps, tile=tile or max(512, w, h))
    seconds, times = median_seconds(lambda: engine.dream(image, settings), repeats)
    return {"ms_per_step": 1e3 * seconds / steps,
            "runs_ms_per_step": [round(1e3 * t / steps, 1) for t in times]}


def efficiency_rows(models: Sequence[str] = MODELS, sizes: Sequence[int] = SIZES,
                    steps: int = STEPS, repeats: dict[int, int] | None = None
                    ) -> list[dict[str, Any]]:
    """One row per (model, size): ms/step, GFLOP/step, achieved GFLOP/s, and the matmul
    FLOP/s measured just before the row's timing ("local_peak_gflops").

    Engine smoothing is "none" (the counted FLOPs exclude smoothing; see
    `smoothing_overhead` for its cost). `run()` adds the fractions of the run's peak.
    """
    repeats = repeats or REPEATS
    rows = []
    for model in models:
        loaded = load(model)
        engine = make_engine(loaded)
        for size in sizes:
            flops = step_flops(loaded, size)
            local = matmul_peak(repeats=3)["gflops"]
            timing = step_time(engine, size, steps, repeats.get(size, 3))
            achieved = flops["gflop"] / (timing["ms_per_step"] / 1e3)
            rows.append({**flops, **timing, "gflops_per_s": achieved,
                         "local_peak_gflops": local})
    return rows


def smoothing_overhead(model: str, size: int = 512, steps: int = STEPS,
                       repeats: int = 3) -> dict[str, Any]:
    """ms/step with the model's default smoothing vs none (the extra is not counted work)."""
    loaded = load(model)
    none = step_time(make_engine(loaded, "none"), size, steps, repeats)["ms_per_step"]
    smooth = step_time(make_engine(loaded, loaded.spec.smoothing), size, steps,
                       repeats)["ms_per_step"]
    return {"model": model, "size": size, "smoothing": loaded.spec.smoothing,
            "ms_per_step_none": none, "ms_per_step_smoothed": smooth,
            "overhead": smooth / none - 1.0}


def inception_sanity() -> dict[str, Any]:
    """Forward MACs of InceptionV3 to its last block (mixed10) at 299 px; literature: ~5.7 G."""
    flops = step_flops("inception_v3", 299, layers="mixed10")
    return {"forward_gmac_299": flops["forward_gflop"] / 2, "expected_gmac": 5.7}


def run(models: Sequence[str] = MODELS, sizes: Sequence[int] = SIZES) -> dict[str, Any]:
    """Everything `main()` measures, as one JSON-able dict.

    The machine is shared, so the matmul peak is measured before and after the run and
    before each row; "fraction_of_peak" divides by the best of them (conservative) and
    "fraction_of_local_peak" by the one taken just before that row.
    """
    before = matmul_peak()
    rows = efficiency_rows(models, sizes)
    after = matmul_peak()
    best = max([before["gflops"], after["gflops"]] + [r["local_peak_gflops"] for r in rows])
    for r in rows:
        r["fraction_of_peak"] = r["gflops_per_s"] / best
        r["fraction_of_local_peak"] = r["gflops_per_s"] / r["local_peak_gflops"]
    return {"matmul_peak": {**before, "best_gflops_in_run": best},
            "matmul_peak_after": after, "rows": rows, "sanity": inception_sanity()}


def markdown(results: dict[str, Any]) -> str:
    """The efficiency table of `run()` results, as markdown."""
    peak = results["matmul_peak"]
    lines = [
        f"matmul peak (float32, N={peak['n']}): best in run {peak['best_gflops_in_run']:.1f}"
        f" GFLOP/s (start {peak['gflops']:.1f}, end {results['matmul_peak_after']['gflops']:.1f})",
        "",
        "| model | size | ms/step | GFLOP/step (fwd+bwd) | other GFLOP | GFLOP/s "
        "| of peak | local peak | of local |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['model']} | {r['size']} | {r['ms_per_step']:.0f} | "
            f"{r['gflop']:.2f} ({r['forward_gflop']:.2f}+{r['backward_gflop']:.2f}) | "
            f"{r['other_gflop']:.2f} | {r['gflops_per_s']:.1f} | "
            f"{100 * r['fraction_of_peak']:.0f}% | {r['local_peak_gflops']:.0f} | "
            f"{100 * r['fraction_of_local_peak']:.0f}% |"
        )
    if "sanity" in results:
        s = results["sanity"]
        lines += ["", f"check: InceptionV3 forward to mixed10 at 299 px = "
                      f"{s['forward_gmac_299']:.2f} GMAC (expected ~{s['expected_gmac']})"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, print the markdown table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.models, args.sizes)
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
