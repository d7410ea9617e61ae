# The two commands of the README: `make demo` and `make test`. Both install liblz4-dev first.
SWIFT ?= swift
DEMO_DIR ?= /tmp/aggstore-demo
ORDERS ?= 1000

.PHONY: deps build demo test bench figures clean

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

# The engine's headline figures (commit latency against the fsync floor, lookups, CRC32C, LZ4, open time).
figures: deps
	$(SWIFT) build -c release --product aggstore
	"$$($(SWIFT) build -c release --show-bin-path)/aggstore" bench

clean:
	rm -rf .build "$(DEMO_DIR)"
