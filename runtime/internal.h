/*
 * internal.h - cross-file internals of the runtime (sp__ names).
 *
 * Who owns what:
 *   sp_runtime  - created by sp_runtime_new, owns the workers, the injection
 *                 queue, the idle coordinator and the owned-task shards.
 *   sp__worker  - one per worker thread (one for the SP_CURRENT_THREAD flavour,
 *                 driven by sp_block_on). Its `local` queue is pushed and
 *                 popped only by its own thread and stolen from by others; its
 *                 lifo slot and batch counters are touched only by its thread.
 *   sp__task    - one allocation: this header followed by the future frame.
 *                 Shared by the owned list, the join handle, queued
 *                 notifications and wakers through the reference count in
 *                 the state word (task.c explains every bit).
 */
#ifndef SP_INTERNAL_H
#define SP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spindle.h"

#define SP__CACHELINE 64
#define SP__LIKELY(x) __builtin_expect(!!(x), 1)
#define SP__UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline void sp__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Abort with a message naming the broken invariant. */
#define SP__ASSERT(cond, what)                                                 \
	do {                                                                   \
		if (SP__UNLIKELY(!(cond)))                                     \
			sp__panic(what);                                       \
	} while (0)

/* ---- clock (clock.c) ----------------------------------------------------- */

/* Raw timestamp: TSC on x86-64 (constant, nonstop here), else CLOCK_MONOTONIC
 * nanoseconds. One read costs ~10 ns (TSC) vs ~25 ns (vDSO). */
static inline uint64_t sp__ticks(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
#else
	extern uint64_t sp__mono_ns(void);
	return sp__mono_ns();
#endif
}

/* Calibration: ns = (ticks - tick0) * mult >> 32 + ns0 (CLOCK_MONOTONIC). */
struct sp__clock {
	uint64_t tick0, ns0;
	uint64_t mult;    /* ns per tick, 32.32 fixed point */
	uint64_t hz;      /* ticks per second */
};
extern struct sp__clock sp__clock;
void sp__clock_init(void);
uint64_t sp__mono_ns(void);
static inline uint64_t sp__ticks_to_ns(uint64_t dt)
{
	return (uint64_t)(((unsigned __int128)dt * sp__clock.mult) >> 32);
}

/* ---- tasks (task.c) ------------------------------------------------------- */

/* State word layout (64 bits), see task.c for the transitions:
 *   bits 0..5   flags
 *   bits 6..11  remote schedules in flight (count, see SP__SCHED_ONE)
 *   bits 12..15 allocation class (alloc.c), constant after spawn
 *   bits 16..35 reference count (20 bits)
 *   bits 36..63 wake count (28 bits, wrapping: the tools take deltas) */
#define SP__RUNNING ((uint64_t)1 << 0)
#define SP__COMPLETE ((uint64_t)1 << 1)
#define SP__NOTIFIED ((uint64_t)1 << 2)
#define SP__JOIN_INTEREST ((uint64_t)1 << 3)
#define SP__JOIN_WAKER ((uint64_t)1 << 4)
#define SP__CANCELLED ((uint64_t)1 << 5)
#define SP__FLAGS_MASK ((uint64_t)0x3f)
/* Threads other than this runtime's workers that are between notifying the
 * task and their last access to the runtime (injection push, unpark); each
 * holds an extra reference meanwhile. sp_runtime_free waits for zero. Several
 * can be in flight: the task may run and go idle again before the first
 * pusher returns. */
#define SP__SCHED_ONE ((uint64_t)1 << 6)
#define SP__SCHED_MASK ((uint64_t)0x3f << 6)
#define SP__CLASS_SHIFT 12
#define SP__CLASS(s) ((unsigned)((s) >> SP__CLASS_SHIFT) & 0xfu)
#define SP__REF_SHIFT 16
#define SP__REF_ONE ((uint64_t)1 << SP__REF_SHIFT)
#define SP__REF_MASK ((uint64_t)0xfffff << SP__REF_SHIFT)
#define SP__REFS(s) (((s)&SP__REF_MASK) >> SP__REF_SHIFT)
#define SP__WAKE_SHIFT 36
#define SP__WAKE_ONE ((uint64_t)1 << SP__WAKE_SHIFT)

