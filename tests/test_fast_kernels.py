"""The octave graph runs oneDNN's kernels for every pool gradient: inside the octave's loops,
oneDNN's rewrite could miss InceptionV3's max-pool gradients, leaving Eigen's MaxPoolGrad at a
third of a bfloat16 step (issue 28). Checked in a fresh process with oneDNN turned on, on any
x86 CPU, by the kernels TensorFlow's profiler saw run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from render.device import cpu_info

SCRIPT = textwrap.dedent("""
    import collections, glob, json, sys, tempfile
    import keras
    import numpy as np
    from render.engine import DreamEngine
    from render.objectives import layer
    from render.tf_runtime import tf
    from tensorflow.python.util import _pywrap_util_port
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    if not _pywrap_util_port.IsMklEnabled():
        print(json.dumps({"onednn": False}))
        sys.exit(0)
    net = keras.applications.InceptionV3(weights=None, include_top=False)
    engine = DreamEngine(net, lambda x: x, layer("mixed3"), "none", 75, precision=sys.argv[1])
    size = 160
    img = tf.zeros([size, size, 3])
    def step():
        return engine._octave(img, tf.constant(0), tf.constant(1), tf.constant(1),
                              tf.constant(0.01), tf.constant(size), tf.constant([0, 0]),
                              tf.constant([1.0]), (), tf.ones([size, size, 1])).numpy()
    step()
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    step()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(logdir + "/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    kinds = collections.Counter(
        plane.event_metadata[ev.metadata_id].name.split(":")[-1]
        for plane in space.planes for line in plane.lines for ev in line.events)
    print(json.dumps({k: n for k, n in kinds.items() if "Pool" in k}))
""")


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_every_pool_gradient_runs_on_onednn(precision):
    if os.uname().machine not in ("x86_64", "AMD64"):
        pytest.skip("oneDNN's CPU kernels are TensorFlow's on x86 only")
    if precision == "bfloat16" and "avx512f" not in cpu_info()["flags"]:
        pytest.skip("oneDNN computes bfloat16 only on CPUs with AVX-512")
    # the CPU's kernels even on a machine with a GPU
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, "-c", SCRIPT, precision], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    kinds = json.loads(run.stdout.strip().splitlines()[-1])
    if kinds.get("onednn") is False:
        pytest.skip("this TensorFlow build has no oneDNN kernels")
    assert "MaxPoolGrad" not in kinds, kinds  # Eigen's kernel
    # InceptionV3 up to mixed3 has 3 max pools: each pool's gradient on oneDNN
    assert kinds.get("_MklNativeMaxPoolGrad") == kinds.get("_MklNativeMaxPool") == 3, kinds
