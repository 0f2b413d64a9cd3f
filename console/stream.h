/*
 * stream.h - the reader library the console, the recorder and the tests use
 * on a live process: open its trace segment, follow every ring merged into
 * one stream in time order, resolve spawn sites, snapshot the task table.
 *
 * Event meanings are specified in runtime/trace_events.h (SP_EV_*); the
 * segment in runtime/trace_segment.h. This layer adds, per event, what the
 * ring's context implies (the worker of the ring and the task being polled on
 * it) and the time in nanoseconds.
 *
 * ORDER. Rings are read in turn, so an event of ring A can become visible
 * after later events of ring B were delivered. spc_stream_poll therefore
 * holds back the events newer than (read time - SPC_SLACK_NS) and delivers
 * the rest sorted by time (ties: ring, then sequence). An event that still
 * arrives behind the delivered time (its producer was descheduled for longer
 * than the slack between taking the time and publishing) is delivered at
 * once with `late` set; consumers tolerate it. spc_stream_flush delivers all
 * that is held (at the end of a recording).
 *
 * LOSS. A ring's producer never waits for readers; what a reader missed is
 * counted exactly per ring (spc_stream_lost). A lost POLL_START leaves the
 * ring's current task unknown (0) until the next one.
 *
 * Not thread-safe: one thread uses a stream.
 */
#ifndef SPINDLE_CONSOLE_STREAM_H
#define SPINDLE_CONSOLE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "trace_events.h"
#include "trace_segment.h"

#define SPC_SLACK_NS 2000000ull /* 2 ms */

typedef struct spc_event {
	uint64_t ns;	/* CLOCK_MONOTONIC nanoseconds */
	uint64_t ticks; /* the raw timestamp */
	uint32_t type;	/* SP_EV_* */
	uint32_t a;
	uint64_t b;
	uint64_t seq;	/* the record's sequence number in its ring */
	uint32_t ring;	/* ring index */
	uint32_t tid;	/* the thread that wrote the ring (owner at read time) */
	int32_t worker; /* worker index of that thread, -1 when not a worker */
	uint32_t thread_kind; /* SP_THREAD_*, 0 unknown (THREAD record lost) */
	uint64_t task;	/* the ring's current task at this event: the parent of a
			 * SPAWN, the source of a WAKE (0: none or unknown) */
	int late;	/* delivered behind events with a later time */
	int expanded;	/* a WAKE made from a POLL_END's self-wake count (no
			 * record of its own; seq is the POLL_END's) */
} spc_event;

typedef struct spc_site {
	uint32_t line;
	char name[SP__SEG_NAME_LEN + 1];
	char file[SP__SEG_SITE_FILE_LEN + 1];
} spc_site;

typedef struct spc_stream spc_stream;

enum {
	SPC_FROM_OLDEST = 1, /* start at the oldest record each ring still holds
			      * (default: only records written after opening) */
};

/*
 * Open the segment of process pid (sp__seg_open: every validation; a segment
 * still being initialised is waited for, up to half a second) and start
 * following it. Returns 0, or a negative errno with *err (if not NULL) set to
 * a static one-line message (sp__seg_strerror's, or "out of memory").
 */
int spc_stream_open(spc_stream **out, int pid, unsigned flags, const char **err);
/* The same over an already opened reader, which the stream then owns. */
int spc_stream_open_reader(spc_stream **out, sp__seg_reader *r, unsigned flags);
void spc_stream_close(spc_stream *s);

typedef void (*spc_event_cb)(const spc_event *ev, void *arg);

/* Read what the rings hold now and deliver, in time order, every event older
 * than the slack. Returns the number delivered. */
size_t spc_stream_poll(spc_stream *s, spc_event_cb cb, void *arg);
/* Deliver everything held back. */
size_t spc_stream_flush(spc_stream *s, spc_event_cb cb, void *arg);

/* Records missed on ring i so far (overwritten before they were read), and
 * the sum over all rings. */
uint64_t spc_stream_lost(const spc_stream *s, unsigned ring);
uint64_t spc_stream_lost_total(const spc_stream *s);
/* Events delivered so far. */
uint64_t spc_stream_delivered(const spc_stream *s);

/* The spawn site with index idx (SPAWN's a), or NULL when there is none (yet:
 * a site registered by another thread may become readable a little after
 * the SPAWN that names it; ask again later). */
const spc_site *spc_stream_site(spc_stream *s, uint32_t idx);

/* A consistent snapshot of every live task in the task table: cb per task.
 * Returns the number delivered. */
size_t spc_stream_tasks(spc_stream *s, void (*cb)(const sp__seg_task *t, void *arg), void *arg);
/* What the last spc_stream_tasks's request for a fresh table gave: 0, or a
 * negative errno (sp__seg_table_request): the table was read as last written. */
int spc_stream_table_rc(const spc_stream *s);
/* How long spc_stream_tasks and `spindle ps` wait for a runtime to write its
 * task table (sp__seg_table_request); it takes ~100 ns a live task. */
#define SPC_TABLE_WAIT_MS 500

/* The queue depths worker `worker` last published (segment ABI 2.1): its
 * local queue with the LIFO slot, and its runtime's injection queue. 0, or
 * -1 when unknown (an older segment, or nothing published yet). */
int spc_stream_worker_queue(const spc_stream *s, int worker, uint32_t *depth, uint32_t *inject);

/* 1 while the target process lives (same pid, same start time). */
int spc_stream_alive(const spc_stream *s);

/* The segment: pid, calibration, ring count... */
const sp__seg_reader *spc_stream_reader(const spc_stream *s);
uint64_t spc_stream_ticks_to_ns(const spc_stream *s, uint64_t ticks);

/* Name of an event type ("poll_start"...), "unknown" for others. */
const char *spc_event_name(uint32_t type);
/* The `a` field of an event of a task, in words: "pending", "ready", "from
 * the reactor (fd 7) to the LIFO slot", "held by a timer"... */
void spc_event_detail(uint32_t type, uint32_t a, char *buf, size_t n);

#endif
