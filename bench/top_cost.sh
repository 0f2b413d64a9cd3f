#!/usr/bin/env bash
# top_cost.sh PID [SECONDS] [SPINDLE]: run `spindle top` on PID in a detached
# tmux screen for SECONDS (default 30) and print its CPU use (% of one core,
# from /proc/<top>/stat) and its RSS at the start and the end.
set -eu
PID=$1 SECS=${2:-30} SPINDLE=${3:-build/bin/spindle}
SOCK=/tmp/spindle-topcost.$$
tmux -S "$SOCK" new-session -d -x 200 -y 50 "$SPINDLE top $PID"
trap 'tmux -S "$SOCK" kill-server 2>/dev/null; rm -f "$SOCK"' EXIT
sleep 3
TOP=$(pgrep -n -f "^$SPINDLE top $PID")
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/$TOP/stat; }
rss() { awk '/VmRSS/ {print $2}' /proc/$TOP/status; }
c0=$(cpu) r0=$(rss)
sleep "$SECS"
c1=$(cpu) r1=$(rss)
echo "spindle top on pid $PID: CPU $(echo "scale=2; 100 * ($c1 - $c0) / $tick / $SECS" | bc)% of one core over ${SECS} s; RSS ${r0} kB -> ${r1} kB"
