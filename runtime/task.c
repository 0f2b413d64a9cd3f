/*
 * task.c - a task: one allocation holding the header (internal.h) and the
 * future frame, its atomic state word, its waker and its join handle.
 *
 * THE STATE WORD
 *
 *   RUNNING       a thread is polling (or cancelling) the future; only that
 *                 thread touches the future and the poll-side counters.
 *   NOTIFIED      a notification is pending: the task is in a queue, or will
 *                 be requeued when the current poll ends.
 *   COMPLETE      the future was dropped (ready or cancelled); terminal.
 *   CANCELLED     abort() or shutdown asked for cancellation; together with
 *                 COMPLETE it means the task ended without its output.
 *   JOIN_INTEREST a join handle exists and has not been consumed.
 *   JOIN_WAKER    join_waker holds the handle's waker. While COMPLETE is not
 *                 set, only the join handle changes join_waker, after clearing
 *                 this bit; once COMPLETE is set, only the completing thread
 *                 reads it, and it is dropped at deallocation.
 *   refs (20 bits) one each for: the owned list (until completion), the join
 *                 handle (while JOIN_INTEREST), a queued or running
 *                 notification, and every waker clone.
 *   wakes (32 bits) wake calls, added in the wake CAS at no extra cost.
 *
 * A new task has refs = owned + notification (+ join handle) and NOTIFIED.
 * The future is dropped exactly once, by the thread that holds RUNNING when
 * it decides the task is complete (ready, or cancelled); the memory is freed
 * by whoever drops the last reference. A task is never freed before it is
 * complete, because the owned list keeps a reference until then.
 *
 * ORDERING. Every transition is an acq_rel RMW on the state word: the poller's
 * writes to the future and counters before transition_to_idle are visible to
 * the thread that next wins RUNNING, and a waker's writes before its wake are
 * visible to the poll that the wake causes.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trace_events.h"
#include "trace_ring.h"
#include "usdt.h"

#define REFS(s) SP__REFS(s)

static inline uint64_t load_state(sp__task *t)
{
	return atomic_load_explicit(&t->state, memory_order_acquire);
}

static inline bool cas_state(sp__task *t, uint64_t *cur, uint64_t next)
{
	return atomic_compare_exchange_weak_explicit(&t->state, cur, next, memory_order_acq_rel,
						     memory_order_acquire);
}

/* ---- transitions ---------------------------------------------------------- */

sp__transition sp__task_transition_to_running(sp__task *t)
{
	/* A queued task has NOTIFIED set and RUNNING clear (nothing else sets
	 * RUNNING on a NOTIFIED task while workers run), so one XOR flips both:
	 * a single RMW with no load-then-CAS round trip. A stale notification
	 * (the task completed meanwhile) is undone and reported. */
	uint64_t prev = atomic_fetch_xor_explicit(&t->state, SP__NOTIFIED | SP__RUNNING,
						  memory_order_acq_rel);
	if (SP__LIKELY((prev & (SP__NOTIFIED | SP__RUNNING | SP__COMPLETE)) == SP__NOTIFIED))
		return (prev & SP__CANCELLED) ? SP__TR_CANCELLED : SP__TR_OK;
	SP__ASSERT(prev & SP__COMPLETE, "a queued task is notified and not running");
	atomic_fetch_xor_explicit(&t->state, SP__NOTIFIED | SP__RUNNING, memory_order_relaxed);
	return SP__TR_FAILED;
}

/* self_wakes: wake_by_ref calls the task made on itself during this poll
 * (counted in a thread-local instead of a CAS each, see waker_wake_by_ref);
 * they notify the task here, in the same CAS. */
sp__transition sp__task_transition_to_idle(sp__task *t, uint32_t self_wakes)
{
	uint64_t s = load_state(t);
	for (;;) {
		SP__ASSERT(s & SP__RUNNING, "transition_to_idle needs RUNNING");
		if (s & SP__CANCELLED)
			return SP__TR_CANCELLED;
		uint64_t n = (s & ~SP__RUNNING) + self_wakes * SP__WAKE_ONE;
		if (self_wakes)
			n |= SP__NOTIFIED;
		if (cas_state(t, &s, n))
			return (n & SP__NOTIFIED) ? SP__TR_OK_NOTIFIED : SP__TR_OK;
	}
}

