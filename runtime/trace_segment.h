/*
 * trace_segment.h - the introspection segment /dev/shm/spindle.<pid>: one
 * shared-memory file per process holding a header, the per-thread event rings
 * (trace_ring.h) and the live task table, read by other processes (the
 * `spindle` console, the recorder, the tests).
 *
 * This comment is the FILE-FORMAT SPEC of a segment. All integers are
 * little-endian (x86-64, aarch64 native order) and naturally aligned; every
 * field marked (atomic) is read and written only with single-copy-atomic
 * loads and stores of its full width. Offsets below are from the start of the
 * file; every region starts at a multiple of 64 bytes.
 *
 * THE FILE. /dev/shm/spindle.<pid>, <pid> in decimal, created by the process
 * <pid> with O_CREAT | O_EXCL, mode 0600, sized with ftruncate to total_size,
 * and unlinked at clean exit. A process that dies leaves it behind: it is
 * STALE when no process <pid> exists, or when process <pid> started at
 * another time than start_time (the pid was reused). Consumers recognise
 * stale segments and remove them (sp__seg_remove_stale); a creator that finds
 * a stale segment at its own path removes it and creates a new one.
 *
 *   Header (192 bytes; written once by the creator before magic is stored,
 *   except task_hwm, table_req and table_ack)
 *   offset size  field
 *        0    8  magic (atomic)   the bytes "SPNDLSEG" (0x4745534c444e5053 as
 *                                 a u64); 0 while the creator is filling the
 *                                 file in, stored last, with release
 *        8    2  abi_major        2 (SP__SEG_ABI_MAJOR)
 *       10    2  abi_minor        3 (SP__SEG_ABI_MINOR; 2.2: self-wakes
 *                                 counted in POLL_END, trace_events.h;
 *                                 2.3: the task table on request)
 *       12    4  header_size      192 in 2.0; readers accept >= 192
 *       16    4  pid              the creating process
 *       20    4  reserved         0
 *       24    8  start_time       process start time, field 22 of
 *                                 /proc/<pid>/stat (clock ticks after boot)
 *       32    8  created_ns       CLOCK_REALTIME at creation, nanoseconds
 *       40    8  clock_tick0      tick/ns calibration of the raw timestamps
 *       48    8  clock_ns0          in the rings and the task table:
 *       56    8  clock_mult         ns = ns0 + ((tick - tick0) * mult >> 32),
 *       64    8  clock_hz           mult 32.32 fixed point; hz ticks/s. ns is
 *                                   CLOCK_MONOTONIC. Neither mult nor hz is 0.
 *       72    4  nrings           number of rings, 0 .. 4096
 *       76    4  ring_capacity    records per ring (trace_ring.h rules)
 *       80    8  ring_owner_off   offset of the ring owner table
 *       88    8  ring_off         offset of ring 0
 *       96    8  ring_stride      bytes between rings: sp__ring_bytes(
 *                                 ring_capacity) rounded up to 64
 *      104    8  task_off         offset of task slot 0
 *      112    4  task_slot_size   bytes between task slots: 192 in 2.0;
 *                                 readers accept a larger multiple of 64
 *      116    4  task_slots       number of task slots, 0 .. 2^20
 *      120    8  total_size       bytes of the file the writer sized
 *      128    8  site_off         offset of site slot 0 (ABI 2)
 *      136    4  site_slot_size   bytes between site slots: 128 in 2.0;
 *                                 readers accept a larger multiple of 64
 *      140    4  site_slots       number of site slots, 0 .. 2^16
 *      144    4  task_hwm (atomic) 1 + the highest task slot index ever
 *                                 allocated: readers scan slots below it
 *                                 (clamped to task_slots) and no further
 *      148    4  wstat_size       bytes per worker-stats slot: 64 in 2.1; 0
 *                                 when there are none (2.0 writers)
 *      152    8  wstat_off        offset of worker-stats slot 0 (one per ring,
 *                                 nrings of them), 0 when there are none
 *      160    4  table_req (atomic) ABI 2.3: readers ask for a fresh task
 *                                 table by adding 1 (and FUTEX_WAKE on it);
 *                                 the only field a reader writes
 *      164    4  table_ack (atomic) ABI 2.3: the last table_req value the
 *                                 writer served; stored (release) once every
 *                                 task that was live at the request is in
 *                                 the table with its counters as of then
 *      168   24  reserved         0
 *
 *   Ring owner table at ring_owner_off: nrings x u32 (atomic), the thread id
 *   that owns ring i, 0 when the ring is free; padded to 64 bytes.
 *
 *   Rings at ring_off + i * ring_stride, i < nrings: each a ring in the
 *   trace_ring.h format with capacity ring_capacity, formatted by the creator.
 *   A ring is never re-formatted: a thread that claims a ring released by
 *   another continues its sequence numbers, so readers' cursors stay valid.
 *
 *   Task slots at task_off + i * task_slot_size, i < task_slots: one per
 *   live task entered in the table. Since ABI 2.3 the runtime enters and
 *   refreshes tasks only when a reader asks (table_req / table_ack): after
 *   the ack, every task that was live at the request and had been polled (or
 *   was spawned on a worker) has a slot with counters as of the request;
 *   tasks spawned later, or from a thread that is not a worker and not
 *   polled yet, are known from their SPAWN events. A task's slot is cleared
 *   when it leaves the runtime's task list, shortly after it completes.
 *   (ABI 2.0-2.2 writers entered a task at the end of its first poll that
 *   left it pending and refreshed it at each poll end.)
 *   offset size  field
 *        0    8  seq (atomic)     even: the slot is stable; odd: a write is
 *                                 in progress
 *        8    8  id (atomic)      task id; 0: the slot is free
 *       16    8  parent (atomic)  id of the spawning task, 0 if none
 *       24    4  state (atomic)   SP_TASK_* state bits
 *       28    4  line (atomic)    source line of the spawn
 *       32    8  polls (atomic)   polls so far
 *       40    8  busy_ns (atomic) nanoseconds spent in poll
 *       48    8  wakes (atomic)   wakes received
 *       56    4  claim (atomic)   writers' allocation word: 1 while held;
 *                                 readers ignore it
 *       60    4  reserved         0
 *       64   32  name (atomic)    NUL-padded task name, 4 x u64
 *       96   48  file (atomic)    NUL-padded spawn file name, 6 x u64
 *      144    8  spawn_ts (atomic) raw ticks at spawn, 0 unknown
 *      152    4  site (atomic)    spawn site index (site table), or
 *                                 0xffffffff
 *      156    4  self_wakes (atomic) wakes the task gave itself
 *      160    4  waker_clones (atomic) task wakers created, cumulative
 *      164    4  waker_drops (atomic)  task wakers dropped or consumed
 *      168    8  last_ts (atomic) raw ticks of the last poll end
 *      176   16  reserved         0
 *   Text fields may fill their whole width without a NUL; readers terminate
 *   them. They are empty (first byte 0) when the site field names a site:
 *   the runtime writes the site only, and readers take name, file and line
 *   from the site table (sp__seg_read_tasks does). The counters are as of the
 *   task's last poll end.
 *
 *   Worker-stats slots at wstat_off + i * wstat_size, i < nrings (ABI 2.1):
 *   what the worker that owns ring i last published (at its maintenance
 *   ticks and before it parks), each field a single-copy-atomic store of its
 *   own (fields are independent; no seq):
 *   offset size  field
 *        0    8  ts (atomic)      raw ticks of the publication, 0 never
 *        8    4  worker (atomic)  worker index
 *       12    4  depth (atomic)   tasks in its local queue, LIFO slot included
 *       16    4  inject (atomic)  tasks in its runtime's injection queue
 *       20   44  reserved         0
 *
 *   Site slots at site_off + i * site_slot_size, i < site_slots: one per
 *   spawn site (name, file, line) the process has used, in order of first
 *   use, written once and never changed:
 *   offset size  field
 *        0    4  ready (atomic)   0 free or being written, 1 published
 *                                 (release, after the fields below)
 *        4    4  line
 *        8   32  name             NUL-padded
 *       40   88  file             NUL-padded
 *   SPAWN events name a site by index. A site can be published a moment after
 *   the first SPAWN that names it (when two threads first use it at once):
 *   readers that find it not ready ask again later.
 *
 * RING CLAIM. A thread takes a free ring by compare-and-swap of its owner
 * word from 0 to its tid (acquire-release), becomes the ring's only producer,
 * and gives the ring back with a release store of 0. The release/acquire pair
 * orders one producer's last record before the next producer's first.
 *
 * TASK SLOT PROTOCOL (one writer per slot at a time). The writing process
 * hands out free slots from its own lock-free free list (below the high-water
 * mark first, task_hwm grows only when the list is empty); from then on only the holder
 * writes the slot, until it frees it (claim = 0, release). The holder may
 * hand the slot to another thread (a task polled on another worker) provided
 * the hand-off itself orders the two (the runtime's queues do). To write,
 * with s the current (even) seq:
 *   1. seq = s + 1                      (relaxed store)
 *   2. every payload field = ...        (release stores; id last when the
 *                                        task is new)
 *   3. seq = s + 2                      (release store)
 * To free: the same with id = 0, then claim = 0 (release).
 * A reader copies a slot as follows: s1 = seq (acquire); if s1 is odd, retry;
 * copy every field (acquire loads); s2 = seq (relaxed); if s2 != s1, retry.
 * A payload load that saw a later write's store synchronises with it, so that
 * write's step 1 is visible to the s2 load: an accepted copy is never torn.
 * Readers give up on a slot after a bounded number of retries (a hostile or
 * dead writer can leave seq odd) and never block the writer.
 *
 * VERSIONING. A reader accepts a segment whose magic matches and whose
 * abi_major equals its own; it ignores abi_minor. A minor bump may grow the
 * header (header_size) or the task slot (task_slot_size) or give meaning to
 * reserved bytes (left 0 by older writers); anything that moves or resizes a
 * field or changes a protocol bumps the major.
 *
 * VALIDATION. A reader trusts nothing: it checks the magic, the major, and
 * every size, offset and count against the file size with overflow-checked
 * arithmetic (regions inside the file, 64-aligned, not overlapping the header
 * or each other), and attaches each ring with sp__ring_attach. It keeps its
 * own copy of the validated header and never re-reads the offsets. What the
 * reader cannot defend against: the owner truncating the file under a mapped
 * reader (SIGBUS), or rewriting a ring's header after creation (the writer
 * never does; sp__seg_reader_ring_read re-checks capacity before each read).
 */
