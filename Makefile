# The front door. `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-complete
# Deployment linters (checkov and friends) pin older versions of shared packages: own venv.
LINT_VENV := .venv-lint
LINT_STAMP := $(LINT_VENV)/.setup-complete
MAR := model_store/pd_segmenter.mar
WEIGHTS := model_store/weights/pd_segmenter.state.pt model_store/weights/pd_segmenter.json
ARCHIVE_INPUTS := handler/pd_handler.py $(wildcard handler/pdseg/*.py) $(WEIGHTS) \
                  config/model-config.yaml scripts/export.py

.PHONY: help setup lint-deps lint image-test archive serve demo test test-unit reliability train evaluate bench samples clean
.DEFAULT_GOAL := help

help:
	@echo "make demo      serve the model and analyse the bundled sample captures"
	@echo "make test      the whole test suite (unit, handler, real TorchServe)"
	@echo "make reliability  fuzzing, batch-mates, slow clients, soak, worker kill, worst requests (~5 min); writes docs/reliability.md"
	@echo "make setup     .venv with the pinned packages (needs Java 17+)"
	@echo "make archive   model_store/pd_segmenter.mar: frozen TorchScript (RUNTIME=onnx: ONNX Runtime)"
	@echo "make serve     TorchServe in the foreground (TS_INFERENCE_PORT etc., default 8080-8082)"
	@echo "make train     retrain the shipped weights from scratch (CPU, ~1 h; resumes if interrupted)"
	@echo "make evaluate  model vs classical detector: training tiers, independent set, pulse atlas, real captures"
	@echo "make bench     speed benchmark over HTTP; writes docs/benchmarks.md"
	@echo "make lint      deployment checks (Dockerfile, k8s/): tests/test_deploy.py"
	@echo "make image-test  build the image with podman and test the container (root); writes docs/image.md"

setup: $(SETUP_STAMP)

# Also installs the client's packages (requirements-client.txt: not in the serving image) and
# this project's package, editable: the client (.venv/bin/pd-analyse) and pdseg (setuptools is
# there already: torch requires it); headless Chromium, which the report test opens
# report.html in, and redis-server, which the cache tests start (the shared tier,
# docs/cache.md) (Debian's packages; installed when running as root).
$(SETUP_STAMP): requirements.txt requirements-client.txt pyproject.toml
	@command -v java >/dev/null 2>&1 || { echo "Java 17 or newer is required by TorchServe's frontend (Debian: apt-get install openjdk-17-jre-headless)." >&2; exit 1; }
	@java_major=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1); \
	  if [ -z "$$java_major" ] || [ "$$java_major" -lt 17 ]; then \
	    echo "Java 17 or newer is required by TorchServe's frontend; found: $$(java -version 2>&1 | head -n1)" >&2; exit 1; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-client.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: the report test needs it (as root: apt-get install chromium)" >&2; fi; }
	@command -v redis-server >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "redis-server is missing: the cache tests need it (as root: apt-get install redis-server)" >&2; fi; }
	touch $@

lint-deps: $(LINT_STAMP)

$(LINT_STAMP): requirements-lint.txt
	test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	touch $@

lint: $(SETUP_STAMP) $(LINT_STAMP)
	$(PY) -m pytest -ra tests/test_deploy.py

image-test:
	scripts/image_test.sh

# The network the archive carries: frozen TorchScript, loaded by TorchServe's BaseHandler, or
# RUNTIME=onnx for ONNX Runtime (README, "Which runtime"). `make archive` always repacks.
RUNTIME ?= torchscript

archive: $(SETUP_STAMP)
	$(PY) scripts/export.py --runtime $(RUNTIME)

$(MAR): $(SETUP_STAMP) $(ARCHIVE_INPUTS)
	$(PY) scripts/export.py --runtime $(RUNTIME)

serve: $(MAR)
	$(PY) scripts/serve.py

demo: $(MAR)
	$(PY) scripts/demo.py

test: $(MAR) $(LINT_STAMP)
	$(PY) -m pytest -ra

test-unit: $(SETUP_STAMP) $(LINT_STAMP)
	$(PY) -m pytest -ra -m "not server"

reliability: $(MAR)
	$(PY) scripts/reliability.py

train: $(SETUP_STAMP)
	$(PY) scripts/train.py

evaluate: $(SETUP_STAMP)
	$(PY) scripts/evaluate.py
	$(PY) scripts/atlas.py
	$(PY) scripts/detection_bound.py
	$(PY) scripts/dense_trains.py
	$(PY) scripts/regular_trains.py
	$(PY) scripts/overdriven_adc.py
	$(PY) scripts/clipped_carrier.py
	$(PY) scripts/smooth_pulses.py
	$(PY) scripts/end_pulses.py

bench: $(MAR)
	$(PY) scripts/bench.py

samples: $(SETUP_STAMP)
	$(PY) scripts/make_samples.py

clean:
	rm -rf build .run $(MAR) .pytest_cache