typedef struct sp__task sp__task;

/*
 * The task header: 128 bytes, two cache lines. The first line is what the
 * scheduler touches on every poll and wake; the second holds the counters the
 * tools read. The future frame follows at offset 128.
 */
struct sp__task {
	/* line 1: scheduling */
	_Atomic uint64_t state;          /* flags | refs | wakes, see above */
	sp_runtime *rt;                  /* owning runtime (read-only) */
	uint64_t id;                     /* unique, never reused (read-only) */
	uint64_t parent_id;              /* task that spawned it, 0 if none */
	const sp_spawn_site *site;       /* name, file:line, out offset/size */
	_Atomic uint32_t owned_seg;      /* owned shard (12 bits, SP__UNOWNED) and
	                                    task table slot (20, SP__NO_SEG_SLOT) */
	uint32_t owned_index;
	sp__task *done_next;             /* owned.c: completed elsewhere */
	_Atomic uint32_t waker_clones;   /* cumulative (relaxed; see waker.c) */
	_Atomic uint32_t waker_drops;    /* cumulative */
	/* line 2: counters, written by the thread holding RUNNING, or by the
	 * thread that performs the idle -> notified transition (which orders
	 * with the poller through the state word's acq_rel CAS). */
	sp_waker join_waker;             /* valid while JOIN_WAKER is set */
	uint64_t polls;
	uint64_t busy_ticks;             /* inside poll */
	uint64_t sched_ticks;            /* notified, waiting for a worker */
	uint64_t idle_ticks;             /* pending, not notified */
	uint64_t last_ticks;             /* last poll end, or wake time */
	uint32_t self_wakes;
	uint32_t budget_yields;
	/* the future frame follows (malloc alignment, 16) */
};

_Static_assert(sizeof(struct sp__task) == 128, "task header is two cache lines");

static inline sp_future *sp__task_future(sp__task *t)
{
	return (sp_future *)((char *)t + sizeof(sp__task));
}

/* Outcomes of the state transitions (task.c). */
typedef enum {
	SP__TR_OK,
	SP__TR_OK_NOTIFIED, /* idle transition found a wake during the poll */
	SP__TR_CANCELLED,   /* the task must be cancelled instead of polled */
	SP__TR_FAILED,      /* not runnable (complete/running): drop the ref */
	SP__TR_DEALLOC,     /* the last reference went away: free it */
	SP__TR_SUBMIT,      /* a wake that must schedule the task */
	SP__TR_NOTHING,
} sp__transition;

sp__transition sp__task_transition_to_running(sp__task *t);
sp__transition sp__task_transition_to_idle(sp__task *t, uint32_t self_wakes);
uint64_t sp__task_transition_to_complete(sp__task *t, bool cancelled, uint32_t self_wakes);
void sp__task_ref_inc(sp__task *t);
/* Drop one reference; frees the task when it was the last. */
void sp__task_ref_dec(sp__task *t);
/* Drop n references at once. */
void sp__task_ref_dec_n(sp__task *t, unsigned n);
void sp__task_dealloc(sp__task *t);

/* alloc.c: task memory by size class (0: plain malloc). */
unsigned sp__alloc_class(size_t frame);
void *sp__task_alloc(unsigned cls, size_t frame);
void sp__task_free(void *p, unsigned cls);

/* Run one poll of a task popped from a queue (consumes that notification).
 * Called by a worker (worker.c) with its thread-local state set. */
void sp__task_run(sp__task *t);
/* Drop the future of a task this thread holds RUNNING for, complete it as
 * cancelled, and drop extra_refs of the caller's references. */
void sp__task_cancel(sp__task *t, unsigned extra_refs);
/* Runtime shutdown: cancel a task if idle, else mark it cancelled. */
void sp__task_shutdown(sp__task *t);

extern const sp_waker_vtable sp__task_waker_vtable;
void sp__join_handle_init(sp_join_handle *jh, sp__task *t);
void sp__task_info(sp__task *t, sp_task_info *out);

/* Counters written by one thread at a time and read by the tools from any
 * thread: relaxed atomic stores (a plain mov on x86-64), so readers see stale
 * but never torn values and ThreadSanitizer agrees. */
