/*
 * worker.c - the worker run loop: where each poll happens.
 *
 * ORDER OF WORK for a worker, each tick:
 *   1. every GLOBAL_QUEUE_INTERVAL ticks, or when GLOBAL_QUEUE_MAX_NS passed
 *      since the last look, the injection queue first (so remote spawns and
 *      wakes are never starved by local work, however long the polls);
 *   2. its local queue;
 *   3. the injection queue (a batch of it moves to the local queue);
 *   4. steal half of a random victim's local queue (as a searcher);
 *   5. keep searching for SEARCH_SPIN_NS (stealing, and turning the driver);
 *   6. park: in the driver's epoll_wait if no other worker is there and the
 *      runtime uses timers or fds, else on the worker's futex.
 * A busy worker also turns the driver without blocking every DRIVER_MAX_NS.
 * After each poll the LIFO slot runs: the task that the running task just
 * woke or spawned, hot in cache. At most MAX_LIFO_POLLS_PER_TICK run in a row;
 * then the LIFO task goes to the back of the local queue, so that two tasks
 * waking each other cannot starve the rest (Tokio 1.24 lacked this cap: its
 * spawn_many_remote_busy2 livelocks).
 *
 * NOTIFYING. Work made stealable (a push that makes the local queue
 * non-empty, a displaced LIFO task) or pushed to the injection queue calls
 * sp__runtime_notify_parked(),
 * which wakes at most one parked worker and none while one is searching
 * (idle.c has the argument for why no wakeup is lost). A searcher that finds
 * work stops searching and, if it was the last one, wakes another worker to
 * search in turn.
 *
 * SHUTDOWN: stop_workers is checked at the top of every tick; a parked worker
 * is unparked by sp_runtime_free. The queued tasks are dropped by runtime.c
 * after every worker has exited.
 *
 * Everything in sp__worker above `parker` is touched only by the owner thread,
 * except the local queue (queue.h) and `slot` (read by the eBPF tracer in the
 * worker's own context).
 */
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "trace_events.h"
#include "trace_ring.h"
#include "queue.h"
#include "usdt.h"

/* Ticks between checks of the injection queue when local work is there. 61
 * is Tokio's and Go's number (prime, so it does not beat with task cycles). */
#define GLOBAL_QUEUE_INTERVAL 61
/* ...and at least this often in time: with 10 µs polls, 61 ticks would leave
 * remote work waiting 600 µs (spawn_many_remote_busy2). Tokio 1.29 tunes the
 * interval to ~200 µs of polling for the same reason; a time bound needs no
 * division and uses the clock read the poll already made. */
#define GLOBAL_QUEUE_MAX_NS 50000
/* A busy worker turns the driver (timeout 0) at least this often: timers are
 * 1 ms grained, so 250 µs keeps their lateness well under a millisecond. */
#define DRIVER_MAX_NS 250000
/* At most this many never-run tasks move from the injection queue to a local
 * queue at once: tasks woken later (a timer firing on this worker) queue
 * behind them. */
#define INJECT_NEW_BATCH 64
/* Ticks between metric batches / shutdown checks. Tokio uses 61 too. */
#define EVENT_INTERVAL 61
/* LIFO polls in a row before the LIFO task yields to the queue. 3 is Tokio's
 * later choice ("picked out of thin air"), enough for request/response pairs. */
#define MAX_LIFO_POLLS_PER_TICK 3

_Thread_local sp__tls_t sp__tls;

unsigned sp__local_queue_cap_override;

void sp__worker_init(sp__worker *w, sp_runtime *rt, uint32_t index, uint32_t cap)
{
	atomic_init(&w->head, 0);
	atomic_init(&w->tail, 0);
	w->mask = cap - 1;
	w->rt = rt;
	w->index = index;
	w->rng = 0x9E3779B97F4A7C15ull * (index + 1);
	w->inject_every = GLOBAL_QUEUE_MAX_NS * sp__clock.hz / 1000000000u;
	w->driver_every = DRIVER_MAX_NS * sp__clock.hz / 1000000000u;
	atomic_init(&w->parker.state, 0);
	w->parker.rt = rt;
	w->parker.mark = SP__PARK_MARK; /* parks only in park(), outside polls */
	atomic_init(&w->stolen_from, 0);
#define SP__X(name) atomic_init(&w->pub.name, 0);
	SP__BATCH_FIELDS(SP__X)
#undef SP__X
	atomic_init(&w->pub_depth, 0);
	atomic_init(&w->thread_active, false);
	w->ring = NULL;
	w->ring_idx = -1;
}

static uint32_t next_rand(sp__worker *w, uint32_t n)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng % n);
}

