/*
 * trace_ring.h - the event ring: one per emitting thread, one producer, any
 * number of readers with their own cursors, overwrite of the oldest record.
 *
 * This comment is the FILE-FORMAT SPEC of a ring. A ring lives in memory the
 * caller provides (later: a slice of the /dev/shm/spindle.<pid> segment, read
 * by other processes), so it holds no pointers, only sizes and sequence
 * numbers. All integers are little-endian (x86-64, aarch64 native order) and
 * naturally aligned; every field marked (atomic) is read and written only
 * with single-copy-atomic loads and stores of its full width.
 *
 * LAYOUT. The ring starts at a 64-byte-aligned address: a 64-byte header,
 * then `capacity` records of 32 bytes. Total: 64 + 32 * capacity bytes
 * (sp__ring_bytes).
 *
 *   Header (64 bytes, one cache line, written only by the producer)
 *   offset size  field
 *        0    4  magic          0x47525053, the bytes "SPRG"
 *        4    2  version_major  1 (SP__RING_VERSION_MAJOR)
 *        6    2  version_minor  0 (SP__RING_VERSION_MINOR)
 *        8    4  header_size    64: offset of record 0's slot
 *       12    4  record_size    32: stride between slots
 *       16    4  capacity       number of slots, a power of two, >= 2
 *       20    4  reserved       0
 *       24    8  reserved       0
 *       32    8  head (atomic)  sequence number of the last published
 *                               record; 0 while the ring is empty
 *       40   24  reserved       0
 *
 *   Record slot (32 bytes; two per cache line)
 *   offset size  field
 *        0    8  seq  (atomic)  0: empty or being written; n >= 1: the slot
 *                               holds the complete record of sequence n
 *        8    8  ts   (atomic)  raw timestamp, sp__ticks() (TSC on x86-64;
 *                               the segment header carries the calibration)
 *       16    4  type (atomic)  event type; readers skip types they do not
 *                               know
 *       20    4  a    (atomic)  payload, meaning set by the type
 *       24    8  b    (atomic)  payload, meaning set by the type
 *
 * SEQUENCE NUMBERS. The producer numbers its records 1, 2, 3, ...; record n
 * lives in slot (n & (capacity - 1)) and overwrites record n - capacity
 * there. 64 bits do not wrap in practice (5,800 years at 1e8 events/s).
 *
 * WRITER PROTOCOL (one thread; no locks, no read-modify-write, no syscalls).
 * To publish record n = head + 1:
 *   1. slot.seq = 0                        (relaxed store)
 *   2. slot.ts, type, a, b = ...           (release stores: each orders 1
 *                                           before itself)
 *   3. slot.seq = n                        (release store)
 *   4. head = n                            (release store)
 * On x86-64 all of it compiles to plain moves. (Per-field release/acquire
 * instead of the classic relaxed payload between fences: the same code on
 * x86-64, and ThreadSanitizer models it, which it does not for fences.)
 *
 * READER PROTOCOL (any number of readers, in any process, never writing).
 * A reader's cursor is the sequence number it wants next (starts at 1, or at
 * head + 1 to see only new records). To take record n = cursor:
 *   1. h = head (acquire). If n > h: nothing new, stop.
 *   2. If h - n >= capacity, records n .. h - capacity were overwritten: add
 *      their count to `lost`, n = h - capacity + 1.
 *   3. s1 = slot.seq (acquire). If s1 == n: copy ts, type, a, b (acquire
 *      loads), then s2 = slot.seq (relaxed). If s2 == n the copy is record
 *      n, whole: deliver it, n = n + 1. (A payload load that saw a later
 *      record's store synchronises with it, so the producer's seq = 0 before
 *      that store is visible to the s2 load, and slot.seq never returns to n.)
 *   4. Otherwise (s1 == 0: the producer is overwriting the slot; s1 > n: it
 *      has overwritten it; s2 != n: it overwrote it during the copy), record
 *      n is gone: lost += 1, n = n + 1, re-read head, go to 2.
 *   s1 in 1 .. n-1 cannot happen with a well-behaved producer (head >= n was
 *   published after slot.seq = n); a reader stops there rather than spin.
 * So a reader never returns a torn or overwritten record, never makes the
 * producer wait, and counts every record it missed exactly once: at every
 * moment, records delivered + lost == cursor - (cursor's start).
 *
 * VERSIONING. A reader accepts a ring whose magic matches, whose
 * version_major equals its own and whose header_size and record_size are the
 * ones above; it ignores version_minor. A minor bump may give meaning to
 * reserved bytes (which writers of older minors leave 0) or add event types;
 * anything that moves or resizes a field, or changes the protocol, bumps the
 * major.
 */
#ifndef SP_TRACE_RING_H
#define SP_TRACE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define SP__RING_MAGIC 0x47525053u /* "SPRG" */
#define SP__RING_VERSION_MAJOR 1
#define SP__RING_VERSION_MINOR 0
#define SP__RING_HEADER_SIZE 64
#define SP__RING_RECORD_SIZE 32