/* Returns the state before the transition. A task that polled ready after an
 * abort raced with it still counts as completed (CANCELLED cleared). */
uint64_t sp__task_transition_to_complete(sp__task *t, bool cancelled, uint32_t self_wakes)
{
	uint64_t s = load_state(t);
	for (;;) {
		SP__ASSERT(s & SP__RUNNING, "transition_to_complete needs RUNNING");
		uint64_t n = ((s & ~(SP__RUNNING | SP__CANCELLED)) | SP__COMPLETE) +
			     self_wakes * SP__WAKE_ONE;
		if (cancelled)
			n |= SP__CANCELLED;
		if (cas_state(t, &s, n))
			return s;
	}
}

void sp__task_ref_inc(sp__task *t)
{
	uint64_t prev = atomic_fetch_add_explicit(&t->state, SP__REF_ONE, memory_order_relaxed);
	SP__ASSERT(REFS(prev) > 0 && REFS(prev) < 0xffff0u,
		   "task reference count overflow or use after free (ref_inc)");
}

void sp__task_ref_dec(sp__task *t)
{
	/* ordering: acq_rel: release so our uses happen before the free, and
	 * acquire so the last owner sees every other owner's uses. (A release
	 * decrement plus an acquire fence would do in C11, but ThreadSanitizer
	 * does not model fences; on x86-64 both are the same lock xadd.) */
	uint64_t prev = atomic_fetch_sub_explicit(&t->state, SP__REF_ONE, memory_order_acq_rel);
	SP__ASSERT(REFS(prev) > 0, "task reference count underflow (stale waker or handle?)");
	if (REFS(prev) == 1)
		sp__task_dealloc(t);
}

void sp__task_ref_dec_n(sp__task *t, unsigned n)
{
	uint64_t prev = atomic_fetch_sub_explicit(&t->state, n * SP__REF_ONE, memory_order_acq_rel);
	SP__ASSERT(REFS(prev) >= n, "task reference count underflow (stale waker or handle?)");
	if (REFS(prev) == n)
		sp__task_dealloc(t);
}

void sp__task_dealloc(sp__task *t)
{
	uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
	SP__ASSERT(s & SP__COMPLETE, "a task is freed only after it completed");
	if (s & SP__JOIN_WAKER)
		sp_waker_drop(&t->join_waker);
	/* Poison the state so a stale waker aborts instead of corrupting. */
	atomic_store_explicit(&t->state, 0, memory_order_relaxed);
	sp__task_free(t, SP__CLASS(s));
}

/* ---- waker ---------------------------------------------------------------- */

/*
 * The task waker: data is the task. Clone takes a reference; wake (by value)
 * transfers it to the notification or drops it; wake_by_ref takes a new one
 * only when it schedules. Waker clone and drop counts are relaxed atomic adds
 * on the header's first cache line, which the state RMW just before has
 * already brought to this core; they cost a few ns and no extra sharing.
 */

static uint64_t wake_ticks(void)
{
	sp__worker *w = sp__tls.worker;
	return w ? w->now : sp__ticks();
}

/* The idle -> notified transition was ours: account idle time (we are the only
 * writer until the task is popped, see the header comment) and schedule.
 * remote: the CAS also counted a remote schedule and took an extra reference. */
static void submit_wake(sp__task *t, bool remote)
{
	uint64_t now = wake_ticks();
	if (now > t->last_ticks) {
		SP__BUMP(t->idle_ticks, now - t->last_ticks);
		__atomic_store_n(&t->last_ticks, now, __ATOMIC_RELAXED);
	}
	/* The LIFO slot is for a task woken by the task running here (it runs
	 * next, on warm caches). A wake from outside any poll (the reactor,
	 * timers, block_on's root future) queues at the back: first woken,
	 * first run, so timers run in deadline order. */
	if (remote)
		sp__schedule_remote(t);
	else
		sp__schedule(t, sp__tls.current == NULL);
}