/* ---- publishing counters ------------------------------------------------- */

void sp__worker_publish(sp__worker *w)
{
	/* ordering: relaxed stores of monotonic counters; readers want recent,
	 * not synchronized, values. */
#define SP__X(name) atomic_store_explicit(&w->pub.name, w->batch.name, memory_order_relaxed);
	SP__BATCH_FIELDS(SP__X)
#undef SP__X
	atomic_store_explicit(&w->pub_depth, q_len(w), memory_order_relaxed);
	if (SP__UNLIKELY(w->ring != NULL))
		sp__trace_worker_stats(w, q_len(w) + (w->lifo != NULL),
				       (uint32_t)atomic_load_explicit(&w->rt->inject.nlen,
								      memory_order_relaxed));
}

/* ---- scheduling ----------------------------------------------------------- */

static void push_overflow(sp__worker *w, sp__task *t)
{
	sp__task *batch[SP__LOCAL_QUEUE_MAX / 2 + 1];
	uint32_t n = q_take_half(w, batch);
	batch[n++] = t;
	if (n > 1)
		w->batch.overflows++;
	if (!sp__inject_push_batch(&w->rt->inject, batch, n, SP__LANE_WOKEN)) {
		/* Shutting down: the owned list cancels them; drop our refs. */
		for (uint32_t i = 0; i < n; i++)
			sp__task_ref_dec(batch[i]);
	}
}

static void push_back(sp__worker *w, sp__task *t)
{
	while (!q_push(w, t)) {
		/* Full. Move half to the injection queue, or (a steal is in
		 * progress, the queue is about to shrink) just this task. */
		push_overflow(w, t);
		return;
	}
}

/* Into the injection queue's lane, then notify; false: the queue is closed. */
static bool inject_push(sp__task *t, int lane)
{
	sp_runtime *rt = t->rt;
	SP_USDT(inject_push, t->id);
	if (!sp__inject_push_batch(&rt->inject, &t, 1, lane))
		return false;
	sp__runtime_notify_parked(rt);
	return true;
}

void sp__schedule_remote(sp__task *t)
{
	if (!inject_push(t, SP__LANE_WOKEN))
		sp__task_ref_dec(t); /* closed: shutdown cancels the task */
	sp__schedule_remote_done(t);
}

void sp__schedule_remote_done(sp__task *t)
{
	/* Last access to rt done: let sp_runtime_free proceed, and drop the
	 * reference that kept t alive while it was already queued. */
	uint64_t prev = atomic_fetch_sub_explicit(&t->state, SP__SCHED_ONE + SP__REF_ONE,
						  memory_order_acq_rel);
	SP__ASSERT(prev & SP__SCHED_MASK, "a remote schedule in flight is counted");
	if (SP__REFS(prev) == 1)
		sp__task_dealloc(t);
}

bool sp__spawn_remote(sp__task *t)
{
	/* The event only where nothing else says it: a SPAWN on a ring that
	 * is not a worker's went to this queue; a spawn from a worker of
	 * another runtime is the case left. */
	if (SP__UNLIKELY(sp__tracing()) && sp__tls.worker)
		sp__trace_emit(SP_EV_INJECT_PUSH, 0, t->id);
	return inject_push(t, SP__LANE_NEW);
}

void sp__schedule(sp__task *t, bool is_yield)
{
	sp__worker *w = sp__tls.worker;
	SP__ASSERT(w && w->rt == t->rt, "sp__schedule is the local path");
	if (!is_yield) {
		/* The LIFO slot: the task the running task just woke runs next;
		 * the one it displaces becomes stealable. */
		sp__task *prev = w->lifo;
		w->lifo = t;
		if (!prev)
			return;
		t = prev;
	}
	/* Notify only when the queue goes from empty to stealable: liveness
	 * never depends on it (this worker is awake and will pop the task); it
	 * is for parallelism, and an earlier push already asked for a helper.
	 * That saves a SeqCst fence per yield in a busy queue. */
	bool was_empty = q_is_empty(w);
	push_back(w, t);
	if (was_empty && w->rt->nworkers > 1)
		sp__runtime_notify_parked(w->rt);
}

/* ---- finding work --------------------------------------------------------- */

