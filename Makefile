# The two commands of the README: `make demo` and `make test`. Both install liblz4-dev first.
SWIFT ?= swift
DEMO_DIR ?= /tmp/aggstore-demo
ORDERS ?= 1000

.PHONY: deps build demo test bench-smoke compare figures clean

deps:
	@./scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The DataStore demo in a fresh store (orders and events in units of work, a subscriber, a conflict,
# queries), then verifies the store and prints its statistics.
demo: deps
	$(SWIFT) build -c release --product aggstore
	rm -rf "$(DEMO_DIR)"
	"$$($(SWIFT) build -c release --show-bin-path)/aggstore" demo --path "$(DEMO_DIR)" --orders $(ORDERS)
	"$$($(SWIFT) build -c release --show-bin-path)/aggstore" verify "$(DEMO_DIR)"
	"$$($(SWIFT) build -c release --show-bin-path)/aggstore" stats "$(DEMO_DIR)"

test: deps
	$(SWIFT) build --product aggstore
	$(SWIFT) test
	$(MAKE) bench-smoke

# The benchmark harness must keep building and running: its package-benchmark suites are built,
# and the comparison with SQLite runs at tiny sizes (a check that it works, not a measurement).
bench-smoke:
	@./scripts/install-deps.sh --bench
	cd Benchmarks && $(SWIFT) build
	cd Benchmarks && $(SWIFT) run compare --smoke --results "$$(mktemp -d)"

# The comparison with SQLite (GRDB) and the fsync floor at full size, release build; reports in
# Benchmarks/results/ (see Docs/BENCHMARKS.md).
compare:
	@./scripts/install-deps.sh --bench
	cd Benchmarks && $(SWIFT) run -c release compare

# The engine's headline figures (commit latency against the fsync floor, lookups, CRC32C, LZ4, open time).
figures: deps
	$(SWIFT) build -c release --product aggstore
	"$$($(SWIFT) build -c release --show-bin-path)/aggstore" bench

clean:
	rm -rf .build "$(DEMO_DIR)"
