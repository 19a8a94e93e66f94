# dreamreel — every target creates .venv and installs the project first when it is missing
# or pyproject.toml changed (the stamp file).
#   make render preset=zoom [input=FILE] [out=FILE] [args="key=value ..."]
#   make test | make lint | make bench [args="--only pipeline memory"]

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
preset ?= still

.PHONY: render test lint bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

render: $(STAMP)
	$(PY) -m pipelines render $(preset) $(if $(input),"input=$(input)") $(if $(out),"output=$(out)") $(args)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench.run $(args)

lint: $(STAMP)
	$(PY) -m ruff check render pipelines tests bench

clean:
	rm -rf $(VENV) out