/* The queue submit_wake will put a woken task in (for the WAKE event). */
static inline unsigned local_queue(bool remote)
{
	if (remote)
		return SP_WAKE_Q_INJECT;
	return sp__tls.current ? SP_WAKE_Q_LIFO : SP_WAKE_Q_LOCAL;
}

/* What a submitting wake adds to the state: remote ones count a schedule and
 * take the reference sp__schedule_remote drops. */
static inline uint64_t submit_bits(bool remote, uint64_t s)
{
	SP__ASSERT((s & SP__SCHED_MASK) != SP__SCHED_MASK,
		   "fewer than 63 remote schedules of one task in flight");
	return remote ? SP__SCHED_ONE + SP__REF_ONE : 0;
}

static void count_self_wake(sp__task *t)
{
	if (sp__tls.current == t)
		SP__BUMP(t->self_wakes, 1); /* we hold RUNNING: the only writer */
}

/* The USDT wake and task_done probes, out of line (usdt.h: their operands
 * cost the wake functions a callee-saved register inline). The wake's source
 * kind and detail are derived as trace_wake derives them. */
static void usdt_wake(uint64_t id, bool by_value, bool self,
						      unsigned queue)
{
	uint32_t src = sp__tls.wake_src;
	SP_USDT(wake, id, by_value, self,
		src ? src & 0xff : sp__tls.worker ? SP_WAKE_SRC_TASK : SP_WAKE_SRC_FOREIGN, queue,
		src >> 8);
}
/* A wake's ring record: id, not the task (the caller may have given up its
 * reference already). */
static inline void trace_wake(uint64_t id, bool self, unsigned queue, bool by_value)
{
	struct sp__ring *r = sp__trace_ring();
	if (!r)
		return;
	uint32_t a = (queue << SP_WAKE_Q_SHIFT) | (by_value ? SP_WAKE_BY_VALUE : 0);
	if (self)
		a |= SP_WAKE_SELF;
	uint32_t src = sp__tls.wake_src;
	if (src) {
		a |= (src & 0xff) << SP_WAKE_SRC_SHIFT;
		a |= (src >> 8) << SP_WAKE_DETAIL_SHIFT;
	} else if (!sp__tls.worker) {
		a |= SP_WAKE_SRC_FOREIGN << SP_WAKE_SRC_SHIFT;
	} /* else TASK: the ring's current task (0 outside a poll) */
	sp__ring_emit_at(r, sp__ev_ticks(), SP_EV_WAKE, a, id);
}

/* A waker clone's or drop's ring record, with its holder. */
static inline void trace_waker(sp__task *t, uint32_t type)
{
	struct sp__ring *r = sp__trace_ring();
	if (r)
		sp__ring_emit_at(r, sp__ev_ticks(), type, sp__tls.hold, t->id);
}

/* A wake's ring event (tracing on) and USDT probe (attached), out of line:
 * one call site in the wake functions for both. */
static __attribute__((noinline, cold)) void wake_event(uint64_t id, bool self, unsigned queue,
						       bool by_value)
{
	if (sp__tracing())
		trace_wake(id, self, queue, by_value);
	if (SP_USDT_ENABLED(wake))
		usdt_wake(id, by_value, self, queue);
}

static __attribute__((noinline, cold)) void usdt_task_done(uint64_t id, bool cancelled)
{
	SP_USDT(task_done, id, cancelled);
}

static sp_waker waker_clone(const void *data)
{
	sp__task *t = (sp__task *)data;
	sp__task_ref_inc(t);
	atomic_fetch_add_explicit(&t->waker_clones, 1, memory_order_relaxed);
	if (SP__UNLIKELY(sp__tracing()))
		trace_waker(t, SP_EV_WAKER_CLONE);
	SP_USDT(waker_clone, t->id, sp__tls.hold);
	return (sp_waker){&sp__task_waker_vtable, t};
}

static void waker_drop(const void *data)
{
	sp__task *t = (sp__task *)data;
	atomic_fetch_add_explicit(&t->waker_drops, 1, memory_order_relaxed);
	if (SP__UNLIKELY(sp__tracing()))
		trace_waker(t, SP_EV_WAKER_DROP);
	SP_USDT(waker_drop, t->id, sp__tls.hold);
	sp__task_ref_dec(t);
}

