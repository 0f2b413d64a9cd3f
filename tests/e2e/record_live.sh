#!/bin/sh
# End-to-end tests of spindle record on live targets and of the report's
# windows and timer victims.
#   record_live.sh SPINDLE BINDIR
# Each check prints what it looked for; the first failure exits 1. Waits are
# polled with deadlines, not fixed sleeps, so a busy machine only slows it.
set -u
SPINDLE=$1
BIN=$2
T=$(mktemp -d /tmp/spindle-e2e-live.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
meta() { sqlite3 "$1" "SELECT value FROM meta WHERE key = '$2'"; }
# wait_for SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_for() {
	n=$(($1 * 10)); shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
child_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr -s ' ' '\n' | grep . | head -1; }
has_child() { [ -n "$(child_of "$1")" ]; }
has_polls() { [ "$(sqlite3 "$1" 'SELECT count(*) FROM polls' 2>/dev/null)" -gt 0 ] 2>/dev/null; }

# 1. SIGINT to `spindle record -- CMD` goes to the child; the recording
#    finishes cleanly and the child is gone.
"$SPINDLE" record -q -o "$T/int.db" -- "$BIN/blocking" --seconds 60 >/dev/null 2>"$T/int.err" &
rec=$!
PIDS="$rec"
wait_for 20 has_child $rec || fail "record started no child"
child=$(child_of $rec)
PIDS="$rec $child"
wait_for 20 has_polls "$T/int.db" || fail "no polls committed before the SIGINT"
kill -INT $rec
wait_for 20 sh -c "! kill -0 $rec 2>/dev/null" || fail "record did not end after SIGINT"
wait $rec
rc=$?
[ $rc -eq 0 ] || fail "record exit $rc after SIGINT: $(cat "$T/int.err")"
kill -0 "$child" 2>/dev/null && fail "the child $child survived the SIGINT"
grep -q "killed by signal 2" "$T/int.err" || fail "SIGINT not forwarded: $(cat "$T/int.err")"
[ "$(meta "$T/int.db" finished)" = 1 ] || fail "meta finished is not 1 after SIGINT"
[ "$(sqlite3 "$T/int.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
n=$(sqlite3 "$T/int.db" 'SELECT count(*) FROM polls')
ok "SIGINT forwarded to the child, recording finished ($n polls)"

# 2. -p PID --duration 1 on a running traced demo records its polls.
SPINDLE_TRACE=1 "$BIN/demo" --seconds 20 >/dev/null 2>&1 &
demo=$!
PIDS="$demo"
# Its trace segment appears a moment after start: retry the attach.
n=0
until "$SPINDLE" record -q -o "$T/p.db" -p $demo --duration 1 >/dev/null 2>"$T/p.err"; do
	n=$((n + 1))
	[ $n -lt 50 ] || fail "record -p: $(cat "$T/p.err")"
	sleep 0.1
done
kill -0 $demo 2>/dev/null || fail "the demo ended under record -p"
kill $demo
wait $demo 2>/dev/null
n=$(sqlite3 "$T/p.db" 'SELECT count(*) FROM polls')
[ "$n" -gt 0 ] || fail "record -p recorded no polls"
[ "$(meta "$T/p.db" finished)" = 1 ] || fail "record -p: meta finished is not 1"
[ "$(meta "$T/p.db" pid)" = $demo ] || fail "record -p: meta pid"
ok "record -p PID --duration 1: $n polls"

# 3. blocking on one worker: every long poll delays the ticker's timer, and
#    the report names the ticker as its victim, with its delay.
"$SPINDLE" record -q -o "$T/b1.db" -- "$BIN/blocking" --seconds 2 --workers 1 >/dev/null 2>&1 ||
	fail "record blocking --workers 1"
"$SPINDLE" report "$T/b1.db" >"$T/b1.txt"
victim="^       delayed task [0-9]+ 'ticker' by [0-9]+\.[0-9] ms"
grep -Eq "$victim \(its timer was due during the poll\)" "$T/b1.txt" ||
	fail "the ticker is not named as a victim: $(cat "$T/b1.txt")"
"$SPINDLE" report --json "$T/b1.db" >"$T/b1.json"
python3 - "$T/b1.json" <<'PY' || fail "report --json: no timer victim"
import json, sys
d = json.load(open(sys.argv[1]))
v = [v for lp in d["long_polls"] for v in lp["victims"] if v.get("timer")]
assert any(x["name"] == "ticker" and x["delay_ns"] > 1000000 for x in v), d["long_polls"]
PY
n=$(sqlite3 "$T/b1.db" 'SELECT count(*) FROM timers WHERE ts - deadline > 10000000')
[ "$n" -gt 0 ] || fail "no late timer fires recorded"
ok "ticker named as the victim of the long polls ($n late timer fires)"

# 4. --since/--until restrict the report: a long poll outside the window is
#    not reported, the same poll inside one is.
python3 - "$SPINDLE" "$T/b1.db" <<'PY' || fail "--since/--until"
import json, subprocess, sys
spindle, db = sys.argv[1], sys.argv[2]
def lps(*args):
    out = subprocess.run([spindle, "report", "--json", *args, db], capture_output=True).stdout
    return {lp["start_ns"] for lp in json.loads(out)["long_polls"]}
everything = json.loads(subprocess.run([spindle, "report", "--json", db],
                                       capture_output=True).stdout)["long_polls"]
lp = min(everything, key=lambda x: x["start_ns"])
s, e = lp["start_ns"] / 1e9, (lp["start_ns"] + lp["dur_ns"]) / 1e9
assert lp["start_ns"] in lps(), "the poll"
assert lp["start_ns"] not in lps("--until", "%.6f" % s), "until before its end"
assert lp["start_ns"] not in lps("--since", "%.6f" % (e + 0.001)), "since after its end"
inside = lps("--since", "%.6f" % (s - 0.001), "--until", "%.6f" % (e + 0.001))
assert inside == {lp["start_ns"]}, inside
print("long poll at %.3f s: out of [0, %.3f] and [%.3f, end], alone in its window" % (s, s, e))
PY
ok "--since/--until restrict the long polls"

# 5. A warning without a task (or duration): null in JSON, no task in text.
cp "$T/b1.db" "$T/w.db"
sqlite3 "$T/w.db" "INSERT INTO warnings(ts, kind, task, dur, detail, source) VALUES
	(1000, 'blocking_syscall', NULL, NULL, 'read(2) 20 ms', 'test'),
	(2000, 'long_poll', 3, 15000000, 'ticker', 'test')" || fail "sqlite3"
"$SPINDLE" report --json "$T/w.db" >"$T/w.json"
python3 - "$T/w.json" <<'PY' || fail "warnings in JSON: $(cat "$T/w.json")"
import json, sys
w = json.load(open(sys.argv[1]))["warnings"]
assert w[0]["task"] is None and w[0]["dur_ns"] is None, w[0]
assert w[1]["task"] == 3 and w[1]["dur_ns"] == 15000000, w[1]
PY
line="^  !! t=0.000 s blocking_syscall 0.0 ms: read(2) 20 ms \[test\]"
"$SPINDLE" report "$T/w.db" | grep -q "$line" ||
	fail "warning text without a task: $("$SPINDLE" report "$T/w.db" | grep blocking_syscall)"
ok "warnings without a task: null in JSON"

# 6. export: wakes from a thread that is not a worker (delay's alarm thread)
#    start their flow arrows on a track of their own.
"$SPINDLE" record -q -o "$T/d.db" -- "$BIN/delay" >/dev/null 2>&1 || fail "record delay"
"$SPINDLE" export "$T/d.db" -o "$T/d.json" || fail "export delay"
python3 - "$T/d.json" <<'PY' || fail "export: no flow from a foreign wake"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
workers = {e["tid"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"
           and e["args"]["name"].startswith("worker ")}
off = [e for e in ev if e["ph"] == "s" and e["tid"] not in workers]
assert off, "no flow starts off the workers"
named = {e["tid"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
slices = {(e["tid"], e["ts"]) for e in ev if e["ph"] == "X" and e["name"] == "wake"}
assert all(e["tid"] in named and (e["tid"], e["ts"]) in slices for e in off), off
ids = {e["id"] for e in ev if e["ph"] == "f"}
assert all(e["id"] in ids for e in off), off
PY
ok "export: flows from foreign-thread wakes"
echo PASS