#define SP__BUMP(field, delta) __atomic_store_n(&(field), (field) + (delta), __ATOMIC_RELAXED)

/* ---- local run queue (queue.h) ------------------------------------------- */

#define SP__LOCAL_QUEUE_MAX 256u
/* Tests shrink the local queue (0 = SP__LOCAL_QUEUE_MAX); read at
 * sp_runtime_new. Power of two, 2..256. */
extern unsigned sp__local_queue_cap_override;

/* ---- injection queue (inject.c) ------------------------------------------ */

/* Two mutex-protected rings of task pointers (lanes) that grow by doubling
 * (never shrink), with an atomic total length for the lock-free emptiness
 * check. Lane WOKEN holds tasks that have run before or were already queued
 * on a worker (remote wakes, local-queue overflow); lane NEW holds tasks
 * spawned from outside the workers that have never run. Pops take WOKEN
 * first, except every SP__INJECT_NEW_EVERY-th batch, which starts with NEW,
 * so a burst of new tasks cannot delay work already started (a woken timer
 * waiting behind 100,000 fresh spawns) and a stream of wakes cannot starve
 * new tasks either. */
enum { SP__LANE_WOKEN = 0, SP__LANE_NEW = 1 };
#define SP__INJECT_NEW_EVERY 4
typedef struct sp__inject_lane {
	sp__task **buf;
	size_t cap, head, len; /* under the queue's lock */
} sp__inject_lane;
typedef struct sp__inject {
	pthread_mutex_t lock;
	sp__inject_lane lane[2];
	size_t batches;        /* pops so far, under lock */
	_Atomic size_t nlen;   /* both lanes' length, for readers without the lock */
	bool closed;           /* under lock */
} sp__inject;

int sp__inject_init(sp__inject *q);
void sp__inject_destroy(sp__inject *q);
/* Push n tasks into a lane; false if closed (the caller keeps them). */
bool sp__inject_push_batch(sp__inject *q, sp__task **tasks, size_t n, int lane);
sp__task *sp__inject_pop(sp__inject *q);
/* Pop up to max tasks into out, at most max_new of them from lane NEW, in
 * the lane order above; returns how many. */
size_t sp__inject_pop_n(sp__inject *q, sp__task **out, size_t max, size_t max_new);
void sp__inject_close(sp__inject *q);
static inline bool sp__inject_is_empty(sp__inject *q)
{
	/* ordering: acquire pairs with the release store in push: a reader
	 * that sees the length sees the pushed pointers after taking the lock. */
	return atomic_load_explicit(&q->nlen, memory_order_acquire) == 0;
}

/* ---- parking (park.c) ----------------------------------------------------- */

/* A one-token parker on a futex: unpark before park makes park return at
 * once. Tokio's park.rs states, without the driver case (the reactor comes
 * with the I/O work). */
typedef struct sp__parker {
	_Atomic uint32_t state; /* park.c: empty, parked, notified, parked on driver */
	sp_runtime *rt;         /* whose driver a worker parks on; NULL otherwise */
	uint64_t mark;          /* SP__PARK_MARK for a worker's idle park, else 0 */
} sp__parker;

/*
 * The park mark: a contract with `spindle trace` (probes/starve.h
 * STARVE_PARK_MARK, the same value). A worker that sleeps because it has
 * nothing to do passes this value in an argument the kernel ignores:
 * uaddr2 (r8) of its FUTEX_WAIT, sigsetsize (r9) of its epoll_pwait2 with a
 * NULL sigmask, rdi of the sched_yield of a searching worker's spin (the
 * syscall takes no arguments). The tracer's sched_switch program sees it in the saved
 * registers and skips the switch without a map lookup or a read of the
 * worker's slot, which is most of the cost of tracing a runtime whose
 * workers park and unpark all the time.
 *
 * Invariant: a marked call happens only outside a poll (slot task_id == 0).
 * A worker that blocks inside a poll waits unmarked, so the tracer accounts
 * it. Only the worker loop's park (worker.c park()), the driver's blocking
 * turn under it, the searcher's yield (sp__idle_yield), the park of a
 * thread in sp_block_on (runtime.c; never a worker, so never in a poll)
 * and a futex wake made outside a poll (park.c futex_wake, which checks
 * the calling thread's slot) pass the mark.
 */
