# Two commands set everything up on a fresh machine:
#   make demo   - create .venv if missing, install, run the main job on CDNOW
#   make test   - create .venv if missing, install, run lint and the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CONFIG ?= configs/cdnow.yaml

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) pipelines/main.py --config $(CONFIG)

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q

clean:
	rm -rf outputs mlruns mlartifacts mlruns.db .pytest_cache
