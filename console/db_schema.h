/*
 * db_schema.h - the SQLite recording format written by `spindle record` and
 * read by `spindle report`, `spindle export` and `spindle top --replay`.
 *
 * This comment is the FILE-FORMAT SPEC of a recording, database ABI 1.
 *
 * THE FILE. An SQLite 3 database with PRAGMA application_id = 0x5350444c
 * ("SPDL") and PRAGMA user_version = the database ABI. The writer keeps it in
 * WAL mode and commits a batch at least every 100 ms, so a recorder or target
 * that dies leaves a valid database holding every committed batch (its -wal
 * file beside it until the next writer or a checkpoint folds it in). A clean
 * finish checkpoints and leaves the database in rollback-journal mode (a
 * single self-contained file). Readers open it with SQLITE_OPEN_READONLY and
 * never write it.
 *
 * VERSIONING. meta.abi is the database ABI. A reader accepts abi <= its own
 * and refuses a newer one (exit status 2). A minor addition (a new table, a
 * new column at the end, a new meta key) keeps the ABI; anything that
 * changes a meaning bumps it.
 *
 * TIME. Every time is INTEGER nanoseconds of CLOCK_MONOTONIC relative to the
 * recording's time 0 (meta.t0_ns, the monotonic ns of the first record the
 * recorder saw, or of attach); times before it are negative (tasks spawned
 * before attach). Durations are INTEGER ns.
 *
 * TIME KEYS. The event tables are keyed by their time (INTEGER PRIMARY KEY,
 * SQLite's rowid): rows are appended in time order, so the B-trees stay full
 * and a time range is a primary-key range scan with no index. Keys must be
 * unique: the writer gives a row whose time equals (or, for an event that
 * arrived late, precedes) the table's last key that key + 1. Events of one
 * poll share one clock reading, so a burst of n wakes from a poll is spread
 * over n ns; events delivered late (stream.h ORDER) move later by how late
 * they were (meta.late counts them). Intervals (polls, parks) are keyed by
 * their END, and `dur` is measured from the true start: start = key - dur.
 *
 * TABLES (column: meaning; every column INTEGER unless said otherwise)
 *
 *   meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID
 *     abi          database ABI (1)
 *     seg_abi      the segment's ABI "major.minor" (TEXT)
 *     clock        "CLOCK_MONOTONIC" (TEXT)
 *     t0_ns        monotonic ns of time 0
 *     start_unix_ns  wall clock (CLOCK_REALTIME ns) at time 0
 *     pid          the recorded process
 *     command      its command line, arguments joined by spaces (TEXT)
 *     ring_capacity  records per ring of the recorded process (its
 *                  SPINDLE_TRACE_RING; absent in older recordings)
 *     workers      1 + the highest worker index seen
 *     end_ns       time of the last record (updated with every batch)
 *     finished     1 after a clean finish (absent: the recorder died)
 *     events       events recorded, lost  events lost (both per batch)
 *     late         events delivered late (see TIME KEYS)
 *     synthetic    1 when written by the synthetic generator
 *     inject_pushes, inject_pops  injection-queue pushes and pops recorded
 *
 *   sites(id INTEGER PRIMARY KEY, name TEXT, file TEXT, line)
 *     spawn sites: the segment's site index; ids >= 2^24 are made up by the
 *     recorder for tasks of the attach snapshot that had no site
 *
 *   tasks(id INTEGER PRIMARY KEY, parent, site, spawn, end, state)
 *     one row per task seen: parent task id (0 none), site (sites.id),
 *     spawn time (NULL: spawned before attach, time unknown), end time and
 *     state (0 completed, 1 aborted); end and state NULL while live
 *
 *   polls(end INTEGER PRIMARY KEY, task, worker, dur, result, delay)
 *     one row per poll: its end time (key), the task, the worker index,
 *     the duration, result = POLL_END bits (trace_events.h: bit 0 ready,
 *     bit 1 cancelled, bits 8.. budget yields), delay = scheduling delay,
 *     start - the time the task became runnable (its spawn, or the first wake
 *     that queued it after its previous poll began); NULL when unknown
 *     (first poll of a task spawned before attach, or events lost)
 *
 *   wakes(ts INTEGER PRIMARY KEY, task, flags, source, worker)
 *     one row per wake of `task`; flags = WAKE bits 0..6 (trace_events.h:
 *     bit 0 self, bit 1 by value, bits 2..4 source kind, bits 5..6 queue);
 *     source = the waking task (kinds TASK, JOIN), the fd (REACTOR), the
 *     thread id (FOREIGN), NULL otherwise; worker = the worker whose ring
 *     holds the wake (LOCAL/LIFO wakes go to its queue), NULL off workers
 *
 *   wakers(task, holder, detail, clones, drops, consumed, first, last,
 *          PRIMARY KEY(task, holder, detail)) WITHOUT ROWID
 *     waker ownership by holder: per task and holder kind (SP_HOLD_*) and
 *     detail (the fd for REACTOR, else 0), the clones and drops recorded
 *     and the by-value wakes attributed to that holder (consumed: a wake from
 *     the matching source: REACTOR fd, TIMER, BLOCKING, JOIN; TASK and
 *     FOREIGN wakes to the CHANNEL, SYNC, USER or SELECT holder that has one
 *     outstanding); first/last: times of the first and last change.
 *     Outstanding wakers = sum(clones - drops - consumed); a by-value wake
 *     that matched no holder is a row with holder 255. The rows are an
 *     aggregate, rewritten with each batch: per-change rows would triple the
 *     database for no finding the report makes.
 *
 *   steals(ts INTEGER PRIMARY KEY, worker, victim, count)
 *   parks(end INTEGER PRIMARY KEY, worker, dur)     a park interval
 *   lost(ts INTEGER PRIMARY KEY, ring, count)      events lost on ring,
 *                                                  noticed at ts
 *   warnings(id INTEGER PRIMARY KEY, ts, kind TEXT, task, dur, detail TEXT,
 *            source TEXT, worker)
 *     findings of other tools (the eBPF tracer: kind "long_poll",
 *     "blocking_syscall"...; source names the writer); index warnings_ts.
 *     worker (added in ABI 1, NULL or absent in older files): the worker
 *     index as the writer knows it.
 *     `spindle trace -o` writes one row per finding: kind "long_poll",
 *     source "spindle trace", ts = the poll's start, dur = its duration (so
 *     far, when it was still running when reported), task = the task id,
 *     worker = the worker-slot index. detail is one line of "; "-separated
 *     parts: first the headline, which begins with the verdict ("blocked
 *     50.1 ms in clock_nanosleep, culprit blocking_call (blocking.c:74)",
 *     "on-CPU ...", "preempted ..."), then the time split, the poll
 *     function and thread, and last "fix: ...". The tracer also writes meta
 *     tracer_threshold_ns, and rings = 0 when the target's event rings
 *     were off (the file then holds meta, the findings' tasks and sites,
 *     and warnings only).
 *
 *   timers(ts INTEGER PRIMARY KEY, worker, count, deadline)
 *     one row per TIMER_FIRE: a batch of `count` timers fired at ts by
 *     `worker` (NULL: a thread that is not a worker turned the driver);
 *     deadline = the latest deadline of the batch (its wheel ms rounded up:
 *     never before the true one). ts - deadline is how late the batch's
 *     last timer fired; the batch's wakes (source TIMER) follow at ts.
 *     Added in ABI 1 (absent from older recordings: readers check).
 *
 *   io(ts INTEGER PRIMARY KEY, fd, bits, worker)
 *     one row per IO_READY: fd became ready; bits 1 read, 2 write, 4
 *     error/hang-up; worker as in timers. About 12 bytes a row. Added in
 *     ABI 1, as timers.
 *
 *   blocking(end INTEGER PRIMARY KEY, job, thread, dur)
 *     one row per blocking-pool job that started and ended while recorded
 *     (keyed by its end, start = end - dur): the job id (per process) and
 *     the pool thread (tid) that ran it. Added in ABI 1, as timers.
 *
 *   (Segment 2.1 writers emit INJECT_PUSH only for spawns from a worker of
 *   another runtime: remote wakes say their queue in WAKE, and spawns from
 *   threads that are not workers are pushes by definition; so inject_pushes
 *   counts those records, not every push.)
 *   Injection-queue pushes and pops (INJECT_PUSH/POP) are only counted
 *   (meta inject_pushes, inject_pops): a row each (~12 bytes) would come
 *   once per remotely spawned or woken task, and break the 40 bytes per
 *   poll that a recording of spawn-heavy work keeps otherwise.
 *
 * INDEXES. tasks_live (tasks whose end is NULL) and warnings_ts. The event
 * tables need none: the report reads each in one key-ordered pass and looks
 * windows up by key.
 *
 * SIZE. A poll row costs about 20 bytes and a wake row about 18 (pages are
 * 8192 bytes, set before the tables are created; one holds ~400 rows), so
 * a recording is about 40 bytes per poll when every poll is preceded by
 * one wake; timers, io and blocking rows add ~12-16 bytes per event.
 */