#ifndef SP_TRACE_SEGMENT_H
#define SP_TRACE_SEGMENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_ring.h"

#define SP__SEG_MAGIC 0x4745534c444e5053ull /* "SPNDLSEG" */
#define SP__SEG_ABI_MAJOR 2
#define SP__SEG_ABI_MINOR 3
#define SP__SEG_WSTAT_SIZE 64
#define SP__SEG_HEADER_SIZE 192
#define SP__SEG_TASK_SLOT_SIZE 192
#define SP__SEG_SITE_SLOT_SIZE 128
#define SP__SEG_SITE_FILE_LEN 88
#define SP__SEG_MAX_SITE_SLOTS (1u << 16)
#define SP__SEG_SITE_SLOTS 2048 /* what sp__seg_create makes by default */
/* Site slots a new segment gets (tests and the fuzz seed make small ones). */
extern uint32_t sp__seg_site_slots;
#define SP__SEG_MAX_RINGS 4096u
#define SP__SEG_MAX_TASK_SLOTS (1u << 20)
#define SP__SEG_NAME_LEN 32
#define SP__SEG_FILE_LEN 48
#define SP__SEG_DIR "/dev/shm"
#define SP__SEG_PREFIX "spindle."

typedef struct sp__seg_header {
	_Atomic uint64_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t header_size;
	uint32_t pid;
	uint32_t reserved0;
	uint64_t start_time;
	uint64_t created_ns;
	uint64_t clock_tick0;
	uint64_t clock_ns0;
	uint64_t clock_mult;
	uint64_t clock_hz;
	uint32_t nrings;
	uint32_t ring_capacity;
	uint64_t ring_owner_off;
	uint64_t ring_off;
	uint64_t ring_stride;
	uint64_t task_off;
	uint32_t task_slot_size;
	uint32_t task_slots;
	uint64_t total_size;
	uint64_t site_off;
	uint32_t site_slot_size;
	uint32_t site_slots;
	_Atomic uint32_t task_hwm;
	uint32_t wstat_size;
	uint64_t wstat_off;
	_Atomic uint32_t table_req;
	_Atomic uint32_t table_ack;
	uint64_t reserved1[3];
} sp__seg_header;

