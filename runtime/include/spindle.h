/*
 * spindle.h - the one public header of the spindle async runtime.
 *
 * THE MODEL
 *
 * A future is a struct whose first member is an `sp_future` header. Polling it
 * asks "are you done yet?": the poll function returns SP_READY when the future
 * has finished (its result, if any, is in the future's own `out` member) or
 * SP_PENDING when it cannot make progress yet. Futures are lazy: creating and
 * initialising one runs nothing; only a poll does work.
 *
 * THE WAKER CONTRACT
 *
 * Every poll receives an `sp_context` carrying a borrowed waker. A future that
 * returns SP_PENDING must first have arranged for that waker (or a clone of it)
 * to be woken when the future can make progress: it clones the waker and
 * stores the clone where an event source (a thread, the reactor, a channel)
 * will call sp_waker_wake() on it. A future that returns SP_PENDING without
 * doing so is never polled again (the "lost wakeup" bug the console and the
 * report flag). Waking a task that is currently being polled schedules one
 * more poll after the current one returns. Any number of wakes before the
 * next poll coalesce into one poll.
 *
 * OWNERSHIP AND MOVES
 *
 * A future may be moved (memcpy'd) until its first poll, never after: once
 * polled it may hold pointers into itself or have handed out pointers to
 * itself (a registered waker slot). sp_spawn copies the future into the task
 * allocation before the first poll. A future's drop function releases what the
 * future holds (inner futures, wakers, fds); it never frees the future's own
 * memory and leaves the `out` member intact.
 *
 * ERRORS
 *
 * Functions return 0 or a negative errno value (SP_EINVAL == -EINVAL);
 * sp_strerror() names it. Misuse that can be detected cheaply returns an
 * error; misuse that would otherwise corrupt memory aborts the process with a
 * message naming the broken invariant ("spindle: invariant broken: ..."):
 *
 *   NULL future or NULL runtime to sp_spawn*, sp_block_on     -> SP_EINVAL
 *   spawn after sp_runtime_shutdown() started                 -> SP_ESHUTDOWN
 *   awaiting or joining a join handle a second time           -> status SP_EINVAL
 *   sp_spawn() outside any runtime thread                     -> SP_ENORUNTIME
 *   an async fn polled again after it returned SP_READY       -> abort
 *   waking a task through a waker that was already dropped    -> abort (the
 *     task's reference count underflows; detected, not silent)
 *   sp_block_on() called from inside a worker                 -> SP_EDEADLK
 */
#ifndef SPINDLE_H
#define SPINDLE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SP_VERSION_MAJOR 0
#define SP_VERSION_MINOR 1
#define SP_VERSION_PATCH 0

/* ---- errors ------------------------------------------------------------ */

#define SP_ERRNO_MAP(XX)                                                       \
	XX(EINVAL, "invalid argument")                                         \
	XX(ENOMEM, "out of memory")                                            \
	XX(ESHUTDOWN, "runtime is shutting down")                              \
	XX(ECANCELED, "task was cancelled")                                    \
	XX(EDEADLK, "would deadlock: blocking call from a runtime thread")     \
	XX(EAGAIN, "resource temporarily unavailable")                         \
	XX(EPIPE, "channel closed or peer gone")                               \
	XX(ETIMEDOUT, "timed out")                                             \
	XX(EBADF, "file descriptor closed or not registered")                  \
	XX(ECONNREFUSED, "connection refused")                                 \
	XX(ECONNRESET, "connection reset by peer")

#define SP_ENORUNTIME (-ESRCH) /* sp_spawn() on a thread with no current runtime */

enum {
#define SP__XX(name, msg) SP_##name = -name,
	SP_ERRNO_MAP(SP__XX)
#undef SP__XX
};

/* The message for a (negative) spindle or system error code; never NULL. */
const char *sp_strerror(int err);
/* The symbolic name ("SP_EINVAL") of an error code; "SP_EUNKNOWN" if none. */
const char *sp_err_name(int err);

/* ---- futures, contexts, wakers ------------------------------------------ */

typedef enum sp_poll {
	SP_PENDING = 0,
	SP_READY = 1,
} sp_poll;

