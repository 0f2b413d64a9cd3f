/*
 * queue.h - the per-worker bounded run queue: the owner pushes and pops at
 * its ends, other workers steal half of it.
 *
 * Fields (in sp__worker): buf[cap] ring of task pointers, `tail` written only
 * by the owner, and `head`, which packs two 32-bit indices:
 *
 *   real  - the next task the owner pops; stealers advance it to claim tasks.
 *   steal - equal to real unless a steal is in progress, in which case it is
 *           the start of the range being copied out. Slots in [steal, tail)
 *           belong to the queue: the owner never overwrites them, so a thief
 *           can copy its claimed range [steal, real) after its claiming CAS.
 *
 * Indices are free-running u32 and wrap; the ring index is i & mask.
 *
 * Invariants: tail - steal <= cap; only one steal at a time per queue (a
 * thief that sees steal != real backs off); the owner's pop CAS moves both
 * indices together when no steal is in progress, only `real` otherwise.
 *
 * ORDERING: the owner's release store of tail publishes the slot it wrote; a
 * thief's acquire load of tail makes it visible. The thief's final release
 * CAS (steal = real) happens before the owner's acquire load of head that
 * lets it reuse those slots. The buffer slots are relaxed atomics: they are
 * ordered by head/tail, and relaxed keeps ThreadSanitizer informed at no cost.
 */
#ifndef SP_QUEUE_H
#define SP_QUEUE_H

#include "internal.h"

static inline uint32_t q_steal(uint64_t head)
{
	return (uint32_t)(head >> 32);
}
static inline uint32_t q_real(uint64_t head)
{
	return (uint32_t)head;
}
static inline uint64_t q_pack(uint32_t steal, uint32_t real)
{
	return ((uint64_t)steal << 32) | real;
}

static inline void q_slot_store(sp__worker *w, uint32_t i, sp__task *t)
{
	__atomic_store_n(&w->buf[i & w->mask], t, __ATOMIC_RELAXED);
}
static inline sp__task *q_slot_load(sp__worker *w, uint32_t i)
{
	return __atomic_load_n(&w->buf[i & w->mask], __ATOMIC_RELAXED);
}

/* Number of tasks in the queue (approximate for non-owners). */
static inline uint32_t q_len(sp__worker *w)
{
	uint64_t head = atomic_load_explicit(&w->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&w->tail, memory_order_acquire);
	return tail - q_real(head);
}

static inline bool q_is_empty(sp__worker *w)
{
	return q_len(w) == 0;
}

/* Owner: pop from the head. */
static inline sp__task *q_pop(sp__worker *w)
{
	uint64_t head = atomic_load_explicit(&w->head, memory_order_acquire);
	for (;;) {
		uint32_t steal = q_steal(head), real = q_real(head);
		/* ordering: tail is our own store; relaxed is enough. */
		if (real == atomic_load_explicit(&w->tail, memory_order_relaxed))
			return NULL;
		uint32_t next_real = real + 1;
		uint64_t next = steal == real ? q_pack(next_real, next_real) : q_pack(steal, next_real);
		if (atomic_compare_exchange_weak_explicit(&w->head, &head, next,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return q_slot_load(w, real);
	}
}

/*
 * Owner: push to the tail. Returns false when the queue is full; then the
 * caller moves half of it to the injection queue (q_take_half) or, if a steal
 * is in progress (q_take_half fails), sends just this task there.
 */
static inline bool q_push(sp__worker *w, sp__task *t)
{
	uint64_t head = atomic_load_explicit(&w->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
	if (tail - q_steal(head) > w->mask)
		return false;
	q_slot_store(w, tail, t);
	atomic_store_explicit(&w->tail, tail + 1, memory_order_release);
	return true;
}

/* Owner, on overflow: claim the oldest half of a full queue into out[] (the
 * half stealers would take next anyway). Returns the count, 0 if a steal is
 * in progress or the queue changed under us. */
static inline uint32_t q_take_half(sp__worker *w, sp__task **out)
{
	uint32_t half = (w->mask + 1) / 2;
	uint64_t head = atomic_load_explicit(&w->head, memory_order_acquire);
	uint32_t steal = q_steal(head), real = q_real(head);
	uint32_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
	if (steal != real || tail - real < half)
		return 0;
	uint64_t next = q_pack(real + half, real + half);
	if (!atomic_compare_exchange_strong_explicit(&w->head, &head, next, memory_order_acq_rel,
						     memory_order_acquire))
		return 0;
	for (uint32_t i = 0; i < half; i++)
		out[i] = q_slot_load(w, real + i);
	return half;
}

/*
 * Thief: move about half of victim's tasks into dst (the thief's own queue,
 * which must be empty). Returns one stolen task to run now (not pushed), or
 * NULL. *count receives the number stolen.
 */
static inline sp__task *q_steal_into(sp__worker *victim, sp__worker *dst, uint32_t *count)
{
	*count = 0;
	uint64_t head = atomic_load_explicit(&victim->head, memory_order_acquire);
	uint32_t first, n;
	for (;;) {
		uint32_t steal = q_steal(head), real = q_real(head);
		if (steal != real)
			return NULL; /* another thief is at work */
		uint32_t tail = atomic_load_explicit(&victim->tail, memory_order_acquire);
		n = tail - real;
		n -= n / 2;
		if (n == 0)
			return NULL;
		/* Room in dst: a thief of dst may still be copying its claimed
		 * range [steal, real) out of dst's ring. */
		uint64_t dhead = atomic_load_explicit(&dst->head, memory_order_acquire);
		uint32_t dused = atomic_load_explicit(&dst->tail, memory_order_relaxed) -
				 q_steal(dhead);
		uint32_t room = dst->mask + 1 - dused;
		if (n > room)
			n = room;
		if (n == 0)
			return NULL;
		uint64_t next = q_pack(steal, real + n);
		if (atomic_compare_exchange_weak_explicit(&victim->head, &head, next,
							  memory_order_acq_rel,
							  memory_order_acquire)) {
			first = real;
			break;
		}
	}
	/* Copy [first, first+n) out; the owner will not overwrite these slots
	 * until the steal index moves past them below. */
	uint32_t dtail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
	for (uint32_t i = 0; i + 1 < n; i++)
		q_slot_store(dst, dtail + i, q_slot_load(victim, first + i));
	sp__task *ret = q_slot_load(victim, first + n - 1);

	/* Release the claim: steal catches up with real. */
	head = atomic_load_explicit(&victim->head, memory_order_acquire);
	for (;;) {
		uint64_t next = q_pack(q_real(head), q_real(head));
		if (atomic_compare_exchange_weak_explicit(&victim->head, &head, next,
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	if (n > 1)
		atomic_store_explicit(&dst->tail, dtail + n - 1, memory_order_release);
	*count = n;
	return ret;
}

#endif /* SP_QUEUE_H */
