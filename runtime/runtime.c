/*
 * runtime.c - creating, running and shutting down a runtime; sp_block_on;
 * the owned-task list.
 *
 * SHUTDOWN PROTOCOL (sp_runtime_free):
 *   1. `shutdown` is set: sp__spawn refuses new tasks from here on (a spawn
 *      that passed the check is caught by step 2).
 *   2. Every owned shard is closed under its lock: an insert after this fails
 *      with SP_ESHUTDOWN (a worker then cancels the task it was about to
 *      poll for the first time), so the walk in step 5 sees every task that
 *      was ever polled or spawned on a worker.
 *   3. The injection queue is closed: a wake after this drops its
 *      notification instead of queueing it (the task is cancelled in step 5),
 *      and a spawn from another thread fails with SP_ESHUTDOWN.
 *   4. `stop_workers` is set and every worker is unparked and joined. A worker
 *      finishes the poll it is in, then exits; nothing polls after this.
 *   5. Every task still on an owned shard is cancelled: its future is dropped
 *      exactly once (sp__task_shutdown takes RUNNING unless a foreign abort
 *      holds it, in which case that thread drops it and removes the task).
 *   6. The local queues and the injection queue are drained: each queued
 *      notification reference is dropped, and a queued task that was never
 *      polled (spawned from another thread: on no shard) is cancelled there,
 *      once its spawner's in-flight count shows it left the runtime.
 *   Tasks still referenced by wakers or join handles outlive the runtime
 *   (complete, future dropped); their last reference frees them. Nothing on
 *   those paths touches the runtime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "queue.h"

void *sp__worker_main(void *arg);
void sp__worker_run(sp__worker *w, _Atomic uint32_t *root_woken);
void sp__worker_drain(sp__worker *w);

static _Atomic uint64_t next_runtime_id = 1;
/* Task ids: global, handed to threads in blocks, never reused. */
static _Atomic uint64_t next_id_block = 1;
#define ID_BLOCK 256

uint64_t sp__runtime_next_id_block(void)
{
	uint64_t b = atomic_fetch_add_explicit(&next_id_block, ID_BLOCK, memory_order_relaxed);
	sp__tls.id_next = b + 1;
	sp__tls.id_end = b + ID_BLOCK;
	return b;
}

/* ---- creation --------------------------------------------------------------- */

