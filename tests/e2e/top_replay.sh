#!/usr/bin/env bash
# top_replay.sh - `spindle top --replay` end to end: record examples/lostwake
# and examples/blocking, then read the recordings back with the console's
# model at a time cursor (batch snapshots), check the bad-input exits, and,
# when tmux is there, drive the interactive screen's cursor keys.
#
#   tests/e2e/top_replay.sh SPINDLE_BINARY EXAMPLES_BIN_DIR
#
# Deterministic on a loaded machine: a replay reads a file, so its output
# depends only on the recording; the checks look for what every recording
# of these examples holds (a lost waker; a >= 50 ms poll), and the tmux
# checks poll the screen until the text appears or a generous deadline.
set -u
export TERM=${TERM:-xterm}
SPINDLE=$1
BIN=$2
T=$(mktemp -d /tmp/spindle-replay.XXXXXX)
SOCK=spindle-replay-e2e-$$
DEMO=
cleanup() {
	tmux -L "$SOCK" kill-server 2>/dev/null
	[ -n "$DEMO" ] && kill -9 "$DEMO" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
ok() { echo "ok: $*"; }

"$SPINDLE" record -q -o "$T/lw.db" -- "$BIN/lostwake" >/dev/null 2>"$T/rec.err" ||
	fail "record lostwake: $(cat "$T/rec.err")"
"$SPINDLE" record -q -o "$T/bl.db" -- "$BIN/blocking" --seconds 2 >/dev/null 2>"$T/rec.err" ||
	fail "record blocking: $(cat "$T/rec.err")"

# 1. lostwake: by default the cursor is just before the last record (the
# exit aborts the task): the task with its name and a live lost waker.
"$SPINDLE" top --replay "$T/lw.db" --batch -n 1 >"$T/lw.txt" 2>&1 || fail "replay lostwake: $(cat "$T/lw.txt")"
grep -q "^spindle top - REPLAY t=" "$T/lw.txt" || fail "no REPLAY header: $(cat "$T/lw.txt")"
grep -Eq "lost-waker +NOW +task 1 forgetful" "$T/lw.txt" || fail "no live lost waker: $(cat "$T/lw.txt")"
grep -Eq "^L +1 idle +forgetful .*lostwake.c:[0-9]+" "$T/lw.txt" || fail "no forgetful row: $(cat "$T/lw.txt")"
ok "lostwake: forgetful, idle, live lost-waker warning"
# at the very end the exit aborted it: done, no warning
"$SPINDLE" top --replay "$T/lw.db" --batch --at end >"$T/lw_end.txt" || fail "replay --at end"
grep -q "tasks 0 live, 1 done" "$T/lw_end.txt" || fail "--at end: $(cat "$T/lw_end.txt")"
ok "lostwake --at end: the task is done"

# 2. blocking: the worst poll shown live, by --at worst and by the time
# sqlite3 finds (start + 20 ms).
"$SPINDLE" top --replay "$T/bl.db" --batch --at worst >"$T/bw.txt" || fail "replay --at worst"
grep -Eq "long-poll +NOW +task [0-9]+ (spinner|sleeper): in one poll" "$T/bw.txt" ||
	fail "--at worst: no live long poll: $(cat "$T/bw.txt")"
grep -Eq "^[A-Z]* +[0-9]+ running +(spinner|sleeper) " "$T/bw.txt" || fail "--at worst: no running row"
ok "blocking --at worst: live long poll of $(grep -Eo 'NOW +task [0-9]+ [a-z]+' "$T/bw.txt" | head -1)"
if command -v sqlite3 >/dev/null; then
	at=$(sqlite3 "$T/bl.db" "SELECT printf('%.6f', (end - dur + 20000000) / 1e9) FROM polls ORDER BY dur DESC LIMIT 1")
	"$SPINDLE" top --replay "$T/bl.db" --batch -n 1 --at "$at" >"$T/bs.txt" || fail "replay --at $at"
	grep -Eq "long-poll +NOW +task [0-9]+ (spinner|sleeper): in one poll for 20.0ms now" "$T/bs.txt" ||
		fail "--at $at: $(cat "$T/bs.txt")"
	ok "blocking --at $at (worst start + 20 ms): in one poll for 20.0ms now"
fi

# 3. stepping: snapshots every 0.5 s of recording time from 0 to the end;
# the model is fed forward, and a fresh replay at a cursor agrees with it.
"$SPINDLE" top --replay "$T/bl.db" --batch --at 0 -d 0.5 >"$T/steps.txt" || fail "steps"
n=$(grep -c "^spindle top - REPLAY" "$T/steps.txt")
[ "$n" -ge 4 ] || fail "stepping: $n snapshots: $(grep REPLAY "$T/steps.txt")"
grep "^spindle top - REPLAY" "$T/steps.txt" | tail -1 | grep -Eq "t=([0-9.]+) s of \1 s" ||
	fail "stepping did not end at the end: $(grep REPLAY "$T/steps.txt" | tail -1)"
awk '/^spindle top - REPLAY/ { n++ } n == 3' "$T/steps.txt" >"$T/third.txt"
"$SPINDLE" top --replay "$T/bl.db" --batch -n 1 --at 1 -d 0.5 >"$T/at1.txt" || fail "--at 1"
head -1 "$T/third.txt" | grep -q "REPLAY t=1.000 s" || fail "third step: $(head -1 "$T/third.txt")"
diff "$T/third.txt" "$T/at1.txt" || fail "a fresh replay at t=1 differs from stepping there"
ok "stepping: $n snapshots to the end; --at 1 equals the third step"

# 4. read-only: the recording is unchanged.
h1=$(sha256sum "$T/bl.db" | cut -d' ' -f1)
"$SPINDLE" top --replay "$T/bl.db" --batch --at 0 -d 0.2 >/dev/null
[ "$h1" = "$(sha256sum "$T/bl.db" | cut -d' ' -f1)" ] || fail "the recording changed"
ok "the recording is not modified"

# 5. an attach (record -p): tasks spawned before the recording are idle
# since their spawn, not scheduled (nothing about them before it is known).
SPINDLE_TRACE=1 "$BIN/demo" --seconds 20 >/dev/null 2>&1 &
DEMO=$!
sleep 0.5
n=0
until "$SPINDLE" record -q -o "$T/p.db" -p $DEMO --duration 1 >/dev/null 2>"$T/p.err"; do
	n=$((n + 1))
	[ $n -lt 50 ] || fail "record -p: $(cat "$T/p.err")"
	sleep 0.1
done
kill $DEMO
"$SPINDLE" top --replay "$T/p.db" --batch -n 1 --at 0.5 >"$T/p.txt" || fail "replay of an attach"
grep -q "(attached to pid $DEMO)" "$T/p.txt" || fail "attach: $(head -1 "$T/p.txt")"
grep -Eq "^ *[A-Z]* +[0-9]+ [a-z]+ +server " "$T/p.txt" || fail "attach: no server task: $(cat "$T/p.txt")"
grep -Eq "sched-delay +NOW +task [0-9]+ (server|hiccup)" "$T/p.txt" &&
	fail "attach: a task spawned before the recording shown as scheduled since: $(cat "$T/p.txt")"
ok "attach: $(grep -c 'demo.c' "$T/p.txt") tasks, the ones from before the recording idle"

# 6. bad input: one line, exit 2.
echo hello >"$T/text.db"
head -c 4096 /dev/urandom >"$T/random.db"
for f in "$T/text.db" "$T/random.db" "$T/missing.db"; do
	"$SPINDLE" top --replay "$f" --batch >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 2 ] || fail "$f: exit $rc, want 2"
	[ "$(wc -l <"$T/err")" -eq 1 ] || fail "$f: not one line: $(cat "$T/err")"
	ok "$(basename "$f"): $(cat "$T/err")"
