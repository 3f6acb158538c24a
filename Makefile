# The book's commands. On a fresh clone:
#   make book   -- install what is needed and build the website into _build/html
#   make test   -- install what is needed and run every test (lint, unit, notebooks, site)
#   make lab    -- open the chapters in JupyterLab
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch that CI tests with (a CPU build). Readers may override: make TORCH=torch
TORCH ?= torch==2.13.0
export FMBOOK_DATA_MIRROR ?= $(abspath ../shared/data)

.PHONY: install book test lab lint unit notebooks site clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q -e .
	touch $@

# --- placeholder: the book target is written with the Jupyter Book set-up ---
book: install
	$(VENV)/bin/jupyter-book build . -W --keep-going

lab: install
	$(VENV)/bin/jupyter lab chapters

lint: install
	$(VENV)/bin/ruff check fmbook tests chapters
	$(VENV)/bin/ruff format --check fmbook tests

unit: install
	$(PY) -m pytest -q tests

notebooks: install
	FMBOOK_PROFILE=smoke $(PY) -m pytest -q --nbval-lax -n 2 --dist loadfile chapters

test: lint unit notebooks book

clean:
	rm -rf _build
