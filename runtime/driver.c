/*
 * driver.c - the I/O and timer driver: one epoll instance, an eventfd to
 * interrupt it, and the timer wheel, per runtime.
 *
 * WHO DRIVES. The driver has no thread of its own. A worker about to park
 * tries to take it (`owner`, a try-lock): the one that gets it sleeps in
 * epoll_wait (parker state PARKED_DRIVER), the others on their futex. So one
 * idle worker waits for I/O and timers and the rest cost nothing. A busy
 * worker also turns the driver without blocking (timeout 0) once every
 * DRIVER_MAX_NS of polling (worker.c), so I/O and timers cannot starve behind
 * compute. Wakes issued from a turn run on the turning worker:
 * they land in its LIFO slot and local queue like any other wake.
 *
 * TIMERS WITHOUT THE DRIVER. Firing timers needs only the wheels' locks, so
 * a busy worker that finds the driver taken fires the due ones itself, and a
 * worker
 * parking on its futex while the holder is awake (in a turn, or preempted in
 * one) sleeps only until the next deadline. With more runnable threads than
 * CPUs the holder can lose its CPU for 10-20 ms in the middle of a turn;
 * timers no longer wait for it.
 *
 * INTERRUPTING. sp__driver_unpark() writes the eventfd; a turn drains it. A
 * new timer earlier than the deadline the owner sleeps until
 * (`sleep_until_ms`: 0 while nobody sleeps in epoll_wait, UINT64_MAX while
 * the owner sleeps with no timer) interrupts it too, so the sleep is
 * recomputed; a timer armed while the owner is awake costs no syscall (that
 * was a third of the timer benchmark).
 *
 * TIME. The wheel counts milliseconds since `base_ns`. A deadline is rounded
 * up to the next millisecond and an entry fires when the wheel has passed it,
 * so a timer never fires early; epoll_pwait2's nanosecond timeout wakes the
 * owner right at the millisecond boundary, so it is seldom late by more than
 * the scheduling delay.
 *
 * TIMER SHARDS. Each worker arms its timers in a wheel of its own, and the
 * threads that are not this runtime's workers share one more, each wheel
 * under its own spinlock. With one wheel for all, 100,000 sleeps armed in a
 * burst kept its lock held a fifth of the time, and a worker preempted while
 * holding it (three runnable threads on two CPUs) stopped every timer, and
 * every worker arming one, for 2-4 ms, several times a run. A timer stays in
 * the shard it was armed in (`armed` says which) until it fires or is
 * dropped. A firer fires its own shard, then each other shard whose lock is
 * free, so the timers of a busy or preempted worker still fire. `next_ms`, a
 * lower bound of a shard's next expiration kept under its lock, lets firers
 * skip a shard with nothing due without touching its lock, and gives the
 * driver its sleep without taking any.
 *
 * LOCKS. `owner` (try-lock, never waited on) serializes turns; a shard's
 * `lock` (a spinlock) guards its wheel for inserts, removals and the advance:
 * short sections, never held across epoll_wait or a wake. A pthread mutex here
 * put arming workers to sleep behind each advance. Registrations (io.c) have
 * their own locks.
 */

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "trace_events.h"
#include "usdt.h"

#define EVENTS_PER_TURN 256 /* libuv polls up to 1024; a turn repeats if full */

int sp__driver_init(sp_runtime *rt)
{
	sp__driver *d = &rt->driver;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0)
		return -errno;
	d->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->evfd < 0) {
		int err = -errno;
		close(d->epfd);
		return err;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->evfd, &ev) < 0) {
		int err = -errno;
		close(d->evfd);
		close(d->epfd);
		return err;
	}
	atomic_init(&d->owner, false);
	atomic_init(&d->needed, false);
	atomic_init(&d->sleep_until_ms, 0); /* nobody sleeps in the driver */
	atomic_init(&d->release, NULL);
	d->base_ns = sp_now_ns();
	d->nshards = rt->nworkers + 1;
	d->shards = aligned_alloc(SP__CACHELINE, sizeof(*d->shards) * d->nshards);
	if (!d->shards) {
		close(d->evfd);
		close(d->epfd);
		return SP_ENOMEM;
	}
	for (uint32_t i = 0; i < d->nshards; i++) {
		atomic_init(&d->shards[i].lock, false);
		atomic_init(&d->shards[i].next_ms, UINT64_MAX);
		sp__wheel_init(&d->shards[i].wheel, 0);
	}
	return 0;
}

void sp__driver_destroy(sp_runtime *rt)
{
	sp__driver *d = &rt->driver;
	sp__io_release_all(rt);
	close(d->evfd);
	close(d->epfd);
	free(d->shards);
	d->shards = NULL;
}