typedef struct sp_future sp_future;
typedef struct sp_context sp_context;
typedef struct sp_waker sp_waker;
typedef struct sp_waker_vtable sp_waker_vtable;

typedef sp_poll (*sp_poll_fn)(sp_future *self, sp_context *cx);
typedef void (*sp_drop_fn)(sp_future *self);

/* The header every future starts with. */
struct sp_future {
	/* public: set by the future's init function */
	sp_poll_fn poll;    /* required */
	sp_drop_fn drop;    /* optional: releases what the future holds */
	const char *name;   /* optional: shown by the tools */
	/* private: used by the SP_ASYNC macros and sp_future_drop() */
	sp_future *awaiting; /* the inner future an async fn is suspended on */
	int resume;          /* async fn resume point: 0 start, -1 finished */
};

/* A waker is a value: a vtable and a data pointer (like Rust's RawWaker). */
struct sp_waker_vtable {
	sp_waker (*clone)(const void *data);
	void (*wake)(const void *data);        /* consumes the waker */
	void (*wake_by_ref)(const void *data); /* does not */
	void (*drop)(const void *data);
};

struct sp_waker {
	const sp_waker_vtable *vtable; /* NULL: the empty waker (no-op) */
	const void *data;
};

/* Passed to every poll. Runtime-owned; futures read it only through the
 * functions below. */
struct sp_context {
	const sp_waker *waker;  /* borrowed for the duration of the poll */
	/* private */
	void *task;             /* the task being polled, NULL in sp_block_on */
	uint32_t budget;        /* cooperative budget left in this poll */
};

static inline const sp_waker *sp_context_waker(sp_context *cx)
{
	return cx->waker;
}

/* Clone: the new waker must eventually be woken (sp_waker_wake) or dropped. */
static inline sp_waker sp_waker_clone(const sp_waker *w)
{
	if (!w->vtable)
		return *w;
	return w->vtable->clone(w->data);
}

/* Wake and consume: *w is the empty waker afterwards. */
static inline void sp_waker_wake(sp_waker *w)
{
	sp_waker v = *w;
	w->vtable = NULL;
	w->data = NULL;
	if (v.vtable)
		v.vtable->wake(v.data);
}

static inline void sp_waker_wake_by_ref(const sp_waker *w)
{
	if (w->vtable)
		w->vtable->wake_by_ref(w->data);
}

/* Drop without waking: *w is the empty waker afterwards. */
static inline void sp_waker_drop(sp_waker *w)
{
	sp_waker v = *w;
	w->vtable = NULL;
	w->data = NULL;
	if (v.vtable)
		v.vtable->drop(v.data);
}

static inline int sp_waker_is_empty(const sp_waker *w)
{
	return w->vtable == NULL;
}

/* True when both wakers would wake the same task (so a stored clone can be
 * kept instead of being replaced, as Rust's Waker::will_wake). */
static inline int sp_waker_will_wake(const sp_waker *a, const sp_waker *b)
{
	return a->vtable == b->vtable && a->data == b->data;
}

/* Replace *slot by a clone of the context's waker unless it already wakes the
 * same task. The usual first step of returning SP_PENDING. */
void sp_waker_store(sp_waker *slot, sp_context *cx);

static inline sp_poll sp_future_poll(sp_future *f, sp_context *cx)
{
	return f->poll(f, cx);
}

/* Drop a future: first the inner future an async fn is suspended on (if any),
 * then the future's own drop function. Idempotent. */
void sp__future_drop_slow(sp_future *f);
static inline void sp_future_drop(sp_future *f)
{
	if (f->awaiting || f->drop)
		sp__future_drop_slow(f);
}

/* ---- cooperative budget -------------------------------------------------- */

/* Runtime-provided futures call this at the top of their poll; when the task
 * has used its budget for this poll it returns 0 after arranging a wake, and
 * the future must return SP_PENDING. Each call that returns 1 spends one unit.
 * Without a budget (sp_block_on's root future) it always returns 1. */
int sp_coop_proceed(sp_context *cx);

/* ---- async functions ----------------------------------------------------- */

