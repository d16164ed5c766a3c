# knscale — every target creates/refreshes .venv from pyproject.toml itself, so a fresh
# machine needs nothing but `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Must match the tag of the default downloader image (translator/config/knscale.py DEFAULT_DOWNLOADER_IMAGE).
KSERVE_STORAGE := kserve-storage==0.20.0

.PHONY: run test lint bench soak e2e fuzz clean venv deps

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

# Dead code: what vulture finds and tools/vulture_whitelist.py does not excuse fails the build.
VULTURE_PATHS := knscale webhook translator certs reconciler kubeapi fuzz bench tests tools/vulture_whitelist.py

## lint: ruff, mypy, the import-linter architecture contracts and the dead-code check
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture $(VULTURE_PATHS) --min-confidence 60 --exclude tests/e2e/k8sbin

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

## soak: 10 minutes of admissions over TLS with the certificate rotated every 30 s (bench/soak.py)
soak: $(STAMP)
	bash bench/install_deps.sh
	$(BIN)/python -m bench soak

## fuzz: the seeded hostile-input campaigns (1M AdmissionReviews over TLS, 5,000 lint inputs); figures in BENCHMARKS.md
fuzz: $(STAMP)
	$(BIN)/python -m fuzz admission --reviews $(or $(FUZZ_REVIEWS),1000000)
	$(BIN)/python -m fuzz lint --inputs $(or $(FUZZ_LINT_INPUTS),5000)

## e2e: the real-control-plane suite (builds kube-apiserver & co. from Go modules, cached)
e2e: $(STAMP) deps
	bash tests/e2e/build.sh
	$(BIN)/pytest -q -p no:cacheprovider tests/e2e --override-ini="addopts=--strict-markers -ra"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
