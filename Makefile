# tracemark: `make run` starts the registry on the embedded default, `make test` runs the suite.
# Both install everything they need first (a .venv and the pinned npm tools).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# The typed Node client's pinned TypeScript (clients/js: its tests compile and run it).
CLIENT_STAMP := clients/js/node_modules/.installed

.PHONY: install run test lint typecheck contracts-check browser bench fuzz-api clean

install: $(PY_STAMP) $(NPM_STAMP) $(CLIENT_STAMP)

$(PY_STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tracemark needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CLIENT_STAMP): clients/js/package.json clients/js/package-lock.json
	npm ci --prefix clients/js --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/tracemark serve

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_STAMP)
	$(BIN)/mypy registry anchoring verifier readmodels api migrations contracts

# The committed contract artifact must be exactly what the pinned solc makes of the source.
contracts-check: $(NPM_STAMP)
	node contracts/build.mjs --check

# Debian's Chromium and its driver, for the page's tests in tests/web (no browser download).
# Installed only where missing; apt needs root (sudo otherwise).
browser:
	@# fonts-wqy-microhei: the Chinese page's screenshots show glyphs, not boxes (issue 18 item 5).
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || [ ! -d /usr/share/fonts/truetype/wqy ]; then \
	    echo "installing Debian's chromium, chromium-driver and a CJK font for the page's browser tests"; \
	    SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null; \
	fi

# The suite in TEST_WORKERS processes, a test module to one process (its fixtures built once);
# TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2

test: install browser lint typecheck contracts-check
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

bench: install
	npm ci --prefix bench --no-audit --no-fund --loglevel=error
	$(BIN)/python -m bench.merkle_bench
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.anchor_gas_bench
	$(BIN)/python -m bench.gas_bench
	$(BIN)/python -m bench.latency_bench
	$(BIN)/python -m bench.verify_bench
	$(BIN)/python -m bench.trust_verify_bench
	$(BIN)/python -m bench.cli_bench
	$(BIN)/python -m bench.statemap_bench
	$(BIN)/python -m bench.monitor_bench
	$(BIN)/python -m bench.witness_bench
	$(BIN)/python -m bench.order_bench
	$(BIN)/python -m bench.order_http_bench
	$(BIN)/python -m bench.receipt_bench
	$(BIN)/python -m bench.badge_bench
	$(BIN)/python -m bench.credit_bench
	$(BIN)/python -m bench.verify_credit_bench
	$(BIN)/python -m bench.ratelimit_bench
	$(BIN)/python -m bench.risk_refresh_bench
	$(BIN)/python -m bench.scenario
	$(BIN)/python -m bench.launder_bench

# Schemathesis against a live `tracemark serve` (embedded chain, fresh data dir), as a platform,
# a creator and an auditor; reports in test-output/fuzz-api/. Minutes, so not part of `test`.
# FUZZ_MAX_EXAMPLES (50), FUZZ_MAX_TIME (600 s a credential) and FUZZ_SEED (1) tune it.
fuzz-api: install
	$(BIN)/python scripts/fuzz_api.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
