#!/usr/bin/env bash
# trace_share.sh - what `spindle trace` costs in CPU, against the CPU of the
# process it traces, over the same window.
#
#   bench/trace_share.sh [BUILD_DIR] [SECONDS] [WORKLOADS...]
#
# For each workload: starts spindle-bench W (many runs, so it is busy for the
# whole window), attaches `spindle trace -p`, waits for the attach, then over
# SECONDS (default 3) reads three counters before and after: the bench's CPU
# time (utime+stime, /proc/PID/stat), the tracer process's CPU time, and the
# run time of its BPF programs (run_time_ns from `bpftool prog show`, with
# kernel.bpf_stats_enabled=1 while it runs; the sched_switch program runs
# on every switch of the machine, the target's and everyone else's). Prints
# each as milliseconds and the share: (BPF + tracer) / bench CPU. On a
# machine whose CPUs the benchmark saturates, that share bounds what the
# tracer can take from it; timed pairs (bench/trace_overhead.sh) are the
# direct measure but need a quiet machine to resolve 2%. TRACER=PATH runs
# another build's `spindle` against this build's benchmark. Needs root and
# bpftool.
set -eu
B=${1:-build}; SECS=${2:-3}; shift $(( $# >= 2 ? 2 : $# ))
WORKLOADS=${*:-yield_many ping_pong spawn_many_local spawn_many_remote_idle chained_spawn timer tcp_echo}
command -v bpftool >/dev/null || { echo "trace_share.sh: bpftool not found" >&2; exit 2; }
old=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old' EXIT
tck=$(getconf CLK_TCK)
TRACER=${TRACER:-$B/bin/spindle}

cpu_ms() { # utime + stime of a process, in ms
	awk -v t="$tck" '{ sub(/^.*\) /, ""); print ($12 + $13) * 1000 / t }' "/proc/$1/stat"
}
bpf_ms() { # summed run_time_ns of the tracer's programs, in ms
	bpftool -j prog show | python3 -c '
import json, sys
t = sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin)
        if p.get("name") in ("starve_switch", "starve_sample"))
print(t / 1e6)'
}

printf '%-24s %10s %10s %10s %8s\n' workload "bench ms" "bpf ms" "tracer ms" share
for w in $WORKLOADS; do
	"$B/bin/spindle-bench" "$w" 1000 >/dev/null &
	pid=$!
	sleep 0.3
	"$TRACER" trace -p "$pid" >/dev/null 2>"/tmp/trace_share.err" &
	tr=$!
	for _ in $(seq 500); do grep -q "tracing pid" /tmp/trace_share.err && break; sleep 0.01; done
	sleep 0.5
	b0=$(cpu_ms "$pid"); t0=$(cpu_ms "$tr"); k0=$(bpf_ms)
	sleep "$SECS"
	b1=$(cpu_ms "$pid"); t1=$(cpu_ms "$tr"); k1=$(bpf_ms)
	kill "$tr" "$pid" 2>/dev/null || true
	wait "$tr" "$pid" 2>/dev/null || true
	awk -v w="$w" -v b="$b0 $b1" -v k="$k0 $k1" -v t="$t0 $t1" 'BEGIN {
		split(b, B, " "); split(k, K, " "); split(t, T, " ")
		b = B[2] - B[1]; k = K[2] - K[1]; t = T[2] - T[1]
		printf "%-24s %10.0f %10.1f %10.0f %7.2f%%\n", w, b, k, t, b ? (k + t) * 100 / b : 0 }'
done