/*
 * An async function keeps its locals in a frame struct whose first member is
 * `sp_future base` (and, if it produces a value, a member named `out`). Its
 * poll function reads top to bottom; SP_AWAIT suspends at a point and resumes
 * there at the next poll:
 *
 *   struct fetch { sp_future base; int out; int id; struct sp_sleep nap; };
 *
 *   static sp_poll fetch_poll(sp_future *f, sp_context *cx)
 *   {
 *           struct fetch *self = (struct fetch *)f;
 *           SP_ASYNC_BEGIN(f, cx);
 *           my_delay_init(&self->nap, 100);
 *           SP_AWAIT(&self->nap);         // suspends until it is ready
 *           SP_RETURN(self->id * 2);      // self->out = ...; ready
 *           SP_ASYNC_END();
 *   }
 *
 * Rules (the same ones rustc enforces for async fn): locals that live across
 * an SP_AWAIT must be frame members; SP_AWAIT cannot be used inside a switch
 * statement of the function itself; the awaited future must be initialised
 * first and live in the frame. After its SP_READY, SP_AWAIT drops the inner
 * future (its `out` stays readable). Dropping the outer future while it is
 * suspended drops the inner future it waits on.
 */
#define SP_ASYNC_BEGIN(f, cx)                                                  \
	sp_future *const sp__af = (f);                                         \
	sp_context *const sp__cx = (cx);                                       \
	(void)sp__cx;                                                          \
	switch (sp__af->resume) {                                              \
	case 0:

#define SP_AWAIT(inner)                                                        \
	do {                                                                   \
		sp__af->awaiting = (sp_future *)(inner);                       \
		sp__af->resume = __LINE__;                                     \
		/* fallthrough */                                              \
	case __LINE__:                                                         \
		if (sp__af->awaiting->poll(sp__af->awaiting, sp__cx) ==        \
		    SP_PENDING)                                                \
			return SP_PENDING;                                     \
		sp_future_drop(sp__af->awaiting);                              \
		sp__af->awaiting = NULL;                                       \
	} while (0)

/* Return SP_PENDING once after waking ourselves: let other tasks run. */
#define SP_YIELD()                                                             \
	do {                                                                   \
		sp__af->resume = __LINE__;                                     \
		sp_waker_wake_by_ref(sp__cx->waker);                           \
		return SP_PENDING;                                             \
	case __LINE__:;                                                        \
	} while (0)

/* Store the result in self->out (the frame pointer must be named `self`). */
#define SP_RETURN(value)                                                       \
	do {                                                                   \
		self->out = (value);                                           \
		sp__af->resume = -1;                                           \
		return SP_READY;                                               \
	} while (0)

#define SP_RETURN_VOID()                                                       \
	do {                                                                   \
		sp__af->resume = -1;                                           \
		return SP_READY;                                               \
	} while (0)

#define SP_ASYNC_END()                                                         \
	sp__af->resume = -1;                                                   \
	return SP_READY;                                                       \
	case -1:                                                               \
	default:                                                               \
		sp__panic("async fn polled after it returned SP_READY");      \
	}                                                                      \
	return SP_READY

void sp__panic(const char *invariant) __attribute__((noreturn, cold));

/* ---- runtime ------------------------------------------------------------- */

typedef struct sp_runtime sp_runtime;

typedef enum sp_flavor {
	SP_MULTI_THREAD = 0,   /* N workers with work stealing */
	SP_CURRENT_THREAD = 1, /* everything runs inside sp_block_on's thread */
} sp_flavor;

typedef struct sp_runtime_opts {
	sp_flavor flavor;
	unsigned workers;           /* 0: SPINDLE_WORKERS or the CPU count */
	const char *name;           /* thread name prefix, default "spindle-w" */
	int trace;                  /* event rings: 1 on, -1 off, 0 SPINDLE_TRACE=1 */
} sp_runtime_opts;

/* Create a runtime; opts may be NULL for the defaults. Workers start now. */
int sp_runtime_new(sp_runtime **out, const sp_runtime_opts *opts);

/* Stop accepting spawns, stop the workers, drop every remaining future
 * exactly once, then free the runtime. Safe with tasks still pending. Must not
 * be called from a runtime thread (returns SP_EDEADLK), nor while another
 * thread is inside sp_block_on on this runtime (undefined). */