static void waker_wake(const void *data)
{
	sp__task *t = (sp__task *)data;
	atomic_fetch_add_explicit(&t->waker_drops, 1, memory_order_relaxed);
	count_self_wake(t);
	bool remote = sp__is_remote(t);
	uint64_t id = t->id; /* t may be freed once our reference is gone */
	uint64_t s = load_state(t);
	for (;;) {
		SP__ASSERT(REFS(s) > 0, "wake through a dropped waker (task freed)");
		uint64_t n;
		int action;
		if (s & SP__RUNNING) {
			n = (s | SP__NOTIFIED) - SP__REF_ONE; /* the poller requeues */
			action = 0;
		} else if (s & (SP__COMPLETE | SP__NOTIFIED)) {
			n = s - SP__REF_ONE;
			action = REFS(n) == 0 ? 2 : 0;
		} else {
			/* our reference becomes the notification */
			n = (s | SP__NOTIFIED) + submit_bits(remote, s);
			action = 1;
		}
		n += SP__WAKE_ONE;
		if (cas_state(t, &s, n)) {
			if (SP__UNLIKELY(sp__tracing() || SP_USDT_ENABLED(wake)))
				wake_event(id, sp__tls.current == t,
					   action == 1 ? local_queue(remote)
						       : SP_WAKE_Q_NONE,
					   true);
			if (action == 1)
				submit_wake(t, remote);
			else if (action == 2)
				sp__task_dealloc(t);
			return;
		}
	}
}

static void waker_wake_by_ref(const void *data)
{
	sp__task *t = (sp__task *)data;
	if (sp__tls.current == t) {
		/* A task waking itself during its own poll (a yield, a budget
		 * stop): we hold RUNNING, so no CAS is needed now; the end of
		 * the poll notifies it (transition_to_idle). */
		SP__BUMP(t->self_wakes, 1);
		sp__tls.self_notified++;
		/* No ring record: the POLL_END counts it (its source is the
		 * ring's current task, it queues nowhere until the poll ends
		 * and moves no waker; trace_events.h). */
		if (SP_USDT_ENABLED(wake))
			usdt_wake(t->id, false, true, SP_WAKE_Q_NONE);
		return;
	}
	bool remote = sp__is_remote(t);
	uint64_t s = load_state(t);
	for (;;) {
		SP__ASSERT(REFS(s) > 0, "wake through a dropped waker (task freed)");
		uint64_t n = s + SP__WAKE_ONE;
		bool submit = false;
		if (s & SP__RUNNING) {
			n |= SP__NOTIFIED;
		} else if (!(s & (SP__COMPLETE | SP__NOTIFIED))) {
			/* a new notification */
			n = (n | SP__NOTIFIED) + SP__REF_ONE + submit_bits(remote, s);
			submit = true;
		}
		if (cas_state(t, &s, n)) {
			/* our caller's waker keeps t alive here */
			if (SP__UNLIKELY(sp__tracing() || SP_USDT_ENABLED(wake)))
				wake_event(t->id, false,
					   submit ? local_queue(remote)
						  : SP_WAKE_Q_NONE,
					   false);
			if (submit)
				submit_wake(t, remote);
			return;
		}
	}
}

const sp_waker_vtable sp__task_waker_vtable = {
	.clone = waker_clone,
	.wake = waker_wake,
	.wake_by_ref = waker_wake_by_ref,
	.drop = waker_drop,
};

/* ---- completion and cancellation ------------------------------------------ */

/* We hold RUNNING and the future has been dropped. extra_refs: references
 * the caller gives up with it (its notification), dropped in the same RMW as
 * the owned reference. t may be freed on return. */