/* The ring format needs lock-free (hence address-free) 32- and 64-bit
 * atomics: other processes read it through their own mappings. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics are lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");

typedef struct sp__ring {
	uint32_t magic;
	uint16_t version_major;
	uint16_t version_minor;
	uint32_t header_size;
	uint32_t record_size;
	uint32_t capacity;
	uint32_t reserved0;
	uint64_t reserved1;
	_Atomic uint64_t head;
	uint64_t reserved2[3];
} sp__ring;

typedef struct sp__ring_slot {
	_Atomic uint64_t seq;
	_Atomic uint64_t ts;
	_Atomic uint32_t type;
	_Atomic uint32_t a;
	_Atomic uint64_t b;
} sp__ring_slot;

/* A record as a reader gets it: the slot's fields, copied. */
typedef struct sp__ring_event {
	uint64_t seq;
	uint64_t ts;
	uint32_t type;
	uint32_t a;
	uint64_t b;
} sp__ring_event;

_Static_assert(sizeof(sp__ring) == SP__RING_HEADER_SIZE, "ring header is 64 bytes");
_Static_assert(offsetof(sp__ring, capacity) == 16, "capacity at 16");
_Static_assert(offsetof(sp__ring, head) == 32, "head at 32");
_Static_assert(sizeof(sp__ring_slot) == SP__RING_RECORD_SIZE, "record is 32 bytes");
_Static_assert(offsetof(sp__ring_slot, ts) == 8, "ts at 8");
_Static_assert(offsetof(sp__ring_slot, type) == 16, "type at 16");
_Static_assert(offsetof(sp__ring_slot, a) == 20, "a at 20");
_Static_assert(offsetof(sp__ring_slot, b) == 24, "b at 24");
_Static_assert(sizeof(sp__ring_event) == SP__RING_RECORD_SIZE, "event copy is 32 bytes");

/* Bytes a ring of `capacity` records needs (0 if capacity is not a power of
 * two in 2 .. 2^26). */
size_t sp__ring_bytes(uint32_t capacity);

/* Format `size` bytes at mem (64-byte aligned) as an empty ring of
 * `capacity` records. Returns the ring, or NULL if the arguments do not fit.
 * Call before any reader can see the memory. */
sp__ring *sp__ring_init(void *mem, size_t size, uint32_t capacity);
/* The same over memory known to be zero (a fresh ftruncate'd file): the
 * record slots are left untouched, so their pages are not faulted in until
 * the producer reaches them. */
sp__ring *sp__ring_init_zeroed(void *mem, size_t size, uint32_t capacity);

/* Check that `size` bytes at mem hold a ring this reader understands (see
 * VERSIONING); returns it, or NULL. */
sp__ring *sp__ring_attach(void *mem, size_t size);

static inline sp__ring_slot *sp__ring_slots(sp__ring *r)
{
	return (sp__ring_slot *)((char *)r + SP__RING_HEADER_SIZE);
}

/* Producer only: publish one record with timestamp ts. */
static inline void sp__ring_emit_at(sp__ring *r, uint64_t ts, uint32_t type, uint32_t a, uint64_t b)
{
	/* ordering: relaxed: only this thread writes head. */
	uint64_t n = atomic_load_explicit(&r->head, memory_order_relaxed) + 1;
	sp__ring_slot *s = &sp__ring_slots(r)[n & (r->capacity - 1)];

	/* ordering: relaxed: the invalid mark; the release payload stores
	 * below order it before themselves. */
	atomic_store_explicit(&s->seq, 0, memory_order_relaxed);
	/* ordering: release, pairing with the reader's acquire payload loads:
	 * a reader that sees any of these stores also sees seq = 0 (or later)
	 * at its re-check, so it never accepts a mixed copy. */
	atomic_store_explicit(&s->ts, ts, memory_order_release);
	atomic_store_explicit(&s->type, type, memory_order_release);
	atomic_store_explicit(&s->a, a, memory_order_release);
	atomic_store_explicit(&s->b, b, memory_order_release);
	/* ordering: release: a reader that loads seq == n (acquire) sees the
	 * payload above. */
	atomic_store_explicit(&s->seq, n, memory_order_release);
	/* ordering: release: a reader that loads head >= n (acquire) sees
	 * seq == n or a later value in this slot. */
	atomic_store_explicit(&r->head, n, memory_order_release);
}

/* Producer only: publish one record stamped now (raw ticks). */
static inline void sp__ring_emit(sp__ring *r, uint32_t type, uint32_t a, uint64_t b)
{
	sp__ring_emit_at(r, sp__ticks(), type, a, b);
}

/* Sequence number of the last published record (0: none yet). A reader that
 * wants only new records starts its cursor at sp__ring_head(r) + 1. */
static inline uint64_t sp__ring_head(sp__ring *r)
{
	/* ordering: acquire pairs with the release store of head in emit. */
	return atomic_load_explicit(&r->head, memory_order_acquire);
}

/*
 * Reader: copy up to max records, in sequence order, starting at *cursor
 * (the sequence number wanted next; 0 is taken as 1), into out. Advances
 * *cursor past what it delivered and what it skipped, and adds the number of
 * skipped (overwritten) records to *lost. Returns the number copied; 0 when
 * nothing new was published. Never blocks, never writes to the ring.
 */
size_t sp__ring_read(sp__ring *r, uint64_t *cursor, sp__ring_event *out, size_t max,
		     uint64_t *lost);

#endif /* SP_TRACE_RING_H */
