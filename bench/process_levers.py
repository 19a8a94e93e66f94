"""The speed levers that only take effect in a fresh process (TensorFlow's thread counts,
TF_ENABLE_ONEDNN_OPTS): one child process per variant, alternating variants over rounds.
Part of bench/levers.py; this file is also the child (`--child JSON`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as the child, or imported as bench.process_levers
    sys.path.insert(0, str(HERE))


def child_measure(model: str, size: int, steps: int, repeats: int, intra: int | None,
                  inter: int | None, fast: bool | None = None) -> dict[str, Any]:
    """In a fresh process: set thread counts, then engine ms/step and the matmul peak."""
    from render.tf_runtime import tf

    if intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import efficiency as ef
    from tensorflow.python.util import _pywrap_util_port

    engine = ef.make_engine(ef.load(model), fast_input_gradients=fast)
    timing = ef.step_time(engine, size, steps, repeats)
    peak = ef.matmul_peak(repeats=5)
    return {"ms_per_step": timing["ms_per_step"], "matmul_gflops": peak["gflops"],
            "onednn": bool(_pywrap_util_port.IsMklEnabled()),
            "threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                        tf.config.threading.get_inter_op_parallelism_threads()]}


def process_lever(name: str, variants: dict[str, dict[str, Any]], model: str = "inception_v3",
                  size: int = 512, rounds: int = 3, steps: int = 4, repeats: int = 2
                  ) -> dict[str, Any]:
    """Run `child_measure` in one fresh process per variant and round (alternating order).

    A variant is {"env": {VAR: value}, "intra": n, "inter": n, "fast": bool} (fast: the
    engine's fast_input_gradients); medians over rounds.
    """
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for v in order:
            cfg = variants[v]
            env = {**os.environ, "DREAMREEL_OFFLINE": "1", **cfg.get("env", {})}
            arg = json.dumps({"model": model, "size": size, "steps": steps, "repeats": repeats,
                              "intra": cfg.get("intra"), "inter": cfg.get("inter"),
                              "fast": cfg.get("fast")})
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", arg],
                                 env=env, capture_output=True, text=True, check=True)
            runs[v].append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = next(iter(variants))
    med = {v: statistics.median(x["ms_per_step"] for x in rs) for v, rs in runs.items()}
    return {"lever": name, "model": model, "size": size, "ms_per_step": med,
            "relative_to_" + base: {v: m / med[base] for v, m in med.items()},
            "matmul_gflops": {v: statistics.median(x["matmul_gflops"] for x in rs)
                              for v, rs in runs.items()},
            "detail": runs}


def threads_lever(**kw: Any) -> dict[str, Any]:
    """TF intra/inter-op thread counts (0 = TensorFlow's default, one per core here)."""
    return process_lever("threads", {
        "default": {},
        "intra2_inter1": {"intra": 2, "inter": 1},
        "intra1_inter2": {"intra": 1, "inter": 2},
        "intra1_inter1": {"intra": 1, "inter": 1},
        "intra4_inter1": {"intra": 4, "inter": 1},
    }, **kw)


def onednn_lever(**kw: Any) -> dict[str, Any]:
    """TF_ENABLE_ONEDNN_OPTS=0 vs 1, each with our fast input gradients and with TF's own.

    Unset, TensorFlow leaves oneDNN off on this AVX2 CPU (the "onednn" field of each run
    says what was in force), so 0 is also the default here. The engine itself turns its
    fast gradients off when oneDNN is on; "fast" forces the choice for this comparison.
    """
    return process_lever("onednn", {
        "onednn_0": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "fast": True},
        "onednn_1": {"env": {"TF_ENABLE_ONEDNN_OPTS": "1"}, "fast": True},
        "onednn_0_tf_gradients": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "fast": False},
        "onednn_1_tf_gradients": {"env": {"TF_ENABLE_ONEDNN_OPTS": "1"}, "fast": False},
    }, **kw)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    print(json.dumps(child_measure(**json.loads(sys.argv[2]))))