static void complete(sp__task *t, bool cancelled, unsigned extra_refs)
{
	uint32_t self_wakes = 0;
	if (sp__tls.current == t) {
		self_wakes = sp__tls.self_notified;
		sp__tls.self_notified = 0;
	}
	uint64_t prev = sp__task_transition_to_complete(t, cancelled, self_wakes);
	/* An abort's record (a completion is its POLL_END); the task's table
	 * slot, if it has one, goes back as it leaves its shard (owned.c). */
	if (SP__UNLIKELY(sp__tracing()) && cancelled)
		sp__trace_task_abort(t);
	if (SP_USDT_ENABLED(task_done))
		usdt_task_done(t->id, cancelled);
	if ((prev & SP__JOIN_INTEREST) && (prev & SP__JOIN_WAKER)) {
		uint32_t src = sp__tls.wake_src;
		sp__tls.wake_src = SP_WAKE_SRC_JOIN;
		sp_waker_wake_by_ref(&t->join_waker);
		sp__tls.wake_src = src;
	}
	sp__owned_remove(t, extra_refs); /* drops the owned reference too */
}

void sp__task_cancel(sp__task *t, unsigned extra_refs)
{
	sp_future_drop(sp__task_future(t));
	complete(t, true, extra_refs);
}

/* Cancel for shutdown or abort: if the task is idle, take RUNNING and cancel
 * it here; if it is running or queued, mark it and let the poller or the
 * queue owner cancel it. Returns true if it was cancelled here. */
static bool cancel_or_mark(sp__task *t)
{
	uint64_t s = load_state(t);
	for (;;) {
		if (s & (SP__COMPLETE | SP__CANCELLED))
			return false;
		uint64_t n = s | SP__CANCELLED;
		bool take = !(s & (SP__RUNNING | SP__NOTIFIED));
		if (take)
			n |= SP__RUNNING;
		if (cas_state(t, &s, n)) {
			if (take)
				sp__task_cancel(t, 0);
			return take;
		}
	}
}

void sp__task_drop_queued(sp__task *t)
{
	if (sp__task_owned_shard(t) != SP__UNOWNED) {
		sp__task_ref_dec(t); /* owned_cancel_all dropped its future */
		return;
	}
	/* Never polled, so on no owned shard: nobody else drops its future.
	 * Its spawner may still be between the push and its last access to
	 * the runtime: wait for that (the in-flight count), as owned_cancel_all
	 * waits for remote schedules. Workers are stopped and an abort only
	 * marks a NOTIFIED task, so RUNNING is ours to take. */
	uint64_t s;
	while ((s = load_state(t)) & SP__SCHED_MASK)
		sched_yield();
	for (;;) {
		SP__ASSERT(!(s & (SP__RUNNING | SP__COMPLETE)), "a queued unpolled task is idle");
		if (cas_state(t, &s, s | SP__CANCELLED | SP__RUNNING))
			break;
	}
	sp__task_cancel(t, 1); /* and the queue's notification */
}

void sp__task_shutdown(sp__task *t)
{
	/* Workers are stopped: a queued (NOTIFIED) task will never be popped
	 * again, so take it too; its notification reference is dropped when the
	 * queues are drained. A RUNNING task belongs to a foreign aborter that
	 * completes it. */
	uint64_t s = load_state(t);
	for (;;) {
		if ((s & (SP__COMPLETE | SP__RUNNING)) || (s & SP__SCHED_MASK))
			return; /* owned_cancel_all comes back for it */
		if (cas_state(t, &s, s | SP__CANCELLED | SP__RUNNING)) {
			sp__task_cancel(t, 0);
			return;
		}
	}
}

/* ---- one poll --------------------------------------------------------------- */

#define SP__COOP_BUDGET 128 /* Tokio's number: units per poll for leaf futures */