int sp_runtime_free(sp_runtime *rt);

/* Begin shutdown without freeing: spawns fail with SP_ESHUTDOWN afterwards. */
void sp_runtime_shutdown(sp_runtime *rt);

unsigned sp_runtime_workers(const sp_runtime *rt);

/* The runtime of the calling thread (a worker or inside sp_block_on). */
sp_runtime *sp_runtime_current(void);

/* Run fut to completion on the calling thread; tasks it spawns run on the
 * workers (or, for SP_CURRENT_THREAD, on this thread). fut stays the caller's
 * memory; on return it has been polled to SP_READY and dropped. */
int sp_block_on(sp_runtime *rt, sp_future *fut);

/* ---- tasks ---------------------------------------------------------------- */

/* Where and under which name a task was spawned: one static per call site. */
typedef struct sp_spawn_site {
	const char *name; /* static-lifetime string */
	const char *file;
	uint32_t line;
	uint32_t out_off;  /* offset of `out` in the future, 0 if none */
	uint32_t out_size; /* size of `out`, 0 if none */
} sp_spawn_site;

/* A join handle: await it like a future (its output goes to `dst` if set),
 * or sp_join_handle_detach() it, or sp_join_handle_abort() the task. It must
 * be awaited to completion, detached, or dropped with sp_future_drop(). */
typedef struct sp_join_handle {
	sp_future base;
	/* read-only after SP_READY */
	int status;  /* 0 completed, SP_ECANCELED aborted, SP_EINVAL reused */
	/* public: where to copy the task's output (site.out_size bytes) */
	void *dst;
	/* private */
	void *task;
	sp_waker registered;
} sp_join_handle;

/* Spawn a copy of the future (size bytes) as a task. jh may be NULL (the
 * task is detached). rt NULL means the current thread's runtime. */
int sp__spawn(sp_runtime *rt, sp_join_handle *jh, const sp_future *fut, size_t size,
	      const sp_spawn_site *site);

#define SP__SITE(nm, outoff, outsize)                                          \
	({                                                                     \
		static const sp_spawn_site sp__site = {                        \
			(nm), __FILE__, __LINE__, (outoff), (outsize)};        \
		&sp__site;                                                     \
	})

/* Spawn `fut` (an lvalue future struct) on the current runtime. `name` must
 * be a string literal: the spawn site (name, file, line) is a static of the
 * call site. For a name chosen at run time, define your own static
 * sp_spawn_site and call sp__spawn. */
#define SP_SPAWN(name, jh, fut)                                                \
	sp__spawn(NULL, (jh), &(fut).base, sizeof(fut), SP__SITE(name, 0, 0))

/* Same, and the join handle's dst receives the future's `out` member. */
#define SP_SPAWN_OUT(name, jh, fut)                                            \
	sp__spawn(NULL, (jh), &(fut).base, sizeof(fut),                        \
		  SP__SITE(name, offsetof(__typeof__(fut), out),               \
			   sizeof((fut).out)))

/* Spawn on an explicit runtime, from any thread. */
#define SP_RUNTIME_SPAWN(rt, name, jh, fut)                                    \
	sp__spawn((rt), (jh), &(fut).base, sizeof(fut), SP__SITE(name, 0, 0))
#define SP_RUNTIME_SPAWN_OUT(rt, name, jh, fut)                                \
	sp__spawn((rt), (jh), &(fut).base, sizeof(fut),                        \
		  SP__SITE(name, offsetof(__typeof__(fut), out),               \
			   sizeof((fut).out)))

/* Let the task run on unobserved; frees the handle's reference. */
void sp_join_handle_detach(sp_join_handle *jh);

/* Cancel the task: its future is dropped now if it is idle, else at its next
 * suspension point. Awaiting the handle then gives status SP_ECANCELED (or 0 if
 * it completed first). The handle stays valid and must still be awaited,
 * detached or dropped. */
void sp_join_handle_abort(sp_join_handle *jh);

/* Id of the task behind the handle (0 after it was consumed). */
uint64_t sp_join_handle_id(const sp_join_handle *jh);

