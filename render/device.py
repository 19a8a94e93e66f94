"""Which device TensorFlow dreams on, and the defaults that follow from it.

Nothing in the engine assumes a CPU: TensorFlow places the ascent step on a GPU when it sees
one. Only the default gradient tile differs (a GPU has the memory for larger tiles, and fewer
tiles mean fewer kernel launches per step).
"""

from __future__ import annotations

import os
from functools import cache

from render.tf_runtime import tf

CPU_TILE = 512
GPU_TILE = 1024


@cache
def gpus() -> tuple[str, ...]:
    """Names of the GPUs TensorFlow can use (empty on a CPU-only machine)."""
    return tuple(d.name for d in tf.config.list_physical_devices("GPU"))


def default_tile() -> int:
    """Gradient tile size (px) when the preset leaves `dream.tile` unset."""
    return GPU_TILE if gpus() else CPU_TILE


def describe() -> dict[str, object]:
    """The device record for sidecars and benchmarks."""
    threading = tf.config.threading
    return {"device": gpus()[0] if gpus() else "CPU", "gpus": len(gpus()),
            "cpu_count": os.cpu_count(),
            "intra_op_threads": threading.get_intra_op_parallelism_threads() or "auto",
            "inter_op_threads": threading.get_inter_op_parallelism_threads() or "auto",
            "tensorflow": tf.__version__}
