"""Which device TensorFlow dreams on, and the defaults that follow from it.

Nothing in the engine assumes a CPU: TensorFlow places the ascent step on a GPU when it sees
one. Only the default gradient tile differs (a GPU has the memory for larger tiles, and fewer
tiles mean fewer kernel launches per step).
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path
from typing import TypedDict

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


# --- machine facts that decide the network's precision (render.precision) ---

def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU ops (TF_ENABLE_ONEDNN_OPTS, or its CPU default:
    on for CPUs with AVX-512 and newer, off for AVX2)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # private module; assume the plain Eigen kernels
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


class CpuInfo(TypedDict):
    """What cpu_info reports: a plain dict, so benches write it to JSON as it is."""

    model: str
    flags: tuple[str, ...]


@cache
def cpu_info() -> CpuInfo:
    """CPU model name and flags from /proc/cpuinfo (empty where there is none)."""
    model = "unknown"
    flags: tuple[str, ...] = ()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": ()}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = tuple(value.split())
    return {"model": model, "flags": flags}


def gpu_capabilities() -> tuple[tuple[int, int], ...]:
    """(major, minor) CUDA compute capability of each GPU; (0, 0) where TF does not say."""
    caps = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        caps.append(tuple(details.get("compute_capability") or (0, 0)))
    return tuple(caps)
