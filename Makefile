# The front door: `make run` starts the suite as local processes, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCALE ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

COMPOSE := deploy/compose.sh
comma := ,

.PHONY: run up down up-cluster down-cluster test unit lint format docs broker clean bench compose-test test-faults

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: the suite as local processes (the Procfile, under honcho: shared/run_local.py), logging
## for people, with one line once every service answers; SCALE=resizer=4 runs four resizers.
## First makes the admin key `local` when there is none, saved in
## ~/.config/jobsuite/<namespace or default>.key (the CLI reads it), and gives it to the
## gateway as AUDIT_API_KEY unless that (or AUDIT_API_KEY_FILE) is set.
run: $(STAMP) broker
	keyfile="$$($(BIN)/jobsuite keys local)" && \
	if [ -z "$${AUDIT_API_KEY_FILE:-}" ]; then \
		export AUDIT_API_KEY="$${AUDIT_API_KEY:-$$(cat "$$keyfile")}"; fi && \
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m shared.run_local $(if $(SCALE),-c $(SCALE))

## up: the suite in Docker (docker-compose.yml), built and started in the background, with
## `docker compose` or `docker-compose`, whichever is installed (deploy/compose.sh);
## SCALE=resizer=4 (or resizer=4,renderer=2) scales workers. down: stops it, keeping the volumes.
up:
	$(COMPOSE) up --detach --build $(foreach s,$(subst $(comma), ,$(SCALE)),--scale $(s))

down:
	$(COMPOSE) down

## up-cluster: deploy/compose.cluster.yml (three RabbitMQ nodes, PostgreSQL, MinIO, services
## that share no volume), with .env from here when there is one. down-cluster: stops it.
CLUSTER_COMPOSE = $(COMPOSE) $(if $(wildcard .env),--env-file .env) --file deploy/compose.cluster.yml
up-cluster:
	$(CLUSTER_COMPOSE) up --detach --build $(foreach s,$(subst $(comma), ,$(SCALE)),--scale $(s))

down-cluster:
	$(CLUSTER_COMPOSE) down

## test: unit, integration, end-to-end, security and browser tests against the local RabbitMQ
## (Debian's chromium for tests/browser: deploy/ensure-chromium.sh installs it when missing)
## and the local PostgreSQL (the state stores with STATE_URL: deploy/ensure-postgres.sh)
test: $(STAMP) broker
	deploy/ensure-postgres.sh
	deploy/ensure-chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-faults: back-pressure, network faults and the chaos soak (SOAK_JOBS=2000 jobs)
test-faults: $(STAMP) broker
	$(BIN)/python -m pytest tests/faults --timeout=900 $(PYTEST_ARGS)

## unit: the tests that need no broker (the state stores' tests need the local PostgreSQL)
unit: $(STAMP)
	deploy/ensure-postgres.sh
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

## bench: runner overhead, resize, end to end, accept rate, trust checks, PDF, memory against
## their anchors (bench extras into the same venv, wrk from Debian); BENCH_ARGS="--only resize,pdf"
## picks sections; BENCH_BASELINE=<git ref or checkout> measures that tree too (docs/performance.md)
bench: $(STAMP) broker
	deploy/ensure-wrk.sh
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

## compose-test: docker-compose.yml with four resizers and the monitoring profile, then
## deploy/compose.cluster.yml, on a real Docker engine (installs Docker when missing; builds
## stand-in images unless PYTHON_IMAGE, RABBITMQ_IMAGE, PROMETHEUS_IMAGE, POSTGRES_IMAGE and
## S3_IMAGE are set)
compose-test: $(STAMP)
	deploy/ensure-docker.sh
	$(BIN)/python -m pip install --quiet -e '.[test,compose]'
	$(if $(and $(PYTHON_IMAGE),$(RABBITMQ_IMAGE),$(PROMETHEUS_IMAGE),$(POSTGRES_IMAGE),$(S3_IMAGE)),,eval "$$(deploy/offline/build-images.sh)" &&) \
	$(BIN)/python -m pytest tests/compose --timeout=900 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy shared services benchmarks

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## docs: docs/configuration.md from the settings declared in shared/config.py
docs: $(STAMP)
	$(BIN)/python -m shared.config_docs > docs/configuration.md.tmp
	mv docs/configuration.md.tmp docs/configuration.md

broker:
	@deploy/ensure-rabbitmq.sh

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
