#!/usr/bin/env bash
# make demo, last part: the demo service with its event rings on, watched by
# the live console (spindle top). On a terminal the console takes the screen
# until you press q; in a non-interactive shell (CI, a pipe) it prints a few
# batch snapshots instead. Then the recorder and the report on the lost-waker
# example, and the eBPF tracer on the blocking example when it may run.
set -u
BIN=${1:-build/bin}
SECONDS_DEMO=${DEMO_SECONDS:-8}

SPINDLE_TRACE=1 "$BIN/demo" --seconds 3600 >/dev/null 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null; wait $DEMO 2>/dev/null' EXIT
for _ in $(seq 100); do [ -e /dev/shm/spindle.$DEMO ] && break; sleep 0.05; done

if [ -t 0 ] && [ -t 1 ]; then
	echo "== spindle top on the demo service (pid $DEMO): press q to quit"
	sleep 1
	"$BIN/spindle" top "$DEMO"
else
	echo "== spindle top --batch on the demo service (pid $DEMO), $SECONDS_DEMO snapshots"
	"$BIN/spindle" top --batch -n "$SECONDS_DEMO" -d 1 --sort busy "$DEMO" | cut -c1-150 | head -n 400
fi
kill $DEMO 2>/dev/null; wait $DEMO 2>/dev/null

echo
echo "== spindle record + report on examples/lostwake (a task that lost its waker)"
rm -f /tmp/spindle-demo-$$.db
"$BIN/spindle" record -q -o /tmp/spindle-demo-$$.db -- "$BIN/lostwake" >/dev/null
"$BIN/spindle" report /tmp/spindle-demo-$$.db | sed -n '/STALLED/,/LONG POLLS/p'
rm -f /tmp/spindle-demo-$$.db*

echo
echo "== spindle trace on examples/blocking (eBPF: which task, how long, which syscall)"
if [ "$(id -u)" = 0 ]; then
	"$BIN/spindle" trace -t 40 -- "$BIN/blocking" --seconds 2 | grep -E "LONG POLL|on-CPU|culprit|fix" | head -n 12
else
	echo "(skipped: spindle trace needs root; try: sudo $BIN/spindle trace -- $BIN/blocking)"
fi