#define SP__PARK_MARK 0x7370696e646c6521ull /* "spindle!" */
/* sched_yield() with the park mark: only for a worker outside any poll. */
#define sp__idle_yield() ((void)syscall(SYS_sched_yield, SP__PARK_MARK))

void sp__park(sp__parker *p);
/* Park inside the driver (the caller holds it): epoll_wait for at most
 * timeout_ns (-1: until an event, a timer or an unpark). */
void sp__park_driver(sp__parker *p, sp_runtime *rt, int64_t timeout_ns);
/* sp__park, but back after timeout_ns at the latest. */
void sp__park_timeout(sp__parker *p, int64_t timeout_ns);
void sp__unpark(sp__parker *p);

/* ---- idle coordination (idle.c) ----------------------------------------- */

typedef struct sp__idle {
	/* (num_unparked << 16) | num_searching; see idle.c */
	_Atomic uint32_t state;
	uint32_t num_workers;
	pthread_mutex_t lock; /* guards sleepers */
	uint32_t *sleepers;   /* stack of parked worker indices */
	uint32_t nsleepers;
	bool *is_sleeping;    /* per worker, under lock */
} sp__idle;

int sp__idle_init(sp__idle *idle, uint32_t n);
void sp__idle_destroy(sp__idle *idle);
/* Index of a worker to unpark, or -1 if none should be woken. */
int sp__idle_worker_to_notify(sp__idle *idle);
/* Returns true if the worker was the last searcher. */
bool sp__idle_transition_worker_to_parked(sp__idle *idle, uint32_t index, bool searching);
bool sp__idle_transition_worker_to_searching(sp__idle *idle);
/* Returns true if the worker was the last searcher. */
bool sp__idle_transition_worker_from_searching(sp__idle *idle);
/* After an unpark: true if still parked (spurious wakeup). */
bool sp__idle_is_parked(sp__idle *idle, uint32_t index);
/* Take a parked worker off the sleepers by itself; false if a notifier
 * already did (and counted it as searching). */
bool sp__idle_unpark_worker_by_id(sp__idle *idle, uint32_t index);

/* ---- workers and runtime (worker.c, runtime.c) --------------------------- */

/* Per-worker counters: kept plain by the worker (`batch`), published to
 * `pub` with relaxed stores at park and every maintenance tick (Tokio's
 * batch-then-submit), so the hot path has no atomics. */
#define SP__BATCH_FIELDS(X)                                                    \
	X(polls) X(steals_in) X(steal_ops) X(parks) X(busy_ticks) X(overflows) \
	X(lifo_polls) X(inject_pops) X(inject_ops)
typedef struct sp__batch {
#define SP__X(name) uint64_t name;
	SP__BATCH_FIELDS(SP__X)
#undef SP__X
} sp__batch;
typedef struct sp__batch_pub {
#define SP__X(name) _Atomic uint64_t name;
	SP__BATCH_FIELDS(SP__X)
#undef SP__X
} sp__batch_pub;

/* The "current poll" slot the eBPF tracer reads (registry.c). */
typedef struct sp_worker_slot {
	uint64_t task_id;       /* 0: not in a poll */
	uint64_t poll_start;    /* raw ticks (see registry clock fields) */
	uint64_t poll_fn;       /* address of the future's poll function */
	uint32_t tid;
	uint32_t worker_idx;
	uint64_t poll_seq;      /* polls started by this worker */
	uint64_t runtime_id;
	uint64_t name;          /* address of the task's name (a static string) */
	uint64_t pad[1];
} sp_worker_slot;
_Static_assert(sizeof(sp_worker_slot) == 64, "one cache line per slot");

