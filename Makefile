# classcast: build, run and test.
#   make serve   install build deps, build, run the server (prints the page URLs)
#   make test    everything CI runs: Rust unit + integration tests, browser e2e, aiortc peers
#   make e2e     Node + Chromium end-to-end tests only (in a loopback-only network namespace)
#   make peers   Python aiortc peer tests only (same namespace rule)
#   make fuzz    every fuzz target for FUZZ_SECS seconds (cargo-fuzz, not part of make test)
#   make bench   the forwarding benchmarks and the recording cost (docs/PERFORMANCE.md)
#   make bench-compare  classcast, Janus VideoRoom and the floor under the same load, side by side
#   make bench-smoke    the same at N=5 for 5 s: fails only if the tool breaks (part of make test)
# CLASSCAST_BIN overrides the server binary the e2e and peer tests start.

SHELL := /bin/bash
CARGO ?= cargo
# A network namespace with only `lo`: no test packet can leave 127.0.0.1.
# As non-root, also map to root in a user namespace.
NETNS := unshare -n $(if $(filter 0,$(shell id -u)),,-r) bash -c
LO_UP := ip link set lo up

.PHONY: serve test unit build e2e peers fuzz bench deps-serve deps-test bench-compare bench-smoke deps-bench build-load

FUZZ_SECS ?= 30
FUZZ_TARGETS := datagram sdp_offer client_msg join_token fmp4_index

serve: deps-serve
	$(CARGO) build --release
	target/release/classcast serve

test: deps-test unit e2e peers bench-smoke

unit:
	$(CARGO) test --release --workspace

build:
	$(CARGO) build --release

e2e: build
	$(NETNS) '$(LO_UP) && cd tests/e2e && node --test --test-concurrency=1 --test-timeout=240000 --test-reporter=tap *.test.js'

peers: build
	$(NETNS) '$(LO_UP) && cd tests/peers && .venv/bin/python -m pytest'

deps-serve:
	scripts/install-deps.sh serve

deps-test:
	scripts/install-deps.sh test

# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t -- -max_total_time=$(FUZZ_SECS) -rss_limit_mb=4096 || exit 1; \
	done

bench: deps-bench
	$(CARGO) bench --bench forward
	$(CARGO) bench --bench fanout
	$(CARGO) run --release -p classcast-recorder --example cpu_per_track -- 60 1500
	$(CARGO) run --release -p classcast-recorder --example cpu_per_track -- 60 1500 realtime

# Load benchmarks (benches/load): every server is a child of classcast-load, which runs in
# its own network namespace (scripts/bench-netns.sh) and kills them however it ends.
LOAD_N ?= 50,100,200,400
LOAD_SECS ?= 20
LOAD := scripts/bench-netns.sh target/release/classcast-load

deps-bench:
	scripts/install-deps.sh bench

build-load:
	$(CARGO) build --release -p classcast -p classcast-load

bench-compare: deps-bench build-load
	timeout 3600 $(LOAD) compare --n $(LOAD_N) --secs $(LOAD_SECS)

bench-smoke: build-load
	timeout 900 $(LOAD) compare --n 5 --secs 5 --check
