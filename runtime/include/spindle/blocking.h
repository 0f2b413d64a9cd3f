/*
 * spindle/blocking.h - run blocking C functions on a thread pool and await
 * them (included by spindle.h). Tokio's spawn_blocking, without allocation.
 *
 *   static void slow_read(void *arg)          // may block: read(2), usleep,
 *   {                                         // a database call
 *           struct req *r = arg;
 *           r->n = read(r->fd, r->buf, sizeof(r->buf));
 *   }
 *   ...
 *   sp_blocking_init(&self->job, slow_read, &self->req);
 *   SP_AWAIT(&self->job);                     // the task waits, the worker
 *   use(self->req.n);                         // runs other tasks meanwhile
 *
 * THE POOL is process-wide: one pool serves every runtime (and callers with
 * no runtime). Threads are started on demand, at most a maximum at a time
 * (default 64; the environment variable SPINDLE_BLOCKING_THREADS read at
 * first use; sp_blocking_set_max_threads), named "spindle-blk", and exit
 * after being idle for the keep-alive time (10 s). When every thread is busy
 * jobs wait in a FIFO queue. Pool threads run with the asynchronous signals
 * blocked (so SIGINT, SIGTERM, ... are never delivered to them; see
 * spindle/signal.h), belong to no runtime (sp_runtime_current() is NULL, so
 * fn may call sp_block_on), and are stopped at process exit: idle ones exit,
 * busy ones are left to finish (or not) while the process goes away.
 *
 * THE FUTURE. An sp_blocking is the job: its queue node and stored waker live
 * in it, so it is caller storage like every future here (usually a member of
 * the awaiting frame). It may be moved until it is submitted, never after.
 * fn's own result goes wherever fn writes it (through arg); those writes are
 * visible to the awaiting task once the future is ready.
 *
 * CANCELLATION. Dropping the future before fn started takes the job off the
 * queue: fn never runs. Dropping it while fn runs BLOCKS THE DROPPING THREAD
 * UNTIL fn RETURNS (a worker, when a task is aborted or its runtime freed):
 * fn usually writes through arg into the very frame being dropped, so
 * detaching it would be a use-after-free. A fn that may block forever should
 * therefore be interruptible by the program (a timeout, a pipe to close).
 * Dropping it after fn returned is free.
 */
#ifndef SPINDLE_BLOCKING_H
#define SPINDLE_BLOCKING_H

#include <stdint.h>

typedef void (*sp_blocking_fn)(void *arg);

typedef struct sp_blocking {
	sp_future base;
	/* 0: fn ran and returned. fn did not run: SP_ESHUTDOWN (submitted
	 * after the pool shut down at exit), SP_EAGAIN (no pool thread could
	 * be started), SP_EINVAL (fn is NULL). */
	int out;
	/* private: the job (runtime/blocking.c) */
	sp_blocking_fn fn;
	void *arg;
	struct sp_blocking *next, *prev; /* the pool's queue, under its lock */
	sp_waker waker;			 /* under the pool's lock */
	_Atomic uint32_t state;
} sp_blocking;

/* Initialise; nothing runs yet. The job is submitted at the first poll and
 * the future is ready when fn has returned. */
void sp_blocking_init(sp_blocking *b, sp_blocking_fn fn, void *arg);

/* Initialise and submit now, from any thread (runtime or not): fn may start
 * before the future is first polled, which lets one task start several jobs
 * and then await them in turn. b must not move afterwards, and must be
 * awaited (or polled to ready) or dropped like any future. Returns 0, or
 * b->out when the job could not be submitted (the future is then ready). */
int sp_spawn_blocking(sp_blocking *b, sp_blocking_fn fn, void *arg);

/* The most pool threads at a time (n >= 1; 0 is SP_EINVAL). Lowering it
 * retires idle threads at once and busy ones when their job returns; jobs
 * already running are not interrupted. Returns 0. */
int sp_blocking_set_max_threads(unsigned n);

/* How long an idle pool thread waits for a job before it exits (default
 * 10 s; 0 restores the default). Applies to threads already idle too. */
void sp_blocking_set_keep_alive(uint64_t ns);

/* A snapshot of the pool. */
typedef struct sp_blocking_stats {
	uint32_t threads;     /* pool threads that exist */
	uint32_t idle;	      /* waiting for a job, or woken for one */
	uint32_t busy;	      /* running a job's fn */
	uint32_t queued;      /* jobs waiting for a thread */
	uint32_t max_threads; /* the current limit */
} sp_blocking_stats;

void sp_blocking_pool_stats(sp_blocking_stats *out);

#endif /* SPINDLE_BLOCKING_H */
