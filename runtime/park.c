/*
 * park.c - a one-token parker on a futex.
 *
 * States: EMPTY (0), PARKED (1), NOTIFIED (2). unpark() stores NOTIFIED and
 * wakes the futex only if the parker was PARKED; park() consumes a NOTIFIED
 * token without sleeping. Spurious futex returns loop. The token makes the
 * usual race benign: an unpark that lands between a worker's last look at the
 * queues and its futex wait is not lost.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

enum { EMPTY = 0, PARKED = 1, NOTIFIED = 2 };

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void sp__park(sp__parker *p)
{
	/* ordering: acquire on consuming the token pairs with unpark's release,
	 * so what the unparker wrote before unpark is visible after park. */
	uint32_t expect = NOTIFIED;
	if (atomic_compare_exchange_strong_explicit(&p->state, &expect, EMPTY,
						    memory_order_acquire, memory_order_relaxed))
		return;
	expect = EMPTY;
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect, PARKED,
						     memory_order_acquire, memory_order_relaxed)) {
		/* Only NOTIFIED can be there: take it. */
		atomic_store_explicit(&p->state, EMPTY, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		return;
	}
	for (;;) {
		futex_wait(&p->state, PARKED);
		expect = NOTIFIED;
		if (atomic_compare_exchange_strong_explicit(&p->state, &expect, EMPTY,
							    memory_order_acquire,
							    memory_order_relaxed))
			return;
		/* spurious wakeup: still PARKED */
	}
}

void sp__unpark(sp__parker *p)
{
	/* ordering: release publishes the unparker's writes to the parker. */
	uint32_t prev = atomic_exchange_explicit(&p->state, NOTIFIED, memory_order_release);
	if (prev == PARKED)
		futex_wake(&p->state);
}
