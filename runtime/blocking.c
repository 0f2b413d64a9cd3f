/*
 * blocking.c - the blocking pool: plain C functions that may block run on
 * pool threads and are awaited through an sp_blocking future (Tokio's
 * blocking pool: threads on demand up to a maximum, a FIFO queue beyond it,
 * a keep-alive for idle threads).
 *
 * ONE POOL per process, in static storage (never freed, so a thread may
 * touch it at any time, even during exit). It is set up at first use
 * (pthread_once: the condition clock, the environment, the exit handler).
 *
 * JOBS. The job is the future: nothing is allocated per job. Its state word:
 *   INIT     initialised; the pool has not seen it.
 *   QUEUED   linked on the pool's queue (head..tail, FIFO).
 *   RUNNING  a pool thread took it off the queue and runs fn.
 *   DONE     terminal: fn returned, the job was dropped while queued, or it
 *            could not be submitted (out says why).
 *
 * THE JOB'S LOCK is the pool mutex: the state transitions, the queue links
 * and the stored waker are all under it. A pool thread completes a job and
 * takes the next one in one critical section, and a job is touched twice in
 * its life (submit, completion) plus by spurious polls, so one lock costs
 * less than a lock per job and a queue lock besides.
 *
 * INVARIANTS (under the lock)
 *   - A job is on the queue iff its state is QUEUED; nqueued counts them.
 *   - The waker slot is non-empty only while the job is QUEUED or RUNNING.
 *     Whoever moves the job to DONE first moves the waker out, and wakes or
 *     drops it after unlocking.
 *   - A pool thread touches a job only from its QUEUED -> RUNNING transition
 *     to its store of DONE, which is its last access: poll and drop read
 *     DONE without the lock and the owner may free the job right after.
 *     That access is safe against a concurrent drop because the drop of a
 *     RUNNING job waits (on `done`) until it is DONE; the drop of a QUEUED
 *     job unlinks it, so no thread will take it.
 *   - Threads: nalive exist; nthreads of them count against max (the others
 *     are retiring); nbusy run a fn; the threads waiting in idle_wait are
 *     exactly nidle + nnotify + nretire, where nnotify and nretire are
 *     tokens handed to waiting threads (take a job, exit) and nidle the
 *     waiting threads nobody claimed. Tokens make a claim exact: a submit
 *     that claims an idle thread takes it out of nidle at once, so a second
 *     submit does not count on the same thread; spurious and timed-out
 *     wakeups take a token if one is there, whichever thread it was meant
 *     for, since waiting threads are interchangeable.
 *
 * A submit claims an idle thread, else starts one while below max, else
 * leaves the job for a busy thread (each pops the queue after its job).
 *
 * SHUTDOWN at exit (atexit, registered at first use, so it runs before the
 * leak checker): new jobs complete with SP_ESHUTDOWN, idle threads exit and
 * the handler waits for them; busy ones are left to finish, then exit, and
 * queued jobs stay queued (their futures never complete; the process is
 * going away).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "trace_events.h"
#include "usdt.h"

#define DEFAULT_MAX_THREADS 64u
#define DEFAULT_KEEP_ALIVE_NS (10ull * 1000000000ull)

enum { JOB_INIT = 0, JOB_QUEUED = 1, JOB_RUNNING = 2, JOB_DONE = 3 };

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;   /* idle threads wait for a token (CLOCK_MONOTONIC) */
	pthread_cond_t done;   /* drops of running jobs wait for their DONE */
	pthread_cond_t exited; /* the exit handler waits for idle threads */
	sp_blocking *head, *tail;
	uint32_t nqueued;
	uint32_t max;
	uint64_t keep_alive_ns;
	uint32_t nalive, nthreads, nbusy;
	uint32_t nidle, nnotify, nretire;
	uint32_t drop_waiters;
	bool shutdown;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_at_exit(void);

