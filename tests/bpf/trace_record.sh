#!/usr/bin/env bash
# trace_record.sh - end-to-end tests of `spindle trace -o`: the tracer's
# findings in a recording, read back by `spindle report` and `spindle export`.
#
#   trace_record.sh CASE SPINDLE BLOCKING
#
# Cases:
#   rings  -- CMD on examples/blocking (the tracer sets SPINDLE_TRACE=1): one
#          database with the runtime's polls and the findings; the report
#          names the sleeper blocked in clock_nanosleep (culprit
#          blocking_call) on its long poll and the spinner on-CPU (culprit
#          compute), exit 1; the export has the findings as annotations on the
#          workers' tracks at the polls they describe
#   norings  the target's rings off (SPINDLE_TRACE=0 with -- CMD, and -p on a
#          process started without it): a database of the findings alone that
#          the report and the export still open
#
# Skipped (77) where BPF cannot be loaded, unless SPINDLE_REQUIRE_BPF=1.
set -u
CASE=$1 SPINDLE=$2 BLOCKING=$3
TMP=$(mktemp -d /tmp/spindle-trace-rec.XXXXXX)
trap 'rm -rf "$TMP"; [ -n "${TPID:-}" ] && kill "$TPID" 2>/dev/null; true' EXIT

fail() { echo "FAIL($CASE): $*" >&2; for f in "$TMP"/*; do case $f in *.db*) continue;; esac; [ -f "$f" ] && { echo "--- $f" >&2; head -c 6000 "$f" >&2; }; done; exit 1; }
skip() {
	if [ "${SPINDLE_REQUIRE_BPF:-0}" = 1 ]; then
		echo "FAIL($CASE): would skip, but SPINDLE_REQUIRE_BPF=1: $*" >&2
		exit 1
	fi
	echo "SKIP($CASE): $*" >&2
	exit 77
}
"$SPINDLE" trace --help >/dev/null 2>&1 || skip "spindle built without eBPF support"
[ "$(id -u)" = 0 ] || skip "needs root to load eBPF programs"
command -v python3 >/dev/null || skip "python3 is needed to read the database and the JSON"

# sql DB QUERY: one value.
sql() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$1" "$2"; }

# The culprit frames, except under a sanitizer, whose interceptors and
# instrumentation calls stand between the stack and the user's function.
if [ "${SP_SANITIZED:-0}" = 1 ]; then
	SLEEPER_CULPRIT="" SPINNER_CULPRIT=""
else
	SLEEPER_CULPRIT=", culprit blocking_call" SPINNER_CULPRIT=", culprit compute (blocking.c:"
fi

# check_report DB: the findings in the report's text and JSON, exit status 1.
check_report() {
	"$SPINDLE" report "$1" >"$TMP/report" 2>&1
	rc=$?
	[ $rc = 1 ] || fail "report exit status $rc (want 1: findings are flagged)"
	grep -q "^TRACER FINDINGS" "$TMP/report" || fail "report: no TRACER FINDINGS section"
	grep -q "task 1 'sleeper' long poll .*: blocked [0-9.]* ms in clock_nanosleep$SLEEPER_CULPRIT" \
		"$TMP/report" || fail "report: the sleeper is not blocked in clock_nanosleep with its culprit"
	grep -q "task 2 'spinner' long poll .*: on-CPU [0-9.]* ms$SPINNER_CULPRIT" \
		"$TMP/report" || fail "report: the spinner is not on-CPU in compute"
	grep -q "fix: a blocking call inside a poll" "$TMP/report" || fail "report: no fix"
	"$SPINDLE" report --json "$1" >"$TMP/report.json" 2>&1
	python3 - "$TMP/report.json" <<'PY' || fail "report --json: no tracer warnings"
import json, sys
d = json.load(open(sys.argv[1]))
t = [w for w in d["warnings"] if w["tracer"] and w["kind"] == "long_poll"]
assert any(w["detail"].startswith("blocked") and "clock_nanosleep" in w["detail"] for w in t), t
import os
sanitized = os.environ.get("SP_SANITIZED") == "1"
assert any(w["detail"].startswith("on-CPU") and (sanitized or "compute" in w["detail"]) for w in t), t
PY
}

case $CASE in
rings)
	"$SPINDLE" trace -t 40 -o "$TMP/t.db" -- "$BLOCKING" --seconds 2 >"$TMP/out" 2>"$TMP/err"
	rc=$?
	grep -q "not permitted" "$TMP/err" && skip "$(head -1 "$TMP/err")"
	[ $rc = 0 ] || fail "trace exit status $rc"
	grep -q "LONG POLL task .* sleeper_poll .*blocked" "$TMP/out" || fail "no live line"
	n=$(sql "$TMP/t.db" "SELECT count(*) FROM polls")
	[ "$n" -gt 0 ] || fail "no polls from the rings in the database"
	n=$(sql "$TMP/t.db" "SELECT count(*) FROM warnings WHERE kind = 'long_poll' AND source = 'spindle trace'")
	[ "$n" -ge 3 ] || fail "$n findings in the database (want >= 3)"
	# On the recording's time line: each finding lies on a poll of its task.
	n=$(sql "$TMP/t.db" "SELECT count(*) FROM warnings w WHERE NOT EXISTS (SELECT 1 FROM polls p
		WHERE p.task = w.task AND p.end >= w.ts AND p.end - p.dur <= w.ts + w.dur
		AND abs(p.end - p.dur - w.ts) < 2000000)")
	[ "$n" = 0 ] || fail "$n findings match no poll of their task within 2 ms"
	check_report "$TMP/t.db"
	grep -q "tracer: blocked [0-9.]* ms in clock_nanosleep$SLEEPER_CULPRIT" "$TMP/report" ||
		fail "report: no long poll annotated by the tracer"
	"$SPINDLE" export "$TMP/t.db" -o "$TMP/t.json" || fail "export failed"
	python3 - "$TMP/t.json" <<'PY' || fail "export: no annotation"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
polls = [e for e in ev if e["ph"] == "X"]
ann = [e for e in ev if e.get("cat") == "tracer"]
b = [e for e in ann if e["args"]["verdict"] == "blocked" and "blocking_call" in e["args"]["culprit"]]
assert b, ann
for a in b:
    assert a["ph"] == "i" and a["s"] == "t", a
    # at the start of a poll of that task on that worker's track
    assert any(p["tid"] == a["tid"] and p["args"]["task"] == a["args"]["task"]
               and abs(p["ts"] - a["ts"]) < 1.0 for p in polls), a
assert any(e["args"]["verdict"] == "on-cpu" for e in ann), ann
PY
	;;
norings)
	SPINDLE_TRACE=0 "$SPINDLE" trace -t 40 -o "$TMP/c.db" -- "$BLOCKING" --seconds 2 >"$TMP/out" 2>"$TMP/err"
	rc=$?
	grep -q "not permitted" "$TMP/err" && skip "$(head -1 "$TMP/err")"
	[ $rc = 0 ] || fail "trace exit status $rc"
	[ "$(sql "$TMP/c.db" "SELECT count(*) FROM polls")" = 0 ] || fail "polls without rings?"
	[ "$(sql "$TMP/c.db" "SELECT value FROM meta WHERE key = 'rings'")" = 0 ] || fail "meta rings"
	check_report "$TMP/c.db"
	grep -q "event rings were off" "$TMP/report" || fail "report: no note on the rings"
	"$SPINDLE" export "$TMP/c.db" -o "$TMP/c.json" || fail "export failed"
	python3 -c 'import json,sys; ev=json.load(open(sys.argv[1]))["traceEvents"]; assert any(e.get("cat")=="tracer" and e["s"]=="t" for e in ev)' \
		"$TMP/c.json" || fail "export: no annotation on a worker track"
	# -p on a process without rings
	env -u SPINDLE_TRACE "$BLOCKING" --seconds 4 >"$TMP/target" 2>&1 &
	TPID=$!
	sleep 0.2
	"$SPINDLE" trace -t 40 -o "$TMP/p.db" -p $TPID >"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ $rc = 0 ] || fail "trace -p exit status $rc"
	grep -q "no event rings" "$TMP/err" || fail "trace -p: no note on the rings"
	wait $TPID
	TPID=
	"$SPINDLE" report "$TMP/p.db" >"$TMP/report" 2>&1
	[ $? = 1 ] || fail "report of the -p recording: want exit 1"
	grep -q "culprit blocking_call" "$TMP/report" || fail "report of -p: no sleeper finding"
	;;
*)
	echo "unknown case $CASE" >&2
	exit 2
	;;
esac
echo "PASS($CASE)"
