# Dyad: `make demo` runs the product end to end; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# The Mini App's browser tests drive Debian's Chromium; Playwright never downloads its own.
CHROMIUM := /usr/bin/chromium
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: demo test lint run migrate clean browser translations translations-check

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

# Message catalogs (bot/locales/<locale>/LC_MESSAGES/dyad.po): the template from the keys
# the code names and the English catalog, every locale updated from it, then compiled
# (the .mo files are not committed; the bot reads the .po files).
POT := build/dyad.pot
BABEL_KEYWORDS := --no-default-keywords -k t:2 -k msg:2 -k tn:2 -k msgn:2 -k UserError:1 -k ngettext:1,2
BABEL_UPDATE := -i $(POT) -d bot/locales -D dyad --no-fuzzy-matching --ignore-pot-creation-date --ignore-obsolete

# Keys built at run time (f"skills.{tag}") are skipped with a warning, kept in build/extract.log.
$(POT): FORCE
	@mkdir -p build
	$(BIN)/pybabel -q extract -F babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output \
		--project Dyad --version 0.1.0 -o $(POT) . 2> build/extract.log \
		|| { cat build/extract.log; exit 1; }

translations: $(STAMP) $(POT)
	$(BIN)/pybabel -q update $(BABEL_UPDATE)
	$(BIN)/pybabel -q compile -d bot/locales -D dyad --use-fuzzy

# What `make lint` runs: fails when a catalog is not as `make translations` leaves it.
translations-check: $(STAMP) $(POT)
	$(BIN)/pybabel -q update --check $(BABEL_UPDATE)
	$(BIN)/pybabel compile -d bot/locales -D dyad --use-fuzzy --statistics

FORCE:

lint: $(STAMP) translations-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict bot handlers schedules db fakebotapi bench tests
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports

run: $(STAMP)
	$(BIN)/dyad run

migrate: $(STAMP)
	$(BIN)/dyad migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