static void pool_setup(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&pool.done, NULL);
	pthread_cond_init(&pool.exited, NULL);
	pthread_mutex_lock(&pool.lock);
	pool.max = DEFAULT_MAX_THREADS;
	const char *e = getenv("SPINDLE_BLOCKING_THREADS");
	if (e && *e) {
		char *end;
		unsigned long v = strtoul(e, &end, 10);
		if (*end == '\0' && v >= 1 && v <= 1000000)
			pool.max = (uint32_t)v;
	}
	pool.keep_alive_ns = DEFAULT_KEEP_ALIVE_NS;
	pthread_mutex_unlock(&pool.lock);
	atexit(pool_at_exit);
}

static void pool_init(void)
{
	pthread_once(&pool_once, pool_setup);
}

/* ---- the queue (under the lock) ------------------------------------------------ */

static void q_push(sp_blocking *b)
{
	b->next = NULL;
	b->prev = pool.tail;
	if (pool.tail)
		pool.tail->next = b;
	else
		pool.head = b;
	pool.tail = b;
	pool.nqueued++;
}

static void q_unlink(sp_blocking *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		pool.head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		pool.tail = b->prev;
	b->next = b->prev = NULL;
	pool.nqueued--;
}

/* ---- threads --------------------------------------------------------------------- */

static void *pool_main(void *unused);

/* Start a pool thread with the asynchronous signals blocked (the synchronous
 * ones stay deliverable: blocking them would turn a fault into a silent
 * kill, without the sanitizers' report). 0 or a negative errno. */
static int spawn_locked(void)
{
	static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL,
					   SIGTRAP, SIGSYS, SIGABRT};
	sigset_t all, old;
	sigfillset(&all);
	for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
		sigdelset(&all, sync_signals[i]);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t th;
	int rc = pthread_create(&th, &attr, pool_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc)
		return -rc;
	pool.nalive++;
	pool.nthreads++;
	return 0;
}

/* Hand a take-a-job token to an idle thread, if there is one. */
static bool claim_idle_locked(void)
{
	if (!pool.nidle)
		return false;
	pool.nidle--;
	pool.nnotify++;
	pthread_cond_signal(&pool.work);
	return true;
}

static struct timespec mono_at(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
				 .tv_nsec = (long)(ns % 1000000000u)};
}

enum { IDLE_WORK, IDLE_EXIT };

/* Wait as an idle thread. IDLE_WORK: go and take a job. IDLE_EXIT: leave;
 * the thread has already been taken out of nthreads. */
static int idle_wait_locked(void)
{
	uint64_t since = sp__mono_ns();
	pool.nidle++;
	for (;;) {
		/* Recomputed at every wakeup: set_keep_alive applies at once. */
		struct timespec ts = mono_at(since + pool.keep_alive_ns);
		int rc = pthread_cond_timedwait(&pool.work, &pool.lock, &ts);
		if (pool.nretire) {
			pool.nretire--; /* the setter took us out of nidle, nthreads */
			return IDLE_EXIT;
		}
		if (pool.nnotify) {
			pool.nnotify--;
			return IDLE_WORK;
		}
		if (pool.shutdown || rc == ETIMEDOUT) {
			pool.nidle--;
			if (!pool.shutdown && pool.head)
				return IDLE_WORK; /* not expected: serve it anyway */
			pool.nthreads--;
			return IDLE_EXIT;
		}
		/* spurious, or a token another waiter took: wait on */
	}
}

/* Run b, which the caller just took off the queue; returns with the lock
 * held again, b no longer touched. */