typedef struct sp__worker sp__worker;
struct sp__worker {
	/* local queue: head packs (steal << 32 | real); tail is owner-written */
	_Atomic uint64_t head __attribute__((aligned(SP__CACHELINE)));
	_Atomic uint32_t tail;
	uint32_t mask;
	sp__task *buf[SP__LOCAL_QUEUE_MAX];
	/* owner-only state */
	sp_runtime *rt __attribute__((aligned(SP__CACHELINE)));
	uint32_t index;
	bool searching;
	bool is_shutdown;
	sp__task *lifo;           /* the task just woken by the running task */
	uint32_t tick;
	uint64_t now;             /* ticks at the last poll end / unpark */
	uint64_t inject_checked;  /* ticks at the last look at the injection queue */
	uint64_t inject_every;    /* GLOBAL_QUEUE_MAX_NS in ticks */
	uint64_t driver_turned;   /* ticks at the last driver turn by this worker */
	uint64_t driver_every;    /* DRIVER_MAX_NS in ticks */
	uint64_t rng;             /* xorshift state for victim choice */
	sp__batch batch;
	sp_worker_slot *slot;
	pthread_t thread;
	uint32_t tid;             /* written once per thread start (relaxed) */
	_Atomic bool thread_active; /* current-thread flavour: a block_on drives it */
	struct sp__ring *ring;    /* this worker's event ring, NULL: tracing off */
	int ring_idx;             /* its index in the segment, -1: none */
	/* shared */
	sp__parker parker __attribute__((aligned(SP__CACHELINE)));
	_Atomic uint64_t stolen_from;
	/* published counters (relaxed stores by the owner, loads by readers) */
	sp__batch_pub pub;
	_Atomic uint32_t pub_depth;
};

/* ---- driver (driver.c, io.c, time.c) ------------------------------------- */

#include "timer_wheel.h"

/* The private view of sp_timer_slot (spindle/io.h). */
typedef struct sp__timer {
	sp__timer_entry entry; /* first: the wheel hands back entry pointers */
	sp_waker waker;        /* under its shard's lock */
	_Atomic uint32_t fired;
	uint32_t armed;        /* 0, or 1 + the shard it was armed in (owner only) */
	sp_runtime *rt;
} sp__timer;

/* One timer wheel and its lock: one per worker, one for the other threads
 * (driver.c, TIMER SHARDS). */
typedef struct sp__timer_shard {
	_Atomic bool lock;	   /* spinlock: guards wheel */
	_Atomic uint64_t next_ms;  /* <= the wheel's next expiration (UINT64_MAX:
				    * none); written under lock, read without */
	sp__timer_wheel wheel;
} __attribute__((aligned(SP__CACHELINE))) sp__timer_shard;

typedef struct sp__driver {
	_Atomic bool needed;              /* set once a timer or fd is used: park in it */
	_Atomic bool owner;               /* try-lock: who turns the driver */
	int epfd, evfd;
	_Atomic uint64_t sleep_until_ms;  /* owner's wake-up (wheel ms); 0: nobody sleeps */
	sp__timer_shard *shards;          /* nshards: workers', then the others' */
	uint32_t nshards;
	uint64_t base_ns;                 /* wheel time 0 */
	_Atomic(sp_async_fd *) release;   /* registrations to free next turn */
} sp__driver;

int sp__driver_init(sp_runtime *rt);
void sp__driver_destroy(sp_runtime *rt);
bool sp__driver_try_lock(sp_runtime *rt);
void sp__driver_unlock(sp_runtime *rt);
void sp__driver_turn(sp_runtime *rt, int64_t timeout_ns);
/* Fire the due timers without the driver (shard locks only); returns how many. */
size_t sp__driver_fire_timers(sp_runtime *rt);
/* For a worker that parks on its futex while another holds the driver: how
 * long it may sleep before a timer is due (ns, >= 0) if the holder is not
 * asleep in epoll_wait to fire it; -1 when the holder will see to it. */
int64_t sp__driver_timer_wait_ns(sp_runtime *rt);
void sp__driver_unpark(sp_runtime *rt);
/* The runtime uses timers or fds from now on: workers park in the driver. */
void sp__driver_need(sp_runtime *rt);
uint64_t sp__driver_now_ms(sp_runtime *rt);
uint64_t sp__driver_deadline_ms(sp_runtime *rt, uint64_t deadline_ns);
bool sp__timer_arm(sp_runtime *rt, sp__timer *tm, uint64_t deadline_ms, sp_context *cx);
void sp__timer_disarm(sp_runtime *rt, sp__timer *tm);
void sp__io_dispatch(void *ptr, uint32_t events);
void sp__io_release_pending(sp_runtime *rt);
void sp__io_release_all(sp_runtime *rt);
/* Ready bits for dir (> 0), 0 after storing the waker, or SP_EBADF. */
int sp__io_poll_ready(sp_async_fd *a, int dir, sp_context *cx, uint64_t *tick);
void sp__io_clear_ready(sp_async_fd *a, int dir, uint64_t tick);
/* References on a registration (io.c): a future holds one while in flight. */
void sp__io_hold(sp_async_fd *a);
void sp__io_put(sp_async_fd *a);
/* The same, idempotent per future: *held records whether it holds one. */
void sp__io_op_hold(sp_async_fd *a, int *held);
void sp__io_op_put(sp_async_fd *a, int *held);
/* net.c: one accept(2) against the listener's readiness (TCP and Unix). */
sp_poll sp__accept_step(sp_async_fd *listener, sp_context *cx, int *fd);