bool sp__driver_try_lock(sp_runtime *rt)
{
	/* ordering: acquire, so this turn sees everything the last one did. */
	return !atomic_load_explicit(&rt->driver.owner, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&rt->driver.owner, true, memory_order_acquire);
}

void sp__driver_unlock(sp_runtime *rt)
{
	atomic_store_explicit(&rt->driver.owner, false, memory_order_release);
}

/*
 * A runtime that never used a timer or an fd has nothing for the driver to
 * watch: its idle workers park on their futexes, which is cheaper to wake
 * than epoll_wait plus an eventfd write (chained_spawn and the spawn
 * benchmarks pay one wake-up per burst), and busy workers skip the periodic
 * non-blocking turn. The first timer or fd flips `needed` for good and
 * unparks every worker, so that an idle one comes back to park in the driver
 * (the parker's token covers a worker that was just about to sleep).
 */
void sp__driver_need(sp_runtime *rt)
{
	sp__driver *d = &rt->driver;
	/* ordering: seq_cst, against park()'s load: a worker that saw false
	 * and parked on its futex gets the unpark below. */
	if (atomic_load_explicit(&d->needed, memory_order_seq_cst) ||
	    atomic_exchange_explicit(&d->needed, true, memory_order_seq_cst))
		return;
	for (uint32_t i = 0; i < rt->nworkers; i++)
		sp__unpark(&rt->workers[i].parker);
}

void sp__driver_unpark(sp_runtime *rt)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is saturated, a wakeup is pending anyway. */
	ssize_t r = write(rt->driver.evfd, &one, sizeof(one));
	(void)r;
}

uint64_t sp__driver_now_ms(sp_runtime *rt)
{
	return (sp_now_ns() - rt->driver.base_ns) / 1000000u;
}

/* ---- timers ------------------------------------------------------------------ */

/* Round a deadline up to wheel milliseconds: never early. */
uint64_t sp__driver_deadline_ms(sp_runtime *rt, uint64_t deadline_ns)
{
	uint64_t base = rt->driver.base_ns;
	if (deadline_ns <= base)
		return 0;
	return (deadline_ns - base + 999999u) / 1000000u;
}

/*
 * Firing: under a shard's lock its wheel hands out up to a burst of due
 * entries; each timer's waker moves into the burst's buffer on the firing
 * thread's stack (the timer may be dropped, and freed, as soon as the lock is
 * released), and the wakes happen after unlocking, so tasks arming timers
 * never wait behind a burst of wakes. No allocation.
 *
 * Any worker may fire, not only the driver's holder: a holder preempted in
 * the middle of a turn (3 runnable threads on 2 CPUs: 10-20 ms here) would
 * otherwise hold every timer back with it. Two firing workers take disjoint
 * entries (a wheel hands each out once, under its lock).
 */
#define FIRE_BURST 64

struct fire_ctx {
	size_t n;
	uint64_t last;		     /* the latest deadline fired (wheel ms) */
	sp_waker buf[FIRE_BURST]; /* the burst's wakers, moved out of their timers */
};

static void fire_one(sp__timer_entry *e, void *arg)
{
	struct fire_ctx *fc = arg;
	sp__timer *tm = (sp__timer *)e;
	atomic_store_explicit(&tm->fired, 1, memory_order_release);
	if (e->deadline > fc->last)
		fc->last = e->deadline;
	fc->buf[fc->n++] = tm->waker;
	tm->waker = (sp_waker){0};
}

/* Wake one burst of fired timers (the shard's lock released). */
static void wake_fired(sp__driver *d, struct fire_ctx *fc, uint64_t now)
{
	/* Each wake starts with a cache miss on a task's state word: issue
	 * them all at once rather than one after another. */
	for (size_t i = 0; i < fc->n; i++)
		if (fc->buf[i].vtable == &sp__task_waker_vtable)
			__builtin_prefetch(fc->buf[i].data, 1, 3);
	if ((SP__UNLIKELY(sp__tracing()) || SP_USDT_ENABLED(wake) || SP_USDT_ENABLED(timer_fire))) {
		/* b: the latest deadline fired, in CLOCK_MONOTONIC ns (its
		 * wheel ms rounded up, so never before the true deadline). */
		sp__trace_emit(SP_EV_TIMER_FIRE, (uint32_t)fc->n,
			       d->base_ns + fc->last * 1000000u); /* nothing if off */
		SP_USDT(timer_fire, fc->n, now);
		uint32_t src = sp__tls.wake_src;
		sp__tls.wake_src = SP_WAKE_SRC_TIMER;
		for (size_t i = 0; i < fc->n; i++)
			sp_waker_wake(&fc->buf[i]);
		sp__tls.wake_src = src;
		return;
	}
	for (size_t i = 0; i < fc->n; i++)
		sp_waker_wake(&fc->buf[i]);
}

