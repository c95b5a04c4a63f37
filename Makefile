# orbitnet: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
BIN := $(or $(CARGO_TARGET_DIR),target)/release/orbitnet
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: deps build demo deploy kind-up kind-down images test-cluster test-cluster-2 bench-cluster test fmt-check clippy unit test-apiserver test-kernel test-browser bench bench-plan bench-dataplane bench-scale bench-flows bench-ui screenshot-ui clean

deps:
	@scripts/install-deps.sh
	@scripts/prune-cache.sh

build: deps
	$(CARGO) build --release --locked -p orbitnet

# The backbone scenario in the local runner: ten minutes of orbit in one minute, live view
# of links, paths and faults (in a VM if this kernel has no netem).
demo: build
	scripts/demo.sh

# orbitnet on the current kubectl context: namespace, CRD, RBAC, operator, link agent.
deploy:
	kubectl apply -k manifests/

# A kind cluster "orbitnet" with orbitnet's images loaded (needs Docker and kind), and the
# kubectl context pointing at it. `make kind-up deploy` is the Kubernetes quick start.
kind-up: images
	kind get clusters | grep -qx orbitnet || kind create cluster --name orbitnet
	kind load docker-image --name orbitnet orbitnet/node:$(VERSION) orbitnet/operator:$(VERSION)
	kubectl config use-context kind-orbitnet

kind-down:
	kind delete cluster --name orbitnet

# The node and operator images (needs Docker; load them into kind with `kind load docker-image`).
images:
	docker build -f node-image/Dockerfile -t orbitnet/node:$(VERSION) .
	docker build -f node-image/operator.Dockerfile -t orbitnet/operator:$(VERSION) .

# Tier 4: orbitnet deployed from manifests/ on a real single-node cluster from Debian's
# packages, inside the kernel-tier VM; tiny.yaml applied, checked and deleted, an experiment,
# tiny with OSPF in the pods (~17 min).
test-cluster: deps
	scripts/cluster.sh

# Two VMs, a Kubernetes node each, on a wire with 5 ms of delay each way: the two-node
# tests, then the second VM stopped and the single-node tests on the first.
test-cluster-2: deps
	scripts/cluster.sh --nodes 2

# The same cluster: tiny and iridium each applied and timed to Ready.
bench-cluster: deps
	scripts/cluster.sh --bringup scenarios/tiny.yaml scenarios/iridium.yaml

# Everything this machine supports; a tier it cannot run is skipped loudly, with the reason.
test: deps fmt-check clippy unit
	ORBITNET_ALLOW_SKIP=1 scripts/test-apiserver.sh
	ORBITNET_ALLOW_SKIP=1 scripts/test-kernel.sh
	ORBITNET_ALLOW_SKIP=1 scripts/test-browser.sh
	ORBITNET_ALLOW_SKIP=1 scripts/cluster.sh --nodes 2

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# Tier 1. The other tiers' tests are ignored here with their reason (they need an API server,
# root and netem, or a cluster): test-apiserver, test-kernel and test-cluster run them.
unit:
	$(CARGO) nextest run --locked --workspace --no-fail-fast
	$(CARGO) test --locked --workspace --doc

# Tier 2: the operator against a real kube-apiserver + etcd + kube-controller-manager 1.20.2
# built from Debian's source package (once, cached under ~/.cache/orbitnet; ~5 min), and the
# CRD against Kubernetes 1.36's CRD server from Debian sid (once, cached; ~7 min).
test-apiserver: deps
	scripts/test-apiserver.sh

# Tier 6: the browser view of `orbitnet plan --ui` in Debian's headless Chromium, over
# WebDriver (chromium and chromium-driver installed when missing); screenshots under
# $CARGO_TARGET_DIR/tmp/browser/.
test-browser: deps
	scripts/test-browser.sh

# Frame time, memory and bytes per tick of the browser view, backbone and Starlink shell 1.
bench-ui: deps
	scripts/bench-ui.sh

# The README's picture of the browser view (docs/img/view.png).
screenshot-ui: deps
	scripts/screenshot-ui.sh

# Tier 3: namespaces, veth, vxlan, netem, routes on a real kernel (this host's if it has
# netem, else Debian's generic kernel in a qemu VM). Fails if it cannot run.
test-kernel: deps
	scripts/test-kernel.sh

bench: deps bench-plan bench-dataplane bench-scale bench-flows
	$(CARGO) bench --locked -p orbitnet-benches --bench tick --bench dijkstra

# Hypatia's workload: 2,000 ticks of Starlink shell 1 with routes to every station.
bench-plan: build
	scripts/bench-plan.sh

# netem changes per second, orbitnet's netlink against tc, in one run (VM if no netem here).
bench-dataplane: deps
	scripts/bench-dataplane.sh

# The local runner with Starlink shell 1 + 100 stations: up time, memory, apply per tick.
bench-scale: deps
	scripts/bench-scale.sh

# What measuring 100 flows x 1,000 datagrams/s costs iridium.yaml's emulation, side by side
# with the same run without flows.
bench-flows: deps
	scripts/bench-flows.sh

clean:
	$(CARGO) clean
