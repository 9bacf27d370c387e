# creator-sync: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.12.15
CONSTRAINTS := constraints/constraints-3.11.txt
# Linux, Python 3.11, under Airflow's constraints: the set the image runs and the tests use
COMPILE := $(BIN)/uv pip compile --generate-hashes --python-version 3.11 --python-platform linux -c $(CONSTRAINTS) --no-emit-package creator-sync
INSTALLED := $(VENV)/.installed
# Python caches compiled modules (__pycache__) for every process make starts, whatever the shell says:
# with PYTHONDONTWRITEBYTECODE set, each Airflow process (CLI call, scheduler, task) recompiles Airflow
# from source, about 3 s of CPU per `import airflow`.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo stop test test-fast soak lint format bench lock constraints pin-image audit sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --require-hashes --python $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

install: $(INSTALLED) ## create .venv with the dev lock (runtime + test tools) and the package, editable

demo: install ## start sandboxes + Airflow, load pools/connections, run one creator sync
	scripts/demo.sh

stop: ## stop everything `make demo` started
	scripts/stop.sh

test: install ## the whole test suite (unit + slow tests that start servers), two workers, one file each
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=30

test-fast: install ## unit tests only
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

soak: install ## the property tests with a long search: exactly-once (300 generated histories), clearing (1,000 status sequences)
	HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest -p no:xdist tests/exactly_once/test_property.py tests/pipeline/test_clearing.py

lint: install ## ruff, the layer contract (.importlinter), and the docs name only what exists
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m devtools.docs_check

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## benchmarks; QUICK=1 for the short run
	$(BIN)/python -m devtools.bench $(if $(QUICK),--quick,)

sandbox: install ## run the vendor sandboxes in the foreground
	$(BIN)/python -m devtools.sandbox

lock: ## resolve requirements.txt -> requirements.lock (runtime, the image), requirements-dev.txt -> requirements-dev.lock and requirements-build.txt -> requirements-build.lock (the image's build stage), under $(CONSTRAINTS), with hashes
	$(COMPILE) requirements.txt -o requirements.lock
	$(COMPILE) requirements-dev.txt -o requirements-dev.lock
	$(COMPILE) requirements-build.txt -o requirements-build.lock

constraints: ## write $(CONSTRAINTS): Airflow's published constraints, or the same resolution where they are out of reach
	$(BIN)/python -m devtools.constraints

audit: install ## the locks against known vulnerabilities (pip-audit, OSV): needs the network, so neither lint nor test runs it
	$(BIN)/python -m devtools.audit

pin-image: install ## write the digest of the Dockerfile's base image into it (needs Docker with buildx and Docker Hub)
	$(BIN)/python -m devtools.pin_image

clean: stop
	rm -rf .airflow .run