/* The shard this thread arms new timers in. */
static uint32_t home_shard(sp_runtime *rt)
{
	sp__worker *w = sp__tls.worker;
	return w && w->rt == rt ? w->index : rt->driver.nshards - 1;
}

static bool shard_trylock(sp__timer_shard *sh)
{
	/* ordering: acquire on taking the lock, as sp__spin_lock. */
	return !atomic_load_explicit(&sh->lock, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&sh->lock, true, memory_order_acquire);
}

/* Fire a shard's due timers, in bursts of FIRE_BURST with its lock released
 * between them. wait: take the lock even if another thread holds it (our
 * own shard); else leave the shard to whoever holds it. */
static size_t fire_shard(sp__driver *d, sp__timer_shard *sh, uint64_t now, bool wait)
{
	size_t total = 0;
	for (;;) {
		/* ordering: relaxed: a hint. An arm's lower value seen late
		 * only fires its timer at the next look (its own worker's, or
		 * the driver's, which reads next_ms in SeqCst order). */
		if (atomic_load_explicit(&sh->next_ms, memory_order_relaxed) > now)
			return total;
		if (wait)
			sp__spin_lock(&sh->lock);
		else if (!shard_trylock(sh))
			return total;
		struct fire_ctx fc;
		fc.n = 0;
		fc.last = 0;
		sp__wheel_advance_max(&sh->wheel, now, fire_one, &fc, FIRE_BURST);
		/* ordering: SeqCst, as every store of next_ms (see the turn). */
		atomic_store_explicit(&sh->next_ms, sp__wheel_next_expiration(&sh->wheel),
				      memory_order_seq_cst);
		sp__spin_unlock(&sh->lock);
		if (fc.n)
			wake_fired(d, &fc, now);
		total += fc.n;
		if (fc.n < FIRE_BURST)
			return total;
	}
}

/* Fire every due timer; returns how many. In bursts of FIRE_BURST, the lock
 * released and the burst woken between them: 2,000 timers due in one
 * millisecond held the lock for 330 us, while tasks arming timers on the
 * other worker spun and yielded the CPU behind it, and none of the woken
 * tasks could start before the last was fired. */
size_t sp__driver_fire_timers(sp_runtime *rt)
{
	sp__driver *d = &rt->driver;
	uint32_t home = home_shard(rt), n = d->nshards;
	/* No timer anywhere (a server that only does I/O): no clock read. */
	uint64_t first = UINT64_MAX;
	for (uint32_t i = 0; i < n; i++) {
		/* ordering: relaxed: hints, as in fire_shard. */
		uint64_t v = atomic_load_explicit(&d->shards[i].next_ms, memory_order_relaxed);
		if (v < first)
			first = v;
	}
	if (first == UINT64_MAX)
		return 0;
	uint64_t now = sp__driver_now_ms(rt);
	size_t total = fire_shard(d, &d->shards[home], now, true);
	for (uint32_t k = 1; k < n; k++)
		total += fire_shard(d, &d->shards[(home + k) % n], now, false);
	return total;
}

/* The earliest next expiration of all shards (wheel ms), from their hints:
 * never later than the truth; an early one costs a spare wake-up. */
static uint64_t next_expiration(sp__driver *d)
{
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < d->nshards; i++) {
		/* ordering: SeqCst, see the turn. */
		uint64_t v = atomic_load_explicit(&d->shards[i].next_ms, memory_order_seq_cst);
		if (v < next)
			next = v;
	}
	return next;
}

int64_t sp__driver_timer_wait_ns(sp_runtime *rt)
{
	sp__driver *d = &rt->driver;
	if (!atomic_load_explicit(&d->needed, memory_order_relaxed))
		return -1;
	/* ordering: seq_cst, as timer_arm's load: a holder asleep in
	 * epoll_wait has published its wake-up time and fires what is due. A
	 * holder that goes to sleep just after this load makes both of us wake
	 * at the next deadline: one spare wake-up, nothing missed. */
	if (atomic_load_explicit(&d->sleep_until_ms, memory_order_seq_cst) != 0)
		return -1;
	uint64_t next = next_expiration(d);
	if (next == UINT64_MAX)
		return -1;
	uint64_t due_ns = d->base_ns + next * 1000000u, now_ns = sp_now_ns();
	return due_ns > now_ns ? (int64_t)(due_ns - now_ns) : 0;
}

