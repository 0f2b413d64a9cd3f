/*
 * usdt.h - USDT probes, provider `spindle`, at the runtime's event points
 * (the same points as the ring events of trace_events.h, with arguments a
 * tracer can use without the segment: ids, worker indexes, pointers to the
 * spawn site's static strings, durations in ns).
 *
 *   SP_USDT(name, args...)   fire probe spindle:name if a tracer is attached
 *
 * Every probe has a semaphore (spindle_<name>_semaphore, defined in usdt.c in
 * the .probes section as sys/sdt.h documents); a tracer attached to the probe
 * makes it non-zero. Not attached, a point costs one load and a predictable
 * branch, and its arguments are not computed. Without <sys/sdt.h> at build
 * time (SP_HAVE_SDT undefined) or with -DSP_USDT=OFF, SP_USDT is nothing.
 *
 * THE PROBES (arguments arg0, arg1, ... in bpftrace):
 *   spawn          task id, parent task id (0: none), name (char *),
 *                  file (char *), line
 *   poll_start     task id, worker index, poll function (address)
 *   poll_end       task id, worker index, POLL_* bits (bit 0 ready, bit 1
 *                  cancelled, bits 8..: budget yields), duration in ns
 *   wake           task id, by value (1: the waker was consumed), self (1:
 *                  the task woke itself), source kind (SP_WAKE_SRC_*: 0 task,
 *                  1 reactor, 2 timer, 3 blocking, 4 foreign, 5 join), queue
 *                  (SP_WAKE_Q_*: 0 none, 1 lifo, 2 local, 3 inject), detail
 *                  (the fd for reactor)
 *   waker_clone    task id, holder (SP_HOLD_* kind | detail << 8)
 *   waker_drop     task id, holder
 *   steal          thief worker index, victim worker index, tasks stolen
 *   park           worker index
 *   unpark         worker index
 *   task_done      task id, cancelled (0 completed, 1 cancelled or aborted)
 *   blocking_start job id (per process)
 *   blocking_end   job id
 *   inject_push    task id (a remote spawn or wake onto the injection queue)
 *   inject_pop     worker index, task id
 *   timer_fire     timers fired in this batch, deadline (ms of the runtime's
 *                  clock) of the last one
 *   io_ready       fd, readiness (1 read, 2 write, 4 error/hup)
 *   worker_start   worker index, thread id, worker slot (registry) address
 *                  (0: none)
 *   worker_stop    worker index
 *
 * Strings are passed as pointers: bpftrace reads them with str(argN).
 *
 * A probe's operands are inline asm inputs held in registers at the probe:
 * in a hot function with many live values they can cost a callee-saved
 * register (a push and a pop per call) even while not attached. There, test
 * SP_USDT_ENABLED(name) inline and fire from a cold out-of-line helper.
 */
#ifndef SP_USDT_H
#define SP_USDT_H

#define SP__USDT_PROBES(X)                                                     \
	X(spawn)                                                               \
	X(poll_start)                                                          \
	X(poll_end)                                                            \
	X(wake)                                                                \
	X(waker_clone)                                                         \
	X(waker_drop)                                                          \
	X(steal)                                                               \
	X(park)                                                                \
	X(unpark)                                                              \
	X(task_done)                                                           \
	X(blocking_start)                                                      \
	X(blocking_end)                                                        \
	X(inject_push)                                                         \
	X(inject_pop)                                                          \
	X(timer_fire)                                                          \
	X(io_ready)                                                            \
	X(worker_start)                                                        \
	X(worker_stop)

#if defined(SP_HAVE_SDT)

#define _SDT_HAS_SEMAPHORES 1
#define SDT_USE_VARIADIC 1
#include <sys/sdt.h>

#define SP__USDT_DECLARE(name)                                                 \
	extern unsigned short spindle_##name##_semaphore                       \
		__attribute__((visibility("hidden")));
SP__USDT_PROBES(SP__USDT_DECLARE)
#undef SP__USDT_DECLARE

/* Non-zero while a tracer is attached to spindle:name. */
#define SP_USDT_ENABLED(name)                                                  \
	__builtin_expect(__atomic_load_n(&spindle_##name##_semaphore,          \
					 __ATOMIC_RELAXED) != 0, 0)

#define SP_USDT(name, ...)                                                     \
	do {                                                                   \
		if (SP_USDT_ENABLED(name))                                     \
			STAP_PROBEV(spindle, name, __VA_ARGS__);               \
	} while (0)

#else /* no sys/sdt.h: no probes */

/* The arguments stay referenced (never evaluated): no unused warnings. */
static inline void sp__usdt_none(int unused, ...)
{
	(void)unused;
}
#define SP_USDT_ENABLED(name) 0
#define SP_USDT(name, ...)                                                     \
	do {                                                                   \
		if (0)                                                         \
			sp__usdt_none(0, __VA_ARGS__);                         \
	} while (0)

#endif

#endif /* SP_USDT_H */