typedef struct sp__seg_wstat {
	_Atomic uint64_t ts;
	_Atomic uint32_t worker;
	_Atomic uint32_t depth;
	_Atomic uint32_t inject;
	uint32_t reserved0;
	uint64_t reserved1[5];
} sp__seg_wstat;

typedef struct sp__seg_slot {
	_Atomic uint64_t seq;
	_Atomic uint64_t id;
	_Atomic uint64_t parent;
	_Atomic uint32_t state;
	_Atomic uint32_t line;
	_Atomic uint64_t polls;
	_Atomic uint64_t busy_ns;
	_Atomic uint64_t wakes;
	_Atomic uint32_t claim;
	uint32_t reserved0;
	_Atomic uint64_t name[SP__SEG_NAME_LEN / 8];
	_Atomic uint64_t file[SP__SEG_FILE_LEN / 8];
	_Atomic uint64_t spawn_ts;
	_Atomic uint32_t site;
	_Atomic uint32_t self_wakes;
	_Atomic uint32_t waker_clones;
	_Atomic uint32_t waker_drops;
	_Atomic uint64_t last_ts;
	uint64_t reserved1[2];
} sp__seg_slot;

typedef struct sp__seg_site_slot {
	_Atomic uint32_t ready;
	uint32_t line;
	char name[SP__SEG_NAME_LEN];
	char file[SP__SEG_SITE_FILE_LEN];
} sp__seg_site_slot;

