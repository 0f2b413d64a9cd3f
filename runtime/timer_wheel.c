/*
 * timer_wheel.c - the hierarchical timing wheel (timer_wheel.h states the
 * levels, the placement rule, the invariants I1-I4 and the boundaries).
 *
 * Slot lists are circular and doubly linked: slots[s] is the oldest entry,
 * slots[s]->prev the newest. Push at the tail, pop at the head, unlink any
 * entry in O(1) from its own (level, slot) fields. An entry is unlinked
 * before fire runs, so fire sees it unqueued and may re-insert it.
 *
 * Firing (level 0) pops entries from the live slot one at a time instead of
 * detaching the whole list: fire may remove other entries of the same slot,
 * and no insert can land there (its only deadline is elapsed, which insert
 * refuses; elapsed + 64 is far). Cascading (level > 0) runs no callback, so
 * it detaches the list and places each entry again, newest first, at the
 * head of its new slot: an entry of the top level whose deadline is still a
 * turn or more away lands back in the slot being cascaded.
 *
 * Entries live in the caller's (task) memory, so walking a slot list misses
 * the cache at every entry. No software prefetch of the next entry: in the
 * firing loop, unlinking e stores to e->next at once, which fetches that line
 * as early as a prefetch would; in neither loop did one measurably help
 * (bench/wheel_bench.c).
 */
#include "timer_wheel.h"

#include "internal.h"

#define SLOT_MASK ((uint64_t)SP__WHEEL_SLOTS - 1)
#define TOP (SP__WHEEL_LEVELS - 1)

static inline unsigned level_shift(unsigned level)
{
	return level * SP__WHEEL_SLOT_BITS;
}

static inline unsigned digit(uint64_t t, unsigned level)
{
	return (unsigned)((t >> level_shift(level)) & SLOT_MASK);
}

static inline uint64_t rotr64(uint64_t x, unsigned n)
{
	n &= 63;
	return (x >> n) | (x << ((64 - n) & 63));
}

static void slot_push(sp__timer_wheel *w, sp__timer_entry *e, unsigned level, unsigned slot)
{
	sp__timer_level *lv = &w->levels[level];
	sp__timer_entry *head = lv->slots[slot];

	if (!head) {
		e->prev = e->next = e;
		lv->slots[slot] = e;
		lv->occupied |= (uint64_t)1 << slot;
	} else {
		sp__timer_entry *tail = head->prev;
		e->prev = tail;
		e->next = head;
		tail->next = e;
		head->prev = e;
	}
	e->level = (uint8_t)level;
	e->slot = (uint8_t)slot;
	e->queued = 1;
}

static void slot_unlink(sp__timer_wheel *w, sp__timer_entry *e)
{
	sp__timer_level *lv = &w->levels[e->level];

	if (e->next == e) {
		lv->slots[e->slot] = NULL;
		lv->occupied &= ~((uint64_t)1 << e->slot);
	} else {
		e->prev->next = e->next;
		e->next->prev = e->prev;
		if (lv->slots[e->slot] == e)
			lv->slots[e->slot] = e->next;
	}
	e->prev = e->next = NULL;
	e->queued = 0;
}

/*
 * Link e (deadline >= elapsed) where the placement rule says: near (less than
 * 64 ms ahead), level 0 at the deadline's digit 0; far, the level is the
 * highest digit in which deadline and elapsed differ (>= 1, as they differ by
 * 64 or more), capped at the top level, and the slot is the deadline's digit
 * at that level. At the tail of the slot, or at its head when front (a
 * cascade, whose entries come newest first and were inserted before the
 * level-0 entries of their deadline).
 */
static inline void place(sp__timer_wheel *w, sp__timer_entry *e, bool front)
{
	uint64_t d = e->deadline;
	unsigned level = 0;

	if (d - w->elapsed >= SP__WHEEL_SLOTS) {
		unsigned msb = 63u - (unsigned)__builtin_clzll(d ^ w->elapsed);
		level = msb / SP__WHEEL_SLOT_BITS;
		if (level > TOP)
			level = TOP;
	}
	unsigned slot = digit(d, level);
	slot_push(w, e, level, slot);
	if (front)
		w->levels[level].slots[slot] = e;
}

/* The earliest due time (I3, I4): the first occupied slot of level 0 in
 * rotation order from pos_0, or that of the lowest non-empty level >= 1, from
 * pos_L below the top level and from pos_5 + 1 at the top (slot pos_5 is a
 * full turn ahead there), whichever is earlier; the level >= 1 slot on a tie.
 * False when the wheel is empty. */
