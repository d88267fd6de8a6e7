# Makefile - a thin wrapper: install what is missing, build with CMake, run, test.
#   make run    build and start `dstmc up` (the whole system on one machine)
#   make test   build and run every test (unit, integration, browser, a short run of each fuzzer)
#   make fuzz   run each fuzz target for long (tests/fuzz/fuzz.sh)
#   make install  the binary, systemd units and the default environment file (PREFIX, DESTDIR)
#   make image  the container images of deploy/ (scripts/image.sh; needs a running dockerd)
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
FUZZ_BUILD ?= build-fuzz
SHORT_FUZZ ?= 1
FUZZ_TIME ?= 600
FUZZ_RUNS ?=
FUZZ_JOBS ?= 2
FUZZ_KEEP_GOING ?= 0
# make install: where things go. Units and the environment file carry BINDIR, SYSCONFDIR, DOCDIR.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/dstmc
DESTDIR ?=

.PHONY: all deps deps-test build run test test-asan bench format clean fuzz-build fuzz-short fuzz fuzz-merge \
	install uninstall image

all: build

# What make run needs (compilers, libraries, the UI's npm packages), and what make test adds
# (Redis, PostgreSQL, nginx, wrk, Chromium, clang, ...): scripts/deps.sh says which.
deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/dstmc up

test: deps-test build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
ifneq ($(SHORT_FUZZ),0)
	$(MAKE) fuzz-short
endif

# The same suite once more under AddressSanitizer + UndefinedBehaviorSanitizer (the fuzz
# corpora replay in it too; the libFuzzer runs were part of make test).
test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DDSTMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" \
		SHORT_FUZZ=0

# The fuzz targets of tests/fuzz/ as libFuzzer binaries (clang; ASan, UBSan, LeakSanitizer).
$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DDSTMC_FUZZ=ON

fuzz-build: deps-test $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) --target fuzzers -j $(JOBS)

# Each fuzz target briefly, deterministically (fixed seed and runs): part of make test.
fuzz-short: fuzz-build
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j $(JOBS)

# Each fuzz target for long: FUZZ_TIME s each (or FUZZ_RUNS runs), FUZZ_JOBS at a time,
# FUZZ=name for one; FUZZ_KEEP_GOING=1 runs past findings. Findings and new inputs go to
# $(FUZZ_BUILD)/fuzz-out/, a table for docs/benchmarks.md to $(FUZZ_BUILD)/fuzz-out/summary.md.
fuzz: fuzz-build
	FUZZ_TIME=$(FUZZ_TIME) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_JOBS=$(FUZZ_JOBS) \
		FUZZ_KEEP_GOING=$(FUZZ_KEEP_GOING) tests/fuzz/fuzz.sh long $(FUZZ_BUILD) $(FUZZ)

# Adds what make fuzz found that adds coverage to the seed corpora, minimised (libFuzzer -merge).
fuzz-merge: fuzz-build
	tests/fuzz/fuzz.sh merge $(FUZZ_BUILD) $(FUZZ)

# Every benchmark beside its reference (wrk, nginx, iperf3, speedtest-cli); figures to docs/benchmarks.md.
bench: deps-test build
	DSTMC_BIN=$(BUILD)/dstmc python3 bench/bench.py $(BENCH)

# The binary, a unit per service (deploy/systemd/), the shared environment file (kept when it is
# there: it is the operator's) and the docs. `systemctl daemon-reload` and enable are yours.
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/dstmc $(DESTDIR)$(DOCDIR)
	install -m 755 $(BUILD)/dstmc $(DESTDIR)$(BINDIR)/dstmc
	for u in deploy/systemd/*.service; do \
		$(SUBST) $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && chmod 644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/dstmc/dstmc.env ] || \
		{ $(SUBST) deploy/systemd/dstmc.env > $(DESTDIR)$(SYSCONFDIR)/dstmc/dstmc.env && \
		  chmod 600 $(DESTDIR)$(SYSCONFDIR)/dstmc/dstmc.env; }
	install -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	$(BUILD)/dstmc --help > $(DESTDIR)$(DOCDIR)/dstmc.txt

# Removes what install put there, but the environment file (the operator's) and the state.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/dstmc $(DESTDIR)$(DOCDIR)/*
	for u in deploy/systemd/*.service; do rm -f $(DESTDIR)$(UNITDIR)/$${u##*/}; done
	-rmdir $(DESTDIR)$(DOCDIR)

# dstmc, dstmc-postgres and dstmc-redis (deploy/); the base image is made first when missing.
# deps-test: docker.io, docker-compose and debootstrap are in the test set.
image: deps-test
	scripts/image.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan $(FUZZ_BUILD)