_Static_assert(sizeof(sp__seg_header) == SP__SEG_HEADER_SIZE, "segment header is 192 bytes");
_Static_assert(offsetof(sp__seg_header, site_off) == 128, "site_off at 128");
_Static_assert(offsetof(sp__seg_header, task_hwm) == 144, "task_hwm at 144");
_Static_assert(sizeof(sp__seg_site_slot) == SP__SEG_SITE_SLOT_SIZE, "site slot is 128 bytes");
_Static_assert(offsetof(sp__seg_header, wstat_off) == 152, "wstat_off at 152");
_Static_assert(offsetof(sp__seg_header, table_req) == 160, "table_req at 160");
_Static_assert(sizeof(sp__seg_wstat) == SP__SEG_WSTAT_SIZE, "worker-stats slot is 64 bytes");
_Static_assert(offsetof(sp__seg_slot, site) == 152, "site at 152");
_Static_assert(offsetof(sp__seg_slot, last_ts) == 168, "last_ts at 168");
_Static_assert(offsetof(sp__seg_header, pid) == 16, "pid at 16");
_Static_assert(offsetof(sp__seg_header, clock_tick0) == 40, "clock_tick0 at 40");
_Static_assert(offsetof(sp__seg_header, nrings) == 72, "nrings at 72");
_Static_assert(offsetof(sp__seg_header, task_off) == 104, "task_off at 104");
_Static_assert(offsetof(sp__seg_header, total_size) == 120, "total_size at 120");
_Static_assert(sizeof(sp__seg_slot) == SP__SEG_TASK_SLOT_SIZE, "task slot is 192 bytes");
_Static_assert(offsetof(sp__seg_slot, claim) == 56, "claim at 56");
_Static_assert(offsetof(sp__seg_slot, name) == 64, "name at 64");
_Static_assert(offsetof(sp__seg_slot, file) == 96, "file at 96");
_Static_assert(offsetof(sp__seg_slot, spawn_ts) == 144, "spawn_ts at 144");

