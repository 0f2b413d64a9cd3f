#!/bin/sh
# End-to-end test of spindle record / report / export on the examples.
#   record.sh SPINDLE BINDIR
# Each check prints what it looked for; the first failure exits 1.
set -u
SPINDLE=$1
BIN=$2
T=$(mktemp -d /tmp/spindle-e2e.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

# 1. lostwake: the stalled task, its reason and its spawn location; exit 1.
"$SPINDLE" record -q -o "$T/lw.db" -- "$BIN/lostwake" >/dev/null 2>"$T/rec.err" ||
	fail "record lostwake: $(cat "$T/rec.err")"
"$SPINDLE" report "$T/lw.db" >"$T/lw.txt"
[ $? -eq 1 ] || fail "report lostwake should exit 1"
grep -q "task 1 'forgetful' (examples/lostwake.c:[0-9]*): LOST WAKER" "$T/lw.txt" ||
	fail "lostwake report names no lost waker: $(cat "$T/lw.txt")"
ok "lostwake: lost waker named with its location"
"$SPINDLE" report --json "$T/lw.db" >"$T/lw.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d["stalled"][0];
assert s["reason"]=="lost_waker" and s["name"]=="forgetful" and d["flagged"], d' "$T/lw.json" ||
	fail "report --json"
ok "report --json parses and says lost_waker"

# 1b. --ring sizes the command's rings (meta.ring_capacity); a bad size is
# refused before anything runs, and so is --ring with -p.
"$SPINDLE" record -q -o "$T/ring.db" --ring 2k -- "$BIN/lostwake" >/dev/null 2>"$T/rec.err" ||
	fail "record --ring 2k: $(cat "$T/rec.err")"
n=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key = ?", ("ring_capacity",)).fetchone()[0])' "$T/ring.db")
[ "$n" = 2048 ] || fail "--ring 2k: meta ring_capacity is $n"
"$SPINDLE" record -q -o "$T/bad.db" --ring 3000 -- "$BIN/lostwake" >/dev/null 2>"$T/rec.err"
[ $? -eq 2 ] && grep -q "bad --ring '3000'" "$T/rec.err" || fail "--ring 3000 not refused"
"$SPINDLE" record -q -o "$T/bad.db" --ring 64k -p $$ >/dev/null 2>"$T/rec.err"
[ $? -eq 2 ] && grep -q "ring" "$T/rec.err" || fail "--ring with -p not refused"
[ ! -e "$T/bad.db" ] || fail "a refused record left a database behind"
ok "record --ring: sized rings, bad sizes refused"

# 2. blocking: the long polls with their task and location.
"$SPINDLE" record -q -o "$T/bl.db" -- "$BIN/blocking" --seconds 2 >/dev/null 2>&1 ||
	fail "record blocking"
"$SPINDLE" report "$T/bl.db" >"$T/bl.txt"
[ $? -eq 1 ] || fail "report blocking should exit 1"
grep -Eq "^  !! +1[0-9][0-9]\.[0-9] ms  task [0-9]+ 'spinner' \(examples/blocking.c:[0-9]+\)" "$T/bl.txt" ||
	fail "no 100 ms spinner poll: $(cat "$T/bl.txt")"
grep -Eq "^  !! +5[0-9]\.[0-9] ms  task [0-9]+ 'sleeper' \(examples/blocking.c:[0-9]+\)" "$T/bl.txt" ||
	fail "no 50 ms sleeper poll"
ok "blocking: long polls of spinner and sleeper with their location"
"$SPINDLE" report --long-poll 1000 --sched-delay 1000 --stall 100000 "$T/bl.db" >/dev/null
[ $? -eq 0 ] || fail "report with high thresholds should exit 0"
ok "thresholds: nothing flagged exits 0"

# 3. export: JSON with worker tracks, slices named after tasks, flows.
"$SPINDLE" export "$T/bl.db" -o "$T/bl.json" || fail "export"
python3 - "$T/bl.json" <<'PY' || fail "export content"
import json, sys, collections
ev = json.load(open(sys.argv[1]))["traceEvents"]
ph = collections.Counter(e["ph"] for e in ev)
names = {e["name"] for e in ev if e["ph"] == "X"}
tracks = {e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
assert {"ticker", "spinner", "sleeper"} <= names, names
assert any(t.startswith("worker ") for t in tracks), tracks
assert ph["s"] > 0 and ph["s"] == ph["f"], ph
assert any(e["ph"] == "X" and e["dur"] >= 90000 and e["name"] == "spinner" for e in ev)
PY
ok "export: tracks, slices and flows"

# 4. read-only: report and export leave the file as it was.
h1=$(sha256sum "$T/bl.db" | cut -d' ' -f1)
"$SPINDLE" report "$T/bl.db" >/dev/null
"$SPINDLE" export "$T/bl.db" -o /dev/null
h2=$(sha256sum "$T/bl.db" | cut -d' ' -f1)
[ "$h1" = "$h2" ] || fail "the database changed under report/export"
ok "report/export do not modify the database"

# 5. bad inputs: one line, exit 2, for report and export.
echo "hello" >"$T/text.db"
head -c 4096 /dev/urandom >"$T/random.db"
head -c 3000 "$T/bl.db" >"$T/trunc.db"
cp "$T/bl.db" "$T/newer.db"
sqlite3 "$T/newer.db" "UPDATE meta SET value = 99 WHERE key = 'abi'" || fail "sqlite3"
sqlite3 "$T/foreign.db" "CREATE TABLE x(a)" || fail "sqlite3"
for f in text random trunc newer foreign missing; do
	for cmd in report export; do
		if [ $cmd = report ]; then
			"$SPINDLE" report "$T/$f.db" >/dev/null 2>"$T/err"
		else
			"$SPINDLE" export "$T/$f.db" -o "$T/x.json" >/dev/null 2>"$T/err"
		fi
		rc=$?
		[ $rc -eq 2 ] || fail "$cmd $f: exit $rc, want 2"
		[ "$(wc -l <"$T/err")" -eq 1 ] || fail "$cmd $f: not one line: $(cat "$T/err")"
	done
	ok "$f: $(cat "$T/err")"
done
grep -q "newer" "$T/err" || true

# 6. kill -9 the recorder mid-run: the committed batches are a valid database.
"$SPINDLE" record -q -o "$T/k.db" -- "$BIN/blocking" --seconds 4 >/dev/null 2>&1 &
rec=$!
sleep 1.5
child=$(cat /proc/$rec/task/*/children 2>/dev/null | tr -s ' ' '\n' | head -1)
kill -9 $rec
wait $rec 2>/dev/null
[ -n "$child" ] && kill -9 "$child" 2>/dev/null
"$SPINDLE" report "$T/k.db" >"$T/k.txt"
rc=$?
[ $rc -le 1 ] || fail "report of a killed recording: exit $rc"
grep -q "recorder did not finish" "$T/k.txt" || fail "killed recording not marked unfinished"
[ "$(sqlite3 "$T/k.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
n=$(sqlite3 "$T/k.db" 'SELECT count(*) FROM polls')
[ "$n" -gt 0 ] || fail "no polls committed before the kill"
ok "killed recorder: integrity ok, $n polls committed"
echo PASS