/* Insert a timer (not queued) due at deadline_ms; false if it is already due. */
bool sp__timer_arm(sp_runtime *rt, sp__timer *tm, uint64_t deadline_ms, sp_context *cx)
{
	sp__driver *d = &rt->driver;
	sp__driver_need(rt);
	/* A timer polled again stays in its shard (another worker's, if its
	 * task was stolen since): only its waker changes. */
	uint32_t si = tm->armed ? tm->armed - 1 : home_shard(rt);
	sp__timer_shard *sh = &d->shards[si];
	sp__spin_lock(&sh->lock);
	if (atomic_load_explicit(&tm->fired, memory_order_relaxed)) {
		sp__spin_unlock(&sh->lock);
		return false;
	}
	sp__waker_store_as(&tm->waker, cx, SP_HOLD_TIMER);
	if (!tm->entry.queued) {
		if (sp__wheel_insert(&sh->wheel, &tm->entry, deadline_ms) != 0) {
			sp__waker_drop_as(&tm->waker, SP_HOLD_TIMER);
			sp__spin_unlock(&sh->lock);
			return false; /* already due by the wheel's clock */
		}
		/* ordering: SeqCst, before our SeqCst load of sleep_until_ms
		 * below, against the turn's store of it and its loads of
		 * next_ms: a driver going to sleep either sees this deadline
		 * or is seen asleep by us and interrupted. */
		if (deadline_ms < atomic_load_explicit(&sh->next_ms, memory_order_relaxed))
			atomic_store_explicit(&sh->next_ms, deadline_ms, memory_order_seq_cst);
	}
	tm->armed = si + 1;
	sp__spin_unlock(&sh->lock);
	/* A deadline before the one the driver owner sleeps until: wake it so
	 * that it sleeps less. */
	if (deadline_ms < atomic_load_explicit(&d->sleep_until_ms, memory_order_seq_cst))
		sp__driver_unpark(rt);
	return true;
}

void sp__timer_disarm(sp_runtime *rt, sp__timer *tm)
{
	SP__ASSERT(tm->armed && tm->armed <= rt->driver.nshards, "disarm of an armed timer");
	sp__timer_shard *sh = &rt->driver.shards[tm->armed - 1];
	sp__spin_lock(&sh->lock);
	if (tm->entry.queued)
		sp__wheel_remove(&sh->wheel, &tm->entry); /* next_ms may stay early: a hint */
	sp_waker w = tm->waker;
	tm->waker = (sp_waker){0};
	sp__spin_unlock(&sh->lock);
	sp__waker_drop_as(&w, SP_HOLD_TIMER);
}

/* ---- the turn --------------------------------------------------------------- */

/* Poll for I/O and timers: block up to timeout_ns (-1: no limit besides the
 * next timer; 0: just look). The caller holds the driver. */
void sp__driver_turn(sp_runtime *rt, int64_t timeout_ns)
{
	sp__driver *d = &rt->driver;
	struct epoll_event events[EVENTS_PER_TURN];
	sp__io_release_pending(rt);

	uint64_t next = next_expiration(d);
	if (next != UINT64_MAX) {
		uint64_t due_ns = d->base_ns + next * 1000000u;
		uint64_t now_ns = sp_now_ns();
		int64_t until = due_ns > now_ns ? (int64_t)(due_ns - now_ns) : 0;
		if (timeout_ns < 0 || until < timeout_ns)
			timeout_ns = until;
	}
	if (timeout_ns != 0)
		atomic_store_explicit(&d->sleep_until_ms, next, memory_order_seq_cst);
	/* ordering: the SeqCst store above and the SeqCst store of next_ms
	 * then load of sleep_until_ms in timer_arm: either the arming thread
	 * sees our deadline and interrupts us, or we see its lower next_ms
	 * when we read the shards again after storing. */
	if (timeout_ns != 0 && next_expiration(d) < next)
		timeout_ns = 0;

	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	/* A blocking turn is a worker's idle park: it carries the park mark
	 * (internal.h) in sigsetsize, which the kernel ignores with a NULL
	 * sigmask; the look of a busy worker (timeout 0) does not. */
	int n = (int)syscall(SYS_epoll_pwait2, d->epfd, events, EVENTS_PER_TURN, tsp, NULL,
			     timeout_ns != 0 ? SP__PARK_MARK : 0);
	/* Awake again: new timers need not interrupt us (0 = nobody sleeps;
	 * UINT64_MAX above = sleeping with no timer, any new one interrupts). */
	atomic_store_explicit(&d->sleep_until_ms, 0, memory_order_relaxed);
	if (n < 0 && errno != EINTR)
		sp__panic("epoll_pwait2 failed (bad epoll fd?)");
	/* The wakes below are stamped with the worker's clock (time accounting,
	 * trace events): after a wait it is stale by the wait, so read it. */
	if (timeout_ns != 0 && sp__tls.worker)
		sp__tls.worker->now = sp__ticks();
	for (int i = 0; i < n; i++) {
		if (!events[i].data.ptr) {
			uint64_t v;
			ssize_t r = read(d->evfd, &v, sizeof(v));
			(void)r;
			continue;
		}
		sp__io_dispatch(events[i].data.ptr, events[i].events);
	}
	sp__driver_fire_timers(rt);
}
