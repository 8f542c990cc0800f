# The two commands a new machine needs: `make run` and `make test`.
# Both bootstrap uv into .tools/ with the machine's Python, then sync .venv from uv.lock.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export GLIMPSE_CONFIG ?=

.PHONY: run test cluster compose-test tempest bench lint sample-config lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==0.13.9"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml shared/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	touch $@

## Start API, worker and scrubber on the embedded default (127.0.0.1:9292). Ctrl-C stops all three.
## The first start also loads the metadata definitions of etc/metadefs.
run: $(VENV)/.synced
	$(BIN)/glimpse-manage db sync
	$(BIN)/glimpse-manage db load_metadefs --if-empty
	$(BIN)/python scripts/run.py

## The production topology as local processes (scripts/cluster.py): HAProxy on 127.0.0.1:9292
## in front of 2 API nodes (9293, 9294), 2 workers and 2 scrubbers, on the machine's PostgreSQL
## (database glimpse) and Redis. CLUSTER_ARGS="--help" lists the options. Ctrl-C stops all.
cluster: $(VENV)/.synced
	$(BIN)/python scripts/cluster.py $(CLUSTER_ARGS)

## The whole suite (unit, API on SQLite and PostgreSQL, real clients, deploy checks) plus lint.
## Coverage of glimpse.domain and glimpse.stores must reach fail_under (pyproject.toml).
COVERAGE := --cov=glimpse.domain --cov=glimpse.stores --cov-report=term:skip-covered
## The suite runs on PYTEST_WORKERS pytest-xdist processes (2 by default; 0 runs it in this
## process, as a debugger wants). Most tests wait on servers, brokers and databases, so two
## workers overlap well even on two cores (the whole suite: 21 minutes against 45 in one process);
## --dist loadfile (refined in tests/conftest.py) keeps each file, and the keystone directory, on
## one worker, so module and session servers start once; pytest-cov combines the workers'
## coverage before fail_under.
PYTEST_WORKERS ?= 2
test: $(VENV)/.synced lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(COVERAGE)

## deploy/compose.yaml on this machine's Docker engine: build, up, drive it as a client, down -v.
compose-test: $(VENV)/.synced
	$(BIN)/pytest -m compose tests/compose

## tempest's image API tests against Glimpse with a real Keystone (scripts/tempest/run.py).
tempest: $(VENV)/.synced
	$(BIN)/python scripts/tempest/run.py $(TEMPEST_ARGS)

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/src services/api/src services/worker/src services/scrubber/src
	$(BIN)/lint-imports

## Throughput, latency and memory figures against a real server (not a test).
## BENCH=cluster: through make cluster's balancer with 1 and 2 API nodes (bench/cluster.py).
## BENCH=signatures: upload throughput with and without signature verification, against a
## real Keystone and Barbican (bench/signatures.py).
## BENCH=scale: list 25 and show at 5,000 and 1,000,000 images seeded straight into SQLite and
## PostgreSQL, with the ratio of each figure (bench/scale.py).
BENCH ?= run
bench: $(VENV)/.synced
	$(BIN)/python bench/$(BENCH).py

## Regenerate etc/glimpse.conf.sample from the option definitions.
sample-config: $(VENV)/.synced
	$(BIN)/glimpse-manage config sample > etc/glimpse.conf.sample

lock: $(UV)
	$(UV) lock --python $(PYTHON)

clean:
	rm -rf $(TOOLS) $(VENV) .pytest_cache .mypy_cache .ruff_cache
