# Thin wrapper around meson/ninja. Real build logic lives in meson.build.
#
#   make            build build/ (gcc, debugoptimized)
#   make check      install deps, build + test build/ and build-asan/, summary
#   make fuzz       run every fuzz target for FUZZ_SECONDS (default 600)
#   make soak       vnet-switchd under load and churn for SOAK_S seconds
#                   (default 600): RSS/fds/threads within 5 %, no corrupt frame
#   make bench      install bench deps, release build, bench/suite.sh: vnet vs
#                   DPDK 22.11 and OVS-DPDK 3.1 (root, < 15 min; BENCH_ONLY,
#                   RUNS, WINDOW... see bench/suite.sh) -> bench/results/
#   make demo       vnet-switchd with two QEMU guests, a vnet-vmm guest and a tap (root, < 2 min)
#   make clean      remove build dirs

, := ,

BUILD        ?= build
BUILD_ASAN   ?= build-asan
BUILD_REL    ?= build-release
FUZZ_SECONDS ?= 600
MESON        ?= meson
NINJA        ?= ninja

MESON_TEST = $(MESON) test --print-errorlogs --num-processes 2 -t 3 --no-rebuild

SAN_ENV = UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
          ASAN_OPTIONS=detect_leaks=1

# (dir, env for setup, setup options): configure once and reuse; ninja
# re-runs meson by itself when meson.build files change. --reconfigure only
# for a configured dir whose build.ninja is gone; a half-made dir is redone.
define configure
	@if [ -f $(1)/build.ninja ]; then :; \
	elif [ -f $(1)/meson-private/coredata.dat ]; then \
		$(2) $(MESON) setup --reconfigure $(3) $(1) .; \
	else \
		rm -rf $(1); $(2) $(MESON) setup $(3) $(1) .; \
	fi
endef

.PHONY: all build build-asan build-release check test deps fuzz bench demo clean soak

all: build

build:
	$(call configure,$(BUILD),CC=gcc,--buildtype=debugoptimized)
	$(NINJA) -C $(BUILD)

build-asan:
	$(call configure,$(BUILD_ASAN),CC=clang,--buildtype=debugoptimized -Db_sanitize=address$(,)undefined -Db_lundef=false -Dfuzz=enabled)
	$(NINJA) -C $(BUILD_ASAN)

build-release:
	$(call configure,$(BUILD_REL),,--buildtype=release -Dmarch=native)
	$(NINJA) -C $(BUILD_REL)

deps:
	@./scripts/install-deps.sh

# Both configurations always run; the summary decides the exit status.
check: deps
	@$(MAKE) --no-print-directory build build-asan
	@rm -f $(BUILD)/meson-logs/testlog.json $(BUILD_ASAN)/meson-logs/testlog.json
	-$(MESON_TEST) -C $(BUILD)
	-$(SAN_ENV) $(MESON_TEST) -C $(BUILD_ASAN)
	@echo
	@python3 scripts/test-summary.py $(BUILD) $(BUILD_ASAN)

test: build
	$(MESON_TEST) -C $(BUILD)

fuzz: deps build-asan
	@set -e; found=0; \
	for bin in $(BUILD_ASAN)/tests/fuzz/fuzz_*; do \
		[ -f "$$bin" ] && [ -x "$$bin" ] || continue; \
		found=1; name=$$(basename "$$bin"); name=$${name#fuzz_}; \
		mkdir -p tests/fuzz/corpus/$$name; \
		echo "== $$bin ($(FUZZ_SECONDS)s, corpus tests/fuzz/corpus/$$name)"; \
		$(SAN_ENV) tests/fuzz/run-fuzz.sh "$$bin" tests/fuzz/corpus/$$name $(FUZZ_SECONDS); \
	done; \
	[ $$found = 1 ] || { echo "no fuzz targets in $(BUILD_ASAN)/tests/fuzz" >&2; exit 1; }

# Installs OVS-DPDK, gnuplot and perf (scripts/install-deps.sh --bench) first.
bench:
	@./scripts/install-deps.sh --bench
	@$(MAKE) --no-print-directory build-release
	./bench/suite.sh $(BUILD_REL)

# vnet-switchd under load and churn for SOAK_S s (scripts/soak.sh).
soak: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) ./scripts/soak.sh

# Two QEMU guests and a tap in a netns on a vnet-switchd bridge (root).
demo: deps
	@$(MAKE) --no-print-directory build
	@BUILD=$(BUILD) ./scripts/demo.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_REL)
