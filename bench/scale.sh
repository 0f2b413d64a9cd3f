#!/usr/bin/env bash
# scale.sh - the scheduler workloads at several worker counts, spindle beside
# Tokio 1.24 and Go 1.19 built for the same counts.
#
#   bench/scale.sh build [OUT_DIR]              build the anchors for each count
#   bench/scale.sh run [BUILD_DIR] [WORKLOADS...] run the table
#
#   COUNTS="2 4 8 16"   worker counts (default), RUNS=3 timed runs per cell
#   SCALE_BIN=DIR       where the anchor variants are (default /tmp/spindle-scale)
#   ANCHORS=DIR         the anchors' sources (default ../shared/anchors)
#
# The anchors fix their worker count at 2 (a constant in each source); `build`
# copies their sources to a scratch folder, sets the constant to each count
# and builds tokio-bench-N and go-bench-N there (offline, as run-anchors.sh
# does; nothing is written in the anchors' folder). spindle-bench takes the
# count from SPINDLE_BENCH_WORKERS. `run` prints, per count and workload, each
# runtime's median seconds and ops/s and the CPU it used (user and system
# seconds, voluntary and involuntary context switches, from getrusage of the
# child): on a machine with more cores than ours, the system time and the
# context switches say whether a slowdown is spent in futex and epoll sleeps
# or in user-space contention. spindle's rows add its workers' parks per
# thousand polls and tasks per take from the injection queue
# (SPINDLE_BENCH_STATS).
#
# Example, on a 16-core machine with the built binaries copied to it:
#   SCALE_BIN=bin bench/scale.sh run build spawn_many_local yield_many
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COUNTS=${COUNTS:-2 4 8 16}
RUNS=${RUNS:-3}
BIN=${SCALE_BIN:-/tmp/spindle-scale}
ANCHORS=${ANCHORS:-$HERE/../../shared/anchors}
GO=/usr/lib/go-1.19/bin/go
[ -x "$GO" ] || GO=$(command -v go || echo go)

die() { echo "scale.sh: $*" >&2; exit 2; }

build() {
	local out=${1:-$BIN} src
	[ -d "$ANCHORS/tokio-bench" ] && [ -d "$ANCHORS/go-bench" ] ||
		die "anchors not found at $ANCHORS (set ANCHORS=path)"
	command -v cargo >/dev/null || die "cargo not found (run-anchors.sh installs what the anchors need)"
	mkdir -p "$out"
	src=$(mktemp -d)
	cp -r "$ANCHORS/tokio-bench" "$ANCHORS/go-bench" "$src/"
	chmod -R u+w "$src"
	for n in $COUNTS; do
		echo "scale.sh: building the anchors for $n workers" >&2
		sed -i -E "s/^const WORKERS: usize = [0-9]+;/const WORKERS: usize = $n;/" \
			"$src/tokio-bench/src/main.rs"
		grep -q "^const WORKERS: usize = $n;" "$src/tokio-bench/src/main.rs" ||
			die "tokio-bench: no 'const WORKERS' line to set"
		(cd "$src/tokio-bench" && CARGO_TARGET_DIR="$out/target" cargo build --release --quiet)
		cp "$out/target/release/tokio-bench" "$out/tokio-bench-$n"
		sed -i -E "s/^(\tworkers +)= [0-9]+$/\1= $n/" "$src/go-bench/main.go"
		grep -qE "^	workers += $n$" "$src/go-bench/main.go" ||
			die "go-bench: no 'workers =' constant to set"
		(cd "$src/go-bench" && GO111MODULE=on GOPROXY=off GOFLAGS=-mod=mod \
			GOCACHE="$out/go-cache" "$GO" build -trimpath -o "$out/go-bench-$n" .)
	done
	rm -rf "$src"
	echo "scale.sh: built into $out" >&2
}

# One cell: the median line and the child's rusage, on one line.
cell() {
	python3 - "$@" <<'EOF'
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
med = [l.split()[2:4] for l in p.stdout.splitlines() if l.startswith("median ")]
r = resource.getrusage(resource.RUSAGE_CHILDREN)
s, ops = med[0] if med else ("-", "-")
st = [dict(kv.split("=", 1) for kv in l.split()[2:]) for l in p.stdout.splitlines()
      if l.startswith("# stats ")]
extra = f" {st[0]['parks_per_1k_polls']:>9} {st[0]['tasks_per_inject_op']:>9}" if st else ""
print(f"{s:>10} {ops:>12} {r.ru_utime:7.2f} {r.ru_stime:7.2f} {r.ru_nvcsw:8d} {r.ru_nivcsw:8d}{extra}")
EOF
}

run() {
	local b=${1:-build}
	shift || true
	local workloads=${*:-spawn_many_local spawn_many_remote_idle spawn_many_remote_busy1 yield_many ping_pong chained_spawn timer}
	[ -x "$b/bin/spindle-bench" ] || die "$b/bin/spindle-bench not found (make build)"
	printf '%-3s %-24s %-8s %10s %12s %7s %7s %8s %8s %9s %9s\n' \
		N workload runtime seconds ops/s user_s sys_s vcsw ivcsw parks/1k tasks/inj
	for n in $COUNTS; do
		[ -x "$BIN/tokio-bench-$n" ] || die "$BIN/tokio-bench-$n not found (bench/scale.sh build)"
		for w in $workloads; do
			printf '%-3s %-24s %-8s %s\n' "$n" "$w" tokio "$(cell "$BIN/tokio-bench-$n" "$w" "$RUNS")"
			printf '%-3s %-24s %-8s %s\n' "$n" "$w" go "$(cell "$BIN/go-bench-$n" "$w" "$RUNS")"
			printf '%-3s %-24s %-8s %s\n' "$n" "$w" spindle \
				"$(SPINDLE_BENCH_STATS=1 SPINDLE_BENCH_WORKERS=$n cell "$b/bin/spindle-bench" "$w" "$RUNS")"
		done
	done
}

case ${1:-} in
build) shift; build "$@" ;;
run) shift; run "$@" ;;
*) die "usage: bench/scale.sh build [OUT_DIR] | run [BUILD_DIR] [WORKLOADS...]" ;;
esac