/* Owned-task shards (owned.c): every live task is on one. */
/* owned_shard of a task spawned from a thread that is not a worker of its
 * runtime, until a worker first polls it (owned.c, WHO INSERTS). */
#define SP__UNOWNED 0xfffu

#define SP__OWNED_BITS 12
static inline uint32_t sp__task_owned_shard(const sp__task *t)
{
	/* ordering: relaxed: the shard bits are written once, before the task
	 * is on a shard (insert, under its lock; or at spawn); every later
	 * reader reached the task through a queue or the shard. */
	return atomic_load_explicit(&t->owned_seg, memory_order_relaxed) &
	       ((1u << SP__OWNED_BITS) - 1);
}
/* The table slot bits: read and written only under the task's shard lock
 * (or by shutdown, after the workers were joined). */
static inline uint32_t sp__task_seg_slot(const sp__task *t)
{
	return atomic_load_explicit(&t->owned_seg, memory_order_relaxed) >> SP__OWNED_BITS;
}
static inline void sp__task_set_owned_seg(sp__task *t, uint32_t shard, uint32_t seg_slot)
{
	atomic_store_explicit(&t->owned_seg, shard | seg_slot << SP__OWNED_BITS,
			      memory_order_relaxed);
}

typedef struct sp__owned_shard {
	_Atomic bool lock;  /* sp__spin_lock */
	bool closed;        /* set at shutdown: inserts fail */
	/* Written under the lock, and only by the owner (or by shutdown,
	 * after the workers were joined), so the owner may read them without
	 * it: */
	uint32_t len, cap;  /* slots used (incl. free ones), allocated */
	uint32_t nfree;
	sp__task **slots;   /* NULL where free */
	uint32_t *free_idx; /* stack of free slot indices */
	size_t count;       /* tasks in the shard */
	uint32_t inserts;   /* the owner's: paces the done drain */
	/* completed by non-owners, to remove; its own line, so that their
	 * pushes do not steal the owner's lock line */
	_Atomic(sp__task *) done __attribute__((aligned(SP__CACHELINE)));
} __attribute__((aligned(SP__CACHELINE))) sp__owned_shard;

struct sp_runtime {
	sp_flavor flavor;
	uint32_t nworkers;
	uint64_t id;
	sp__worker *workers;        /* nworkers entries */
	sp__inject inject;
	sp__idle idle;
	bool trace;                 /* workers write events (trace.c) */
	sp_runtime *trace_next;     /* trace.c: the traced runtimes, for the table writer */
	_Atomic bool shutdown;      /* spawns refused once set */
	_Atomic bool stop_workers;
	sp__driver driver;          /* epoll + timers (driver.c) */
	sp__owned_shard *owned;     /* nshards: one per worker */
	uint32_t nshards;
	/* Searchers that may spin before parking (worker.c, search_spin):
	 * 0: every searcher (the default); SPINDLE_SPINNERS=N sets it, to
	 * measure remote-spawn scaling on machines with many cores. */
	uint32_t max_spinners;
	_Atomic uint32_t spinners;  /* searchers spinning now (only with a max) */
	char name[16];
};

