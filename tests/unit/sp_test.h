/*
 * sp_test.h - helpers shared by the spindle cmocka tests (header only).
 *
 * Rules every test follows:
 *   - cmocka asserts run on the main thread only. Tasks and helper threads
 *     record what they saw in atomics; the main thread asserts afterwards.
 *   - Waits are bounded (spt_wait_until / SPT_WAIT_UNTIL): a runtime bug makes
 *     a test fail, not hang, wherever the test can avoid blocking forever.
 *   - Runtimes are created with an explicit worker count, never from
 *     SPINDLE_WORKERS.
 *
 * Include as "unit/sp_test.h" (tests/ is on the include path).
 */
#ifndef SP_TEST_H
#define SP_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spindle.h"

/* ---- sanitizer detection -------------------------------------------------- */

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SPT_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#ifndef SPT_SANITIZED
#define SPT_SANITIZED 1
#endif
#endif
#ifndef SPT_SANITIZED
#define SPT_SANITIZED 0
#endif

/* Sanitized builds are slower: bounded waits stretch by this factor. */
#define SPT_TIME_MULT (SPT_SANITIZED ? 4u : 1u)

/* ---- time ------------------------------------------------------------------ */

static inline uint64_t spt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void spt_sleep_us(unsigned us)
{
	struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
	while (nanosleep(&ts, &ts) != 0) {
	}
}

static inline void spt_sleep_ms(unsigned ms)
{
	spt_sleep_us(ms * 1000u);
}

/* Evaluate cond until it is true or ms (times SPT_TIME_MULT) have passed; the
 * value is the last evaluation of cond (1 or 0). */
#define SPT_WAIT_UNTIL(cond, ms)                                                                   \
	({                                                                                         \
		uint64_t spt__dl = spt_now_ns() + (uint64_t)(ms)*1000000ull * SPT_TIME_MULT;       \
		int spt__ok;                                                                       \
		while (!(spt__ok = !!(cond)) && spt_now_ns() < spt__dl)                            \
			spt_sleep_us(50);                                                          \
		spt__ok;                                                                           \
	})

/* The default bound for "this must happen soon". A correct runtime takes
 * microseconds; the bound only decides how long a failing test takes. */
#define SPT_SOON_MS 5000

/* ---- stress scale ----------------------------------------------------------- */

/* SP_STRESS_SCALE (a factor, e.g. 0.1) scales stress workloads; sanitized
 * builds run 1/20 of the nominal work. The result is at least `min`. */
static inline uint64_t spt_scaled(uint64_t nominal, uint64_t min)
{
	double f = 1.0;
	const char *e = getenv("SP_STRESS_SCALE");
	if (e && *e) {
		double v = strtod(e, NULL);
		if (v > 0.0)
			f = v;
	}
	if (SPT_SANITIZED)
		f /= 20.0;
	double n = (double)nominal * f;
	uint64_t r = (uint64_t)n;
	return r < min ? min : r;
}

/* ---- runtimes ---------------------------------------------------------------- */

static inline sp_runtime *spt_runtime(sp_flavor flavor, unsigned workers)
{
	sp_runtime_opts o;
	memset(&o, 0, sizeof o);
	o.flavor = flavor;
	o.workers = workers;
	o.name = "spt-w";
	sp_runtime *rt = NULL;
	int rc = sp_runtime_new(&rt, &o);
	assert_int_equal(rc, 0);
	assert_non_null(rt);
	return rt;
}

/* ---- task introspection --------------------------------------------------------- */

struct spt_find {
	uint64_t id;
	int found;
	sp_task_info info;
};

static inline void spt__find_cb(const sp_task_info *ti, void *arg)
{
	struct spt_find *f = arg;
	if (ti->id == f->id) {
		f->found = 1;
		f->info = *ti;
	}
}

/* Snapshot of one task's counters; returns 0 if the task is not live. */
static inline int spt_task_info(sp_runtime *rt, uint64_t id, sp_task_info *out)
{
	struct spt_find f;
	memset(&f, 0, sizeof f);
	f.id = id;
	sp_runtime_tasks(rt, spt__find_cb, &f);
	if (f.found && out)
		*out = f.info;
	return f.found;
}

/* True when the task is live, neither running nor scheduled to run. */
static inline int spt_task_idle(sp_runtime *rt, uint64_t id)
{
	sp_task_info ti;
	if (!spt_task_info(rt, id, &ti))
		return 0;
	return (ti.state & (SP_TASK_RUNNING | SP_TASK_NOTIFIED | SP_TASK_COMPLETE)) == 0;
}

/* ---- the probe: a hand-written future with observable behaviour -------------- */

