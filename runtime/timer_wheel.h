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
 * lower digits are 0. At level 0 that is elapsed + (s - pos_0) mod 64: the
 * slots form a rolling window [elapsed, elapsed + 64), pos_0 first. At the
 * top, slot pos_5 is a full turn (2^36 ms) ahead, not due now.
 *
 * PLACEMENT. An entry with deadline d (d >= elapsed) goes to
 *   - NEAR (d - elapsed < 64): level 0, slot = digit 0 of d. Its slot's due
 *     time is d itself, and the 64 deadlines of the window have 64 distinct
 *     slots: two entries of one level-0 slot have the same deadline.
 *   - FAR (d - elapsed >= 64): level L = the highest digit in which d and
 *     elapsed differ (L >= 1: d and elapsed differ above digit 0; 5 when they
 *     differ in digit 5 or above), slot = digit L of d.
 *       - Below level 5 the entry's higher digits equal elapsed's and its
 *         digit L is > pos_L: the slot's due time is d rounded down to 64^L.
 *       - At level 5, IN RANGE ((d >> 30) - (elapsed >> 30) < 64, which
 *         includes deadlines across the next 2^36 ms boundary): the slot's
 *         due time is d rounded down to 2^30.
 *       - At level 5, BEYOND RANGE (further): the slot's due time is earlier
 *         than d by whole turns. When it comes due the entry is placed again
 *         against the new elapsed: it is then at pos_5 itself, the last slot
 *         in rotation order, one full turn ahead; so it is re-cascaded once
 *         per 2^36 ms (~2.18 years) until its deadline is in range.
 *     A far entry placed again at its slot's due time T (a cascade) is NEAR
 *     when d - T < 64, else FAR at a lower level (or beyond range, back at the
 *     top).
 * EQUAL DEADLINES fire in insertion order. While d is far its placement
 * depends only on d and on which slots have come due, so the queued entries
 * of deadline d above level 0 all share one slot, in insertion order, and a
 * cascade moves them together. Once d - elapsed < 64 every later insert of d
 * goes to level 0, behind the earlier ones there; the entries of d still
 * above level 0 were inserted before all of those, and the one cascade that
 * brings them down (none are left above after it) puts them at the head of
 * d's level-0 slot, in their order.
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
 *       deadline == elapsed is refused (due) as always. No slot of a higher
 *       level is due at elapsed then (ADVANCE cascades those first).
 *   I3  a level-0 entry has elapsed < d < elapsed + 64 (d == elapsed under
 *       I2'): it is in the slot of its own deadline, whose due time is d.
 *       An entry of level L in 1..4 agrees with elapsed in every digit above
 *       L, and its digit L is > pos_L. Hence the due time of its slot is <=
 *       its deadline and earlier than that of any entry of levels L+1..5.
 *   I4  every due time of level 5 is >= base_5 + 2^30, so later than every
 *       due time of levels 1..4; the due time of an entry's slot is <= its
 *       deadline (== its deadline rounded down to 2^30 in range, whole turns
 *       earlier beyond range).
 *   So the earliest due time of the whole wheel is the earlier of two, each
 *   found from an `occupied` bitmap rotated right by pos_L (pos_5 + 1 at the
 *   top) and a count of trailing zeros, no slot scanned: the first occupied
 *   slot of level 0, and that of the lowest non-empty level >= 1 (I3, I4
 *   order the levels >= 1). Level 0 does not bound the others: its window
 *   [elapsed, elapsed + 64) can reach across the next multiple of 64^L for
 *   any L, so a slot of any level >= 1 may be due before the earliest
 *   level-0 deadline (elapsed 10, deadlines 70 at level 0 and 80 at level 1,
 *   due 64; elapsed 4090, deadlines 4100 at level 0 and 4160 at level 2, due
 *   4096).
 *
 *   Why I3 holds. ADVANCE sets elapsed only to the earliest due time of the
 *   whole wheel, so it never passes the due time of a slot, and a slot that
 *   reaches it (elapsed == its due time) is fired or cascaded in that same
 *   step. Level 0: elapsed only grows, and never past a level-0 deadline.
 *   Levels >= 1: I3 holds at placement, and keeps holding for every elapsed
 *   before the due time of the entry's slot (d rounded down to 64^L): the
 *   times from the placement to there have d's digits above L and a digit L
 *   below d's. Had ADVANCE jumped to the earliest level-0 deadline past a due
 *   slot of level L, that slot's digit would be <= pos_L: read as due in the
 *   past or a turn ahead, its entries late. I4 at the top likewise.
 *
 * ADVANCE(now). Repeat: take the earliest due time T, a slot of level >= 1
 * first when it ties with level 0; stop if T > now; set elapsed = T; if the
 * slot is of level 0 its entries all have deadline == T: unlink and fire them
 * one by one, oldest first; otherwise detach the slot's entries and place
 * them again against elapsed = T, newest first, each at the head of its new
 * slot (so they keep their order, ahead of the level-0 entries of the same
 * deadline, which were inserted later). They land at lower levels (level 0
 * when d - T < 64, slot pos_0 itself when d == T), or, beyond range, back in
 * the same top slot, a turn ahead. Finally elapsed = now. Cascading first on
 * a tie fires the cascaded entries of deadline T before the later inserts of
 * T, and leaves no higher slot due at elapsed when a limited advance stops
 * (I2'). Consequences: an entry fires exactly when elapsed == its deadline
 * (never earlier, and in the very advance call whose `now` reaches it),
 * entries fire in non-decreasing deadline order and equal deadlines in
 * insertion order, and a huge jump costs one step per non-empty slot on the
 * way, not one per millisecond. An entry less than 64 ms ahead is touched
 * twice (insert, fire), one further away once more per cascade.
 *
 * BOUNDARIES.
 *   - insert with d <= elapsed: refused with SP_ETIMEDOUT, nothing queued
 *     (the caller fires it at once). d == elapsed + 1 goes to level 0.
 *   - d == elapsed + 63: level 0, slot pos_0 - 1 (the window's last slot);
 *     d == elapsed + 64: far, level >= 1 (its digit 0 is pos_0, the slot
 *     being fired while elapsed has that digit).
 *   - d far and exactly on a slot boundary of level L (e.g. elapsed 0, d 128):
 *     it waits at level L; the cascade at T == d places it in level 0 at slot
 *     pos_0 (d == elapsed, the only time I2 is relaxed, inside advance) and
 *     the same advance fires it at once.
 *   - crossing the top window: elapsed 2^36 - 5, d 2^36 + 3 is near (level 0,
 *     slot 3); d 2^36 + 100 is in range at level 5, slot 0 (behind pos_5 =
 *     63), due 2^36, then level 1, then level 0.
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
 * Never later than the earliest deadline; earlier only when a slot of a
 * level >= 1 is due before it and must be cascaded first. So it is equal to
 * the earliest deadline when every entry is less than 64 ms ahead, and when
 * that deadline is in elapsed's 64 ms block. Outside advance it is > elapsed
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
