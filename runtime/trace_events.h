/*
 * trace_events.h - the event types written into the per-thread rings
 * (trace_ring.h) of the trace segment (trace_segment.h).
 *
 * EVENT RECORD PAYLOADS (version 1; ts is the raw tick of the event, in the
 * clock of the segment header's calibration):
 *
 *   type  name         a                                b
 *   1     SPAWN        spawning worker index            new task id
 *   2     POLL_START   worker index                     task id
 *   3     POLL_END     1 ready, 0 pending               task id
 *   4     WAKE         bit 0: self-wake                 woken task id
 *   5     STEAL        victim worker index              tasks stolen
 *   6     PARK         worker index                     0
 *   7     UNPARK       worker index                     0
 *
 * POLL_START and POLL_END carry the poll's own timestamps (its start is the
 * previous poll's end), so tracing adds no clock read to a poll. Readers skip
 * types they do not know; new types may be added without a version change.
 */
#ifndef SP_TRACE_EVENTS_H
#define SP_TRACE_EVENTS_H

enum {
	SP_EV_SPAWN = 1,
	SP_EV_POLL_START = 2,
	SP_EV_POLL_END = 3,
	SP_EV_WAKE = 4,
	SP_EV_STEAL = 5,
	SP_EV_PARK = 6,
	SP_EV_UNPARK = 7,
};

#endif /* SP_TRACE_EVENTS_H */