/* A task as written and as read back: a plain copy of one slot. */
typedef struct sp__seg_task {
	uint64_t id;
	uint64_t parent;
	uint32_t state;
	uint32_t line;
	uint64_t polls;
	uint64_t busy_ns;
	uint64_t wakes;
	uint64_t spawn_ts;
	uint32_t site;
	uint32_t self_wakes;
	uint32_t waker_clones;
	uint32_t waker_drops;
	uint64_t last_ts;
	char name[SP__SEG_NAME_LEN + 1]; /* always NUL-terminated */
	char file[SP__SEG_FILE_LEN + 1];
} sp__seg_task;

/* ---- writer side (the process that owns the segment) ----------------------- */

typedef struct sp__seg_site_key {
	_Atomic(const void *) key;
	_Atomic uint32_t idx1; /* site index + 1; 0 while being registered */
} sp__seg_site_key;

typedef struct sp__segment {
	void *base;
	size_t size;
	sp__seg_header *hdr;
	char path[64];
	/* writer-side state, in this process's memory */
	_Atomic uint32_t *task_next;   /* free list links, task_slots entries */
	_Atomic uint64_t task_free;    /* free list head: tag << 32 | (index + 1) */
	sp__seg_site_key *site_keys;   /* open addressing, site_mask + 1 entries */
	uint32_t site_mask;
	_Atomic uint32_t site_next;    /* next site slot to hand out */
} sp__segment;

/*
 * Create and map /dev/shm/spindle.<getpid()> with nrings rings of
 * ring_capacity records (a power of two, 2 .. 2^26; ignored when nrings is 0)
 * and task_slots task slots. The clock calibration comes from sp__clock
 * (sp__clock_init is called). Returns 0, or a negative errno: -EEXIST when a
 * live segment of this process exists already, -EINVAL for bad sizes, or the
 * error of open/ftruncate/mmap.
 */
int sp__seg_create(sp__segment *out, unsigned nrings, uint32_t ring_capacity, uint32_t task_slots);

/* The same at an explicit path (tests). */
int sp__seg_create_at(sp__segment *out, const char *path, unsigned nrings, uint32_t ring_capacity,
		      uint32_t task_slots);

/* Unmap and unlink (clean exit). */
void sp__seg_destroy(sp__segment *seg);

/* Claim a free ring for thread tid (nonzero): its index, or -ENOSPC when all
 * are taken, -EINVAL when tid is 0. */
int sp__seg_claim_ring(sp__segment *seg, uint32_t tid);
void sp__seg_release_ring(sp__segment *seg, unsigned idx);
sp__ring *sp__seg_ring(sp__segment *seg, unsigned idx);

/* Allocate a task slot (the caller becomes its writer): its index, or
 * -ENOSPC. Lock-free (a tagged free list, then the high-water mark). */
int sp__seg_task_alloc(sp__segment *seg);
/* The index of spawn site `key` (any address unique to the site, e.g. its
 * static sp_spawn_site), registering name, file and line on first use;
 * SP__SEG_SITE_NONE when the table is full. Lock-free; no allocation. */
#define SP__SEG_SITE_NONE 0xffffffffu
uint32_t sp__seg_site(sp__segment *seg, const void *key, const char *name, const char *file,
		      uint32_t line);
/* A new task in a slot: everything but the text, which stays empty (readers
 * take it from t->site's site slot). Cheaper than sp__seg_task_write. */