/* Move a share of the injection queue to the local queue; return one task. */
static sp__task *pop_inject_batch(sp__worker *w)
{
	sp_runtime *rt = w->rt;
	if (sp__inject_is_empty(&rt->inject))
		return NULL;
	size_t len = atomic_load_explicit(&rt->inject.nlen, memory_order_relaxed);
	size_t want = len / rt->nworkers + 1; /* Go's globrunqget share */
	uint32_t room = w->mask + 1 - q_len(w);
	if (want > room / 2 + 1)
		want = room / 2 + 1;
	sp__task *batch[SP__LOCAL_QUEUE_MAX / 2 + 1];
	size_t n = sp__inject_pop_n(&rt->inject, batch, want, INJECT_NEW_BATCH);
	if (n == 0)
		return NULL;
	w->batch.inject_pops += n;
	w->batch.inject_ops++;
	/* The tasks' first polls must not be stamped before their spawns on
	 * other threads: time has passed since this worker's last reading (a
	 * search spins for 20 us). One clock read per batch. */
	w->now = sp__ticks();
	if (SP__UNLIKELY(w->ring != NULL))
		sp__ring_emit_at(w->ring, w->now, SP_EV_INJECT_POPS, w->index, n);
	if (SP_USDT_ENABLED(inject_pop))
		for (size_t i = 0; i < n; i++)
			SP_USDT(inject_pop, w->index, batch[i]->id);
	for (size_t i = 1; i < n; i++)
		if (!q_push(w, batch[i]))
			push_overflow(w, batch[i]);
	return batch[0];
}

static sp__task *next_task(sp__worker *w)
{
	sp__task *t;
	if (w->tick % GLOBAL_QUEUE_INTERVAL == 0 || w->now - w->inject_checked > w->inject_every) {
		w->inject_checked = w->now;
		t = pop_inject_batch(w);
		if (t)
			return t;
	}
	t = q_pop(w);
	if (t)
		return t;
	return pop_inject_batch(w);
}

static sp__task *steal_work(sp__worker *w)
{
	sp_runtime *rt = w->rt;
	if (!w->searching) {
		if (!sp__idle_transition_worker_to_searching(&rt->idle))
			return NULL;
		w->searching = true;
	}
	uint32_t n = rt->nworkers;
	uint32_t start = n > 1 ? next_rand(w, n) : 0;
	for (uint32_t i = 0; i < n; i++) {
		sp__worker *victim = &rt->workers[(start + i) % n];
		if (victim == w)
			continue;
		uint32_t count;
		sp__task *t = q_steal_into(victim, w, &count);
		if (t) {
			w->now = sp__ticks(); /* as in pop_inject_batch */
			SP__EMIT(w, w->now, SP_EV_STEAL, victim->index, count);
			SP_USDT(steal, w->index, victim->index, count);
			w->batch.steals_in += count;
			w->batch.steal_ops++;
			atomic_fetch_add_explicit(&victim->stolen_from, count,
						  memory_order_relaxed);
			return t;
		}
	}
	return pop_inject_batch(w);
}

static void transition_from_searching(sp__worker *w)
{
	w->searching = false;
	if (sp__idle_transition_worker_from_searching(&w->rt->idle))
		sp__runtime_notify_parked(w->rt); /* keep one searcher going */
}

static bool any_work_pending(sp_runtime *rt)
{
	for (uint32_t i = 0; i < rt->nworkers; i++)
		if (!q_is_empty(&rt->workers[i]))
			return true;
	return !sp__inject_is_empty(&rt->inject);
}

/* A busy worker looks at the driver without blocking, so that I/O and timers
 * are not starved by compute (when no worker is parked in it). */
static void maintenance_turn(sp__worker *w)
{
	w->driver_turned = w->now;
	if (!atomic_load_explicit(&w->rt->driver.needed, memory_order_relaxed))
		return; /* no timer or fd yet: nothing to look at */
	if (sp__driver_try_lock(w->rt)) {
		sp__driver_turn(w->rt, 0);
		sp__driver_unlock(w->rt);
	} else {
		/* Its holder may be preempted mid-turn: timers need not wait. */
		sp__driver_fire_timers(w->rt);
	}
}

/*
 * Before parking, a searcher keeps looking for SEARCH_SPIN_NS. While it is
 * searching, producers do not wake anyone (idle.c), so a burst of remote
 * spawns or wakes is picked up without a futex wake per task: a thread that
 * spawns 10,000 tasks one by one otherwise pays a wake-up syscall for most of
 * them, as the workers drain the queue and park between two spawns. 20 µs is
 * about the cost of four futex wake/park round trips here. Searchers are at
 * most half the workers (idle.c), so one spins on 2 or 3 workers and up to
 * n/2 on more; each yields the CPU as it spins. SPINDLE_SPINNERS=N caps the
 * spinners (the rest park at once): on 16 cores, spawns from a non-worker
 * thread fell 4x from 2 workers to 4, and whether spinning searchers are
 * the cause is for a many-core run to tell (bench/bundle.sh).
 */
