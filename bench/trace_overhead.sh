#!/usr/bin/env bash
# trace_overhead.sh - spindle-bench with and without `spindle trace` attached.
#
#   bench/trace_overhead.sh [BUILD_DIR] [PAIRS] [WORKLOADS...]
#
# Runs each workload PAIRS times unattached and PAIRS times under
# `spindle trace -- spindle-bench W` (default threshold 10 ms, 1 kHz sampling),
# interleaved A B A B so that drift of a shared machine hits both alike, and
# prints the median ops/s of each side and their ratio. Needs root.
# TRACE_OPTS adds options to the tracer, e.g. TRACE_OPTS="-o /tmp/t.db" (the
# findings into a recording; with SPINDLE_TRACE=0 in the environment the
# rings stay off, so only the tracer and its database are measured).
# RUNS=N timed runs per invocation (default 5). ISOLATE=1 gives the tracer a
# CPU of its own on a small host: the benchmark runs with one worker on CPU
# 0 (taskset), the tracer on CPU 1, as on a machine with CPUs to spare.
set -eu
B=${1:-build}; PAIRS=${2:-5}; shift $(( $# >= 2 ? 2 : $# ))
WORKLOADS=${*:-yield_many ping_pong spawn_many_local chained_spawn}
RUNS=${RUNS:-5}
PIN_BENCH=() PIN_TRACER=()
if [ "${ISOLATE:-0}" = 1 ]; then
	export SPINDLE_BENCH_WORKERS=1
	PIN_BENCH=(taskset -c 0) PIN_TRACER=(taskset -c 1)
fi
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# The quartiles (in millions): on a host where a workload is bimodal (two
# speeds, decided by where the kernel puts the threads), a ratio of medians
# says which mode most runs fell into; the quartiles show it.
quartiles() { sort -g | awk '{a[NR]=$1} END {printf "%.2f-%.2fM", a[int((NR+3)/4)]/1e6, a[int((3*NR+3)/4)]/1e6}'; }
printf '%-22s %14s %14s %8s  %s\n' workload "plain ops/s" "traced ops/s" ratio "quartiles plain / traced"
for w in $WORKLOADS; do
	: >/tmp/trace_overhead.plain; : >/tmp/trace_overhead.traced
	for _ in $(seq "$PAIRS"); do
		"${PIN_BENCH[@]}" "$B/bin/spindle-bench" "$w" "$RUNS" |
			awk '/^median/ {print $4}' >>/tmp/trace_overhead.plain
		# shellcheck disable=SC2086
		"${PIN_TRACER[@]}" "$B/bin/spindle" trace ${TRACE_OPTS:-} -- \
			"${PIN_BENCH[@]}" "$B/bin/spindle-bench" "$w" "$RUNS" 2>/dev/null |
			awk '/^median/ {print $4}' >>/tmp/trace_overhead.traced
	done
	p=$(median </tmp/trace_overhead.plain); t=$(median </tmp/trace_overhead.traced)
	printf '%-22s %14.0f %14.0f %8.4f  %s / %s\n' "$w" "$p" "$t" \
		"$(awk -v a="$t" -v b="$p" 'BEGIN {print a / b}')" \
		"$(quartiles </tmp/trace_overhead.plain)" "$(quartiles </tmp/trace_overhead.traced)"
done
