# knscale — every target creates/refreshes .venv from pyproject.toml itself, so a fresh
# machine needs nothing but `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Must match the tag of the default downloader image (translator/config.py DEFAULT_DOWNLOADER_IMAGE).
KSERVE_STORAGE := kserve-storage==0.20.0

.PHONY: run test lint bench e2e clean venv deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# KServe's downloader package, for the contract test of our default image. --no-deps: its
	# import needs only requests/certifi/PyYAML (already here); cloud SDKs load per scheme.
	$(BIN)/python -m pip install -q --no-deps '$(KSERVE_STORAGE)'
	@touch $(STAMP)

venv: $(STAMP)

## run: start the admission webhook over TLS on 127.0.0.1:8443 with self-made certs (no cluster needed)
run: $(STAMP)
	$(BIN)/knscale serve --embedded

## lint: ruff, mypy and the import-linter architecture contracts
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## deps: Debian packages the integration suite runs against (prometheus); idempotent
deps:
	bash tests/integration/install_deps.sh

## test: lint plus the default test suites (unit, api, cli, live, integration)
test: lint deps
	$(BIN)/pytest -q

## bench: benchmarks (figures go into BENCHMARKS.md; nothing is asserted by the unit tests)
bench: $(STAMP)
	bash bench/install_deps.sh
	$(BIN)/python -m bench all

## e2e: the real-control-plane suite (builds kube-apiserver, Knative, KEDA & co. from Go modules, cached);
##      the tests run inside a loopback-only network namespace (tests/e2e/netns.sh): nothing leaves the machine
e2e: $(STAMP) deps
	dir=$$(bash tests/e2e/build.sh) && \
	KNSCALE_E2E_DIR=$$dir bash tests/e2e/netns.sh \
		$(BIN)/pytest -q -p no:cacheprovider tests/e2e --override-ini="addopts=--strict-markers -ra"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