/* Id of the task being polled on this thread, 0 if none. */
uint64_t sp_task_current_id(void);

/* Block the calling (non-runtime) thread until the task finishes; copy its
 * output to jh->dst. Returns the handle's status. SP_EDEADLK on a worker. */
int sp_join_handle_wait(sp_join_handle *jh);

/* ---- yield_now and oneshot (the runtime-provided leaf futures) ----------- */

/* Await to return SP_PENDING once and be rescheduled behind other tasks. */
typedef struct sp_yield {
	sp_future base;
	int yielded;
} sp_yield;
void sp_yield_init(sp_yield *y);

/* A single-value channel. The shared state lives in the receiver, which must
 * not move after sp_oneshot_init; send is from any thread, at most once. */
typedef struct sp_oneshot {
	_Atomic uint32_t state; /* private */
	sp_waker rx_waker;       /* private */
	uint64_t value;          /* the value sent */
} sp_oneshot;

void sp_oneshot_init(sp_oneshot *ch);
/* Send a value; wakes the receiver. 0, or SP_EPIPE if the receiver is gone or
 * a value was already sent. */
int sp_oneshot_send(sp_oneshot *ch, uint64_t value);
/* Mark the sender gone without a value: the receiver gets SP_EPIPE. */
void sp_oneshot_close(sp_oneshot *ch);

/* The receiving future: out = 0 and ch->value set, or SP_EPIPE. */
typedef struct sp_oneshot_recv {
	sp_future base;
	int out;
	sp_oneshot *ch;
} sp_oneshot_recv;
void sp_oneshot_recv_init(sp_oneshot_recv *r, sp_oneshot *ch);

/* ---- introspection (always on) ------------------------------------------- */

/* Per-task counters, as sp_runtime_tasks() reports them. Times in ns. */
typedef struct sp_task_info {
	uint64_t id, parent_id;
	const sp_spawn_site *site;
	uint32_t state;         /* SP_TASK_* bits */
	uint32_t live_wakers;   /* waker clones not yet dropped */
	uint64_t polls;
	uint64_t busy_ns;       /* inside poll */
	uint64_t scheduled_ns;  /* woken, waiting for a worker */
	uint64_t idle_ns;       /* not woken */
	uint64_t wakes;
	uint64_t self_wakes;
	uint64_t waker_clones;
	uint64_t waker_drops;
	uint64_t budget_yields; /* polls that ended because the budget ran out */
} sp_task_info;

enum {
	SP_TASK_RUNNING = 1,
	SP_TASK_COMPLETE = 2,
	SP_TASK_NOTIFIED = 4,
	SP_TASK_JOIN_INTEREST = 8,
	SP_TASK_CANCELLED = 32,
};

/* Call fn for every live task (a consistent-enough snapshot: each task's
 * counters are read without stopping it). Returns the number visited. A task
 * spawned from a thread that is not one of the runtime's workers is listed
 * from its first poll on (until then it is only queued). */
size_t sp_runtime_tasks(sp_runtime *rt, void (*fn)(const sp_task_info *, void *), void *arg);

/* Per-worker counters, published in batches by each worker. */
typedef struct sp_worker_stats {
	uint64_t polls;
	uint64_t steals_in;      /* tasks this worker stole */
	uint64_t steal_ops;
	uint64_t stolen_from;    /* tasks others stole from it */
	uint64_t parks;
	uint64_t busy_ns;
	uint64_t overflows;      /* local queue overflowed to the injection queue */
	uint64_t lifo_polls;
	uint64_t inject_pops;    /* tasks taken from the injection queue */
	uint32_t local_queue_depth;
	uint32_t tid;
	uint64_t inject_ops;     /* ...in this many takes (one lock hold each) */
} sp_worker_stats;

int sp_runtime_worker_stats(sp_runtime *rt, unsigned worker, sp_worker_stats *out);

/* Nanoseconds since an arbitrary epoch, from the runtime's clock. */
uint64_t sp_now_ns(void);

#include "spindle/io.h"
#include "spindle/net.h"
#include "spindle/sync.h"
#include "spindle/blocking.h"
#include "spindle/signal.h"

#ifdef __cplusplus
}
#endif
#endif /* SPINDLE_H */
