/*
 * trace_ring.c - the event ring's setup and reader (trace_ring.h has the
 * format and the protocols; the producer is inline there).
 */
#include "trace_ring.h"

#include <string.h>

#define SP__RING_MAX_CAPACITY ((uint32_t)1 << 26)

static int ring_capacity_ok(uint32_t capacity)
{
	return capacity >= 2 && capacity <= SP__RING_MAX_CAPACITY &&
	       (capacity & (capacity - 1)) == 0;
}

size_t sp__ring_bytes(uint32_t capacity)
{
	if (!ring_capacity_ok(capacity))
		return 0;
	return SP__RING_HEADER_SIZE + (size_t)capacity * SP__RING_RECORD_SIZE;
}

static sp__ring *ring_format(void *mem, size_t size, uint32_t capacity, bool zeroed)
{
	size_t need = sp__ring_bytes(capacity);

	if (!mem || need == 0 || size < need || ((uintptr_t)mem & (SP__CACHELINE - 1)))
		return NULL;
	/* Nobody reads the memory yet: plain stores, published to readers by
	 * whatever makes the ring known to them (the segment's own release). */
	if (!zeroed)
		memset(mem, 0, need);
	else
		memset(mem, 0, SP__RING_HEADER_SIZE);
	sp__ring *r = mem;
	r->magic = SP__RING_MAGIC;
	r->version_major = SP__RING_VERSION_MAJOR;
	r->version_minor = SP__RING_VERSION_MINOR;
	r->header_size = SP__RING_HEADER_SIZE;
	r->record_size = SP__RING_RECORD_SIZE;
	r->capacity = capacity;
	/* ordering: relaxed: see above, the ring is not shared yet. */
	atomic_store_explicit(&r->head, 0, memory_order_relaxed);
	return r;
}

sp__ring *sp__ring_init(void *mem, size_t size, uint32_t capacity)
{
	return ring_format(mem, size, capacity, false);
}

sp__ring *sp__ring_init_zeroed(void *mem, size_t size, uint32_t capacity)
{
	return ring_format(mem, size, capacity, true);
}

sp__ring *sp__ring_attach(void *mem, size_t size)
{
	sp__ring *r = mem;

	if (!mem || size < SP__RING_HEADER_SIZE || ((uintptr_t)mem & (SP__CACHELINE - 1)))
		return NULL;
	if (r->magic != SP__RING_MAGIC || r->version_major != SP__RING_VERSION_MAJOR ||
	    r->header_size != SP__RING_HEADER_SIZE || r->record_size != SP__RING_RECORD_SIZE)
		return NULL;
	if (sp__ring_bytes(r->capacity) == 0 || size < sp__ring_bytes(r->capacity))
		return NULL;
	return r;
}

size_t sp__ring_read(sp__ring *r, uint64_t *cursor, sp__ring_event *out, size_t max, uint64_t *lost)
{
	const uint64_t cap = r->capacity;
	const uint64_t mask = cap - 1;
	sp__ring_slot *slots = sp__ring_slots(r);
	uint64_t n = *cursor ? *cursor : 1;
	uint64_t skipped = 0;
	size_t got = 0;
	/* ordering: acquire pairs with the release store of head in emit:
	 * every slot.seq = m for m <= head is visible below. */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	/* A ring from another process may be hostile: a head of UINT64_MAX
	 * would wrap the cursor to 0 and loop forever (found by fuzzing), and
	 * no call does more than max + capacity steps whatever the slots say. */
	if (head == UINT64_MAX)
		return 0;
	for (uint64_t steps = 0; got < max && steps <= max + cap; steps++) {
		if (n > head) {
			/* ordering: acquire, as above. */
			head = atomic_load_explicit(&r->head, memory_order_acquire);
			if (n > head || head == UINT64_MAX)
				break;
		}
		if (head - n >= cap) {
			/* records n .. head - cap were overwritten */
			uint64_t oldest = head - cap + 1;
			skipped += oldest - n;
			n = oldest;
		}
		sp__ring_slot *s = &slots[n & mask];
		/* ordering: acquire pairs with the release store seq = n in
		 * emit: the payload loads below see at least record n. */
		uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (s1 == n) {
			sp__ring_event ev;
			ev.seq = n;
			/* ordering: acquire pairs with emit's release payload
			 * stores: if one of these loads saw a later record's
			 * store, the producer's seq = 0 before that store is
			 * visible to the s2 load below (which cannot move above
			 * these loads). */
			ev.ts = atomic_load_explicit(&s->ts, memory_order_acquire);
			ev.type = atomic_load_explicit(&s->type, memory_order_acquire);
			ev.a = atomic_load_explicit(&s->a, memory_order_acquire);
			ev.b = atomic_load_explicit(&s->b, memory_order_acquire);
			/* ordering: relaxed: ordered after the acquire loads. */
			uint64_t s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
			if (s2 == n) {
				out[got++] = ev;
				n++;
				continue;
			}
		} else if (s1 != 0 && s1 < n) {
			/* Impossible with a well-behaved producer (see the
			 * header); stop rather than loop on a broken ring. */
			break;
		}
		/* s1 == 0, s1 > n, or a torn copy: record n was overwritten. */
		skipped++;
		n++;
		/* ordering: acquire, as above; may allow a longer jump. */
		head = atomic_load_explicit(&r->head, memory_order_acquire);
		if (head == UINT64_MAX)
			break;
	}
	*cursor = n;
	*lost += skipped;
	return got;
}