/*
 * A probe future counts its polls and drops in a shared `struct spt_probe`.
 * Poll 1 stores `nclones` clones of the context's waker in p->w[0..] (under
 * p->mu); the future completes (out = p->value) at poll `ready_at`, or, when
 * ready_at is 0, at the first poll that sees p->open. Every poll that returns
 * SP_PENDING with ready_at == 0 re-stores w[0] (sp_waker_store). The drop
 * releases the clones still in p->w and counts.
 */
#define SPT_PROBE_WAKERS 4

struct spt_probe {
	pthread_mutex_t mu;
	sp_waker w[SPT_PROBE_WAKERS];
	int nclones;
	int ready_at;
	int value;
	atomic_int open;
	atomic_int polls;
	atomic_int done;
	atomic_int drops;
	atomic_int in_poll;
	atomic_int concurrent;	  /* polls that overlapped another poll */
	atomic_int after_drop;	  /* polls after the drop */
	_Atomic uint64_t task_id; /* sp_task_current_id() seen by poll 1 */
};

struct spt_probe_fut {
	sp_future base;
	int out;
	struct spt_probe *p;
	int local_polls; /* counts polls of this copy of the future */
};

static inline void spt_probe_init(struct spt_probe *p, int nclones, int ready_at, int value)
{
	memset(p, 0, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	p->nclones = nclones;
	p->ready_at = ready_at;
	p->value = value;
}

static inline void spt_probe_destroy(struct spt_probe *p)
{
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < SPT_PROBE_WAKERS; i++)
		sp_waker_drop(&p->w[i]);
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_destroy(&p->mu);
}

static inline sp_poll spt_probe_poll(sp_future *f, sp_context *cx)
{
	struct spt_probe_fut *self = (struct spt_probe_fut *)f;
	struct spt_probe *p = self->p;
	if (atomic_exchange(&p->in_poll, 1))
		atomic_fetch_add(&p->concurrent, 1);
	if (atomic_load(&p->drops))
		atomic_fetch_add(&p->after_drop, 1);
	int n = atomic_fetch_add(&p->polls, 1) + 1;
	self->local_polls++;
	if (n == 1)
		atomic_store(&p->task_id, sp_task_current_id());
	sp_poll r;
	pthread_mutex_lock(&p->mu);
	if ((p->ready_at && n >= p->ready_at) || (!p->ready_at && atomic_load(&p->open))) {
		self->out = p->value;
		r = SP_READY;
	} else {
		if (n == 1) {
			for (int i = 0; i < p->nclones && i < SPT_PROBE_WAKERS; i++) {
				sp_waker_drop(&p->w[i]);
				p->w[i] = sp_waker_clone(sp_context_waker(cx));
			}
		}
		if (!p->ready_at)
			sp_waker_store(&p->w[0], cx);
		r = SP_PENDING;
	}
	pthread_mutex_unlock(&p->mu);
	atomic_store(&p->in_poll, 0);
	if (r == SP_READY)
		atomic_store(&p->done, 1);
	return r;
}

static inline void spt_probe_drop(sp_future *f)
{
	struct spt_probe_fut *self = (struct spt_probe_fut *)f;
	struct spt_probe *p = self->p;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < SPT_PROBE_WAKERS; i++)
		sp_waker_drop(&p->w[i]);
	pthread_mutex_unlock(&p->mu);
	atomic_fetch_add(&p->drops, 1);
}

static inline void spt_probe_fut_init(struct spt_probe_fut *f, struct spt_probe *p)
{
	memset(f, 0, sizeof *f);
	f->base.poll = spt_probe_poll;
	f->base.drop = spt_probe_drop;
	f->base.name = "probe";
	f->p = p;
}

/* 1 when waker slot i holds a waker. */
static inline int spt_probe_armed(struct spt_probe *p, int i)
{
	pthread_mutex_lock(&p->mu);
	int r = !sp_waker_is_empty(&p->w[i]);
	pthread_mutex_unlock(&p->mu);
	return r;
}

/* Take slot i's waker out (under the lock) and wake it (consuming). Returns
 * whether there was one. */
static inline int spt_probe_wake(struct spt_probe *p, int i)
{
	pthread_mutex_lock(&p->mu);
	sp_waker w = p->w[i];
	p->w[i].vtable = NULL;
	p->w[i].data = NULL;
	pthread_mutex_unlock(&p->mu);
	int had = !sp_waker_is_empty(&w);
	sp_waker_wake(&w);
	return had;
}

/* Set open and wake slot 0. */
static inline int spt_probe_open(struct spt_probe *p)
{
	atomic_store(&p->open, 1);
	return spt_probe_wake(p, 0);
}

/* ---- a counting waker for polling futures by hand (no runtime) ---------------- */

struct spt_cwaker {
	atomic_int clones, drops, wakes, wakes_by_ref;
};

