/*
 * trace.c - turning the event rings on: the process-wide trace segment, the
 * rings of worker, pool and foreign threads, the live task table, and the
 * cold halves of the event points (trace_events.h has the event spec).
 *
 * With SPINDLE_TRACE=1 in the environment (or sp_runtime_opts.trace = 1), the
 * first traced runtime makes /dev/shm/spindle.<pid> (trace_segment.h) and
 * sets sp__trace_enabled. Each worker thread of a traced runtime claims a
 * ring for its life; any other thread that emits (a blocking pool thread, a
 * thread that wakes or spawns a task) claims one on first use and gives it
 * back when it exits (a pthread key destructor). A thread that finds no free
 * ring emits nothing. With tracing off a worker's ring pointer is NULL and
 * every event point costs one predictable branch.
 *
 * TASK TABLE: written on request, by one thread. A reader that wants the
 * table (a console attaching, or refreshing its view) adds 1 to the header's
 * table_req and wakes the futex there; the table writer thread ("spindle-
 * table", started with the segment, asleep on that futex otherwise) walks
 * the owned shards of every traced runtime (owned.c), enters every live task
 * that has no slot yet and refreshes the counters of those that have one,
 * each under its shard's lock, then stores table_ack. A task gives its slot
 * back when it leaves its shard (also under that lock, owned.c), so one
 * thread at a time writes a slot, and with no reader asking the table costs
 * the runtime nothing: entering every task at its first pending poll and
 * clearing it at completion was 13% of the timer workload's CPU with tracing
 * on (three cold cache lines and two shared-list CASes per task).
 *
 * At exit the segment file is unlinked but not unmapped: worker threads of a
 * runtime that was never freed may still be writing events.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "trace_events.h"
#include "trace_ring.h"
#include "trace_segment.h"
#include "usdt.h"

#define TRACE_RINGS 64         /* threads traced at once */
#define TRACE_RING_CAP 16384   /* 512 KiB per ring; a reader polls it often */
#define TRACE_RING_CAP_MIN 1024u
#define TRACE_RING_CAP_MAX (1u << 20) /* 32 MiB a ring, 2 GiB for all 64 */
#define TRACE_TASK_SLOTS 131072 /* 24 MiB of table, touched only as used */

_Atomic bool sp__trace_enabled;

static pthread_mutex_t seg_lock = PTHREAD_MUTEX_INITIALIZER;
static sp__segment seg;
/* 0 not tried, 1 created, -1 failed; written under seg_lock, read without:
 * ordering: the release store of 1 publishes seg (acquire loads). */
static _Atomic int seg_state;
static pthread_key_t ring_key;

static void seg_unlink_at_exit(void)
{
	if (seg.path[0])
		unlink(seg.path);
}

static void table_writer_start(void);

static bool seg_ready(void)
{
	return atomic_load_explicit(&seg_state, memory_order_acquire) == 1;
}

/* Thread exit of a non-worker that claimed a ring: give it back. */
static void ring_key_release(void *v)
{
	uintptr_t idx1 = (uintptr_t)v;
	if (idx1)
		sp__seg_release_ring(&seg, (unsigned)(idx1 - 1));
	sp__tls.ring = NULL;
}

uint32_t sp__trace_ring_cap_parse(const char *s)
{
	if (!s || *s < '0' || *s > '9')
		return 0;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		n <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		n <<= 20, end++;
	if (*end || n < TRACE_RING_CAP_MIN || n > TRACE_RING_CAP_MAX || (n & (n - 1)))
		return 0;
	return (uint32_t)n;
}

/* Records per ring: SPINDLE_TRACE_RING, else TRACE_RING_CAP. A reader that
 * falls behind (a loaded machine, a slow disk under `spindle record`) loses
 * what the ring overwrote: a larger ring rides out longer stalls, at 32
 * bytes a record of memory touched only as the ring fills. */
