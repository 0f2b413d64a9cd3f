#!/usr/bin/env bash
# top_events_cg.sh [BUILD] [ARGS...]: instructions per event of `spindle
# top`'s reader and model (bench/top_events.c) under callgrind, with the
# split per function. Only consume() (spc_stream_poll into topm_event) is
# counted.
set -eu
BUILD=${1:-build}
shift || true
OUT=$(mktemp /tmp/top-events-cg.XXXXXX)
trap 'rm -f "$OUT"' EXIT
line=$(valgrind --tool=callgrind --toggle-collect=consume --callgrind-out-file="$OUT" \
	"$BUILD/bin/top-events" "$@" 2>/dev/null)
echo "$line"
events=$(echo "$line" | awk '{print $2}')
callgrind_annotate --inclusive=no "$OUT" 2>/dev/null |
	awk -v ev="$events" '
	/PROGRAM TOTALS/ { gsub(",", "", $1); printf "%-44s %8.1f\n", "total Ir/event", $1 / ev }
	/^ *[0-9,]+ +\( *[0-9.]+%\) +[^ ]+:[^ ]+ / {
		sub(/\( *[0-9.]+%\) +/, "")
		ir = $1; gsub(",", "", ir); fn = $2
		if (ir / ev >= 0.5) printf "  %-42s %8.1f\n", fn, ir / ev
	}'