static inline sp_waker spt__cw_clone(const void *d);
static inline void spt__cw_wake(const void *d)
{
	struct spt_cwaker *c = (struct spt_cwaker *)d;
	atomic_fetch_add(&c->wakes, 1);
	atomic_fetch_add(&c->drops, 1);
}
static inline void spt__cw_wake_by_ref(const void *d)
{
	struct spt_cwaker *c = (struct spt_cwaker *)d;
	atomic_fetch_add(&c->wakes_by_ref, 1);
}
static inline void spt__cw_drop(const void *d)
{
	struct spt_cwaker *c = (struct spt_cwaker *)d;
	atomic_fetch_add(&c->drops, 1);
}
static const sp_waker_vtable spt__cw_vtable = {spt__cw_clone, spt__cw_wake, spt__cw_wake_by_ref,
					       spt__cw_drop};
static inline sp_waker spt__cw_clone(const void *d)
{
	struct spt_cwaker *c = (struct spt_cwaker *)d;
	atomic_fetch_add(&c->clones, 1);
	sp_waker w = {&spt__cw_vtable, d};
	return w;
}

/* A context like sp_block_on's root: no task, the counting waker. */
struct spt_manual_cx {
	struct spt_cwaker counts;
	sp_waker waker;
	sp_context cx;
};

static inline void spt_manual_cx_init(struct spt_manual_cx *m)
{
	memset(m, 0, sizeof *m);
	m->waker.vtable = &spt__cw_vtable;
	m->waker.data = &m->counts;
	m->cx.waker = &m->waker;
	m->cx.task = NULL;
	m->cx.budget = 0;
}

/* ---- threads ---------------------------------------------------------------------- */

static inline pthread_t spt_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, fn, arg);
	assert_int_equal(rc, 0);
	return t;
}

/* ---- an echo connection (the network tests' server side) -------------------- */

/*
 * Reads what comes and writes it all back until end of file, then closes
 * its socket; a read error counts in *errors. Dropped unfinished (the
 * runtime freed while the peer was still closing) it closes the socket too,
 * so nothing leaks.
 */
struct spt_echo_conn {
	sp_future base;
	int out;
	sp_async_fd *s;
	atomic_int *errors;
	char buf[4096];
	sp_io_rw rd, wr;
};

static inline sp_poll spt_echo_conn_poll(sp_future *f, sp_context *cx)
{
	struct spt_echo_conn *self = (struct spt_echo_conn *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_io_read_init(&self->rd, self->s, self->buf, sizeof(self->buf));
		SP_AWAIT(&self->rd);
		if (self->rd.out <= 0)
			break;
		sp_io_write_all_init(&self->wr, self->s, self->buf, (size_t)self->rd.out);
		SP_AWAIT(&self->wr);
		if (self->wr.out < 0)
			break;
	}
	if (self->rd.out < 0)
		atomic_fetch_add(self->errors, 1);
	sp_tcp_close(self->s);
	self->s = NULL;
	SP_ASYNC_END();
}

static inline void spt_echo_conn_drop(sp_future *f)
{
	struct spt_echo_conn *self = (struct spt_echo_conn *)f;
	if (self->s)
		sp_tcp_close(self->s);
}

/* Spawn an echo connection task for stream s (detached). */
static inline int spt_spawn_echo_conn(sp_async_fd *s, atomic_int *errors)
{
	struct spt_echo_conn c = {
		.base = {.poll = spt_echo_conn_poll, .drop = spt_echo_conn_drop, .name = "echo"},
		.s = s,
		.errors = errors};
	return SP_SPAWN("echo", NULL, c);
}

/* 1 when none of the n tasks is live. */
static inline int spt_none_live(sp_runtime *rt, sp_join_handle *jh, int n)
{
	for (int i = 0; i < n; i++)
		if (spt_task_info(rt, sp_join_handle_id(&jh[i]), NULL))
			return 0;
	return 1;
}

/* 1 once none of the n tasks is live (bounded by SPT_SOON_MS). If some still
 * are (a lost wakeup), they are aborted, so that the joins that follow return
 * instead of hanging and the test fails on the result. */
static inline int spt_finish_or_abort(sp_runtime *rt, sp_join_handle *jh, int n)
{
	int ok = SPT_WAIT_UNTIL(spt_none_live(rt, jh, n), SPT_SOON_MS);
	if (!ok)
		for (int i = 0; i < n; i++)
			sp_join_handle_abort(&jh[i]);
	return ok;
}

/* Wakers of a manual context's task cloned and not dropped. */
static inline int spt_live_wakers(struct spt_manual_cx *m)
{
	return atomic_load(&m->counts.clones) - atomic_load(&m->counts.drops);
}

#endif /* SP_TEST_H */