void sp__task_run(sp__task *t)
{
	sp__worker *w = sp__tls.worker;
	switch (sp__task_transition_to_running(t)) {
	case SP__TR_FAILED:
		sp__task_ref_dec(t); /* a stale notification */
		return;
	case SP__TR_CANCELLED:
		sp__task_cancel(t, 1); /* and the notification */
		return;
	default:
		break;
	}
	/* First poll of a task spawned elsewhere: onto this worker's shard
	 * (refused once shutdown closed it: the task is cancelled instead). */
	if (SP__UNLIKELY(sp__task_owned_shard(t) == SP__UNOWNED) && sp__owned_insert(w->rt, t)) {
		sp__task_cancel(t, 1);
		return;
	}

	sp_future *f = sp__task_future(t);
	sp_waker waker = {&sp__task_waker_vtable, t};
	sp_context cx = {.waker = &waker, .task = t, .budget = SP__COOP_BUDGET};
	uint64_t start = w->now;
	sp_worker_slot *slot = w->slot;

	if (start > t->last_ticks)
		SP__BUMP(t->sched_ticks, start - t->last_ticks);
	if (slot) {
		slot->poll_start = start;
		slot->poll_fn = (uint64_t)(uintptr_t)f->poll;
		slot->name = (uint64_t)(uintptr_t)t->site->name;
		slot->poll_seq++;
		atomic_signal_fence(memory_order_seq_cst); /* task_id last */
		slot->task_id = t->id;
	}
	sp__tls.current = t;
	sp__tls.self_notified = 0;
	if (SP__UNLIKELY(w->ring != NULL))
		sp__ring_emit_at(w->ring, start, SP_EV_POLL_START, w->index, t->id);
	SP_USDT(poll_start, t->id, w->index, f->poll);

	sp_poll r = f->poll(f, &cx);

	uint64_t end = sp__ticks(); /* the one clock read of this poll */
	uint32_t self_notified = sp__tls.self_notified;
	if (SP__UNLIKELY(w->ring != NULL)) {
		uint32_t folded =
			self_notified < SP_POLL_SELF_MAX ? self_notified : SP_POLL_SELF_MAX;
		sp__ring_emit_at(w->ring, end, SP_EV_POLL_END,
				 (uint32_t)(r == SP_READY) |
					 (uint32_t)(cx.budget == 0) << SP_POLL_BUDGET_SHIFT |
					 folded << SP_POLL_SELF_SHIFT,
				 t->id);
	}
	SP_USDT(poll_end, t->id, w->index,
		(r == SP_READY ? SP_POLL_READY : 0) |
			(cx.budget == 0 ? 1u << SP_POLL_BUDGET_SHIFT : 0),
		sp__ticks_to_ns(end - start));
	if (slot)
		slot->task_id = 0;
	SP__BUMP(t->polls, 1);
	SP__BUMP(t->busy_ticks, end - start);
	__atomic_store_n(&t->last_ticks, end, __ATOMIC_RELAXED); /* read by the table writer */
	w->now = end;
	w->batch.polls++;
	w->batch.busy_ticks += end - start;

	if (r == SP_READY) {
		sp_future_drop(f); /* still `current`: its wakes stay self-wakes */
		complete(t, false, 1); /* and the notification */
		sp__tls.current = NULL;
		return;
	}
	sp__tls.self_notified = 0;
	sp__tls.current = NULL;
	switch (sp__task_transition_to_idle(t, self_notified)) {
	case SP__TR_OK:
		sp__task_ref_dec(t);
		break;
	case SP__TR_OK_NOTIFIED:
		/* Woken during its own poll: the notification reference is
		 * reused, and the task goes behind the others (a yield). */
		sp__schedule(t, true);
		break;
	default: /* aborted while running: drop it at this suspension point */
		sp__task_cancel(t, 1);
		break;
	}
}

/* ---- spawn ----------------------------------------------------------------- */