#ifndef SPINDLE_CONSOLE_DB_SCHEMA_H
#define SPINDLE_CONSOLE_DB_SCHEMA_H

#define SPDB_ABI 1
#define SPDB_APPLICATION_ID 0x5350444c /* "SPDL" */
#define SPDB_SITE_MADE_UP (1u << 24)   /* sites.id from here: recorder's own */
#define SPDB_HOLD_UNMATCHED 255

#define SPDB_SCHEMA_SQL                                                                            \
	"PRAGMA application_id = 1397769292;"                                                      \
	"PRAGMA user_version = 1;"                                                                 \
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"                            \
	"CREATE TABLE sites(id INTEGER PRIMARY KEY, name TEXT, file TEXT, line INTEGER);"          \
	"CREATE TABLE tasks(id INTEGER PRIMARY KEY, parent INTEGER, site INTEGER, spawn INTEGER, " \
	"end INTEGER, state INTEGER);"                                                             \
	"CREATE INDEX tasks_live ON tasks(id) WHERE end IS NULL;"                                  \
	"CREATE TABLE polls(end INTEGER PRIMARY KEY, task INTEGER NOT NULL, "                      \
	"worker INTEGER NOT NULL, dur INTEGER NOT NULL, result INTEGER NOT NULL, delay INTEGER);"  \
	"CREATE TABLE wakes(ts INTEGER PRIMARY KEY, task INTEGER NOT NULL, "                       \
	"flags INTEGER NOT NULL, source INTEGER, worker INTEGER);"                                 \
	"CREATE TABLE wakers(task INTEGER NOT NULL, holder INTEGER NOT NULL, "                     \
	"detail INTEGER NOT NULL, clones INTEGER NOT NULL, drops INTEGER NOT NULL, "               \
	"consumed INTEGER NOT NULL, first INTEGER, last INTEGER, "                                 \
	"PRIMARY KEY(task, holder, detail)) WITHOUT ROWID;"                                        \
	"CREATE TABLE steals(ts INTEGER PRIMARY KEY, worker INTEGER, victim INTEGER, "             \
	"count INTEGER);"                                                                          \
	"CREATE TABLE parks(end INTEGER PRIMARY KEY, worker INTEGER, dur INTEGER);"                \
	"CREATE TABLE lost(ts INTEGER PRIMARY KEY, ring INTEGER, count INTEGER);"                  \
	"CREATE TABLE warnings(id INTEGER PRIMARY KEY, ts INTEGER, kind TEXT, task INTEGER, "      \
	"dur INTEGER, detail TEXT, source TEXT, worker INTEGER);"                                  \
	"CREATE INDEX warnings_ts ON warnings(ts);"                                                \
	"CREATE TABLE timers(ts INTEGER PRIMARY KEY, worker INTEGER, count INTEGER NOT NULL, "     \
	"deadline INTEGER NOT NULL);"                                                              \
	"CREATE TABLE io(ts INTEGER PRIMARY KEY, fd INTEGER NOT NULL, bits INTEGER NOT NULL, "     \
	"worker INTEGER);"                                                                         \
	"CREATE TABLE blocking(end INTEGER PRIMARY KEY, job INTEGER NOT NULL, thread INTEGER, "    \
	"dur INTEGER NOT NULL);"

#endif