static uint32_t trace_ring_cap(void)
{
	const char *e = getenv("SPINDLE_TRACE_RING");
	if (!e || !*e)
		return TRACE_RING_CAP;
	uint32_t n = sp__trace_ring_cap_parse(e);
	if (n)
		return n;
	fprintf(stderr,
		"spindle: ignoring SPINDLE_TRACE_RING=%s (want records per ring, a power of two "
		"from 1024 to 1M, e.g. 65536 or 64k)\n",
		e);
	return TRACE_RING_CAP;
}

/* The process's segment, created on first use; NULL if it cannot be. */
sp__segment *sp__trace_segment(void)
{
	if (atomic_load_explicit(&seg_state, memory_order_acquire) == 1)
		return &seg;
	pthread_mutex_lock(&seg_lock);
	if (atomic_load_explicit(&seg_state, memory_order_relaxed) == 0) {
		int err = sp__seg_create(&seg, TRACE_RINGS, trace_ring_cap(), TRACE_TASK_SLOTS);
		if (!err)
			pthread_key_create(&ring_key, ring_key_release);
		atomic_store_explicit(&seg_state, err ? -1 : 1, memory_order_release);
		if (err) {
			fprintf(stderr, "spindle: tracing off: cannot create the trace segment: %s\n",
				strerror(-err));
		} else {
			/* Processes killed before their atexit leave their
			 * segments behind: clear those of dead processes. */
			sp__seg_sweep_stale();
			atexit(seg_unlink_at_exit);
			table_writer_start();
			atomic_store_explicit(&sp__trace_enabled, true, memory_order_release);
		}
	}
	pthread_mutex_unlock(&seg_lock);
	return atomic_load_explicit(&seg_state, memory_order_relaxed) == 1 ? &seg : NULL;
}

bool sp__trace_wanted(const sp_runtime_opts *o)
{
	if (o && o->trace)
		return o->trace > 0;
	const char *e = getenv("SPINDLE_TRACE");
	return e && !strcmp(e, "1");
}

static uint64_t ev_ticks(void)
{
	return sp__ev_ticks();
}

/* Worker thread start: claim a ring (none left: this worker is not traced). */
void sp__trace_worker_start(sp__worker *w)
{
	SP_USDT(worker_start, w->index, __atomic_load_n(&w->tid, __ATOMIC_RELAXED), w->slot);
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
	sp__tls.ring = w->ring;
	w->now = sp__ticks(); /* the ring's times start here and never go back */
	sp__ring_emit_at(w->ring, w->now, SP_EV_THREAD, w->index, SP_THREAD_WORKER);
}

void sp__trace_worker_stop(sp__worker *w)
{
	SP_USDT(worker_stop, w->index);
	if (w->ring_idx >= 0)
		sp__seg_release_ring(&seg, (unsigned)w->ring_idx);
	w->ring = NULL;
	w->ring_idx = -1;
	sp__tls.ring = NULL;
}

/* A non-worker thread's first event: claim a ring for the thread's life. */
struct sp__ring *sp__trace_ring_slow(void)
{
	if (sp__tls.ring_tried || sp__tls.worker)
		return NULL; /* a worker without a ring stays without */
	sp__tls.ring_tried = 1;
	if (!seg_ready())
		return NULL;
	int idx = sp__seg_claim_ring(&seg, (uint32_t)syscall(SYS_gettid));
	if (idx < 0)
		return NULL;
	if (pthread_setspecific(ring_key, (void *)(uintptr_t)(idx + 1)) != 0) {
		sp__seg_release_ring(&seg, (unsigned)idx);
		return NULL;
	}
	sp__tls.ring = sp__seg_ring(&seg, (unsigned)idx);
	uint32_t kind = sp__tls.thread_kind ? (uint32_t)sp__tls.thread_kind : SP_THREAD_FOREIGN;
	sp__ring_emit_at(sp__tls.ring, sp__ticks(), SP_EV_THREAD, 0, kind);
	return sp__tls.ring;
}