int sp__spawn(sp_runtime *rt, sp_join_handle *jh, const sp_future *fut, size_t size,
	      const sp_spawn_site *site)
{
	if (!fut || !fut->poll || size < sizeof(sp_future) || !site)
		return SP_EINVAL;
	if (!rt) {
		rt = sp__tls.rt;
		if (!rt)
			return SP_ENORUNTIME;
	}
	if (atomic_load_explicit(&rt->shutdown, memory_order_acquire))
		return SP_ESHUTDOWN;
	unsigned cls = sp__alloc_class(size);
	sp__task *t = sp__task_alloc(cls, size);
	if (!t)
		return SP_ENOMEM;
	/* Field by field: a memset of the header compiled to `rep stos`, half
	 * the cost of a spawn (its startup cost dwarfs 128 bytes). */
	t->owned_index = 0;
	t->done_next = NULL;
	atomic_init(&t->waker_clones, 0);
	atomic_init(&t->waker_drops, 0);
	t->join_waker = (sp_waker){0};
	t->polls = t->busy_ticks = t->sched_ticks = t->idle_ticks = 0;
	t->self_wakes = t->budget_yields = 0;
	memcpy(sp__task_future(t), fut, size);
	t->rt = rt;
	t->site = site;
	t->id = sp__runtime_next_task_id();
	t->parent_id = sp__tls.current ? sp__tls.current->id : 0;
	/* The ring first: a thread's first record (its ring's THREAD record)
	 * must not be later than the SPAWN record, which reuses the spawn's
	 * one clock reading: a worker's last, another thread's own. */
	struct sp__ring *r = SP__UNLIKELY(rt->trace) ? sp__trace_ring() : NULL;
	uint64_t now = sp__tls.worker ? sp__tls.worker->now : sp__ticks();
	t->last_ticks = now;
	bool remote = sp__is_remote(t);
	uint64_t s = SP__NOTIFIED | 2 * SP__REF_ONE | (uint64_t)cls << SP__CLASS_SHIFT;
	if (jh)
		s += SP__JOIN_INTEREST + SP__REF_ONE;
	s += submit_bits(remote, s); /* set before the task becomes visible */
	atomic_init(&t->state, s);
	/* SPAWN before the task is visible (its first poll may follow at once
	 * on another worker). Its parent is the ring's current task. */
	if (SP__UNLIKELY(r != NULL))
		sp__ring_emit_at(r, now, SP_EV_SPAWN, sp__trace_site(site), t->id);
	SP_USDT(spawn, t->id, t->parent_id, site->name, site->file, site->line);

	/* A worker's spawn goes on its owned shard now; another thread's waits
	 * for its first poll (owned.c, WHO INSERTS): until then it is queued,
	 * and only a closed injection queue can refuse it. */
	int err = 0;
	if (remote) {
		sp__task_set_owned_seg(t, SP__UNOWNED, SP__NO_SEG_SLOT);
		if (!sp__spawn_remote(t))
			err = SP_ESHUTDOWN;
	} else {
		err = sp__owned_insert(rt, t);
	}
	if (err) {
		if (SP__UNLIKELY(r != NULL))
			sp__trace_task_abort(t); /* its SPAWN record went out */
		SP_USDT(task_done, t->id, 1);
		sp__task_free(t, cls); /* never polled: the caller keeps its future */
		return err;
	}
	/* A remote task may be running already: the join handle's reference
	 * (in the initial state) and the in-flight one keep it alive. */
	if (jh) {
		memset(jh, 0, sizeof(*jh));
		sp__join_handle_init(jh, t);
	}
	if (remote)
		sp__schedule_remote_done(t);
	else
		sp__schedule(t, false);
	return 0;
}

/* ---- join handle ------------------------------------------------------------ */

static void join_release(sp_join_handle *jh, sp__task *t)
{
	jh->task = NULL;
	/* Clear JOIN_INTEREST and drop the handle's reference in one RMW. */
	uint64_t prev = atomic_fetch_sub_explicit(&t->state, SP__JOIN_INTEREST | SP__REF_ONE,
						  memory_order_acq_rel);
	SP__ASSERT(prev & SP__JOIN_INTEREST, "join handle released twice");
	if (REFS(prev) == 1)
		sp__task_dealloc(t);
}

/* Store the awaiting task's waker in the task. false: the task completed
 * meanwhile, read the output instead. */
static bool join_register(sp__task *t, sp_context *cx)
{
	uint64_t s = load_state(t);
	if (s & SP__JOIN_WAKER) {
		if (sp_waker_will_wake(&t->join_waker, cx->waker))
			return true;
		/* Take the old waker back before replacing it. */
		for (;;) {
			if (s & SP__COMPLETE)
				return false;
			if (cas_state(t, &s, s & ~SP__JOIN_WAKER))
				break;
		}
		sp_waker_drop(&t->join_waker);
	}
	t->join_waker = sp__waker_clone_as(cx->waker, SP_HOLD_JOIN);
	for (;;) {
		if (s & SP__COMPLETE) {
			sp_waker_drop(&t->join_waker);
			return false;
		}
		if (cas_state(t, &s, s | SP__JOIN_WAKER))
			return true;
	}
}

