/*
 * trace_events.h - the event types written into the per-thread rings
 * (trace_ring.h) of the trace segment (trace_segment.h).
 *
 * This comment is the SPEC of the event payloads, segment ABI 2.2. Every record
 * is {ts, type, a (u32), b (u64)}; ts is the raw tick of the event in the
 * clock of the segment header's calibration. Readers skip types they do not
 * know; new types may be added without a version change (a minor bump).
 *
 * THE RING'S CONTEXT. Every ring has one producer thread at a time (the ring
 * owner table names it). The first record a thread writes into a ring it has
 * claimed is THREAD, saying what the thread is. Events never repeat what the
 * ring's context gives:
 *   - the "current task" of a ring is the task of the last POLL_START on it
 *     not yet closed by its POLL_END (0 outside polls). A SPAWN's parent and
 *     a WAKE's source task are the current task of the ring they are on.
 *   - the worker of a ring is the `a` of its THREAD record (kind WORKER).
 *
 *   type  name          a                                  b
 *   1     SPAWN         spawn site index (the segment's    new task id
 *                       site table), 0xffffffff: none
 *   2     POLL_START    worker index                       task id
 *   3     POLL_END      POLL_* bits below                  task id
 *   4     WAKE          WAKE_* bits below                  woken task id
 *   5     STEAL         victim worker index                tasks stolen
 *   6     PARK          worker index                       0
 *   7     UNPARK        worker index                       0
 *   8     WAKER_CLONE   HOLD_* kind | detail << 8          task id
 *   9     WAKER_DROP    HOLD_* kind | detail << 8          task id
 *   10    INJECT_PUSH   0                                  task id (see below)
 *   11    INJECT_POP    worker index                       task id
 *   12    TASK_DONE     1 aborted (0: see below)           task id
 *   13    BLOCKING_START  0                                job id (per process)
 *   14    BLOCKING_END    0                                job id
 *   15    TIMER_FIRE    timers fired in this batch         deadline of the last
 *                                                          (latest) one, in
 *                                                          CLOCK_MONOTONIC ns,
 *                                                          rounded up to the
 *                                                          wheel's ms
 *   16    IO_READY      fd                                 readiness: 1 read,
 *                                                          2 write, 4 error/hup
 *   17    THREAD        worker index, or 0                 THREAD_* kind
 *   18    INJECT_POPS   worker index                       tasks taken (2.2)
 *
 * INJECT_PUSH is written only where no other record says it (since 2.1): a
 * WAKE carries its queue, and a SPAWN on a ring whose thread is not a worker
 * went to the injection queue; what is left is a spawn from a worker of
 * another runtime. A worker that takes tasks from the injection queue writes
 * one INJECT_POPS per batch (since 2.2; the task ids are in the POLL_STARTs
 * that follow); 2.1 writers wrote an INJECT_POP per task taken instead.
 *
 * A task that completes is done at its POLL_END with the ready bit: since
 * segment ABI 2.1 no TASK_DONE follows it (2.0 writers sent TASK_DONE with
 * a = 0 after it; readers take either). TASK_DONE (a = 1) marks an abort,
 * which has no ready poll.
 *
 * POLL_END bits (a): bit 0 ready (the future completed); bit 1 the poll ended
 * by cancellation; bits 2..7 (since 2.2) the task's self-wakes by reference
 * during this poll (a yield, a budget stop), up to 63; bits 8..31 polls of
 * runtime-provided futures that spent the budget (a forced yield) - 0 or 1
 * today.
 *
 * SELF-WAKES (since 2.2). A task that wakes itself by reference during its
 * own poll on a worker is counted in its POLL_END (bits 2..7) and gets no
 * WAKE record: such a wake's source is the ring's current task, it queues
 * nowhere until the poll ends, and it moves no waker, so the record would
 * say nothing the POLL_END cannot (a third of a yielding task's records).
 * Readers that want one WAKE per wake expand the count into WAKE records
 * (a = SELF, source TASK, queue NONE) stamped with the POLL_END's ts, just
 * before it; console/stream.c does. A self-wake by value (it consumes a
 * waker) still has its WAKE record. 2.1 writers wrote a WAKE record for
 * every self-wake and left bits 2..7 zero.
 *
 * WAKE bits (a):
 *   bit 0      self-wake: the woken task is the ring's current task
 *   bit 1      by value: the waker was consumed (counts as a waker drop)
 *   bits 2..4  source kind (WAKE_SRC_*): TASK (the ring's current task; 0
 *              when none), REACTOR (detail: the fd), TIMER, BLOCKING (the
 *              pool finished a job), FOREIGN (a thread that is not a worker:
 *              the ring's owner), JOIN (a task completed: the current task
 *              is the one that completed)
 *   bits 5..6  queue (WAKE_Q_*): NONE (already scheduled, running or done:
 *              the wake only counted), LIFO, LOCAL, INJECT
 *   bits 8..31 detail (the fd for REACTOR; 0xffffff when it does not fit)
 *
 * WAKER_CLONE / WAKER_DROP holder kinds (who keeps the clone): USER (code
 * outside the runtime), REACTOR (detail: fd), TIMER, CHANNEL (mpsc, oneshot),
 * SYNC (notify, mutex, semaphore), JOIN (a join handle awaiting the task),
 * BLOCKING (the pool's completion), SELECT (combinators). Outstanding wakers
 * of a task = clones - drops - by-value wakes: a task that is pending with
 * none outstanding and not scheduled can never run again (a lost waker).
 *
 * THREAD kinds (b): WORKER (a: worker index), BLOCKING (a pool thread),
 * FOREIGN (any other thread that woke or spawned a task; a: 0).
 *
 * POLL_START and POLL_END carry the poll's own timestamps (its start is the
 * previous poll's end), so tracing adds no clock read to a poll. WAKE, SPAWN
 * and the waker events from a worker carry the worker's last clock reading
 * (the current poll's start), not a new one: readers must not assume the
 * records of one ring are in strictly increasing ts, only non-decreasing
 * within a poll.
 */
