# Makefile - a thin wrapper: install what is missing, build with CMake, run, test.
#   make run    build and start `dstmc up` (the whole system on one machine)
#   make test   build and run every test (unit, integration, browser)
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-asan bench format clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/dstmc up

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The same suite once more under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DDSTMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

# Every benchmark beside its reference (wrk, nginx, iperf3, speedtest-cli); figures to docs/benchmarks.md.
bench: build
	DSTMC_BIN=$(BUILD)/dstmc python3 bench/bench.py $(BENCH)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan
