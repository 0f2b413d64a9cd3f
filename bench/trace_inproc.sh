#!/usr/bin/env bash
# trace_inproc.sh - the tracer's cost measured inside one benchmark process.
#
#   bench/trace_inproc.sh [BUILD_DIR] [CYCLES] [WORKLOADS...]
#
# Separate processes are a poor A/B on a small shared host: the host runs a
# process at one of two speeds for a second or more at a time (below),
# traced or not, so the ratio of two sets of process medians says which
# speed each side happened to get. Here one spindle-bench process per
# workload runs timed runs back to back (each stamped as it ends), and
# `spindle trace -p` is attached and detached in turn:
#
#   P T P T P ... P        (CYCLES traced windows, CYCLES + 1 plain ones)
#
# each window WIN seconds (default 0.5), starting SETTLE seconds (default
# 0.1) after the tracer said it was attached or after it exited, so neither
# its start nor its teardown is in a window. A run lasts about RUN_MS
# (default 25; its iterations calibrated per workload) and counts only when
# it lies wholly inside a window. Cycle i's ratio is the median of the
# traced window's runs over the mean of the medians of the plain windows on
# either side (a linear drift cancels). The host's speed also jumps (a vCPU
# runs chained_spawn at 8-9M or 13-16M tasks/s for a second or so, pinned or
# not): with short windows most cycles lie in one speed and the few that
# straddle a jump are outliers, which the median of many cycles ignores.
# Printed: the median of the cycle ratios, a 95% confidence interval for
# it (distribution-free: the order statistics n/2 -+ 0.98 sqrt(n)) and
# the ratios' quartiles; ratio > 1 means the traced runs were faster. A
# cost of 2% is shown only when the interval's low end is above 0.98.
# Needs root.
# TRACE_OPTS adds tracer options (e.g. "-t 40"). TRACER=CMD runs CMD -p PID
# in place of `spindle trace`: TRACER=bench/null_tracer.py is the control,
# a process that comes and goes like the tracer and traces nothing. Its
# ratio is this method's bias for the workload (chained_spawn: 0.975 with
# 95% CI 0.951-0.990 in one sitting here, the real tracer 0.973 right
# before it): read the tracer's cost as its ratio over the control's.
# CONTROL=CMD interleaves the control with the tracer in the same process,
#   P T P C P T P C ... P    (CYCLES of each)
# and adds the paired figure: the median over cycles of (tracer ratio /
# the next control ratio), with its 95% interval. Neighbouring windows share
# the host's speed far more often than two sittings minutes apart do, so
# this is the figure to quote (CONTROL=bench/null_tracer.py).
# The raw stamps stay in $TMPDIR/trace_inproc.W.{runs,win}.
set -eu
B=${1:-build}; CYCLES=${2:-10}; shift $(( $# >= 2 ? 2 : $# ))
WORKLOADS=${*:-yield_many ping_pong spawn_many_local spawn_many_remote_idle chained_spawn}
WIN=${WIN:-0.5}; SETTLE=${SETTLE:-0.1}; RUN_MS=${RUN_MS:-25}
TMP=${TMPDIR:-/tmp}
BENCH=$B/bin/spindle-bench SPINDLE=$B/bin/spindle
for f in "$BENCH" "$SPINDLE"; do
	[ -x "$f" ] || { echo "trace_inproc: $f not built (cmake --build $B)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "trace_inproc: needs root (the tracer loads eBPF programs)" >&2; exit 2; }
export LC_ALL=C

# Each line of the benchmark as it arrives, behind the time it arrived.
stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
# window KIND: wait SETTLE, then note a window of WIN seconds.
window() {
	sleep "$SETTLE"; local s=$EPOCHREALTIME
	sleep "$WIN"; printf '%s %s %s\n' "$1" "$s" "$EPOCHREALTIME" >>"$WINF"
}
# traced KIND CMD: start CMD -p BPID, a window KIND once it says it is
# attached, stop it, then a plain window.
traced() {
	# shellcheck disable=SC2086
	$2 -p "$BPID" >/dev/null 2>"$TMP/trace_inproc.err" &
	TPID=$!
	until grep -q "tracing pid" "$TMP/trace_inproc.err"; do
		if ! kill -0 "$TPID" 2>/dev/null; then
			echo "trace_inproc: $2 failed: $(tail -1 "$TMP/trace_inproc.err")" >&2
			exit 2
		fi
		sleep 0.01
	done
	window "$1"
	kill -INT "$TPID"; wait "$TPID" || true; TPID=
	window P
}
BPID= TPID=
cleanup() { for p in $TPID $BPID; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

printf '%-24s %6s %8s  %-15s  %-15s  %s\n' workload cycles ratio "95% CI" quartiles \
	"runs plain/traced"
for w in $WORKLOADS; do
	RUNF=$TMP/trace_inproc.$w.runs WINF=$TMP/trace_inproc.$w.win
	# tcp_echo's one iteration lasts ~2 s: 10 round trips a connection, not
	# 1000, bring a run near RUN_MS (connects are a larger part of it then)
	[ "$w" != tcp_echo ] || export SPINDLE_BENCH_TCP_TRIPS=${SPINDLE_BENCH_TCP_TRIPS:-10}
	: >"$WINF"
	# iterations for a run of about RUN_MS, from three runs of the default
	def=$("$BENCH" list | awk -v w="$w" '$1 == w { sub("default_iters=", "", $3); print $3 }')
	[ -n "$def" ] || { echo "trace_inproc: unknown workload $w" >&2; exit 2; }
	iters=$("$BENCH" "$w" 3 | awk -v d="$def" -v ms="$RUN_MS" \
		'/^median/ { n = int(d * ms / 1000 / $3); print n < 1 ? 1 : n }')
	"$BENCH" "$w" 1000000 "$iters" > >(stamp >"$RUNF") &
	BPID=$!
	# past the warm-up: the first timed run has ended
	for _ in $(seq 3000); do grep -q "^[0-9.]* $w " "$RUNF" 2>/dev/null && break; sleep 0.01; done
	window P
	for _ in $(seq "$CYCLES"); do
		traced T "${TRACER:-"$SPINDLE" trace} ${TRACE_OPTS:-}"
		[ -z "${CONTROL:-}" ] || traced C "$CONTROL"
	done
	kill "$BPID"; wait "$BPID" 2>/dev/null || true; BPID=
	sleep 0.2 # the stamper's last lines
	# Runs into windows (index: line of $WINF), then each window's median,
	# then the cycle ratios.
	awk -v w="$w" 'NR == FNR { k[NR] = $1; s[NR] = $2; e[NR] = $3; n = NR; next }
		$2 == w && NF == 4 {
			end = $1; start = end - $3
			for (i = 1; i <= n; i++)
				if (start >= s[i] && end <= e[i]) { print i, k[i], $4; break }
		}' "$WINF" "$RUNF" | sort -k1,1n -k3,3g |
	awk -v w="$w" '
		function flush() { if (cnt) { med[cur] = (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2; nrun[kind[cur]] += cnt } }
		function sort(a, m,   i, j, t) { for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } }
		# median, 95% CI (order statistics m/2 -+ 0.98 sqrt(m)), quartiles of a[1..m]
		function stats(a, m,   mid, lo, hi) {
			sort(a, m)
			mid = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
			lo = int(m / 2 - 0.98 * sqrt(m)); hi = m + 1 - lo
			if (lo < 1) { lo = 1; hi = m }
			return sprintf("%6d %8.4f  %.4f-%.4f  %.4f-%.4f", m, mid, a[lo], a[hi], a[int((m + 3) / 4)], a[int((3 * m + 3) / 4)])
		}
		$1 != cur { flush(); cur = $1; cnt = 0; kind[cur] = $2 }
		{ v[++cnt] = $3; if ($1 > last) last = $1 }
		END {
			flush()
			nt = nc = 0
			# each traced window over the mean of the plain ones beside it
			for (i = 2; i < last; i++) {
				if (kind[i] != "T" && kind[i] != "C") continue
				r = 0
				if ((i in med) && (i - 1 in med) && (i + 1 in med) && kind[i - 1] == "P" && kind[i + 1] == "P")
					r = med[i] / ((med[i - 1] + med[i + 1]) / 2)
				if (kind[i] == "T") { tr[++nt] = r } else { cr[++nc] = r }
			}
			m = 0; mp = 0
			for (i = 1; i <= nt; i++) {
				if (tr[i]) rt[++m] = tr[i]
				if (i <= nc && tr[i] && cr[i]) pr[++mp] = tr[i] / cr[i]
			}
			mc = 0
			for (i = 1; i <= nc; i++) if (cr[i]) rc[++mc] = cr[i]
			if (!m) { printf "%-24s no window held a whole run (WIN too short?)\n", w; exit }
			printf "%-24s %s  %d/%d\n", w, stats(rt, m), nrun["P"], nrun["T"]
			if (mc) printf "%-24s %s  %d/%d\n", "  control", stats(rc, mc), nrun["P"], nrun["C"]
			if (mp) printf "%-24s %s\n", "  tracer/control", stats(pr, mp)
		}'
done