void sp__seg_task_spawn(sp__segment *seg, unsigned slot, const sp__seg_task *t);
/* Poll-end update of the counters (the slot protocol; t's text, id, parent,
 * spawn_ts and site are not rewritten). */
void sp__seg_task_counters(sp__segment *seg, unsigned slot, const sp__seg_task *t);
/* Write the whole slot (the slot protocol; id last). */
void sp__seg_task_write(sp__segment *seg, unsigned slot, const sp__seg_task *t);
/* Mark the slot free (id = 0) and give it back: clear, then release. A
 * writer may keep cleared slots in a cache of its own and reuse them
 * (sp__seg_task_spawn) before releasing them to the free list. */
void sp__seg_task_free(sp__segment *seg, unsigned slot);
void sp__seg_task_clear(sp__segment *seg, unsigned slot);
void sp__seg_task_release(sp__segment *seg, unsigned slot);

/* ---- reader side ------------------------------------------------------------ */

typedef struct sp__seg_reader {
	const void *base;
	size_t size;			   /* bytes mapped (the file size at open) */
	int mapped;			   /* base is our mapping (munmap at close) */
	sp__seg_header hdr;		   /* validated copy; magic holds SP__SEG_MAGIC */
	sp__ring **rings;		   /* hdr.nrings attached rings */
	const char *err;		   /* static message of the last failure, or "" */
	uint16_t found_major, found_minor; /* the version the segment declared */
	char path[64];			   /* the file opened, "" for attached memory */
	sp__seg_header *ctl;		   /* the header mapped writable, for table_req */
} sp__seg_reader;

/*
 * Open /dev/shm/spindle.<pid> read-only, map it and validate it (see
 * VALIDATION). Returns 0, or a negative errno with r->err set
 * (sp__seg_strerror):
 *   -ENOENT    no such segment (or other open errors: their errno)
 *   -EAGAIN    the creator has not finished writing it (magic still 0)
 *   -EBADMSG   not a spindle segment (bad magic)
 *   -EPROTONOSUPPORT  ABI major other than 1
 *   -EMSGSIZE  the file is smaller than what the header describes
 *   -EINVAL    a size, offset or count out of range, overlapping regions,
 *              a bad calibration, or a corrupt ring
 *   -ESRCH     (sp__seg_open only) the header's pid is not <pid>
 */
int sp__seg_open(sp__seg_reader *r, int pid);
int sp__seg_open_file(sp__seg_reader *r, const char *path);
/* Validate size bytes at mem (64-byte aligned) without mapping anything; the
 * reader borrows mem until sp__seg_close. Same errors. */
int sp__seg_attach_mem(sp__seg_reader *r, const void *mem, size_t size);
void sp__seg_close(sp__seg_reader *r);
const char *sp__seg_strerror(const sp__seg_reader *r);

/* 1 when the segment's process is gone or was replaced (pid reuse). */
int sp__seg_is_stale(const sp__seg_reader *r);

/* Ring i of an open segment (NULL when out of range), its owner tid, and a
 * read through sp__ring_read that re-checks the ring's capacity first and
 * refuses a head of 2^64 - 1 (on which sp__ring_read's cursor would wrap and
 * loop for ever). Readers of foreign segments read through
 * sp__seg_reader_ring_read, not sp__ring_read on the raw ring. */
sp__ring *sp__seg_reader_ring(const sp__seg_reader *r, unsigned i);
uint32_t sp__seg_reader_ring_owner(const sp__seg_reader *r, unsigned i);
size_t sp__seg_reader_ring_read(const sp__seg_reader *r, unsigned i, uint64_t *cursor,
				sp__ring_event *out, size_t max, uint64_t *lost);

