# Thin wrapper over CMake. `make demo` and `make test` are all a new machine needs.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DSP_WERROR=ON
endif

.PHONY: all deps configure build demo test sanitize sanitize-address sanitize-thread fuzz bench install format clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	@scripts/deps.sh
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The demo: the seed's examples, the demo service with its own status lines,
# then the same service under the live console (batch snapshots when not on
# a terminal), a recording's report, and the eBPF tracer (scripts/demo.sh).
DEMO_SECONDS ?= 8
demo: build
	$(BUILD)/bin/delay
	$(BUILD)/bin/fanout
	$(BUILD)/bin/lostwake
	$(BUILD)/bin/blocking --seconds 3
	$(BUILD)/bin/blocking --fixed --seconds 3
	$(BUILD)/bin/demo --seconds 3
	DEMO_SECONDS=$(DEMO_SECONDS) scripts/demo.sh $(BUILD)/bin

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite under ASan+UBSan, then under TSan, each in its own build tree.
sanitize: sanitize-address sanitize-thread

sanitize-address:
	@scripts/deps.sh
	cmake -S . -B $(BUILD)-asan -DSP_SANITIZE=address,undefined -DSP_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

sanitize-thread:
	@scripts/deps.sh
	cmake -S . -B $(BUILD)-tsan -DSP_SANITIZE=thread -DSP_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer targets (clang) over every reader of outside input, a fixed number
# of runs each (FUZZ_RUNS); CI runs this too.
FUZZ_RUNS ?= 500000
FUZZ_SRCS = runtime/trace_segment.c runtime/trace_ring.c runtime/clock.c
fuzz:
	@scripts/deps.sh
	mkdir -p $(BUILD)-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		-Iruntime -Iruntime/include tests/fuzz/fuzz_segment.c $(FUZZ_SRCS) \
		-o $(BUILD)-fuzz/fuzz_segment -lpthread
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Iruntime -Iruntime/include tests/fuzz/make_seed.c \
		$(FUZZ_SRCS) -o $(BUILD)-fuzz/make_seed -lpthread
	rm -rf $(BUILD)-fuzz/corpus && mkdir -p $(BUILD)-fuzz/corpus
	$(BUILD)-fuzz/make_seed $(BUILD)-fuzz/corpus
	$(BUILD)-fuzz/fuzz_segment -runs=$(FUZZ_RUNS) -max_len=16384 $(BUILD)-fuzz/corpus

# spindle-bench beside Tokio 1.24 and Go 1.19 (../shared/anchors), one run.
ANCHORS ?= $(firstword $(wildcard ../shared/anchors $(CURDIR)/../shared/anchors))
bench: build
	@test -n "$(ANCHORS)" || { echo "make bench: ../shared/anchors not found (set ANCHORS=path)" >&2; exit 2; }
	ANCHOR_EXTRA_NAME=spindle ANCHOR_EXTRA_CMD=$(abspath $(BUILD))/bin/spindle-bench \
		$(ANCHORS)/run-anchors.sh spawn_many_local spawn_many_local_task spawn_many_remote_idle \
		spawn_many_remote_busy1 spawn_many_remote_busy2 yield_many ping_pong chained_spawn \
		timer tcp_echo

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
