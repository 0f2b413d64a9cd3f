/*
 * idle.c - coordinates idle workers: who is searching for work, who is
 * parked, and which one to wake.
 *
 * `state` packs num_unparked (high 16 bits) and num_searching (low 16 bits)
 * in one atomic so that both change together. The sleepers stack is under
 * `lock`.
 *
 * THE NO-LOST-WAKEUP ARGUMENT. A producer (spawn, wake, overflow) first makes
 * the task visible in a queue, then calls sp__idle_worker_to_notify(), which
 * issues a SeqCst fence and reads `state`. It wakes nobody when some worker
 * is searching (that searcher will find the task, or, being the last searcher
 * to give up, re-checks every queue after its SeqCst decrement in
 * transition_worker_to_parked) or when every worker is unparked (each of them
 * looks at the queues again before it can park: it must first try to become
 * a searcher, and if that fails there is a searcher, see above). Otherwise it
 * takes one sleeper, counts it as unparked and searching, and unparks it. So
 * a queued task always has an awake worker heading for it, and a wake never
 * rouses more than one worker (a woken worker that finds work wakes the next
 * one only if it was the last searcher: the wake-up chain of Tokio and Go).
 */
#include <stdlib.h>

#include "internal.h"

#define UNPARK_ONE ((uint32_t)1 << 16)
#define SEARCH_ONE ((uint32_t)1)
#define SEARCHING(s) ((s)&0xffffu)
#define UNPARKED(s) ((s) >> 16)

int sp__idle_init(sp__idle *idle, uint32_t n)
{
	idle->num_workers = n;
	atomic_init(&idle->state, n * UNPARK_ONE);
	idle->sleepers = calloc(n, sizeof(*idle->sleepers));
	idle->is_sleeping = calloc(n, sizeof(*idle->is_sleeping));
	if (!idle->sleepers || !idle->is_sleeping) {
		free(idle->sleepers);
		free(idle->is_sleeping);
		return SP_ENOMEM;
	}
	idle->nsleepers = 0;
	pthread_mutex_init(&idle->lock, NULL);
	return 0;
}

void sp__idle_destroy(sp__idle *idle)
{
	pthread_mutex_destroy(&idle->lock);
	free(idle->sleepers);
	free(idle->is_sleeping);
}

static bool should_wake(sp__idle *idle)
{
	uint32_t s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	return SEARCHING(s) == 0 && UNPARKED(s) < idle->num_workers;
}

int sp__idle_worker_to_notify(sp__idle *idle)
{
	/* ordering: the fence orders the caller's queue push before the state
	 * load, against the parker's SeqCst decrement and queue re-check. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!should_wake(idle))
		return -1;
	pthread_mutex_lock(&idle->lock);
	if (!should_wake(idle) || idle->nsleepers == 0) {
		pthread_mutex_unlock(&idle->lock);
		return -1;
	}
	/* The woken worker starts out searching. */
	atomic_fetch_add_explicit(&idle->state, UNPARK_ONE | SEARCH_ONE, memory_order_seq_cst);
	uint32_t index = idle->sleepers[--idle->nsleepers];
	idle->is_sleeping[index] = false;
	pthread_mutex_unlock(&idle->lock);
	return (int)index;
}

bool sp__idle_transition_worker_to_parked(sp__idle *idle, uint32_t index, bool searching)
{
	pthread_mutex_lock(&idle->lock);
	uint32_t dec = UNPARK_ONE | (searching ? SEARCH_ONE : 0);
	uint32_t prev = atomic_fetch_sub_explicit(&idle->state, dec, memory_order_seq_cst);
	idle->sleepers[idle->nsleepers++] = index;
	idle->is_sleeping[index] = true;
	pthread_mutex_unlock(&idle->lock);
	return searching && SEARCHING(prev) == 1;
}

bool sp__idle_transition_worker_to_searching(sp__idle *idle)
{
	/* Limit searchers to half the workers, as Tokio does: more would only
	 * contend on the same victims. */
	uint32_t s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	if (2 * SEARCHING(s) >= idle->num_workers)
		return false;
	atomic_fetch_add_explicit(&idle->state, SEARCH_ONE, memory_order_seq_cst);
	return true;
}

bool sp__idle_transition_worker_from_searching(sp__idle *idle)
{
	uint32_t prev = atomic_fetch_sub_explicit(&idle->state, SEARCH_ONE, memory_order_seq_cst);
	return SEARCHING(prev) == 1;
}

bool sp__idle_is_parked(sp__idle *idle, uint32_t index)
{
	pthread_mutex_lock(&idle->lock);
	bool r = idle->is_sleeping[index];
	pthread_mutex_unlock(&idle->lock);
	return r;
}

bool sp__idle_unpark_worker_by_id(sp__idle *idle, uint32_t index)
{
	pthread_mutex_lock(&idle->lock);
	bool was = idle->is_sleeping[index];
	if (was) {
		for (uint32_t i = 0; i < idle->nsleepers; i++) {
			if (idle->sleepers[i] == index) {
				idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
				break;
			}
		}
		idle->is_sleeping[index] = false;
		atomic_fetch_add_explicit(&idle->state, UNPARK_ONE, memory_order_seq_cst);
	}
	pthread_mutex_unlock(&idle->lock);
	return was;
}