done
for args in "--replay $T/bl.db 1 --batch" "--replay $T/bl.db --batch --at soon" "--at 1 --batch"; do
	# shellcheck disable=SC2086
	"$SPINDLE" top $args >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] || fail "top $args: exit $rc: $(cat "$T/err")"
	ok "top $args: $(cat "$T/err")"
done

# 7. the interactive screen (tmux): the status line, 'w', the arrows, Home.
if ! command -v tmux >/dev/null; then
	echo "tmux not installed: interactive checks skipped"
	echo PASS
	exit 0
fi
screen() { tmux -L "$SOCK" capture-pane -p -t top 2>/dev/null; }
wait_for() {
	local i
	for ((i = 0; i < 100; i++)); do
		screen | grep -Eq "$1" && return 0
		sleep 0.1
	done
	echo "  screen:"
	screen | sed 's/^/  | /'
	return 1
}
tmux -L "$SOCK" new-session -d -s top -x 160 -y 40 \
	"$SPINDLE top --replay $T/bl.db --at 0 --no-color; sleep 30" || fail "tmux"
wait_for "REPLAY t=0.000 s of" || fail "interactive: no REPLAY status at 0"
tmux -L "$SOCK" send-keys -t top w
# the row's WARN column holds P (long poll), and D too when the task also
# waited long to be scheduled in that recording
wait_for "^[A-Z]*P[A-Z]* +[0-9]+ running +(spinner|sleeper) " || fail "interactive w: the poll does not run"
tmux -L "$SOCK" send-keys -t top 3
wait_for "^long-poll +NOW +[0-9]+ (spinner|sleeper) +in one poll" || fail "interactive w: no live long poll"
ok "interactive w: $(screen | grep -Eo 'REPLAY t=[0-9.]+ s' | head -1), live long poll"
tmux -L "$SOCK" send-keys -t top W
wait_for "^long-poll +was +[0-9]+ (spinner|sleeper) +a poll took" || fail "interactive W"
# the worst poll's own warning is over (another task's long poll, on the
# other worker, may well be live at that moment)
wid=$(screen | grep -Eo "^long-poll +was +[0-9]+" | grep -Eo "[0-9]+$" | head -1)
screen | grep -Eq "^long-poll +NOW +$wid " && fail "interactive W: the poll should be over"
tmux -L "$SOCK" send-keys -t top 1
tmux -L "$SOCK" send-keys -t top Home
wait_for "REPLAY t=0.000 s" || fail "interactive Home"
tmux -L "$SOCK" send-keys -t top Right
wait_for "REPLAY t=1.000 s" || fail "interactive Right"
tmux -L "$SOCK" send-keys -t top ']'
wait_for "REPLAY t=1.100 s" || fail "interactive ]"
tmux -L "$SOCK" send-keys -t top Left
wait_for "REPLAY t=0.100 s" || fail "interactive Left (back: a rebuild)"
ok "interactive: W, Home, Right, ], Left move the cursor"
tmux -L "$SOCK" send-keys -t top q
echo PASS
