# Dyad: `make demo` runs the product end to end; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# The Mini App's browser tests drive Debian's Chromium; Playwright never downloads its own.
CHROMIUM := /usr/bin/chromium
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: demo test lint run migrate clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/dyad demo

# Installs Chromium where it can (as root with apt-get); elsewhere the browser tests say how.
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	fi

# Three processes on this 2-core machine (much of a test is waiting on loopback HTTP and
# the databases); each test has its own database, schema and ports.
test: $(STAMP) browser
	$(BIN)/pytest -n 3 --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict bot handlers schedules db
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports

run: $(STAMP)
	$(BIN)/dyad run

migrate: $(STAMP)
	$(BIN)/dyad migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
