# tierflow — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
CLUSTER_DIR := $(CURDIR)/target/cluster
export TIERFLOW_CLUSTER_DIR := $(CLUSTER_DIR)

.PHONY: all build test unit e2e lint fmt crds cluster cluster-down demo clean image pictures

all: build

build:
	$(CARGO) build --locked

## The README's test command: unit tests, then the integration tests against a real control
## plane (started if not running; USE_EXISTING_CLUSTER=true uses the cluster of KUBECONFIG).
## Control planes that `make test` starts (the developers' one, and the chaos scenarios' own in
## target/chaos-cluster) are stopped again at the end, so it leaves no process running; ones that
## were already running are left as they were.
CHAOS_CLUSTER_DIR := $(CURDIR)/target/chaos-cluster
test: build
	@dev_started=; chaos_started=; \
	if [ "$${USE_EXISTING_CLUSTER:-}" != "true" ]; then \
	  hack/cluster.sh status >/dev/null 2>&1 || dev_started=1; \
	  TIERFLOW_CLUSTER_DIR=$(CHAOS_CLUSTER_DIR) hack/cluster.sh status >/dev/null 2>&1 || chaos_started=1; \
	  hack/cluster.sh up || exit 1; \
	fi; \
	$(CARGO) test --locked --workspace --lib --bins --tests; rc=$$?; \
	if [ -n "$$dev_started" ]; then hack/cluster.sh down >/dev/null 2>&1 || true; fi; \
	if [ -n "$$chaos_started" ]; then TIERFLOW_CLUSTER_DIR=$(CHAOS_CLUSTER_DIR) hack/cluster.sh down >/dev/null 2>&1 || true; fi; \
	exit $$rc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate crds/ from the Rust types (a test fails when they drift).
crds:
	$(CARGO) run --quiet -- crds > crds/tierflow.yaml

## Regenerate the pictures in docs/ (the diff pull-request comment and the explain diagram),
## rendered by Mermaid in headless Chromium (hack/review-tools.sh installs them).
pictures:
	hack/pictures.sh

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

## A container image, when a container builder is available (docker or podman).
IMAGE ?= ghcr.io/tierflow/tierflow:0.1.0
image:
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then docker build -t $(IMAGE) .; \
	elif command -v podman >/dev/null; then podman build -t $(IMAGE) .; \
	else echo "no container builder here (docker engine or podman); skipping the image" >&2; fi

## Benchmarks against a control plane of their own (target/bench-cluster): writes
## target/bench/results.{json,md}; see BENCHMARKS.md. bench-quick: N=50, 15 s idle window.
.PHONY: bench bench-quick
bench:
	hack/bench.sh full

bench-quick:
	hack/bench.sh quick

## Chaos scenarios (RELIABILITY.md) against a control plane of their own (target/chaos-cluster,
## started when needed and left running; `hack/chaos.sh down` stops it): every scenario, the
## slow ones included (several minutes), then the bad-input properties with more cases. The fast
## scenarios also run in `make test`.
.PHONY: chaos
chaos: build
	hack/chaos.sh
