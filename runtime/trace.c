/*
 * trace.c - turning the event rings on: the process-wide trace segment and
 * the rings of the worker threads.
 *
 * With SPINDLE_TRACE=1 in the environment (or sp_runtime_opts.trace = 1), the
 * first runtime created makes /dev/shm/spindle.<pid> (trace_segment.h) with
 * TRACE_RINGS rings; each worker thread of a traced runtime claims one for its
 * life and writes its events there (trace_events.h) with plain stores. With
 * tracing off a worker's ring pointer is NULL and every event point costs one
 * predictable branch.
 *
 * At exit the segment file is unlinked but not unmapped: worker threads of a
 * runtime that was never freed may still be writing events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "trace_ring.h"
#include "trace_segment.h"

#define TRACE_RINGS 32       /* workers (of any runtime) traced at once */
#define TRACE_RING_CAP 16384 /* 512 KiB per ring; a reader polls it often */
#define TRACE_TASK_SLOTS 4096

static pthread_mutex_t seg_lock = PTHREAD_MUTEX_INITIALIZER;
static sp__segment seg;
static int seg_state; /* 0 not tried, 1 created, -1 failed */

static void seg_unlink_at_exit(void)
{
	if (seg.path[0])
		unlink(seg.path);
}

/* The process's segment, created on first use; NULL if it cannot be. */
sp__segment *sp__trace_segment(void)
{
	pthread_mutex_lock(&seg_lock);
	if (seg_state == 0) {
		int err = sp__seg_create(&seg, TRACE_RINGS, TRACE_RING_CAP, TRACE_TASK_SLOTS);
		seg_state = err ? -1 : 1;
		if (err)
			fprintf(stderr, "spindle: tracing off: cannot create the trace segment: %s\n",
				strerror(-err));
		else
			atexit(seg_unlink_at_exit);
	}
	pthread_mutex_unlock(&seg_lock);
	return seg_state == 1 ? &seg : NULL;
}

bool sp__trace_wanted(const sp_runtime_opts *o)
{
	if (o && o->trace)
		return o->trace > 0;
	const char *e = getenv("SPINDLE_TRACE");
	return e && !strcmp(e, "1");
}

/* Worker thread start: claim a ring (none left: this worker is not traced). */
void sp__trace_worker_start(sp__worker *w)
{
	sp__segment *s = w->rt->trace ? sp__trace_segment() : NULL;
	w->ring = NULL;
	w->ring_idx = -1;
	if (!s)
		return;
	int idx = sp__seg_claim_ring(s, __atomic_load_n(&w->tid, __ATOMIC_RELAXED));
	if (idx < 0)
		return;
	w->ring_idx = idx;
	w->ring = sp__seg_ring(s, (unsigned)idx);
}

void sp__trace_worker_stop(sp__worker *w)
{
	if (w->ring_idx >= 0)
		sp__seg_release_ring(&seg, (unsigned)w->ring_idx);
	w->ring = NULL;
	w->ring_idx = -1;
}
