# KWS Studio — two commands do everything on a fresh machine:
#   make dashboard   install, then start the dashboard on the embedded synthetic data
#   make test        install, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8501
CHROMIUM := /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install dashboard test lint bench clean-data

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade -r requirements-dev.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

dashboard: install
	$(BIN)/streamlit run dashboard/app.py --server.port $(PORT)

# Debian's chromium drives the end-to-end browser tests (Playwright's own download does not work here).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

test: install $(CHROMIUM)
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check kwscore dashboard pages tests benchmarks

bench: install
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_augment.py
