"""The one place TensorFlow is imported, quietly.

TensorFlow's C++ layer prints CUDA probes and absl notices straight to file descriptor 2 on
import and device start-up; no setting silences them, and they would bury our one-line
messages. We hide fd 2 for that moment only. DREAMREEL_TF_LOGS=1 shows them.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING


def _quiet_import() -> ModuleType:
    """TensorFlow, its devices probed with fd 2 hidden; also when something imported it
    before us (`import keras` does, without probing devices: the probe's CUDA chatter would
    then surface on the first op, in the middle of a render's output)."""
    if os.environ.get("DREAMREEL_TF_LOGS"):
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices()  # device probing chatter happens here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


if TYPE_CHECKING:
    # for the type checker `tf` is the module itself, so `tf.Tensor` works as an annotation
    import tensorflow as tf
else:
    tf = _quiet_import()
