# alpsim: `make demo` and `make test` do all the set-up on a fresh machine
# (Python 3.11+, Node 20, make): a .venv with the package and its dev extras, `npm ci`, and
# `npm ci` for the JavaScript example client (examples/js, run by the test suite), and the
# trading page's bundle (ui/, built by esbuild into src/alpsim/ui/static); `make test` also
# makes sure the browser tests have a Chromium (`make browser`).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ALPSIM := $(VENV)/bin/alpsim
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
JS_CLIENT  := examples/js
JS_STAMP   := $(JS_CLIENT)/node_modules/.installed
UI_DIR     := ui
UI_STAMP   := $(UI_DIR)/node_modules/.installed
UI_BUNDLE  := src/alpsim/ui/static/app.js
# Slither pins web3<8, so it lives in its own environment
SLITHER_VENV  := .venv-slither
SLITHER_STAMP := $(SLITHER_VENV)/.installed

.PHONY: all setup demo test test-steps pytest browser slither soak bench compile clean gas-check gas-snapshot mutants

all: test

setup: $(PY_STAMP) $(NODE_STAMP) $(JS_STAMP) $(UI_BUNDLE)

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

# the example client's own ethers and eciesjs (tests/test_js_client.py runs it)
$(JS_STAMP): $(JS_CLIENT)/package.json $(JS_CLIENT)/package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --prefix $(JS_CLIENT)
	@touch $@

# the trading page (alpsim devnet --ui): pinned ethers, eciesjs and esbuild; esbuild bundles
# ui/src into src/alpsim/ui/static (generated, git-ignored), so the page needs no CDN.
# --ignore-scripts: esbuild's binary comes in its platform package (@esbuild/linux-x64, ...).
$(UI_STAMP): $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --prefix $(UI_DIR)
	@touch $@

$(UI_BUNDLE): $(UI_STAMP) $(UI_DIR)/build.mjs $(wildcard $(UI_DIR)/src/*)
	npm run --silent build --prefix $(UI_DIR)

compile: setup
	$(ALPSIM) compile

$(SLITHER_STAMP):
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip install --quiet "slither-analyzer==0.11.6"
	@touch $@

# static analysis of the build-info `alpsim compile` writes: no High or Medium finding
slither: setup $(SLITHER_STAMP)
	$(ALPSIM) compile
	$(SLITHER_VENV)/bin/python scripts/slither_check.py --json build/slither.json

demo: setup
	$(ALPSIM) demo

# `make test` times itself into build/test-suite.json; `make bench` reports it as test_suite_s
test:
	@mkdir -p build; start=$$(date +%s); \
	$(MAKE) --no-print-directory test-steps; rc=$$?; \
	echo "{\"test_suite_s\": $$(( $$(date +%s) - start )), \"passed\": $$( [ $$rc = 0 ] && echo true || echo false ), \"finished_at\": \"$$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" > build/test-suite.json; \
	echo "make test: $$(( $$(date +%s) - start )) s"; exit $$rc

test-steps: setup slither pytest

# the browser tests (tests/test_ui.py) launch Playwright's Chromium, else Debian's /usr/bin/chromium:
# with neither there, scripts/ensure_browser.sh installs one (Playwright's download, and when that
# is unreachable, Debian's `chromium` with apt-get), in one line; once one is there it only looks
# (Playwright's answer for its executable, then /usr/bin/chromium: well under a second)
browser: $(PY_STAMP)
	@scripts/ensure_browser.sh $(PY)

# one worker process per core (pytest-xdist); a module's tests stay together on one worker, as
# its module-scoped deployments are made once
pytest: setup browser
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=25

# a long budget of the stateful invariant test: 4 machines x 100 examples x 60 steps on revm
soak: setup
	ALPSIM_SOAK_EXAMPLES=$${ALPSIM_SOAK_EXAMPLES:-100} ALPSIM_SOAK_STEPS=$${ALPSIM_SOAK_STEPS:-60} \
		$(PY) -m pytest -s -q tests/test_stateful.py

# alpsim's own gas snapshot (.gas-snapshot), through the pytest plugin on the exact embedded EVM;
# the test suite runs the same check (tests/test_plugin.py)
GAS_TESTS := tests/test_plugin.py::TestGasPaths --alpsim-chain bnb,arbitrum
gas-check: setup
	$(PY) -m pytest -p no:xdist -q $(GAS_TESTS) --gas-check=.gas-snapshot

gas-snapshot: setup
	$(PY) -m pytest -p no:xdist -q $(GAS_TESTS) --gas-snapshot=.gas-snapshot

bench: setup
	$(ALPSIM) bench

# the mutation study (docs/testing.md, "The mutation study"): each of the catalog's single-line
# mutants of the contracts (python -m alpsim.mutation --list) is compiled, fuzzed by `alpsim fuzz`
# (2-minute budget, 2 workers), its shrunk scenarios replayed with `alpsim run`, and the project's
# own suite run on it. It takes long: 35 mutants x (2 minutes of fuzzing + the suite), hours on
# two cores. Resumable (a mutant with a result is skipped; MUTANTS_ARGS=--force runs it again);
# MUTANTS_ARGS="--only M01,M05 --skip-suite" for a part. Results: build/mutants/results.json, table.md
mutants: setup
	$(PY) -m alpsim.mutation $(MUTANTS_ARGS)

clean:
	rm -rf build .pytest_cache