static bool next_due(const sp__timer_wheel *w, unsigned *level_out, unsigned *slot_out,
		     uint64_t *due_out)
{
	bool found = false;

	for (unsigned level = 1; level < SP__WHEEL_LEVELS; level++) {
		uint64_t occ = w->levels[level].occupied;
		if (!occ)
			continue;
		unsigned shift = level_shift(level);
		unsigned pos = digit(w->elapsed, level);
		unsigned from = level == TOP; /* first slot index in rotation order */
		unsigned idx = from + (unsigned)__builtin_ctzll(rotr64(occ, pos + from));
		*level_out = level;
		*slot_out = (pos + idx) & SLOT_MASK;
		*due_out = ((w->elapsed >> shift) << shift) + ((uint64_t)idx << shift);
		found = true;
		break;
	}
	uint64_t occ0 = w->levels[0].occupied;
	if (occ0) {
		unsigned pos = digit(w->elapsed, 0);
		unsigned idx = (unsigned)__builtin_ctzll(rotr64(occ0, pos));
		uint64_t due = w->elapsed + idx;
		if (!found || due < *due_out) {
			*level_out = 0;
			*slot_out = (pos + idx) & SLOT_MASK;
			*due_out = due;
			found = true;
		}
	}
	return found;
}

void sp__wheel_init(sp__timer_wheel *w, uint64_t now_ms)
{
	SP__ASSERT(now_ms <= SP__WHEEL_TIME_MAX, "timer wheel: time beyond SP__WHEEL_TIME_MAX");
	w->elapsed = now_ms;
	w->len = 0;
	w->advancing = 0;
	for (unsigned level = 0; level < SP__WHEEL_LEVELS; level++) {
		w->levels[level].occupied = 0;
		for (unsigned s = 0; s < SP__WHEEL_SLOTS; s++)
			w->levels[level].slots[s] = NULL;
	}
}

int sp__wheel_insert(sp__timer_wheel *w, sp__timer_entry *e, uint64_t deadline_ms)
{
	if (e->queued)
		sp__wheel_remove(w, e);
	e->deadline = deadline_ms;
	if (deadline_ms <= w->elapsed)
		return SP_ETIMEDOUT;
	place(w, e, false);
	w->len++;
	return 0;
}

void sp__wheel_remove(sp__timer_wheel *w, sp__timer_entry *e)
{
	if (!e->queued)
		return;
	slot_unlink(w, e);
	w->len--;
}

uint64_t sp__wheel_next_expiration(const sp__timer_wheel *w)
{
	unsigned level, slot;
	uint64_t due;

	return next_due(w, &level, &slot, &due) ? due : UINT64_MAX;
}

size_t sp__wheel_advance(sp__timer_wheel *w, uint64_t now_ms,
			 void (*fire)(sp__timer_entry *e, void *arg), void *arg)
{
	return sp__wheel_advance_max(w, now_ms, fire, arg, SIZE_MAX);
}

size_t sp__wheel_advance_max(sp__timer_wheel *w, uint64_t now_ms,
			     void (*fire)(sp__timer_entry *e, void *arg), void *arg, size_t max)
{
	unsigned level, slot;
	uint64_t due;
	size_t fired = 0;

	SP__ASSERT(now_ms <= SP__WHEEL_TIME_MAX, "timer wheel: time beyond SP__WHEEL_TIME_MAX");
	SP__ASSERT(!w->advancing, "timer wheel: sp__wheel_advance called from fire");
	/* == elapsed: a limited advance may have left due entries behind. */
	if (now_ms < w->elapsed || max == 0)
		return 0;
	w->advancing = 1;
	while (next_due(w, &level, &slot, &due) && due <= now_ms) {
		SP__ASSERT(due >= w->elapsed, "timer wheel: a slot came due in the past");
		w->elapsed = due;
		sp__timer_level *lv = &w->levels[level];
		sp__timer_entry *e;
		SP__ASSERT(lv->slots[slot], "timer wheel: occupied bit of an empty slot");
		if (level == 0) {
			while ((e = lv->slots[slot]) != NULL) {
				SP__ASSERT(e->deadline == due,
					   "timer wheel: level-0 entry off its slot");
				if (fired == max) {
					/* Stop here, elapsed == due: the rest of
					 * the slot is first next time (I2'). */
					w->advancing = 0;
					return fired;
				}
				slot_unlink(w, e);
				w->len--;
				fired++;
				fire(e, arg);
			}
		} else {
			/* Detach the list first: at the top level an entry
			 * still a turn or more away goes back to this slot.
			 * Newest first, each to the head of its new slot. */
			sp__timer_entry *head = lv->slots[slot];
			lv->slots[slot] = NULL;
			lv->occupied &= ~((uint64_t)1 << slot);
			e = head->prev;
			for (;;) {
				sp__timer_entry *prev = e->prev;
				place(w, e, true);
				if (e == head)
					break;
				e = prev;
			}
		}
	}
	w->elapsed = now_ms;
	w->advancing = 0;
	return fired;
}