static void run_locked(sp_blocking *b)
{
	/* ordering: relaxed; only DONE is read without the lock. */
	atomic_store_explicit(&b->state, JOB_RUNNING, memory_order_relaxed);
	sp_blocking_fn fn = b->fn;
	void *arg = b->arg;
	pool.nbusy++;
	pthread_mutex_unlock(&pool.lock);

	uint64_t job = 0;
	if (SP__UNLIKELY(sp__tracing()) || SP_USDT_ENABLED(blocking_start) ||
	    SP_USDT_ENABLED(blocking_end)) {
		static _Atomic uint64_t jobs;
		/* ordering: relaxed; a unique number only. */
		job = atomic_fetch_add_explicit(&jobs, 1, memory_order_relaxed) + 1;
		sp__trace_emit(SP_EV_BLOCKING_START, 0, job); /* nothing if off */
		SP_USDT(blocking_start, job);
	}
	fn(arg);
	if (job) {
		sp__trace_emit(SP_EV_BLOCKING_END, 0, job);
		SP_USDT(blocking_end, job);
	}

	pthread_mutex_lock(&pool.lock);
	pool.nbusy--;
	sp_waker w = b->waker;
	b->waker = (sp_waker){0};
	/* ordering: release publishes fn's writes (through arg) and the empty
	 * waker slot to the lock-free DONE loads in poll and drop, after which
	 * the owner may free b: this store is our last access to it. */
	atomic_store_explicit(&b->state, JOB_DONE, memory_order_release);
	if (pool.drop_waiters)
		pthread_cond_broadcast(&pool.done);
	if (!sp_waker_is_empty(&w)) {
		pthread_mutex_unlock(&pool.lock);
		sp__tls.wake_src = SP_WAKE_SRC_BLOCKING;
		sp_waker_wake(&w);
		sp__tls.wake_src = 0;
		pthread_mutex_lock(&pool.lock);
	}
}

static void *pool_main(void *unused)
{
	(void)unused;
	pthread_setname_np(pthread_self(), "spindle-blk");
	sp__tls.thread_kind = SP_THREAD_BLOCKING;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		if (pool.shutdown || pool.nthreads > pool.max) {
			/* Over the limit (lowered while we were busy or held a
			 * token): a token we consumed may have been a queued
			 * job's only claim; pass it on. */
			if (!pool.shutdown && pool.head)
				claim_idle_locked();
			pool.nthreads--;
			break;
		}
		sp_blocking *b = pool.head;
		if (b) {
			q_unlink(b);
			run_locked(b);
			continue;
		}
		if (idle_wait_locked() == IDLE_EXIT)
			break;
	}
	pool.nalive--;
	if (pool.shutdown)
		pthread_cond_broadcast(&pool.exited);
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

static void pool_at_exit(void)
{
	pthread_mutex_lock(&pool.lock);
	pool.shutdown = true;
	pthread_cond_broadcast(&pool.work);
	/* Idle threads exit at once; busy ones (possibly the caller, when a
	 * fn calls exit) are not waited for. */
	while (pool.nalive > pool.nbusy)
		pthread_cond_wait(&pool.exited, &pool.lock);
	pthread_mutex_unlock(&pool.lock);
}

/* ---- the future ------------------------------------------------------------------- */

/* Queue b (INIT) and see that a thread comes for it; returns its new state. */
static uint32_t submit_locked(sp_blocking *b)
{
	int err = 0;
	if (!b->fn) {
		err = SP_EINVAL;
	} else if (pool.shutdown) {
		err = SP_ESHUTDOWN;
	} else {
		q_push(b);
		/* ordering: relaxed; under the lock, which the pool threads
		 * take before they look at the queue. */
		atomic_store_explicit(&b->state, JOB_QUEUED, memory_order_relaxed);
		if (claim_idle_locked() || pool.nthreads >= pool.max)
			return JOB_QUEUED; /* a claimed thread or a busy one takes it */
		err = spawn_locked();
		if (!err || pool.nthreads > 0)
			return JOB_QUEUED;
		q_unlink(b); /* no thread at all could take it */
		err = SP_EAGAIN;
	}
	b->out = err;
	/* ordering: relaxed; the submitting thread owns b and sets out itself. */
	atomic_store_explicit(&b->state, JOB_DONE, memory_order_relaxed);
	return JOB_DONE;
}

static sp_poll blocking_poll(sp_future *f, sp_context *cx)
{
	sp_blocking *b = (sp_blocking *)f;
	/* ordering: acquire pairs with the pool thread's release of DONE:
	 * fn's writes are visible from here on. */
	if (atomic_load_explicit(&b->state, memory_order_acquire) == JOB_DONE)
		return SP_READY;
	if (!sp_coop_proceed(cx))
		return SP_PENDING;
	pool_init();
	pthread_mutex_lock(&pool.lock);
	/* ordering: relaxed; every store of the state is made under the lock. */
	uint32_t s = atomic_load_explicit(&b->state, memory_order_relaxed);
	if (s == JOB_INIT)
		s = submit_locked(b);
	if (s != JOB_DONE)
		sp__waker_store_as(&b->waker, cx, SP_HOLD_BLOCKING);
	pthread_mutex_unlock(&pool.lock);
	return s == JOB_DONE ? SP_READY : SP_PENDING;
}