/*
 * Ask the segment's writer for a fresh task table (ABI 2.3: table_req) and
 * wait up to timeout_ms for its ack. Returns 0 when the table is fresh (or
 * the writer is older than 2.3 and keeps it fresh itself), -ETIMEDOUT when
 * no ack came (a stopped or busy process: the table is as last written),
 * -ENOTSUP for attached memory, or the errno of opening the file for
 * writing (a reader that may not write the header reads the table as is).
 */
int sp__seg_table_request(sp__seg_reader *r, int timeout_ms);

/* Call cb with a consistent copy of every live task slot (slot index, copy).
 * Returns the number delivered; *busy (if not NULL) gets the number of slots
 * skipped because no consistent copy was had within the retry bound. */
size_t sp__seg_read_tasks(const sp__seg_reader *r,
			  void (*cb)(unsigned slot, const sp__seg_task *t, void *arg), void *arg,
			  size_t *busy);

/* Copy site slot idx into *out (name and file NUL-terminated): 0, or -1
 * when idx is out of range or the site is not published (yet). */
typedef struct sp__seg_site_info {
	uint32_t line;
	char name[SP__SEG_NAME_LEN + 1];
	char file[SP__SEG_SITE_FILE_LEN + 1];
} sp__seg_site_info;
int sp__seg_read_site(const sp__seg_reader *r, uint32_t idx, sp__seg_site_info *out);

/* Writer: publish ring idx's worker stats. */
void sp__seg_wstat_write(sp__segment *seg, unsigned idx, uint64_t ts, uint32_t worker,
			 uint32_t depth, uint32_t inject);
/* Reader: ring i's worker stats; 0, or -1 when the segment has none (2.0) or
 * nothing was published for ring i. */
typedef struct sp__seg_wstat_info {
	uint64_t ts;
	uint32_t worker, depth, inject;
} sp__seg_wstat_info;
int sp__seg_read_wstat(const sp__seg_reader *r, unsigned i, sp__seg_wstat_info *out);

/* SPINDLE_TRACE_RING's value (the ring size a traced process asks for):
 * records per ring ("65536", "64k", "1m"), a power of two from 1024 to
 * 2^20; 0 when it is not one. */
uint32_t sp__trace_ring_cap_parse(const char *s);

/* Ticks of this segment's clock to CLOCK_MONOTONIC ns. */
uint64_t sp__seg_ticks_to_ns(const sp__seg_reader *r, uint64_t ticks);

/* ---- discovery (spindle ps) ------------------------------------------------- */

enum sp__seg_state { SP__SEG_LIVE, SP__SEG_STALE, SP__SEG_INVALID };

typedef struct sp__seg_info {
	int pid;		  /* from the file name */
	enum sp__seg_state state; /* INVALID: did not validate and its pid lives */
	int err;		  /* 0, or the open error (negative errno) */
	const char *errstr;	  /* "" or the static message */
	const char *path;
	const sp__seg_header *hdr; /* validated header when err == 0, else NULL */
} sp__seg_info;

/* Enumerate SP__SEG_DIR/spindle.<digits>. Returns the number of entries
 * reported, or a negative errno when the directory cannot be read. A segment
 * that fails validation is STALE when its pid is gone, else INVALID. */
int sp__seg_list(void (*cb)(const sp__seg_info *info, void *arg), void *arg);

/* Remove /dev/shm/spindle.<pid> if it is stale (or unreadable garbage whose
 * pid is gone). 0: removed; -EBUSY: its process lives; -ENOENT: none. */
int sp__seg_remove_stale(int pid);

/* Remove the segments of processes that no longer exist (not our own) and
 * that have not changed for 30 s; returns how many. A creator calls it, so that segments left by killed
 * processes do not pile up in /dev/shm. */
int sp__seg_sweep_stale(void);

/* 1 when process pid exists and (if start_time is not 0) started then. */
int sp__seg_pid_alive(int pid, uint64_t start_time);
/* Field 22 of /proc/<pid>/stat; 0 on success. */
int sp__seg_proc_start_time(int pid, uint64_t *out);

#endif /* SP_TRACE_SEGMENT_H */
