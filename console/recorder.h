/*
 * recorder.h - turning the event stream (stream.h) into recording rows
 * (db.h). Two layers:
 *
 *   sprec: the model. Fed events in time order (sprec_event), plus the spawn
 *   sites and the attach snapshot, it keeps the per-task state the rows need
 *   (current poll, when the task became runnable, waker holders) and appends
 *   rows; sprec_commit writes the aggregates and commits the batch. Driven
 *   by the live pipeline below, by the synthetic generator and by tests.
 *
 *   sprec_live: a process being recorded. The calling thread reads the
 *   stream (a reader must keep up with the rings: it never waits on SQLite)
 *   and hands chunks of events to a writer thread that owns the sprec and
 *   the database and commits at least every SPREC_COMMIT_NS. The reader
 *   runs SCHED_RR priority 1 when the process may (else nice -10; env
 *   SPINDLE_RECORD_RT=0: neither), the writer as an ordinary thread.
 */
#ifndef SPINDLE_CONSOLE_RECORDER_H
#define SPINDLE_CONSOLE_RECORDER_H

#include <signal.h>
#include <stdint.h>

#include "db.h"
#include "stream.h"

#define SPREC_COMMIT_NS 100000000ll /* batch at most 100 ms (the crash window) */

typedef struct sprec sprec;

typedef struct sprec_stats {
	uint64_t events; /* events fed */
	uint64_t lost;	 /* events lost (reported by the reader) */
	uint64_t polls, wakes, tasks, late;
	uint64_t commits;
	int64_t end_ns; /* recording time of the last event */
} sprec_stats;

/* t0_ns: the monotonic ns that is recording time 0. The writer stays the
 * caller's (sprec never closes it). */
int sprec_new(sprec **out, spdb_writer *w, uint64_t t0_ns);
void sprec_free(sprec *r);
/* One event (stream order). 0 or -1 (database error: spdb_writer_err). */
int sprec_event(sprec *r, const spc_event *ev);
int sprec_site(sprec *r, uint32_t idx, const char *name, const char *file, uint32_t line);
/* A task of the attach snapshot; spawn_ns: monotonic ns of its spawn. */
int sprec_snapshot_task(sprec *r, const sp__seg_task *t, uint64_t spawn_ns);
int sprec_lost(sprec *r, uint64_t ns, unsigned ring, uint64_t count);
/* Write pending task rows and waker aggregates, meta, and commit. */
int sprec_commit(sprec *r);
void sprec_get_stats(const sprec *r, sprec_stats *out);

/* ---- live recording ---------------------------------------------------------- */

typedef struct sprec_live_opts {
	spc_stream *stream; /* opened by the caller; not closed here */
	spdb_writer *db;    /* meta already written; not closed here */
	uint64_t t0_ns;
	double duration_s;	     /* 0: until the target ends or *stop */
	volatile sig_atomic_t *stop; /* set by a signal handler: finish */
	int child_pid;		     /* > 0: stop when it has exited (reaped here) */
	int *child_status;	     /* its wait status */
	int progress;		     /* once a second on stderr */
	/* Optional: called on the writer thread before each commit (and the
	 * last), to add rows of another source (the eBPF tracer's warnings)
	 * to the batch. 0, or -1 (a database error: spdb_writer_err). */
	int (*before_commit)(spdb_writer *w, void *arg);
	void *commit_arg;
} sprec_live_opts;

/* Record until the end; fills *st. 0, or -1 (message printed). */
int sprec_live_run(const sprec_live_opts *o, sprec_stats *st);

#endif

/* ---- synthetic recordings (benchmarks, tests) ------------------------------- */

/*
 * Write a made-up recording of `polls` polls into w through the sprec (the
 * recorder's real path, without a target): 2 workers, 200 tasks of five
 * spawn sites, each poll preceded by a timer wake and followed by a waker
 * clone or a self-wake, one 20 ms poll every 100000 polls with tasks queued
 * behind it, steals, parks, and one task that loses its waker. The same
 * seed gives the same database. 0, or -1 (spdb_writer_err).
 */
int sprec_synthetic(spdb_writer *w, uint64_t polls, unsigned seed, sprec_stats *st);
