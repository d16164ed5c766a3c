# knscale — every target creates/refreshes .venv from pyproject.toml itself, so a fresh
# machine needs nothing but `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Must match the tag of the default downloader image (translator/config/knscale.py DEFAULT_DOWNLOADER_IMAGE).
KSERVE_STORAGE := kserve-storage==0.20.0
PIP := pip==26.3
# The lock tool (make lock): pip-compile resolves with pip's own resolver, and its output is a plain
# requirements file that stock pip installs with --require-hashes (no extra tool at install time).
PIP_TOOLS := pip-tools==7.5.1
PIP_COMPILE_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
WHEELHOUSE := build/wheelhouse

.PHONY: run test lint bench soak e2e fuzz clean venv deps lock wheelhouse image image-test helm chart-test

# Installs exactly requirements/dev.lock (hashes checked), then knscale itself without dependencies.
$(STAMP): pyproject.toml requirements/dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q '$(PIP)'
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements/dev.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	# KServe's downloader package, for the contract test of our default image. --no-deps: its
	# import needs only requests/certifi/PyYAML (already here); cloud SDKs load per scheme.
	$(BIN)/python -m pip install -q --no-deps '$(KSERVE_STORAGE)'
	@touch $(STAMP)

venv: $(STAMP)

## run: start the admission webhook over TLS on 127.0.0.1:8443 with self-made certs (no cluster needed)
run: $(STAMP)
	$(BIN)/knscale serve --embedded

# Dead code: what vulture finds and tools/vulture_whitelist.py does not excuse fails the build.
VULTURE_PATHS := knscale webhook translator certs reconciler kubeapi simulator fuzz bench tests tools/vulture_whitelist.py

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

## lock: re-resolve requirements/{runtime,dev,build}.lock (with hashes) from pyproject.toml; commit both
lock:
	@test -x build/lock-venv/bin/pip-compile || { $(PYTHON) -m venv build/lock-venv && \
	  build/lock-venv/bin/python -m pip install -q 'pip==23.2.1' '$(PIP_TOOLS)'; }
	build/lock-venv/bin/pip-compile $(PIP_COMPILE_FLAGS) --upgrade --output-file=requirements/runtime.lock pyproject.toml
	build/lock-venv/bin/pip-compile $(PIP_COMPILE_FLAGS) --upgrade --extra=dev -c requirements/runtime.lock \
	  --output-file=requirements/dev.lock pyproject.toml
	build/lock-venv/bin/pip-compile $(PIP_COMPILE_FLAGS) -c requirements/dev.lock \
	  --output-file=requirements/build.lock requirements/build.in

## wheelhouse: the wheels of requirements/runtime.lock (hash-checked), for the image and the wheel test
wheelhouse: $(WHEELHOUSE)/.complete
$(WHEELHOUSE)/.complete: requirements/runtime.lock $(STAMP)
	$(BIN)/python -m pip download -q --only-binary=:all: --require-hashes --no-deps \
	  -r requirements/runtime.lock -d $(WHEELHOUSE)
	@touch $@

## test: lint plus the default test suites (unit, api, cli, live, integration)
test: lint deps wheelhouse
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

## e2e: the real-control-plane suite (builds kube-apiserver, Knative, KEDA, helm & co. from Go modules, cached);
##      the tests run inside a loopback-only network namespace (tests/e2e/netns.sh): nothing leaves the machine
e2e: $(STAMP) deps
	bash tools/helm/build.sh  # test_helm_install.py installs charts/knscale with it (cached; make chart-test built it)
	dir=$$(bash tests/e2e/build.sh) && \
	KNSCALE_E2E_DIR=$$dir bash tests/e2e/netns.sh \
		$(BIN)/pytest -q -p no:cacheprovider tests/e2e --override-ini="addopts=--strict-markers -ra"

## image: the container image as an OCI layout in build/image/oci, from Debian packages (no registry)
image: $(STAMP) wheelhouse
	bash image/install_deps.sh
	bash image/build.sh

## image-test: run the built image (podman) and check /healthz and /mutate over TLS inside it
image-test: image
	$(BIN)/pytest -q -p no:cacheprovider tests/image --override-ini="addopts=--strict-markers -ra"

## helm: build the pinned helm (tools/helm/go.mod) from the Go module proxy, cached by its pins
helm:
	bash tools/helm/build.sh

## chart-test: helm lint, helm template schema-checked and compared with the kustomize install
chart-test: $(STAMP) helm
	$(BIN)/pytest -q -p no:cacheprovider tests/chart --override-ini="addopts=--strict-markers -ra"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
