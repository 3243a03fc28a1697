# gisgrid — the two commands: `make demo` and `make test`. Both set up what they need and are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench clean-db

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## setup: virtualenv, the project, PostgreSQL + PostGIS, Node.js + the map assets from npm, Pango + a CJK font
## for the PDF orders (apt-get when root)
setup: $(STAMP)
	$(BIN)/gisgrid db setup
	bash scripts/ensure_node.sh
	bash scripts/ensure_browser.sh
	bash scripts/ensure_pdf.sh
	$(BIN)/python -m maps.assets install

## demo: database up, demo district loaded, API and pages on http://127.0.0.1:8000 (with the demo district's own
## routing rules, data/demo/routing_demo.csv, which are not in the base rules every city runs, before any extra
## files already set — the list `gisgrid demo load` routes the demo history with)
DEMO_EXTRA = GISGRID_CATALOGUE_EXTRA="$$($(BIN)/python -c 'import json; from gisgrid.demo_loader import demo_settings; from gisgrid.settings import Settings; print(json.dumps([str(p) for p in demo_settings(Settings()).catalogue_extra]))')"
demo: setup
	$(DEMO_EXTRA) $(BIN)/gisgrid db up
	$(BIN)/gisgrid demo load
	$(DEMO_EXTRA) $(BIN)/gisgrid serve

## test: lint and type-check, then the whole suite on up to 4 cores (pytest-xdist), each worker against its own
## throwaway PostGIS database
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	GISGRID_REQUIRE_BROWSER=1 $(BIN)/pytest -n auto --maxprocesses 4

## lint: ruff, then mypy (its files and settings: [tool.mypy] in pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## clean-db: stop and delete the embedded cluster (all local data)
clean-db: setup
	-$(BIN)/gisgrid db down
	rm -rf .gisgrid