/* A worker's queue depths into the segment (its maintenance, its parking). */
void sp__trace_worker_stats(sp__worker *w, uint32_t depth, uint32_t inject)
{
	if (w->ring_idx >= 0 && seg_ready())
		sp__seg_wstat_write(&seg, (unsigned)w->ring_idx, w->now ? w->now : 1, w->index,
				    depth, inject);
}

void sp__trace_emit(uint32_t type, uint32_t a, uint64_t b)
{
	sp__ring *r = sp__trace_ring();
	if (r)
		sp__ring_emit_at(r, ev_ticks(), type, a, b);
}

static uint64_t ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * sp__clock.mult) >> 32);
}

static uint64_t load_state(sp__task *t)
{
	/* ordering: relaxed; a snapshot for display. */
	return atomic_load_explicit(&t->state, memory_order_relaxed);
}

/* Read while other threads poll and wake t: every counter is a single
 * relaxed load (their writers store them relaxed, SP__BUMP), so values are
 * stale by a poll at most, never torn. */
static void fill_counters(sp__task *t, sp__seg_task *st)
{
	uint64_t s = load_state(t);
	st->state = (uint32_t)(s & 0x3f);
	st->polls = __atomic_load_n(&t->polls, __ATOMIC_RELAXED);
	st->busy_ns = ticks_to_ns(__atomic_load_n(&t->busy_ticks, __ATOMIC_RELAXED));
	st->wakes = s >> SP__WAKE_SHIFT;
	st->self_wakes = __atomic_load_n(&t->self_wakes, __ATOMIC_RELAXED);
	/* ordering: relaxed counters (see the waker comment in task.c). */
	st->waker_clones = atomic_load_explicit(&t->waker_clones, memory_order_relaxed);
	st->waker_drops = atomic_load_explicit(&t->waker_drops, memory_order_relaxed);
	st->last_ts = __atomic_load_n(&t->last_ticks, __ATOMIC_RELAXED);
}

static _Thread_local sp__site_ent sp__site_cache[SP__SITE_CACHE];

_Thread_local sp__site_ent sp__site_last;

/* A site other than the thread's last: from the cache, else registered or
 * found in the table and cached; it becomes the last either way. */
uint32_t sp__trace_site_slow(const sp_spawn_site *site)
{
	unsigned h = (unsigned)(((uintptr_t)site >> 4) * 0x9e3779b1u >> 28) % SP__SITE_CACHE;
	uint32_t idx;
	if (sp__site_cache[h].site == site) {
		idx = sp__site_cache[h].idx;
	} else {
		idx = sp__seg_site(&seg, site, site->name, site->file, site->line);
		if (idx == SP__SEG_SITE_NONE)
			return idx; /* the table is full: not cached, asked again */
		sp__site_cache[h].site = site;
		sp__site_cache[h].idx = idx;
	}
	sp__site_last.site = site;
	sp__site_last.idx = idx;
	return idx;
}

/* ---- the task table ---------------------------------------------------------- */

/* The traced runtimes, for the table writer: from sp_runtime_new to the start
 * of sp_runtime_free; a runtime leaves the list only between two passes of
 * the writer (both hold table_lock), so the writer never walks a runtime
 * that is being torn down. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static sp_runtime *traced_runtimes;

void sp__trace_runtime_add(sp_runtime *rt)
{
	pthread_mutex_lock(&table_lock);
	rt->trace_next = traced_runtimes;
	traced_runtimes = rt;
	pthread_mutex_unlock(&table_lock);
}

void sp__trace_runtime_remove(sp_runtime *rt)
{
	pthread_mutex_lock(&table_lock);
	for (sp_runtime **p = &traced_runtimes; *p; p = &(*p)->trace_next)
		if (*p == rt) {
			*p = rt->trace_next;
			break;
		}
	pthread_mutex_unlock(&table_lock);
}

/* Enter t, or refresh its counters (the writer thread, under t's shard
 * lock: the slot bits of t's owned word are ours to read and write). */
