#!/usr/bin/env python3
"""null_tracer.py - the control for bench/trace_inproc.sh: a process that
starts, says it is attached, waits for SIGINT and exits, as `spindle trace
-p PID` does, but traces nothing.

    TRACER=bench/null_tracer.py bench/trace_inproc.sh build 250 chained_spawn

A ratio away from 1 under it is the method's own bias for that workload (a
process coming and going next to the benchmark moves its speed): compare
the real tracer's ratio with this one, not with 1.
"""
import signal
import sys

signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
sys.stderr.write("null_tracer: tracing pid %s\n" % (sys.argv[-1] if len(sys.argv) > 1 else "?"))
sys.stderr.flush()
while True:
    signal.pause()
