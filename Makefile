# orbitnet: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
BIN := $(or $(CARGO_TARGET_DIR),target)/release/orbitnet

.PHONY: deps build demo test fmt-check clippy unit bench bench-plan clean

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --locked -p orbitnet

# Until the local runner exists (#4): the model's view of the backbone scenario, one
# minute every 10 s, with the paths between ground nodes.
demo: build
	$(BIN) validate scenarios/backbone.yaml
	$(BIN) plan scenarios/backbone.yaml --from 0 --to 60 --step 10 --routes

test: deps fmt-check clippy unit

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

unit:
	$(CARGO) nextest run --locked --workspace --no-fail-fast
	$(CARGO) test --locked --workspace --doc

bench: deps bench-plan
	$(CARGO) bench --locked -p orbitnet-benches

# Hypatia's workload: 2,000 ticks of Starlink shell 1 with routes to every station.
bench-plan: build
	scripts/bench-plan.sh

clean:
	$(CARGO) clean
