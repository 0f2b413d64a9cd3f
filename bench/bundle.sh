#!/usr/bin/env bash
# bundle.sh - pack the benchmarks to run on another (bigger) Linux x86-64
# machine that has no compiler, no Rust or Go and none of our libraries.
#
#   bench/bundle.sh [BUILD_DIR] OUT_DIR
#
# OUT_DIR gets bin/ (spindle, spindle-bench, and tokio-bench-N and
# go-bench-N from bench/scale.sh build, for COUNTS), lib/ (the shared
# libraries those binaries load, except glibc's own), the bench scripts, and
# run.sh, which runs there, in this order, each step bounded in time:
#   1. what the machine is (CPUs, kernel, BTF, root);
#   2. `spindle trace` attached vs not, within one process
#      (bench/trace_inproc.sh), if the tracer can attach there;
#   3. tracing on with `spindle top` reading vs tracing off
#      (READER=top bench/events_overhead.sh);
#   4. the scaling table (bench/scale.sh run);
#   5. the spawn workloads again with SPINDLE_SPINNERS=1 (one spinning
#      searcher at most; spindle's rows only matter there);
#   6. tcp_echo and the timer workload at 2 workers, all three runtimes.
# Copy OUT_DIR over and run `OUT_DIR/run.sh | tee log` there. The target
# needs bash, awk, python3 (for getrusage) and a glibc no older than ours.
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -eq 1 ]; then B=build; OUT=$1; else B=${1:-}; OUT=${2:-}; fi
[ -n "$OUT" ] || { echo "usage: bench/bundle.sh [BUILD_DIR] OUT_DIR" >&2; exit 2; }
COUNTS=${COUNTS:-2 4 8 16}
SCALE_BIN=${SCALE_BIN:-/tmp/spindle-scale}
for f in "$B/bin/spindle" "$B/bin/spindle-bench"; do
	[ -x "$f" ] || { echo "bundle.sh: $f not found (make build)" >&2; exit 2; }
done
if [ ! -x "$SCALE_BIN/tokio-bench-${COUNTS##* }" ]; then
	COUNTS="$COUNTS" SCALE_BIN="$SCALE_BIN" "$HERE/scale.sh" build "$SCALE_BIN"
fi
mkdir -p "$OUT/bin" "$OUT/lib" "$OUT/bench"
cp "$B/bin/spindle" "$B/bin/spindle-bench" "$OUT/bin/"
for n in $COUNTS; do
	cp "$SCALE_BIN/tokio-bench-$n" "$SCALE_BIN/go-bench-$n" "$OUT/bin/"
done
# Every shared library outside glibc that the binaries load.
ldd "$OUT"/bin/* 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
	grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
	while read -r lib; do cp -L "$lib" "$OUT/lib/"; done
cp "$HERE/scale.sh" "$HERE/trace_inproc.sh" "$HERE/null_tracer.py" "$HERE/events_overhead.sh" \
	"$OUT/bench/"
cat >"$OUT/run.sh" <<EOF
#!/usr/bin/env bash
# Written by bench/bundle.sh: the multi-core run (see that script).
D=\$(cd "\$(dirname "\$0")" && pwd)
export LD_LIBRARY_PATH=\$D/lib
T0=\$(date +%s)
step() { echo; echo "=== \$* (t=\$(( \$(date +%s) - T0 )) s)"; }
cd "\$D"
step machine
nproc; uname -r; grep -m1 "model name" /proc/cpuinfo; id -u
ls -la /sys/kernel/btf/vmlinux 2>&1
step tracer
if timeout 20 bin/spindle trace -- bin/spindle-bench chained_spawn 1 >/dev/null; then
	# the control interleaved when python3 is there (P T P C ...)
	command -v python3 >/dev/null && export CONTROL=bench/null_tracer.py
	timeout 110 bash bench/trace_inproc.sh "\$D" 8 spawn_many_remote_busy1 chained_spawn \\
		spawn_many_local ping_pong
else
	echo "spindle trace cannot attach here: skipped"
fi
step "events with a reader"
READER=top timeout 120 bash bench/events_overhead.sh "\$D" 7 spawn_many_local \\
	spawn_many_remote_idle chained_spawn timer yield_many ping_pong
step scaling
COUNTS="$COUNTS" SCALE_BIN="\$D/bin" RUNS=3 timeout 240 bash bench/scale.sh run "\$D"
step "scaling with SPINDLE_SPINNERS=1"
SPINDLE_SPINNERS=1 COUNTS="$COUNTS" SCALE_BIN="\$D/bin" RUNS=3 timeout 150 bash bench/scale.sh run "\$D" \\
	spawn_many_local spawn_many_remote_idle yield_many timer
step "tcp_echo and timer, 2 workers"
for w in timer tcp_echo; do
	for r in tokio go spindle; do
		c=bin/\$r-bench-2; [ \$r = spindle ] && c=bin/spindle-bench
		timeout 40 "\$c" \$w 5 | grep -E "^median|^# median" | sed "s/^/\$r /"
	done
done
step done
EOF
chmod +x "$OUT/run.sh"
du -sh "$OUT" | awk '{print "bundle.sh: " $1 " in " $2 "; run " $2 "/run.sh there"}'
