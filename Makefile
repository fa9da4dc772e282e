# The two commands of the README: `make run` and `make test`. Both create the virtualenv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Plug-in distributions under tests/plugins/, built and installed as real wheels for the tests.
PLUGINS := tests/plugins/captions
WHEELS := build/plugins

.PHONY: run test check unit bench clean plugins screenshot

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# `make run PORT=8080 HOST=0.0.0.0`: the public URL follows unless AYTADA_PUBLIC_URL is set.
HOST ?= 127.0.0.1
PORT ?= 8000

run: $(STAMP)
	$(BIN)/aytada-es serve --host $(HOST) --port $(PORT)

plugins: $(STAMP)
	rm -rf $(WHEELS) $(PLUGINS:=/build)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(WHEELS) $(PLUGINS)
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall $(WHEELS)/*.whl

# Our suite in JOBS processes (pytest-xdist; each test has its own database, topics and files),
# then each plug-in's own suite from its folder, as its developer runs it.
JOBS ?= 2

test: $(STAMP) plugins
	bash scripts/check
	$(BIN)/python -m pytest -q -n $(JOBS)
	for plugin in $(PLUGINS); do (cd $$plugin && $(abspath $(BIN))/python -m pytest -q) || exit 1; done

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# The README's picture of My Videos: a browser test with projects in several states.
screenshot: $(STAMP)
	AYTADA_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser/test_my_videos.py -k screenshot

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache .hypothesis $(PLUGINS:=/build)
