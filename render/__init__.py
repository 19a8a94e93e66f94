"""dreamreel rendering core: the gradient-ascent engine, model zoo, media I/O and encoding.

`Dreamer` is imported lazily so that light modules (encoding, media) do not load TensorFlow.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notices) is noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["Dreamer"]


def __getattr__(name: str):
    if name == "Dreamer":
        from render.dreamer import Dreamer

        return Dreamer
    raise AttributeError(f"module 'render' has no attribute {name!r}")