static void blocking_drop(sp_future *f)
{
	sp_blocking *b = (sp_blocking *)f;
	/* ordering: acquire, as in poll: after DONE the pool is done with b. */
	uint32_t s = atomic_load_explicit(&b->state, memory_order_acquire);
	if (s == JOB_INIT || s == JOB_DONE)
		return;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		/* ordering: relaxed, under the lock (as every store). */
		s = atomic_load_explicit(&b->state, memory_order_relaxed);
		if (s == JOB_QUEUED) {
			q_unlink(b); /* not started: it never will */
			/* ordering: relaxed; no pool thread can reach b now. */
			atomic_store_explicit(&b->state, JOB_DONE, memory_order_relaxed);
			break;
		}
		if (s != JOB_RUNNING)
			break;
		/* fn may write through arg into the memory being dropped: wait
		 * until it returned. */
		pool.drop_waiters++;
		pthread_cond_wait(&pool.done, &pool.lock);
		pool.drop_waiters--;
	}
	sp_waker w = b->waker; /* non-empty only if it was still queued */
	b->waker = (sp_waker){0};
	pthread_mutex_unlock(&pool.lock);
	sp_waker_drop(&w);
}

void sp_blocking_init(sp_blocking *b, sp_blocking_fn fn, void *arg)
{
	b->base = (sp_future){.poll = blocking_poll, .drop = blocking_drop, .name = "blocking"};
	b->out = 0;
	b->fn = fn;
	b->arg = arg;
	b->next = b->prev = NULL;
	b->waker = (sp_waker){0};
	atomic_init(&b->state, JOB_INIT);
}

int sp_spawn_blocking(sp_blocking *b, sp_blocking_fn fn, void *arg)
{
	sp_blocking_init(b, fn, arg);
	pool_init();
	pthread_mutex_lock(&pool.lock);
	uint32_t s = submit_locked(b);
	pthread_mutex_unlock(&pool.lock);
	return s == JOB_DONE ? b->out : 0;
}

/* ---- settings and stats ---------------------------------------------------------- */

int sp_blocking_set_max_threads(unsigned n)
{
	if (n == 0)
		return SP_EINVAL;
	pool_init();
	pthread_mutex_lock(&pool.lock);
	pool.max = n;
	if (pool.nthreads > n) {
		/* Retire idle threads now; busy ones leave after their job. */
		uint32_t k = pool.nthreads - n;
		if (k > pool.nidle)
			k = pool.nidle;
		pool.nidle -= k;
		pool.nthreads -= k;
		pool.nretire += k;
		if (k)
			pthread_cond_broadcast(&pool.work);
	} else {
		/* Raised: start threads for queued jobs nobody is coming for. */
		uint32_t want = pool.nqueued > pool.nnotify ? pool.nqueued - pool.nnotify : 0;
		while (want-- && pool.nthreads < pool.max && !pool.shutdown && !spawn_locked()) {
		}
	}
	pthread_mutex_unlock(&pool.lock);
	return 0;
}

void sp_blocking_set_keep_alive(uint64_t ns)
{
	pool_init();
	pthread_mutex_lock(&pool.lock);
	pool.keep_alive_ns = ns ? ns : DEFAULT_KEEP_ALIVE_NS;
	pthread_cond_broadcast(&pool.work); /* idle threads recompute their deadline */
	pthread_mutex_unlock(&pool.lock);
}

void sp_blocking_pool_stats(sp_blocking_stats *out)
{
	pool_init();
	pthread_mutex_lock(&pool.lock);
	out->threads = pool.nalive;
	out->idle = pool.nidle + pool.nnotify;
	out->busy = pool.nbusy;
	out->queued = pool.nqueued;
	out->max_threads = pool.max;
	pthread_mutex_unlock(&pool.lock);
}
