#!/usr/bin/env bash
# trace_switch_cost.sh - what `spindle trace` costs per context switch, from
# the kernel's own accounting of its sched_switch program.
#
#   bench/trace_switch_cost.sh [BUILD_DIR] [WORKLOAD] [ROUNDS]
#
# Starts spindle-bench WORKLOAD (default spawn_many_remote_idle, whose
# workers park and unpark all the time), attaches `spindle trace -p` to it,
# and reads the program's run_cnt and run_time_ns (bpftool prog show) 3 s
# apart: the mean cost of one invocation, over every switch of the machine
# (the program runs on all of them; the target's own are most here). Timed
# pairs of traced and untraced benchmarks cannot resolve a few percent on a
# noisy machine; this can. Needs root and bpftool; turns on
# kernel.bpf_stats_enabled while it runs (which adds ~2 clock reads an
# invocation to every figure alike) and restores it.
set -eu
B=${1:-build}; W=${2:-spawn_many_remote_idle}; ROUNDS=${3:-3}
command -v bpftool >/dev/null || { echo "trace_switch_cost.sh: bpftool not found" >&2; exit 2; }
old=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old' EXIT
stats() {
	bpftool -j prog show name starve_switch |
		python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d.get("run_time_ns",0), d.get("run_cnt",0))'
}
for _ in $(seq "$ROUNDS"); do
	"$B/bin/spindle-bench" "$W" 100000 >/dev/null &
	pid=$!
	sleep 0.3
	"$B/bin/spindle" trace -p "$pid" >/dev/null 2>&1 &
	tracer=$!
	sleep 1.5
	read -r t0 c0 < <(stats)
	sleep 3
	read -r t1 c1 < <(stats)
	kill "$tracer" "$pid" 2>/dev/null || true
	wait "$tracer" "$pid" 2>/dev/null || true
	awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) \
		'BEGIN {printf "%d switches in 3 s, %.1f ns each\n", c, c ? t / c : 0}'
done
