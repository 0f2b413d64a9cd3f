#!/usr/bin/env bash
# test_usdt.sh TARGET PROBES_DIR - the USDT probes end to end.
#
#   1. readelf -n TARGET has the stapsdt notes of provider spindle, every
#      probe of runtime/usdt.h, each with a semaphore;
#   2. TARGET (tests/e2e/usdt_target.c, 2 rounds) runs under bpftrace with
#      probes/poll_hist.bt: the histogram names the tasks it spawns, with the
#      exact poll count of its yielders (8 tasks x 201 polls x 2 rounds);
#   3. the same under probes/wakes.bt: task, timer, blocking and join wakes.
#
# Exit 77 (a skip) without readelf, bpftrace, root, or probes in the build;
# with SPINDLE_REQUIRE_BPF=1 each of these is a failure instead.
set -u
target=${1:?usage: test_usdt.sh TARGET PROBES_DIR}
probes=${2:?usage: test_usdt.sh TARGET PROBES_DIR}
out=$(mktemp -d "${TMPDIR:-/tmp}/test_usdt.XXXXXX")
trap 'rm -rf "$out"' EXIT

fail() { echo "test_usdt: FAIL: $*" >&2; exit 1; }
skip() {
	if [ "${SPINDLE_REQUIRE_BPF:-0}" = 1 ]; then
		fail "cannot run ($*) and SPINDLE_REQUIRE_BPF=1"
	fi
	echo "test_usdt: SKIP: $*" >&2
	exit 77
}

command -v readelf >/dev/null || skip "no readelf"
readelf -n "$target" >"$out/notes" 2>&1 || fail "readelf -n $target failed"
if ! grep -q "Provider: spindle" "$out/notes"; then
	[ "${SP_HAVE_SDT:-0}" = 1 ] && fail "built with <sys/sdt.h> but $target has no spindle probes"
	skip "built without <sys/sdt.h>: no USDT probes"
fi
for p in spawn poll_start poll_end wake waker_clone waker_drop steal park unpark task_done \
	 blocking_start blocking_end inject_push inject_pop timer_fire io_ready worker_start \
	 worker_stop; do
	grep -q "Name: $p\$" "$out/notes" || fail "no stapsdt note for spindle:$p"
done
if grep -A3 "Provider: spindle" "$out/notes" | grep -q "Semaphore: 0x0*\$"; then
	fail "a spindle probe has no semaphore"
fi
echo "test_usdt: readelf: $(grep -c 'Provider: spindle' "$out/notes") spindle notes, all with semaphores"

command -v bpftrace >/dev/null || skip "no bpftrace"
[ "$(id -u)" = 0 ] || skip "not root"

# run SCRIPT: bpftrace SCRIPT under TARGET 2; output in $out/SCRIPT.out
run() {
	# USDT_TARGET_WAIT: the target starts its rounds once the probes are in
	USDT_TARGET_WAIT=1 timeout 45 bpftrace "$probes/$1.bt" "$target" -c "$target 2" \
		>"$out/$1.out" 2>&1
	local rc=$?
	grep -q "^Attaching" "$out/$1.out" || {
		cat "$out/$1.out" >&2
		skip "bpftrace could not attach (rc $rc)"
	}
	[ $rc = 0 ] || { cat "$out/$1.out" >&2; fail "bpftrace $1.bt exited $rc"; }
	grep -q "usdt_target: 2 round(s) done" "$out/$1.out" ||
		{ cat "$out/$1.out" >&2; fail "usdt_target did not finish under $1.bt"; }
}
# value KEY FILE: the number after "KEY: " (empty if absent)
value() { grep -F "$1: " "$2" | head -1 | sed 's/.*: //'; }

run poll_hist
f=$out/poll_hist.out
for t in usdt.parent usdt.sleeper usdt.spinner usdt.yielder; do
	grep -qF "@poll_ns[$t]:" "$f" || { cat "$f" >&2; fail "no histogram for task $t"; }
done
n=$(value "@polls[usdt.yielder]" "$f")
[ "$n" = 3216 ] || { cat "$f" >&2; fail "usdt.yielder polls: '$n', want 3216"; }
# the spinner's one poll per round spins 20 ms
grep -A1 -F "@poll_ns[usdt.spinner]:" "$f" | grep -q '^\[16M, 32M) *2 ' ||
	{ cat "$f" >&2; fail "usdt.spinner: want 2 polls in [16M, 32M) ns"; }
echo "test_usdt: poll_hist.bt:"
grep -E '^@polls\[' "$f"

run wakes
f=$out/wakes.out
check() { # KEY MIN
	local v
	v=$(value "$1" "$f")
	[ -n "$v" ] && [ "$v" -ge "$2" ] || { cat "$f" >&2; fail "$1: '$v', want >= $2"; }
}
check "@by_source[task]" 3200
check "@by_source[timer]" 10
check "@by_source[blocking]" 2
check "@by_source[join]" 2
check "@self_wakes" 3200
echo "test_usdt: wakes.bt:"
grep -E '^@by_source\[' "$f"
echo "test_usdt: PASS"