/* Thread-local context of the calling thread. */
typedef struct sp__tls_t {
	sp_runtime *rt;          /* current runtime: worker or inside block_on */
	sp__worker *worker;      /* NULL off the workers */
	sp__task *current;       /* task being polled here */
	uint32_t self_notified;  /* wake_by_ref calls on `current` in this poll */
	uint64_t id_next, id_end; /* this thread's block of task ids */
	struct sp__ring *ring;   /* this thread's event ring, NULL: none */
	int ring_tried;          /* a non-worker asked for a ring once */
	int thread_kind;         /* SP_THREAD_* of a non-worker, 0: foreign */
	uint32_t hold;           /* waker holder (SP_HOLD_* | detail << 8) for
				  * clones and drops made by runtime code now */
	uint32_t wake_src;       /* wake source (SP_WAKE_SRC_* | detail << 8)
				  * while the reactor, timers or the blocking
				  * pool wake; 0: the default */
} sp__tls_t;
extern _Thread_local sp__tls_t sp__tls;

/* True when scheduling t from this thread goes through the injection queue
 * (a foreign thread, or a worker of another runtime). */
static inline bool sp__is_remote(sp__task *t)
{
	return !sp__tls.worker || sp__tls.worker->rt != t->rt;
}
/* Remote wake: push to the injection queue's woken lane, notify, then drop
 * the in-flight count and the extra reference the caller took with it. */
void sp__schedule_remote(sp__task *t);
/* A new task from a thread that is not one of its runtime's workers: into the
 * injection queue's new lane, then notify. false: the queue is closed
 * (shutdown), nothing was queued. The caller still holds the in-flight count
 * and its reference, and drops them (sp__schedule_remote_done). */
bool sp__spawn_remote(sp__task *t);
void sp__schedule_remote_done(sp__task *t);
/* Shutdown, workers stopped: drop a queued task's notification reference;
 * a task never polled (SP__UNOWNED) is cancelled first (its future dropped). */
void sp__task_drop_queued(sp__task *t);

/* Schedule a notified task (the caller passes its notification reference).
 * is_yield: the task yielded, it goes behind the others (never to the LIFO
 * slot). */
void sp__schedule(sp__task *t, bool is_yield);
void sp__worker_run_loop(sp__worker *w);
void sp__worker_init(sp__worker *w, sp_runtime *rt, uint32_t index, uint32_t cap);
void sp__worker_publish(sp__worker *w);
void sp__runtime_notify_parked(sp_runtime *rt);
/* A new task id: global, never reused, from this thread's block (refilled
 * out of line, a block at a time). */
uint64_t sp__runtime_next_id_block(void);
static inline uint64_t sp__runtime_next_task_id(void)
{
	if (SP__UNLIKELY(sp__tls.id_next == sp__tls.id_end))
		return sp__runtime_next_id_block();
	return sp__tls.id_next++;
}
int sp__owned_insert(sp_runtime *rt, sp__task *t);
/* Remove a completed task; drops the owned reference and extra_refs more. */
void sp__owned_remove(sp__task *t, unsigned extra_refs);
int sp__owned_init(sp_runtime *rt);
void sp__owned_drain(sp__worker *w);
void sp__owned_close(sp_runtime *rt);
void sp__owned_cancel_all(sp_runtime *rt);
void sp__owned_destroy(sp_runtime *rt);
void sp__owned_table_refresh(sp_runtime *rt);
/* Spinlocks (owned shards, timer wheels, fd registrations): held for a few
 * stores, by one thread at a time in the common case. The uncontended take
 * and the release are inline; waiting is out of line (owned.c). */
void sp__spin_lock_slow(_Atomic bool *l);
static inline void sp__spin_lock(_Atomic bool *l)
{
	/* ordering: acquire on taking the lock. */
	if (SP__LIKELY(!atomic_exchange_explicit(l, true, memory_order_acquire)))
		return;
	sp__spin_lock_slow(l);
}
static inline void sp__spin_unlock(_Atomic bool *l)
{
	atomic_store_explicit(l, false, memory_order_release);
}

/* trace.c. SP__EMIT needs trace_ring.h and trace_events.h, which need this
 * header: the .c files with event points include them after it. */
struct sp__segment *sp__trace_segment(void);
bool sp__trace_wanted(const sp_runtime_opts *o);
void sp__trace_worker_start(sp__worker *w);
void sp__trace_worker_stop(sp__worker *w);
/* Set once the process's trace segment exists (relaxed loads: a thread that
 * sees it late only misses its first events). */