#define SEARCH_SPIN_NS 20000

static bool stealable_work(sp__worker *w)
{
	sp_runtime *rt = w->rt;
	if (!sp__inject_is_empty(&rt->inject))
		return true;
	/* A queue holding a single task is left to its owner, which is awake
	 * and about to pop it: stealing it would only move a chain of tasks
	 * back and forth between workers (chained_spawn ran a third of its
	 * links on the wrong worker, with the cache misses that go with it). */
	for (uint32_t i = 0; i < rt->nworkers; i++)
		if (&rt->workers[i] != w && q_len(&rt->workers[i]) > 1)
			return true;
	return false;
}

static sp__task *search_spin_loop(sp__worker *w, _Atomic uint32_t *root_woken);

static sp__task *search_spin(sp__worker *w, _Atomic uint32_t *root_woken)
{
	sp_runtime *rt = w->rt;
	if (rt->nworkers < 2)
		return NULL; /* nobody can hand us work without waking us */
	if (SP__LIKELY(rt->max_spinners == 0))
		return search_spin_loop(w, root_woken);
	/* A capped number of spinners (SPINDLE_SPINNERS): the others park at
	 * once. Liveness is park's business either way: a searcher that stops
	 * here parks as one whose spin ran out, and the last searcher to park
	 * re-checks the queues. A CAS, not add-then-undo, so the count never
	 * reads above the cap, even for a moment. ordering: relaxed: a
	 * count, no data. */
	uint32_t cur = atomic_load_explicit(&rt->spinners, memory_order_relaxed);
	do {
		if (cur >= rt->max_spinners)
			return NULL;
	} while (!atomic_compare_exchange_weak_explicit(&rt->spinners, &cur, cur + 1,
							memory_order_relaxed, memory_order_relaxed));
	sp__task *t = search_spin_loop(w, root_woken);
	atomic_fetch_sub_explicit(&rt->spinners, 1, memory_order_relaxed);
	return t;
}

static sp__task *search_spin_loop(sp__worker *w, _Atomic uint32_t *root_woken)
{
	sp_runtime *rt = w->rt;
	uint64_t start = sp__ticks();
	uint64_t limit = SEARCH_SPIN_NS * sp__clock.hz / 1000000000u;
	while (sp__ticks() - start < limit) {
		if (atomic_load_explicit(&rt->stop_workers, memory_order_relaxed) ||
		    (root_woken && atomic_load_explicit(root_woken, memory_order_relaxed)))
			return NULL;
		if (stealable_work(w)) {
			sp__task *t = steal_work(w);
			if (t)
				return t;
		}
		/* Look for I/O and timers too (Go's findrunnable does the same):
		 * a searcher is the worker with the least to lose. What the turn
		 * wakes lands in this worker's LIFO slot and queue. */
		w->now = sp__ticks();
		maintenance_turn(w);
		if (w->lifo) {
			sp__task *t = w->lifo;
			w->lifo = NULL;
			return t;
		}
		sp__task *t = q_pop(w);
		if (t)
			return t;
		for (int i = 0; i < 16; i++)
			sp__cpu_relax();
		sp__idle_yield();
	}
	return NULL;
}

/* ---- running -------------------------------------------------------------- */

static void run_task(sp__worker *w, sp__task *t)
{
	if (w->searching)
		transition_from_searching(w);
	sp__task_run(t);
	for (int lifo_polls = 0; w->lifo; lifo_polls++) {
		sp__task *next = w->lifo;
		w->lifo = NULL;
		if (lifo_polls == MAX_LIFO_POLLS_PER_TICK) {
			/* No notification: this worker pops it next tick; waking
			 * a sibling for one task costs more than it saves
			 * (chained_spawn: a futex wake every 4 spawns). */
			push_back(w, next);
			break;
		}
		w->batch.lifo_polls++;
		sp__task_run(next);
	}
}

/*
 * Stop being parked on our own (work of our own, shutdown, the root future):
 * if a notifier took us off the sleepers meanwhile, it counted us as a
 * searcher, and we must be one (or the count leaks and nobody is ever woken
 * again).
 */
static void leave_park(sp__worker *w)
{
	if (!sp__idle_unpark_worker_by_id(&w->rt->idle, w->index))
		w->searching = true;
}

/*
 * Park until notified. Returns false when the worker should exit (stop, or
 * the root future of sp_block_on was woken).
 */
