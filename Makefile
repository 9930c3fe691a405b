# The two entry points of the README:
#   make site   set everything up, then run the main job: build the site into site/
#   make test   set everything up, then run every test (the browser tests need Chromium)
# Both create a virtual environment in .venv and install KaTeX's assets into node_modules the first
# time; nothing is installed globally except Chromium, from the system's packages, by `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup site serve test lint chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: an unpinned torch would pull the CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# KaTeX's stylesheet and fonts, pinned in package-lock.json to the KaTeX inside PyKaTeX.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)

site: setup
	$(BIN)/python scripts/make_plots.py
	$(BIN)/mkdocs build --strict
	@echo "The site is in site/. Serve it on this machine with"
	@echo "    $(BIN)/python -m http.server -d site -b 127.0.0.1 8000"
	@echo "and open http://127.0.0.1:8000/ (or: make serve, which rebuilds on every change)."

serve: setup
	$(BIN)/mkdocs serve -a 127.0.0.1:8000

chromium:
	@test -x $(CHROMIUM) || (apt-get update && apt-get install -y chromium)

test: setup chromium
	$(BIN)/python -m ruff check annotated_opt tests scripts
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/python -m ruff check annotated_opt tests scripts
