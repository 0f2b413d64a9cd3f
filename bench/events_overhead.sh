#!/usr/bin/env bash
# events_overhead.sh - spindle-bench with the event rings off and on.
#
#   bench/events_overhead.sh [BUILD_DIR] [PAIRS] [WORKLOADS...]
#
# Runs each workload PAIRS times with tracing off and PAIRS times with
# SPINDLE_TRACE=1, interleaved A B A B so that drift of a shared machine hits
# both alike, and prints the median ops/s of each side and their ratio (the
# timer workload: its median wall time instead, lower is better).
# READER=top attaches `spindle top --batch` to each traced run (a reader that
# consumes every event, as the console does); READER=none (the default)
# measures the producer side alone. RUNS=N timed runs per invocation (default 5).
set -eu
B=${1:-build}; PAIRS=${2:-5}; shift $(( $# >= 2 ? 2 : $# ))
WORKLOADS=${*:-yield_many ping_pong chained_spawn spawn_many_local spawn_many_remote_idle timer tcp_echo}
READER=${READER:-none}
RUNS=${RUNS:-5}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# The figure of one run: ops/s, or seconds for the timer.
figure() { awk -v w="$1" '/^median/ {print (w == "timer") ? $3 : $4}'; }
traced() {
	local w=$1 out pid
	out=$(mktemp)
	SPINDLE_TRACE=1 "$B/bin/spindle-bench" "$w" "$RUNS" >"$out" &
	pid=$!
	if [ "$READER" = top ]; then
		for _ in $(seq 200); do [ -e "/dev/shm/spindle.$pid" ] && break; sleep 0.01; done
		"$B/bin/spindle" top --batch -d 1 "$pid" >/dev/null 2>&1 &
	fi
	wait "$pid"
	[ "$READER" = top ] && wait
	figure "$w" <"$out"
	rm -f "$out"
}
printf '%-24s %14s %14s %8s   (reader: %s)\n' workload "off" "on" "on/off" "$READER"
for w in $WORKLOADS; do
	: >/tmp/events_overhead.off; : >/tmp/events_overhead.on
	for _ in $(seq "$PAIRS"); do
		SPINDLE_TRACE=0 "$B/bin/spindle-bench" "$w" "$RUNS" | figure "$w" >>/tmp/events_overhead.off
		traced "$w" >>/tmp/events_overhead.on
	done
	off=$(median </tmp/events_overhead.off); on=$(median </tmp/events_overhead.on)
	printf '%-24s %14.6g %14.6g %8.4f\n' "$w" "$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN {print a / b}')"
done