static unsigned default_workers(void)
{
	const char *env = getenv("SPINDLE_WORKERS");
	if (env && *env) {
		char *end;
		long n = strtol(env, &end, 10);
		if (*end == '\0' && n > 0 && n <= 1024)
			return (unsigned)n;
		fprintf(stderr, "spindle: ignoring SPINDLE_WORKERS=%s (want 1..1024)\n", env);
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* SPINDLE_SPINNERS=N: at most N searchers spin at once (worker.c). */
static uint32_t max_spinners(uint32_t nworkers)
{
	const char *env = getenv("SPINDLE_SPINNERS");
	if (!env || !*env)
		return 0;
	char *end;
	long n = strtol(env, &end, 10);
	if (*end == '\0' && n >= 0 && n <= 1024)
		return n >= nworkers ? 0 : (uint32_t)n;
	fprintf(stderr, "spindle: ignoring SPINDLE_SPINNERS=%s (want 0..1024)\n", env);
	return 0;
}

static uint32_t local_queue_cap(void)
{
	unsigned c = sp__local_queue_cap_override;
	if (c >= 2 && c <= SP__LOCAL_QUEUE_MAX && (c & (c - 1)) == 0)
		return c;
	return SP__LOCAL_QUEUE_MAX;
}

static void runtime_destroy(sp_runtime *rt)
{
	sp__driver_destroy(rt);
	sp__owned_destroy(rt);
	sp__idle_destroy(&rt->idle);
	sp__inject_destroy(&rt->inject);
	free(rt->workers);
	free(rt);
}

int sp_runtime_new(sp_runtime **out, const sp_runtime_opts *opts)
{
	sp_runtime_opts o = opts ? *opts : (sp_runtime_opts){0};
	if (!out || (o.flavor != SP_MULTI_THREAD && o.flavor != SP_CURRENT_THREAD))
		return SP_EINVAL;
	sp__clock_init();
	uint32_t n = o.flavor == SP_CURRENT_THREAD ? 1 : (o.workers ? o.workers : default_workers());
	if (n > 1024)
		return SP_EINVAL;
	sp_runtime *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return SP_ENOMEM;
	rt->flavor = o.flavor;
	rt->nworkers = n;
	rt->max_spinners = max_spinners(n);
	rt->trace = sp__trace_wanted(&o);
	if (rt->trace && !sp__trace_segment())
		rt->trace = false; /* said why on stderr */
	rt->id = atomic_fetch_add(&next_runtime_id, 1);
	snprintf(rt->name, sizeof(rt->name), "%s", o.name ? o.name : "spindle-w");
	/* aligned_alloc: workers hold cache-aligned fields. */
	size_t wsize = (sizeof(sp__worker) * n + SP__CACHELINE - 1) & ~(size_t)(SP__CACHELINE - 1);
	rt->workers = aligned_alloc(SP__CACHELINE, wsize);
	if (!rt->workers)
		goto fail_workers;
	if (sp__inject_init(&rt->inject))
		goto fail_inject;
	if (sp__idle_init(&rt->idle, n))
		goto fail_idle;
	if (sp__owned_init(rt))
		goto fail_owned;
	if (sp__driver_init(rt))
		goto fail_driver;
	memset(rt->workers, 0, wsize);
	uint32_t cap = local_queue_cap();
	for (uint32_t i = 0; i < n; i++)
		sp__worker_init(&rt->workers[i], rt, i, cap);
	if (rt->trace)
		sp__trace_runtime_add(rt); /* its shards exist: the table writer may walk them */

	if (rt->flavor == SP_MULTI_THREAD) {
		for (uint32_t i = 0; i < n; i++) {
			sp__worker *w = &rt->workers[i];
			if (pthread_create(&w->thread, NULL, sp__worker_main, w) != 0) {
				atomic_store(&rt->stop_workers, true);
				if (rt->trace)
					sp__trace_runtime_remove(rt);
				for (uint32_t j = 0; j < i; j++) {
					sp__unpark(&rt->workers[j].parker);
					pthread_join(rt->workers[j].thread, NULL);
				}
				runtime_destroy(rt);
				return SP_EAGAIN;
			}
			char tname[16];
			snprintf(tname, sizeof(tname), "%.10s-%u", rt->name, i);
			pthread_setname_np(w->thread, tname);
		}
	}
	*out = rt;
	return 0;

fail_driver:
	sp__owned_destroy(rt);
fail_owned:
	sp__idle_destroy(&rt->idle);
fail_idle:
	sp__inject_destroy(&rt->inject);
fail_inject:
	free(rt->workers);
fail_workers:
	free(rt);
	return SP_ENOMEM;
}

unsigned sp_runtime_workers(const sp_runtime *rt)
{
	return rt->nworkers;
}

sp_runtime *sp_runtime_current(void)
{
	return sp__tls.rt;
}

void sp__runtime_notify_parked(sp_runtime *rt)
{
	int i = sp__idle_worker_to_notify(&rt->idle);
	if (i >= 0)
		sp__unpark(&rt->workers[i].parker);
}

/* ---- shutdown ---------------------------------------------------------------- */

void sp_runtime_shutdown(sp_runtime *rt)
{
	atomic_store_explicit(&rt->shutdown, true, memory_order_release);
}

int sp_runtime_free(sp_runtime *rt)
{
	if (!rt)
		return SP_EINVAL;
	if (sp__tls.rt == rt)
		return SP_EDEADLK;
	sp_runtime_shutdown(rt);
	if (rt->trace)
		sp__trace_runtime_remove(rt); /* waits out a table pass over it */
	sp__owned_close(rt);
	sp__inject_close(&rt->inject);
	atomic_store_explicit(&rt->stop_workers, true, memory_order_release);
	if (rt->flavor == SP_MULTI_THREAD) {
		for (uint32_t i = 0; i < rt->nworkers; i++)
			sp__unpark(&rt->workers[i].parker);
		for (uint32_t i = 0; i < rt->nworkers; i++)
			pthread_join(rt->workers[i].thread, NULL);
	}
	sp__owned_cancel_all(rt);
	for (uint32_t i = 0; i < rt->nworkers; i++)
		sp__worker_drain(&rt->workers[i]);
	sp__task *t;
	while ((t = sp__inject_pop(&rt->inject)))
		sp__task_drop_queued(t);
	runtime_destroy(rt);
	return 0;
}

/* ---- block_on ----------------------------------------------------------------- */

/*
 * The root future of sp_block_on is not a task: it is polled on the calling
 * thread with a thread waker. The waker object is per thread, heap-allocated
 * and reference-counted, so a clone that outlives the call (stored somewhere
 * and woken later) stays safe.
 */
typedef struct thread_waker {
	_Atomic uint32_t refs;
	_Atomic uint32_t woken;
	sp__parker parker;
	_Atomic(sp__parker *) target; /* a worker's parker while it drives one */
} thread_waker;

static pthread_key_t tw_key;
static pthread_once_t tw_once = PTHREAD_ONCE_INIT;

static void tw_release(thread_waker *tw)
{
	if (atomic_fetch_sub_explicit(&tw->refs, 1, memory_order_acq_rel) == 1)
		free(tw);
}

static void tw_key_destroy(void *p)
{
	tw_release(p);
}

static void tw_key_init(void)
{
	pthread_key_create(&tw_key, tw_key_destroy);
}

static void tw_wake_by_ref(const void *data)
{
	thread_waker *tw = (thread_waker *)data;
	atomic_store_explicit(&tw->woken, 1, memory_order_release);
	sp__parker *p = atomic_load_explicit(&tw->target, memory_order_acquire);
	sp__unpark(p ? p : &tw->parker);
}

static void tw_drop(const void *data)
{
	tw_release((thread_waker *)data);
}

static void tw_wake(const void *data)
{
	tw_wake_by_ref(data);
	tw_drop(data);
}

static const sp_waker_vtable tw_vtable;
static sp_waker tw_clone(const void *data)
{
	thread_waker *tw = (thread_waker *)data;
	atomic_fetch_add_explicit(&tw->refs, 1, memory_order_relaxed);
	return (sp_waker){&tw_vtable, tw};
}

static const sp_waker_vtable tw_vtable = {tw_clone, tw_wake, tw_wake_by_ref, tw_drop};

static thread_waker *thread_waker_get(void)
{
	pthread_once(&tw_once, tw_key_init);
	thread_waker *tw = pthread_getspecific(tw_key);
	if (!tw) {
		tw = calloc(1, sizeof(*tw));
		if (!tw)
			return NULL;
		atomic_init(&tw->refs, 1);
		/* Marked (internal.h, the park mark): this thread is never a worker
		 * (sp_block_on and sp_join_handle_wait refuse worker threads), so it
		 * never waits inside a poll; the tracer skips its switches at the
		 * register check instead of missing in its worker map each time
		 * (spawn_many_remote_busy1 parks and wakes it per join handle). */
		tw->parker.mark = SP__PARK_MARK;
		pthread_setspecific(tw_key, tw);
	}
	return tw;
}

/* Poll fut on this thread until ready, parking in between. */
static void block_on_thread(thread_waker *tw, sp_future *fut)
{
	sp_waker waker = {&tw_vtable, tw};
	sp_context cx = {.waker = &waker, .task = NULL, .budget = 0};
	for (;;) {
		atomic_store_explicit(&tw->woken, 0, memory_order_relaxed);
		if (fut->poll(fut, &cx) == SP_READY)
			return;
		/* ordering: acquire pairs with the waker's release store. */
		while (!atomic_load_explicit(&tw->woken, memory_order_acquire))
			sp__park(&tw->parker);
	}
}

/* Current-thread flavour: this thread is the worker while the call lasts. */
static int block_on_current(sp_runtime *rt, thread_waker *tw, sp_future *fut)
{
	sp__worker *w = &rt->workers[0];
	if (atomic_exchange(&w->thread_active, true))
		return SP_EDEADLK; /* another thread drives it */
	sp__tls.worker = w;
	__atomic_store_n(&w->tid, (uint32_t)gettid(), __ATOMIC_RELAXED);
	w->slot = sp__slot_claim();
	if (w->slot) {
		w->slot->tid = w->tid;
		w->slot->worker_idx = 0;
		w->slot->runtime_id = rt->id;
	}
	sp__trace_worker_start(w);
	atomic_store_explicit(&tw->target, &w->parker, memory_order_release);
	sp_waker waker = {&tw_vtable, tw};
	sp_context cx = {.waker = &waker, .task = NULL, .budget = 0};
	atomic_store_explicit(&tw->woken, 1, memory_order_relaxed);
	for (;;) {
		if (atomic_exchange_explicit(&tw->woken, 0, memory_order_acquire) &&
		    fut->poll(fut, &cx) == SP_READY)
			break;
		sp__worker_run(w, &tw->woken);
	}
	atomic_store_explicit(&tw->target, NULL, memory_order_release);
	sp__worker_publish(w);
	sp__trace_worker_stop(w);
	sp__slot_release(w->slot);
	w->slot = NULL;
	sp__tls.worker = NULL;
	atomic_store(&w->thread_active, false);
	return 0;
}

int sp_block_on(sp_runtime *rt, sp_future *fut)
{
	if (!rt || !fut || !fut->poll)
		return SP_EINVAL;
	if (sp__tls.worker || sp__tls.rt)
		return SP_EDEADLK;
	if (atomic_load_explicit(&rt->shutdown, memory_order_acquire))
		return SP_ESHUTDOWN;
	thread_waker *tw = thread_waker_get();
	if (!tw)
		return SP_ENOMEM;
	sp__tls.rt = rt;
	int err = 0;
	if (rt->flavor == SP_CURRENT_THREAD)
		err = block_on_current(rt, tw, fut);
	else
		block_on_thread(tw, fut);
	sp__tls.rt = NULL;
	if (!err)
		sp_future_drop(fut);
	return err;
}

int sp_join_handle_wait(sp_join_handle *jh)
{
	if (!jh)
		return SP_EINVAL;
	if (sp__tls.worker || sp__tls.rt)
		return SP_EDEADLK;
	thread_waker *tw = thread_waker_get();
	if (!tw)
		return SP_ENOMEM;
	block_on_thread(tw, &jh->base);
	return jh->status;
}

/* ---- introspection ------------------------------------------------------------ */

int sp_runtime_worker_stats(sp_runtime *rt, unsigned worker, sp_worker_stats *out)
{
	if (!rt || !out || worker >= rt->nworkers)
		return SP_EINVAL;
	sp__worker *w = &rt->workers[worker];
	memset(out, 0, sizeof(*out));
#define SP__LOAD(name) atomic_load_explicit(&w->pub.name, memory_order_relaxed)
	out->polls = SP__LOAD(polls);
	out->steals_in = SP__LOAD(steals_in);
	out->steal_ops = SP__LOAD(steal_ops);
	out->parks = SP__LOAD(parks);
	out->busy_ns = sp__ticks_to_ns(SP__LOAD(busy_ticks));
	out->overflows = SP__LOAD(overflows);
	out->lifo_polls = SP__LOAD(lifo_polls);
	out->inject_pops = SP__LOAD(inject_pops);
	out->inject_ops = SP__LOAD(inject_ops);
#undef SP__LOAD
	out->stolen_from = atomic_load_explicit(&w->stolen_from, memory_order_relaxed);
	out->local_queue_depth = atomic_load_explicit(&w->pub_depth, memory_order_relaxed);
	out->tid = __atomic_load_n(&w->tid, __ATOMIC_RELAXED);
	return 0;
}