static bool park(sp__worker *w, _Atomic uint32_t *root_woken)
{
	sp_runtime *rt = w->rt;
	w->batch.parks++;
	SP__EMIT(w, w->now, SP_EV_PARK, w->index, 0);
	SP_USDT(park, w->index);
	sp__owned_drain(w);
	sp__worker_publish(w);
	bool last = sp__idle_transition_worker_to_parked(&rt->idle, w->index, w->searching);
	w->searching = false;
	if (last && any_work_pending(rt))
		sp__runtime_notify_parked(rt);
	for (;;) {
		if (atomic_load_explicit(&rt->stop_workers, memory_order_acquire) ||
		    (root_woken && atomic_load_explicit(root_woken, memory_order_acquire))) {
			leave_park(w);
			return false;
		}
		/* One parked worker waits in the driver for I/O and timers,
		 * once the runtime has any (sp__driver_need). */
		if (atomic_load_explicit(&rt->driver.needed, memory_order_seq_cst) &&
		    sp__driver_try_lock(rt)) {
			sp__park_driver(&w->parker, rt, -1);
			sp__driver_unlock(rt);
			w->driver_turned = sp__ticks();
		} else {
			/* Another worker holds the driver. Asleep in epoll_wait,
			 * it fires the timers; awake, it may be preempted in
			 * its turn, so sleep only until the next one is due. */
			int64_t wait = sp__driver_timer_wait_ns(rt);
			if (wait < 0) {
				sp__park(&w->parker);
			} else {
				sp__park_timeout(&w->parker, wait);
				sp__driver_fire_timers(rt);
				w->driver_turned = sp__ticks();
			}
		}
		if (!sp__idle_is_parked(&rt->idle, w->index)) {
			w->searching = true; /* the notifier counted us as searching */
			break;
		}
		if (w->lifo || !q_is_empty(w)) {
			/* The driver turn woke tasks onto this worker: run them. */
			leave_park(w);
			break;
		}
	}
	w->now = sp__ticks();
	SP__EMIT(w, w->now, SP_EV_UNPARK, w->index, 0);
	SP_USDT(unpark, w->index);
	return true;
}

/*
 * The loop. root_woken is non-NULL when the loop runs inside sp_block_on on
 * a current-thread runtime: the loop then returns whenever the root future's
 * waker fired, for the caller to poll it.
 */
void sp__worker_run(sp__worker *w, _Atomic uint32_t *root_woken)
{
	sp_runtime *rt = w->rt;
	w->now = sp__ticks();
	for (;;) {
		if (root_woken && atomic_load_explicit(root_woken, memory_order_acquire))
			return;
		w->tick++;
		/* Time-based only: an epoll_wait every 61 ticks (Tokio's rule)
		 * costs ~15% of yield_many; every 250 µs is invisible. */
		if (w->now - w->driver_turned > w->driver_every)
			maintenance_turn(w);
		if (w->tick % EVENT_INTERVAL == 0) {
			sp__owned_drain(w);
			sp__worker_publish(w);
			if (atomic_load_explicit(&rt->stop_workers, memory_order_acquire))
				return;
		}
		/* The LIFO slot is normally drained by run_task; a task spawned
		 * by block_on's root future (current-thread flavour) lands there
		 * outside any run_task. */
		sp__task *t = w->lifo;
		w->lifo = NULL;
		if (!t)
			t = next_task(w);
		if (!t)
			t = steal_work(w);
		if (!t && w->searching)
			t = search_spin(w, root_woken);
		if (t) {
			run_task(w, t);
			continue;
		}
		if (atomic_load_explicit(&rt->stop_workers, memory_order_acquire))
			return;
		if (!park(w, root_woken))
			return;
	}
}

void *sp__worker_main(void *arg)
{
	sp__worker *w = arg;
	sp__tls.rt = w->rt;
	sp__tls.worker = w;
	__atomic_store_n(&w->tid, (uint32_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
	w->slot = sp__slot_claim();
	if (w->slot) {
		w->slot->tid = w->tid;
		w->slot->worker_idx = w->index;
		w->slot->runtime_id = w->rt->id;
	}
	sp__trace_worker_start(w);
	sp__worker_run(w, NULL);
	sp__worker_publish(w);
	sp__trace_worker_stop(w);
	sp__slot_release(w->slot);
	w->slot = NULL;
	sp__tls.worker = NULL;
	sp__tls.rt = NULL;
	return NULL;
}

/* Called after the worker threads exited: drop every queued notification
 * (and cancel the queued tasks that were never polled). */
void sp__worker_drain(sp__worker *w)
{
	sp__task *t;
	if (w->lifo) {
		sp__task_drop_queued(w->lifo);
		w->lifo = NULL;
	}
	while ((t = q_pop(w)))
		sp__task_drop_queued(t);
}