void sp__trace_table_write(sp__task *t)
{
	uint32_t slot = sp__task_seg_slot(t);
	sp__seg_task st;
	fill_counters(t, &st);
	if (slot != SP__NO_SEG_SLOT) {
		sp__seg_task_counters(&seg, slot, &st);
		return;
	}
	int got = sp__seg_task_alloc(&seg);
	if (got < 0)
		return; /* table full: readers know it from the events only */
	if ((unsigned)got >= SP__NO_SEG_SLOT) {
		sp__seg_task_release(&seg, (unsigned)got);
		return;
	}
	const sp_spawn_site *site = t->site;
	st.id = t->id;
	st.parent = t->parent_id;
	st.line = site->line;
	st.site = sp__trace_site(site);
	/* The spawn time: last_ticks until the first poll; after one poll,
	 * last_ticks (its end, or the wake since) less the time it waited,
	 * ran and idled since the spawn; later, unknown. */
	uint64_t polls = st.polls, last = st.last_ts;
	uint64_t since = __atomic_load_n(&t->busy_ticks, __ATOMIC_RELAXED) +
			 __atomic_load_n(&t->sched_ticks, __ATOMIC_RELAXED) +
			 __atomic_load_n(&t->idle_ticks, __ATOMIC_RELAXED);
	/* (racy reads of a task that runs meanwhile may not add up: then 0) */
	st.spawn_ts = polls == 0 ? last : polls == 1 && since < last ? last - since : 0;
	sp__seg_task_spawn(&seg, (unsigned)got, &st);
	sp__task_set_owned_seg(t, sp__task_owned_shard(t), (uint32_t)got);
}

/* t leaves its shard (under the shard's lock): clear and free its slot. */
void sp__trace_table_forget(sp__task *t)
{
	sp__seg_task_free(&seg, sp__task_seg_slot(t));
	sp__task_set_owned_seg(t, sp__task_owned_shard(t), SP__NO_SEG_SLOT);
}

static void *table_writer_main(void *arg)
{
	(void)arg;
	_Atomic uint32_t *req = &seg.hdr->table_req;
	uint32_t served = 0;
	for (;;) {
		/* ordering: acquire: pairs with nothing in particular (readers
		 * add with relaxed); the futex wait re-checks the value. */
		uint32_t want = atomic_load_explicit(req, memory_order_acquire);
		if (want == served) {
			syscall(SYS_futex, req, FUTEX_WAIT, served, NULL, NULL, 0);
			continue;
		}
		pthread_mutex_lock(&table_lock);
		for (sp_runtime *rt = traced_runtimes; rt; rt = rt->trace_next)
			sp__owned_table_refresh(rt);
		pthread_mutex_unlock(&table_lock);
		served = want;
		/* ordering: release: the slots written above before the ack a
		 * reader loads with acquire. */
		atomic_store_explicit(&seg.hdr->table_ack, want, memory_order_release);
	}
	return NULL;
}

/* Under seg_lock, once the segment exists. The thread blocks every signal
 * (a runtime's signalfd relies on no thread taking them) and is never
 * joined: it sleeps in the kernel until a reader asks, for the process's
 * life. Without it (no thread could be made) the table stays empty and
 * readers time out waiting for the ack. */
static void table_writer_start(void)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int err = pthread_create(&th, &attr, table_writer_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		fprintf(stderr, "spindle: no task table for readers: cannot start its thread: %s\n",
			strerror(err));
	else
		pthread_setname_np(th, "spindle-table");
}

void sp__trace_task_abort(sp__task *t)
{
	/* A completion is its POLL_END with the ready bit; only an abort needs
	 * a record of its own. */
	sp__ring *r = sp__trace_ring();
	if (r)
		sp__ring_emit_at(r, ev_ticks(), SP_EV_TASK_DONE, 1, t->id);
}

