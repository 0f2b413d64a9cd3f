/*
 * timer_wheel.h - a hierarchical timing wheel: 1 ms resolution, 6 levels of
 * 64 slots, O(1) insert and cancel, the next expiration found without
 * scanning slots.
 *
 * THREADING AND MEMORY. Single-threaded: the caller serialises every call
 * (the driver holds its lock). The wheel never allocates: a timer is an
 * sp__timer_entry embedded in the caller's structure, linked into one slot's
 * intrusive doubly-linked list. An entry must be zeroed (or passed to
 * sp__timer_entry_init) before its first use, must belong to one wheel at a
 * time, and its memory must stay valid while it is queued.
 *
 * TIME. All times are absolute milliseconds on the caller's clock. `elapsed`
 * is the time processed so far: every entry whose deadline is <= elapsed has
 * been fired (or was refused by insert). elapsed only moves forward, and
 * must stay <= SP__WHEEL_TIME_MAX (2^64 - 2^36 ms, some 5.8e8 years; checked).
 * Deadlines may be any value, UINT64_MAX included.
 *
 * LEVELS. Write a time t in base 64: digit L of t is (t >> 6L) & 63. Level L
 * has 64 slots of width 64^L ms, one per value of digit L:
 *
 *   level  slot width            level span (64 slots)
 *   0      1 ms                  64 ms
 *   1      64 ms                 4.096 s
 *   2      4.096 s               262.144 s      (~4.4 min)
 *   3      262.144 s             16777.216 s    (~4.66 h)
 *   4      16777.216 s (~4.66 h) 1073741.824 s  (~12.4 days)
 *   5      ~12.4 days            2^36 ms        (~795 days, ~2.18 years)
 *
 * Let pos_L be digit L of elapsed and base_L be elapsed rounded down to a
 * multiple of 64^L. The DUE TIME of slot s of level L is
 *
 *   due(L, s) = base_L + k * 64^L,  k = (s - pos_L) mod 64         (L < 5)
 *                                   k = (s - pos_L - 1) mod 64 + 1 (L = 5)
 *
 * the first time >= base_L (> base_5 at the top) whose digit L is s and whose
 * lower digits are 0. At the top, slot pos_5 is thus a full turn (2^36 ms)
 * ahead, not due now.
 *
 * PLACEMENT. An entry with deadline d (d >= elapsed) goes to level L = the
 * highest digit in which d and elapsed differ (0 when they differ at most in
 * digit 0; 5 when they differ in digit 5 or above), slot = digit L of d.
 *   - Below level 5 the entry's higher digits equal elapsed's and its digit L
 *     is > pos_L: the slot's due time is d rounded down to 64^L.
 *   - At level 5, IN RANGE ((d >> 30) - (elapsed >> 30) < 64, which includes
 *     deadlines across the next 2^36 ms boundary): the slot's due time is d
 *     rounded down to 2^30.
 *   - At level 5, BEYOND RANGE (further): the slot's due time is earlier than
 *     d by whole turns. When it comes due the entry is placed again against
 *     the new elapsed: it is then at pos_5 itself, the last slot in rotation
 *     order, one full turn ahead; so it is re-cascaded once per 2^36 ms
 *     (~2.18 years) until its deadline is in range.
 * The placement depends only on d and on which slots have come due, so
 * entries with equal deadlines always share one slot, in insertion order.
 *
 * INVARIANTS (between calls):
 *   I1  e->queued == 1 iff e is in the list levels[e->level].slots[e->slot];
 *       bit s of levels[L].occupied is set iff slots[s] is non-empty;
 *       len == the number of queued entries.
 *   I2  every queued entry has deadline > elapsed.
 *   I2' except after sp__wheel_advance_max stopped at its limit: then the
 *       level-0 slot pos_0 may still hold entries with deadline == elapsed
 *       (the rest of the slot it was firing). They are due: next_expiration
 *       returns elapsed, the next advance fires them first, and an insert at
 *       deadline == elapsed is refused (due) as always.
 *   I3  an entry of level L < 5 agrees with elapsed in every digit above L,
 *       and its digit L is > pos_L. Hence the due time of its slot is <= its
 *       deadline and earlier than every due time of levels above L.
 *   I4  every due time of level 5 is >= base_5 + 2^30, so later than every
 *       due time of the lower levels; the due time of an entry's slot is <= its
 *       deadline (== its deadline rounded down to 2^30 in range, whole turns
 *       earlier beyond range).
 *   So the earliest due time of the whole wheel is in the lowest non-empty
 *   level, found from that level's `occupied` bitmap rotated right by pos_L
 *   (pos_5 + 1 at the top) and a count of trailing zeros: no slot is scanned.
 *
 * ADVANCE(now). Repeat: take the earliest due time T; stop if T > now; set
 * elapsed = T; if the slot is of level 0 its entries all have deadline == T:
 * unlink and fire them one by one, oldest first; otherwise take the slot's
 * entries and place them again against elapsed = T (they land at lower
 * levels, or, beyond range, back in the same top slot, a turn ahead). Finally
 * elapsed = now. Consequences: an entry fires exactly when elapsed == its
 * deadline (never earlier, and in the very advance call whose `now` reaches
 * it), entries fire in non-decreasing deadline order and equal deadlines in
 * insertion order, and a huge jump costs one step per non-empty slot on the
 * way, not one per millisecond.
 *
 * BOUNDARIES.
 *   - insert with d <= elapsed: refused with SP_ETIMEDOUT, nothing queued
 *     (the caller fires it at once). d == elapsed + 1 goes to level 0.
 *   - d exactly on a slot boundary of level L (e.g. elapsed 63, d 64): it
 *     waits at level L; the cascade at T == d places it in level 0 at slot
 *     pos_0 (d == elapsed, the only time I2 is relaxed, inside advance) and
 *     the same advance fires it at once.
 *   - crossing the top window (elapsed 2^36 - 5, d 2^36 + 3): in range at
 *     level 5, slot 0 (behind pos_5 = 63), due 2^36; then level 0.
 *   - d = elapsed + 2^36 or more: beyond range, as above. d = UINT64_MAX never
 *     fires (now stays <= SP__WHEEL_TIME_MAX) and costs one cascade a turn.
 *   - advance with now <= elapsed: nothing happens, returns 0 (now ==
 *     elapsed after a limited advance stopped: the due rest fires).
 *   - while fire runs, elapsed == e->deadline; fire may insert or remove any
 *     entry (re-inserting e too); an insert with deadline <= elapsed is
 *     refused as above. fire must not call sp__wheel_advance (checked).
 */
