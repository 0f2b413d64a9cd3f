#!/usr/bin/env bash
# top_tmux.sh - `spindle top` end to end: the real ncurses screen in a tmux
# pane (send-keys, capture-pane) against examples/demo, examples/lostwake and
# examples/blocking, plus the batch mode and the bad-input exits.
#
#   tests/e2e/top_tmux.sh SPINDLE_BINARY EXAMPLES_BIN_DIR
#
# Deterministic on a loaded machine: every check polls the screen until its
# text appears or a generous deadline passes (never a fixed sleep that must be
# long enough); targets run far longer than the checks need. Exit 77 (skip)
# without tmux.
set -u
export TERM=${TERM:-xterm}
SPINDLE=$1
BIN=$2
command -v tmux >/dev/null || { echo "tmux not installed: skipped"; exit 77; }

# A fresh tmux server (socket) per screen: reusing one right after
# kill-server races with its shutdown and can lose the new session.
BASE=spindle-top-e2e-$$
NSOCK=0
SOCK=$BASE-0
PIDS=()
fails=0
cleanup() {
	local i
	for ((i = 0; i <= NSOCK; i++)); do tmux -L "$BASE-$i" kill-server 2>/dev/null; done
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT

say() { printf 'top_tmux: %s\n' "$*"; }
fail() {
	say "FAIL: $*"
	tmux -L "$SOCK" capture-pane -p -t top 2>/dev/null | sed 's/^/  | /'
	fails=$((fails + 1))
}
screen() { tmux -L "$SOCK" capture-pane -p -t top 2>/dev/null; }
# wait_for REGEX [SECONDS] [LINE-RANGE for sed, default all]
wait_for() {
	local re=$1 secs=${2:-15} range=${3:-1,\$} i
	for ((i = 0; i < secs * 10; i++)); do
		screen | sed -n "${range}p" | grep -Eq -- "$re" && return 0
		sleep 0.1
	done
	return 1
}
check() { # check DESCRIPTION REGEX [SECONDS] [RANGE]
	local what=$1
	shift
	if wait_for "$@"; then say "ok: $what"; else fail "$what (no /$1/ on screen)"; fi
}
check_not() { # check_not DESCRIPTION REGEX RANGE: absent within a few refreshes
	local i
	for ((i = 0; i < 50; i++)); do
		screen | sed -n "${3}p" | grep -Eq -- "$2" || { say "ok: $1"; return 0; }
		sleep 0.1
	done
	fail "$1 (/$2/ still shown)"
}
keys() { tmux -L "$SOCK" send-keys -t top "$@"; }
start_target() { # start_target CMD...: sets TPID once its segment exists
	SPINDLE_TRACE=1 SPINDLE_WORKERS=2 "$@" >/dev/null 2>&1 &
	TPID=$!
	PIDS+=("$TPID")
	local i
	for ((i = 0; i < 100; i++)); do
		[ -e "/dev/shm/spindle.$TPID" ] && return 0
		sleep 0.05
	done
	say "FAIL: $* made no trace segment"
	exit 1
}
new_screen() {
	tmux -L "$SOCK" kill-server 2>/dev/null
	NSOCK=$((NSOCK + 1))
	SOCK=$BASE-$NSOCK
}
open_top() { # open_top ARGS...: spindle top in a 160x45 pane
	new_screen
	tmux -L "$SOCK" new-session -d -s top -x 160 -y 45 \
		"$SPINDLE top $*; echo EXIT=\$?; sleep 30"
}
first_row=4 # line 1 summary, 2 warnings, 3 column titles

# ---- demo: names, long poll, sorting, filtering, detail ----------------------------
start_target "$BIN/demo" --seconds 90 --clients 10
open_top "$TPID"
check "demo task names" 'client' 15
check "demo task names (server, hiccup)" 'hiccup' 15
check "demo task names (conn)" ' conn ' 15
check "hiccup's 30 ms poll is flagged long-poll" 'long-poll' 15 2,2
keys 3
check "warnings view names the hiccup long poll" 'long-poll +(NOW|was) +[0-9]+ hiccup' 15
keys 1
# sort by name (warn -> id -> state -> name), then reversed
keys s s s
check "sort by name: client first" '^[A-Z]* +[0-9]+ [a-z]+ +client ' 10 $first_row,$first_row
keys r
check "reversed name sort: stats first" '^[A-Z]* +[0-9]+ [a-z]+ +stats ' 10 $first_row,$first_row
# filter
keys / h i c c Enter
check "filter 'hicc' shows hiccup" 'hiccup' 10 $first_row,$first_row
check_not "filter 'hicc' hides the clients" 'client' $first_row,\$
keys / BSpace BSpace BSpace BSpace Enter
check "clearing the filter shows the clients again" 'client' 10 $first_row,\$
keys Enter
check "task detail has histograms" 'poll time .*p50' 10
check "task detail has recent events" 'recent events' 10
keys Escape
keys h
check "help screen" 'lost-waker +pending, no waker' 10
keys x q
check "q quits with status 0" 'EXIT=0' 10

# ---- lostwake: the lost waker, then the target is killed ------------------------------
start_target "$BIN/lostwake" --seconds 60
open_top "$TPID"
check "lostwake's task name" 'forgetful' 15
check "lost-waker warning" 'lost-waker' 15 2,2
keys 3
check "warnings view explains the lost waker" 'never run again' 10
keys 1
kill -9 "$TPID"
wait "$TPID" 2>/dev/null
check "killed target: the console says so" 'TARGET EXITED' 15 1,1
check "killed target: last state kept" 'forgetful' 5
keys q
check "quit after the target died" 'EXIT=0' 10

# ---- blocking: long polls of sleeper and spinner -------------------------------------------
start_target "$BIN/blocking" --seconds 90
open_top "$TPID" --long-poll 20
check "blocking task names" 'spinner' 15
check "blocking: long-poll warning" 'long-poll' 15 2,2
keys 3
check "blocking: the culprit is named" 'long-poll +(NOW|was) +[0-9]+ (spinner|sleeper)' 15
keys q

# ---- batch mode ------------------------------------------------------------------------------
out=$("$SPINDLE" top --batch -n 2 -d 0.3 "$TPID")
if grep -q '^spindle top - pid' <<<"$out" && grep -q 'ticker' <<<"$out" &&
	[ "$(grep -c '^spindle top - pid' <<<"$out")" = 2 ]; then
	say "ok: batch prints two snapshots with task names"
else
	fail "batch output: $out"
fi

# ---- bad input: one line, exit 2 -------------------------------------------------------------
expect_exit2() { # DESCRIPTION REGEX CMD...
	local what=$1 re=$2
	shift 2
	local err rc
	err=$("$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" = 2 ] && [ "$(wc -l <<<"$err")" = 1 ] && grep -Eq -- "$re" <<<"$err"; then
		say "ok: $what"
	else
		fail "$what: rc=$rc '$err'"
	fi
}
expect_exit2 "a pid with no process" 'no process' "$SPINDLE" top -b 2147483600
expect_exit2 "a process that is not spindle" 'no trace segment' "$SPINDLE" top -b $$
expect_exit2 "not a pid" 'not a process id' "$SPINDLE" top -b pid1
expect_exit2 "bad threshold" 'wants a number' "$SPINDLE" top -b --long-poll x "$TPID"
# a segment of another ABI major, beside a live process that is not spindle
sleep 30 &
SPID=$!
python3 -c 'import struct,sys; open(sys.argv[1],"wb").write(b"SPNDLSEG"+struct.pack("<HHI",9,0,192)+bytes(176))' \
	/dev/shm/spindle.$SPID
expect_exit2 "a segment of an unsupported version" 'reads 2\.x' "$SPINDLE" top -b "$SPID"
rm -f /dev/shm/spindle.$SPID
kill $SPID 2>/dev/null
wait $SPID 2>/dev/null
new_screen
tmux -L "$SOCK" new-session -d -s top -x 40 -y 8 "$SPINDLE top $TPID; echo EXIT=\$?; sleep 30"
check "a terminal too small: message and exit 2" 'EXIT=2' 10
check "a terminal too small: says so" 'too small' 2

if [ "$fails" -ne 0 ]; then
	say "$fails check(s) failed"
	exit 1
fi
say "all checks passed"