extern _Atomic bool sp__trace_enabled;
#define SP__NO_SEG_SLOT 0xfffffu
struct sp__ring *sp__trace_ring_slow(void);
/* This thread's ring: a worker's, or one claimed for a pool or foreign
 * thread on first use; NULL with tracing off (one load and a branch). */
static inline struct sp__ring *sp__trace_ring(void)
{
	struct sp__ring *r = sp__tls.ring;
	if (SP__LIKELY(r != NULL) ||
	    SP__LIKELY(!atomic_load_explicit(&sp__trace_enabled, memory_order_relaxed)))
		return r;
	return sp__trace_ring_slow();
}
/* A spawn site's index in the segment's site table: the thread's last site
 * inline (a loop or a chain spawns from one site over and over: a compare
 * and a load), else a small direct-mapped cache per thread (code spawns from
 * a handful of sites, often in turn), else the table; trace.c. Only with the
 * segment up (a ring exists). */
#define SP__SITE_CACHE 16
typedef struct sp__site_ent {
	const sp_spawn_site *site;
	uint32_t idx;
} sp__site_ent;
extern _Thread_local sp__site_ent sp__site_last;
uint32_t sp__trace_site_slow(const sp_spawn_site *site);
static inline uint32_t sp__trace_site(const sp_spawn_site *site)
{
	if (SP__LIKELY(sp__site_last.site == site))
		return sp__site_last.idx;
	return sp__trace_site_slow(site);
}
/* The tick an event of this thread carries: a worker's last reading (no
 * clock read), else a new one. */
static inline uint64_t sp__ev_ticks(void)
{
	sp__worker *w = sp__tls.worker;
	return w ? w->now : sp__ticks();
}
/* Cold halves of the event points (trace.c); called only with tracing on. */
void sp__trace_task_abort(sp__task *t);
/* The task table (trace.c, TASK TABLE): a traced runtime is listed for the
 * table's writer thread from creation to free; the writer enters and
 * refreshes the tasks of every owned shard, under the shard's lock, when a
 * reader asks; a task leaving its shard gives its slot back (under the same
 * lock, from owned.c). */
void sp__trace_runtime_add(sp_runtime *rt);
void sp__trace_runtime_remove(sp_runtime *rt);
void sp__trace_table_write(sp__task *t);
void sp__trace_table_forget(sp__task *t);
void sp__trace_emit(uint32_t type, uint32_t a, uint64_t b);
void sp__trace_worker_stats(sp__worker *w, uint32_t depth, uint32_t inject);
static inline bool sp__tracing(void)
{
	return atomic_load_explicit(&sp__trace_enabled, memory_order_relaxed);
}
/* Runtime code that keeps or gives up a task's waker names itself, so the
 * WAKER_CLONE / WAKER_DROP events say who holds each waker (SP_HOLD_* |
 * detail << 8; trace_events.h). Two thread-local stores when tracing is off. */
static inline void sp__waker_store_as(sp_waker *slot, sp_context *cx, uint32_t hold)
{
	uint32_t saved = sp__tls.hold;
	sp__tls.hold = hold;
	sp_waker_store(slot, cx);
	sp__tls.hold = saved;
}
static inline sp_waker sp__waker_clone_as(const sp_waker *w, uint32_t hold)
{
	uint32_t saved = sp__tls.hold;
	sp__tls.hold = hold;
	sp_waker c = sp_waker_clone(w);
	sp__tls.hold = saved;
	return c;
}
static inline void sp__waker_drop_as(sp_waker *w, uint32_t hold)
{
	uint32_t saved = sp__tls.hold;
	sp__tls.hold = hold;
	sp_waker_drop(w);
	sp__tls.hold = saved;
}
/* An event point: one branch when tracing is off. ts is a tick the caller
 * already has (no clock read here). */
#define SP__EMIT(w, ts, type, a, b)                                            \
	do {                                                                   \
		if (SP__UNLIKELY((w)->ring != NULL))                           \
			sp__ring_emit_at((w)->ring, (ts), (type), (a), (b));   \
	} while (0)

/* registry.c */
sp_worker_slot *sp__slot_claim(void);
void sp__slot_release(sp_worker_slot *s);

#endif /* SP_INTERNAL_H */