static sp_poll join_poll(sp_future *f, sp_context *cx)
{
	sp_join_handle *jh = (sp_join_handle *)f;
	sp__task *t = jh->task;
	if (!t) {
		jh->status = SP_EINVAL; /* awaited after it was consumed */
		return SP_READY;
	}
	uint64_t s = load_state(t);
	if (!(s & SP__COMPLETE)) {
		if (!sp_coop_proceed(cx))
			return SP_PENDING;
		if (join_register(t, cx))
			return SP_PENDING;
		s = load_state(t);
	}
	if (s & SP__CANCELLED) {
		jh->status = SP_ECANCELED;
	} else {
		jh->status = 0;
		if (jh->dst && t->site->out_size)
			memcpy(jh->dst, (char *)sp__task_future(t) + t->site->out_off,
			       t->site->out_size);
	}
	join_release(jh, t);
	return SP_READY;
}

/* Dropped without being awaited to the end: detach. */
static void join_drop(sp_future *f)
{
	sp_join_handle *jh = (sp_join_handle *)f;
	sp__task *t = jh->task;
	if (!t)
		return;
	uint64_t s = load_state(t);
	for (;;) {
		if ((s & SP__COMPLETE) || !(s & SP__JOIN_WAKER))
			break;
		/* Not complete: take the waker back so the completer never reads
		 * it; it is ours to drop once the bit is clear. */
		if (cas_state(t, &s, s & ~SP__JOIN_WAKER)) {
			sp_waker_drop(&t->join_waker);
			break;
		}
	}
	join_release(jh, t);
}

void sp__join_handle_init(sp_join_handle *jh, sp__task *t)
{
	jh->base.poll = join_poll;
	jh->base.drop = join_drop;
	jh->base.name = "join_handle";
	jh->task = t;
	jh->status = 0;
}

void sp_join_handle_detach(sp_join_handle *jh)
{
	sp_future_drop(&jh->base);
}

void sp_join_handle_abort(sp_join_handle *jh)
{
	sp__task *t = jh->task;
	if (!t)
		return;
	if (!cancel_or_mark(t))
		return;
	/* Cancelled here: nothing else to do; a queued or running task is
	 * cancelled by its poller (the CANCELLED bit is seen at its next
	 * transition). */
}

uint64_t sp_join_handle_id(const sp_join_handle *jh)
{
	return jh->task ? ((sp__task *)jh->task)->id : 0;
}

uint64_t sp_task_current_id(void)
{
	return sp__tls.current ? sp__tls.current->id : 0;
}

/* ---- introspection ---------------------------------------------------------- */

void sp__task_info(sp__task *t, sp_task_info *out)
{
	uint64_t s = load_state(t);
	memset(out, 0, sizeof(*out));
	out->id = t->id;
	out->parent_id = t->parent_id;
	out->site = t->site;
	out->state = (uint32_t)(s & SP__FLAGS_MASK);
	uint32_t clones = atomic_load_explicit(&t->waker_clones, memory_order_relaxed);
	uint32_t drops = atomic_load_explicit(&t->waker_drops, memory_order_relaxed);
	out->waker_clones = clones;
	out->waker_drops = drops;
	out->live_wakers = clones - drops;
	out->wakes = s >> SP__WAKE_SHIFT;
	/* The poll-side counters are read racily (no stop-the-world): each is
	 * a single aligned 8-byte load, so values are stale, never torn. */
	out->polls = __atomic_load_n(&t->polls, __ATOMIC_RELAXED);
	out->busy_ns = sp__ticks_to_ns(__atomic_load_n(&t->busy_ticks, __ATOMIC_RELAXED));
	out->scheduled_ns = sp__ticks_to_ns(__atomic_load_n(&t->sched_ticks, __ATOMIC_RELAXED));
	out->idle_ns = sp__ticks_to_ns(__atomic_load_n(&t->idle_ticks, __ATOMIC_RELAXED));
	out->self_wakes = __atomic_load_n(&t->self_wakes, __ATOMIC_RELAXED);
	out->budget_yields = __atomic_load_n(&t->budget_yields, __ATOMIC_RELAXED);
}
