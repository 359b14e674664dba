# tierflow — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
CLUSTER_DIR := $(CURDIR)/target/cluster
export TIERFLOW_CLUSTER_DIR := $(CLUSTER_DIR)

.PHONY: all build test unit e2e lint fmt crds cluster cluster-down demo clean

all: build

build:
	$(CARGO) build --locked

## The README's test command: unit tests, then the integration tests against a real control
## plane (started if not running; USE_EXISTING_CLUSTER=true uses the cluster of KUBECONFIG).
test: build
	@if [ "$${USE_EXISTING_CLUSTER:-}" != "true" ]; then hack/cluster.sh up; fi
	$(CARGO) test --locked --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate crds/ from the Rust types (a test fails when they drift).
crds:
	$(CARGO) run --quiet -- crds > crds/tierflow.yaml

cluster:
	hack/cluster.sh up

cluster-down:
	hack/cluster.sh down

## Start the local control plane, install the CRDs, create the three-tier example, run the
## operator, and show what it rendered.
demo: build
	hack/demo.sh

clean: cluster-down
	$(CARGO) clean
