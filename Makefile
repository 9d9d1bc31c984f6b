# agentworker: common tasks. `make` (or `make help`) lists them.
# Every tool comes from the pins in pyproject.toml, tools/ and gen/*; `make setup`
# installs them into .venv, .tools and node_modules directories.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV_BIN := .venv/bin
PYTHON := $(VENV_BIN)/python
BUF := $(VENV_BIN)/buf
# Python packages checked by mypy (strict); those not written yet are skipped.
MYPY_TARGETS = $(wildcard reference_host reference_worker conformance tests)

.PHONY: help demo cluster-demo bench bench-quick setup generate check-generated lint breaking test go ts spec go-worker conformance conformance-autogen ci

help: ## Show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

demo: setup ## Start a host and two worker processes that greet each other
	$(PYTHON) examples/greeting_demo.py

cluster-demo: setup ## NATS + 3 host nodes: greeting demo and group chat across nodes, then a node is killed
	$(PYTHON) examples/cluster_demo.py

bench: setup ## Compare hosts: relay, AutoGen's host, ours (unbatched, batched); about 6 min
	interop/autogen/setup.sh
	$(PYTHON) -m bench

bench-quick: setup ## One short round of the host comparison (about 40 s)
	interop/autogen/setup.sh
	$(PYTHON) -m bench --quick

setup: ## Install pinned tools and dependencies (.venv, .tools, node_modules)
	@scripts/setup

generate: setup ## Regenerate gen/ (Python, Go, TypeScript) from protos/
	scripts/generate

check-generated: setup ## Fail if gen/ differs from what protos/ generates
	scripts/check-generated

lint: setup ## buf lint, ruff check, ruff format --check, mypy --strict
	$(BUF) lint
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .
	$(VENV_BIN)/mypy $(MYPY_TARGETS)

breaking: setup ## Fail if protos/ breaks compatibility with baseline/
	scripts/check-breaking

go: ## Build and vet the generated Go module
	cd gen/go && go build ./... && go vet ./...

ts: setup ## Type-check the generated TypeScript
	cd gen/ts && ./node_modules/.bin/tsc --noEmit

go-worker: ## gofmt, vet and unit-test the Go worker (workers/go)
	cd workers/go && test -z "$$(gofmt -l .)" && go vet ./... && go mod verify && go test ./...

conformance-autogen: setup ## Run both suites against AutoGen 0.7.5 (its host and its worker runtime)
	interop/autogen/run_conformance.sh

conformance: setup ## Run both conformance suites on every shipped subject; reports in reports/conformance/
	scripts/conformance

spec: ## Check the spec and its requirement index (when scripts/check-spec exists)
	@if [ -x scripts/check-spec ]; then scripts/check-spec; else echo "spec: no scripts/check-spec yet"; fi

test: setup ## Run the test suite (three pytest lanes side by side, scripts/test)
	@scripts/setup --with-browser
	scripts/test

ci: ## Everything CI runs, in order
	$(MAKE) setup
	$(MAKE) check-generated
	$(MAKE) lint
	$(MAKE) breaking
	$(MAKE) go
	$(MAKE) ts
	$(MAKE) spec
	$(MAKE) go-worker
	$(MAKE) test
	$(MAKE) conformance
