# openai-batch for Airflow: every target bootstraps .venv from nothing on a fresh machine.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install test lint demo stop bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(VENV)/bin/pip || $(PY) -m ensurepip -q  # a venv made by uv/virtualenv may have no pip
	@$(PY) -m pip install -q --disable-pip-version-check uv==0.13.8 2>/dev/null
	$(VENV)/bin/uv pip sync -q --require-hashes --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

## test: ruff, then the whole test suite (unit, integration against real services, end to end)
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

## demo: the main job end to end on the embedded defaults; VENDOR=anthropic (or azure) runs it on that vendor's
## routes of the emulator instead of OpenAI's
VENDOR ?= openai
demo: install
	$(PY) -m batchkit.dev.demo --vendor $(VENDOR)

stop:
	@$(PY) -m batchkit.dev.demo --stop 2>/dev/null || true

## bench: the split, collect and scale benches (about 15 minutes; each prints its figures against its targets)
bench: install
	$(PY) bench/bench_split.py --rows 1000000
	$(PY) bench/bench_collect.py
	$(PY) bench/bench_e2e.py

## lock: re-resolve requirements*.txt into requirements.lock (needs the network; the index is uv's default or
## UV_DEFAULT_INDEX / UV_INDEX_URL, e.g. a corporate mirror)
lock:
	$(VENV)/bin/uv pip compile requirements-dev.txt -o requirements.lock --python-version 3.11 --generate-hashes

clean: stop
	rm -rf $(VENV) .demo