#ifndef SP_TIMER_WHEEL_H
#define SP_TIMER_WHEEL_H

#include <stddef.h>
#include <stdint.h>

#define SP__WHEEL_LEVELS 6
#define SP__WHEEL_SLOT_BITS 6
#define SP__WHEEL_SLOTS (1u << SP__WHEEL_SLOT_BITS)
/* 64^6 ms: the span of the top level. */
#define SP__WHEEL_RANGE ((uint64_t)1 << (SP__WHEEL_LEVELS * SP__WHEEL_SLOT_BITS))
/* The largest elapsed / now value: due times stay below 2^64. */
#define SP__WHEEL_TIME_MAX (UINT64_MAX - SP__WHEEL_RANGE)

typedef struct sp__timer_entry {
	uint64_t deadline;		     /* absolute ms, set by insert */
	struct sp__timer_entry *prev, *next; /* circular list of the slot */
	uint8_t level, slot;		     /* where it is, while queued */
	uint8_t queued;			     /* 1 while in the wheel */
} sp__timer_entry;

typedef struct sp__timer_level {
	uint64_t occupied;			 /* bit s: slots[s] non-empty */
	sp__timer_entry *slots[SP__WHEEL_SLOTS]; /* list heads (oldest first) */
} sp__timer_level;

typedef struct sp__timer_wheel {
	uint64_t elapsed;  /* ms processed so far */
	size_t len;	   /* queued entries */
	uint8_t advancing; /* inside sp__wheel_advance (fire must not re-enter) */
	sp__timer_level levels[SP__WHEEL_LEVELS];
} sp__timer_wheel;

static inline void sp__timer_entry_init(sp__timer_entry *e)
{
	e->deadline = 0;
	e->prev = e->next = NULL;
	e->level = e->slot = 0;
	e->queued = 0;
}

static inline int sp__timer_entry_queued(const sp__timer_entry *e)
{
	return e->queued;
}

/* An empty wheel with elapsed = now_ms (<= SP__WHEEL_TIME_MAX). */
void sp__wheel_init(sp__timer_wheel *w, uint64_t now_ms);

/* Queue e to fire at deadline_ms; e->deadline = deadline_ms. If e is already
 * queued it is first removed (re-arm). Returns 0, or SP_ETIMEDOUT without
 * queueing when deadline_ms <= w->elapsed (the caller fires it at once).
 * Deadlines beyond the range wait in a top-level slot due before them and
 * are placed again, a turn at a time, when it comes due: they fire at their
 * deadline, never earlier. O(1). */
int sp__wheel_insert(sp__timer_wheel *w, sp__timer_entry *e, uint64_t deadline_ms);

/* Unlink e; a no-op when e is not queued. O(1). */
void sp__wheel_remove(sp__timer_wheel *w, sp__timer_entry *e);

/* The earliest due time of a non-empty slot: the time at which something may
 * expire (the driver's poll timeout), UINT64_MAX when the wheel is empty.
 * Never later than the earliest deadline; equal to it when that entry is at
 * level 0 (deadline within the current 64 ms block); earlier only when a slot
 * of a higher level must be cascaded first. Outside advance it is > elapsed
 * (== elapsed after a limited advance left due entries, I2').
 * O(levels). */
uint64_t sp__wheel_next_expiration(const sp__timer_wheel *w);

/* Advance to now_ms (<= SP__WHEEL_TIME_MAX): every entry with deadline <=
 * now_ms is unlinked and passed to fire(e, arg), in non-decreasing deadline
 * order, with w->elapsed == e->deadline during the call; slots of higher
 * levels that come due are cascaded down. Returns the number fired. */
size_t sp__wheel_advance(sp__timer_wheel *w, uint64_t now_ms,
			 void (*fire)(sp__timer_entry *e, void *arg), void *arg);

/* sp__wheel_advance, but it returns once it has fired max entries (so a
 * caller can drop its lock between bursts). If entries due at that moment
 * remain, elapsed stays at their deadline (I2') and the next advance, with
 * any now_ms >= elapsed, fires them first. */
size_t sp__wheel_advance_max(sp__timer_wheel *w, uint64_t now_ms,
			     void (*fire)(sp__timer_entry *e, void *arg), void *arg, size_t max);

/* The number of queued entries. */
static inline size_t sp__wheel_len(const sp__timer_wheel *w)
{
	return w->len;
}

#endif /* SP_TIMER_WHEEL_H */
