# alpsim: `make demo` and `make test` do all the set-up on a fresh machine
# (Python 3.11+, Node 20, make): a .venv with the package and its dev extras, and `npm ci`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ALPSIM := $(VENV)/bin/alpsim
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: all setup demo test bench compile clean

all: test

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "alpsim needs Python 3.11+, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)

$(PY_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# --ignore-scripts: anvil's binary comes in its platform package from the registry; its
# postinstall would only fetch what is already there.
$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

compile: setup
	$(ALPSIM) compile

demo: setup
	$(ALPSIM) demo

test: setup
	$(PY) -m pytest

clean:
	rm -rf build .pytest_cache
