/*
 * park.c - a one-token parker: a worker sleeps on its futex, or, when it
 * holds the driver, in epoll_wait.
 *
 * States: EMPTY, PARKED (futex), PARKED_DRIVER (in the driver's epoll_wait),
 * NOTIFIED. unpark() stores NOTIFIED and then wakes the sleeper the way it
 * sleeps: a futex wake, or a write to the driver's eventfd. park() consumes a
 * NOTIFIED token without sleeping. Spurious returns loop (futex) or return
 * (driver: the caller re-checks its queues anyway). The token makes the usual
 * race benign: an unpark that lands between a worker's last look at the
 * queues and its sleep is not lost. (Tokio's park.rs has the same states.)
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum { EMPTY = 0, PARKED = 1, NOTIFIED = 2, PARKED_DRIVER = 3 };

/* mark: SP__PARK_MARK or 0, in uaddr2, which FUTEX_WAIT ignores (see
 * internal.h: what the tracer makes of it). */
static void futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *rel,
		       uint64_t mark)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, rel, mark, 0);
}

/* A wake made outside any poll carries the park mark in uaddr2 too (FUTEX_WAKE
 * ignores it): a worker preempted as it returns from the wake, which is
 * when a woken thread most often takes its CPU, is skipped by the tracer at
 * its register check. Inside a poll (this thread's slot shows a task; only
 * this thread writes it) the wake is unmarked and the tracer accounts it. */
static void futex_wake(_Atomic uint32_t *addr)
{
	const sp__worker *w = sp__tls.worker;
	uint64_t mark = w && w->slot && w->slot->task_id ? 0 : SP__PARK_MARK;
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, mark, 0);
}

/* Take a pending token; true if there was one. */
static bool take_token(sp__parker *p)
{
	/* ordering: acquire on consuming the token pairs with unpark's release,
	 * so what the unparker wrote before unpark is visible after park. */
	uint32_t expect = NOTIFIED;
	return atomic_compare_exchange_strong_explicit(&p->state, &expect, EMPTY,
						       memory_order_acquire, memory_order_relaxed);
}

void sp__park(sp__parker *p)
{
	if (take_token(p))
		return;
	uint32_t expect = EMPTY;
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, PARKED,
						     memory_order_acquire, memory_order_relaxed)) {
		take_token(p); /* only NOTIFIED can be there */
		return;
	}
	for (;;) {
		futex_wait(&p->state, PARKED, NULL, p->mark);
		if (take_token(p))
			return;
		/* spurious wakeup: still PARKED */
	}
}

/* One timed wait: a timeout, an unpark or a spurious return all end it (the
 * caller re-checks its queues and timers). Leaving PARKED -> EMPTY by CAS, so
 * an unpark that raced the timeout leaves its token, taken here. */
void sp__park_timeout(sp__parker *p, int64_t timeout_ns)
{
	if (take_token(p))
		return;
	if (timeout_ns <= 0)
		return;
	uint32_t expect = EMPTY;
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, PARKED,
						     memory_order_acquire, memory_order_relaxed)) {
		take_token(p);
		return;
	}
	struct timespec rel = {.tv_sec = timeout_ns / 1000000000,
			       .tv_nsec = timeout_ns % 1000000000};
	futex_wait(&p->state, PARKED, &rel, p->mark);
	expect = PARKED;
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, EMPTY,
						     memory_order_acquire, memory_order_relaxed))
		take_token(p);
}

void sp__park_driver(sp__parker *p, sp_runtime *rt, int64_t timeout_ns)
{
	if (take_token(p))
		return;
	uint32_t expect = EMPTY;
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, PARKED_DRIVER,
						     memory_order_acquire, memory_order_relaxed)) {
		take_token(p);
		return;
	}
	sp__driver_turn(rt, timeout_ns);
	/* Back to EMPTY, or take the token an unpark left meanwhile. */
	expect = PARKED_DRIVER;
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, EMPTY,
						     memory_order_acquire, memory_order_relaxed))
		take_token(p);
}

void sp__unpark(sp__parker *p)
{
	/* ordering: release publishes the unparker's writes to the parker. */
	uint32_t prev = atomic_exchange_explicit(&p->state, NOTIFIED, memory_order_release);
	if (prev == PARKED)
		futex_wake(&p->state);
	else if (prev == PARKED_DRIVER)
		sp__driver_unpark(p->rt);
}
