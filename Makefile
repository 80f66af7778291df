# KWS Studio — two commands do everything on a fresh machine:
#   make dashboard   install, then start the dashboard on the embedded synthetic data
#   make test        install, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8501
CHROMIUM := /usr/bin/chromium
REDIS_SERVER := /usr/bin/redis-server
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install dashboard test test-fast lint bench clean-data

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

# Debian's redis-server: the queue-injection tests and the two-host worker test run against a real Redis
# (the redis_url fixture of tests/conftest.py starts one on a free port of 127.0.0.1, without persistence,
# and stops it).
$(REDIS_SERVER):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server

test: install $(CHROMIUM) $(REDIS_SERVER)
	$(BIN)/python -m pytest

# The fast lane for development: no browser, nothing marked slow (long trainings, CLI processes).
test-fast: install
	$(BIN)/python -m pytest -m "not browser and not slow" -q

lint: install
	$(BIN)/ruff check kwscore dashboard pages tests benchmarks

bench: install
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_augment.py