#ifndef SP_TRACE_EVENTS_H
#define SP_TRACE_EVENTS_H

enum {
	SP_EV_SPAWN = 1,
	SP_EV_POLL_START = 2,
	SP_EV_POLL_END = 3,
	SP_EV_WAKE = 4,
	SP_EV_STEAL = 5,
	SP_EV_PARK = 6,
	SP_EV_UNPARK = 7,
	SP_EV_WAKER_CLONE = 8,
	SP_EV_WAKER_DROP = 9,
	SP_EV_INJECT_PUSH = 10,
	SP_EV_INJECT_POP = 11,
	SP_EV_TASK_DONE = 12,
	SP_EV_BLOCKING_START = 13,
	SP_EV_BLOCKING_END = 14,
	SP_EV_TIMER_FIRE = 15,
	SP_EV_IO_READY = 16,
	SP_EV_THREAD = 17,
	SP_EV_INJECT_POPS = 18,
	SP_EV__COUNT,
};

#define SP_SITE_NONE 0xffffffffu

#define SP_POLL_READY 0x1u
#define SP_POLL_CANCELLED 0x2u
#define SP_POLL_BUDGET_SHIFT 8
#define SP_POLL_SELF_SHIFT 2
#define SP_POLL_SELF_MAX 63u

#define SP_WAKE_SELF 0x1u
#define SP_WAKE_BY_VALUE 0x2u
#define SP_WAKE_SRC_SHIFT 2
#define SP_WAKE_SRC_MASK (0x7u << SP_WAKE_SRC_SHIFT)
#define SP_WAKE_Q_SHIFT 5
#define SP_WAKE_Q_MASK (0x3u << SP_WAKE_Q_SHIFT)
#define SP_WAKE_DETAIL_SHIFT 8
#define SP_WAKE_DETAIL_NONE 0xffffffu

enum sp_wake_src {
	SP_WAKE_SRC_TASK = 0,
	SP_WAKE_SRC_REACTOR = 1,
	SP_WAKE_SRC_TIMER = 2,
	SP_WAKE_SRC_BLOCKING = 3,
	SP_WAKE_SRC_FOREIGN = 4,
	SP_WAKE_SRC_JOIN = 5,
};

enum sp_wake_queue {
	SP_WAKE_Q_NONE = 0,
	SP_WAKE_Q_LIFO = 1,
	SP_WAKE_Q_LOCAL = 2,
	SP_WAKE_Q_INJECT = 3,
};

enum sp_hold_kind {
	SP_HOLD_USER = 0,
	SP_HOLD_REACTOR = 1,
	SP_HOLD_TIMER = 2,
	SP_HOLD_CHANNEL = 3,
	SP_HOLD_SYNC = 4,
	SP_HOLD_JOIN = 5,
	SP_HOLD_BLOCKING = 6,
	SP_HOLD_SELECT = 7,
};

enum sp_thread_kind {
	SP_THREAD_WORKER = 1,
	SP_THREAD_BLOCKING = 2,
	SP_THREAD_FOREIGN = 3,
};

#endif /* SP_TRACE_EVENTS_H */
