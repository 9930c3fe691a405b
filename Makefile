# The two entry points of the README:
#   make site   set everything up, then run the main job
#   make test   set everything up, then run every test
# Both create a virtual environment in .venv the first time; nothing is installed globally.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup site test lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: an unpinned torch would pull the CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

site: $(STAMP)
	$(BIN)/python scripts/verify_all.py
	$(BIN)/python scripts/make_plots.py

test: $(STAMP)
	$(BIN)/python -m ruff check annotated_opt tests scripts
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/python -m ruff check annotated_opt tests scripts
