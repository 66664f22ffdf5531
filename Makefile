# The two commands: `make demo` and `make test`. Everything they need is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/credit/demo.sh

services:
	scripts/start-services.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: $(STAMP) services lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/data_add.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/tracking.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/pipeline.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/serve.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/drift.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/registry.py

clean:
	rm -rf $(VENV) examples/credit/work .pytest_cache
