/*
 * test_lost_wakeup.c - millions of wakes racing with SP_PENDING returns.
 *
 * THE TICKET. Each ticket future owns a counter `produced` that producers
 * advance one step at a time. A poll reads `produced`, stores its waker (under
 * the ticket's lock) and only then publishes `seen = produced` and returns
 * SP_PENDING; it completes once produced == rounds. A producer may advance
 * a ticket only when seen == produced (the future consumed the last step):
 * it CASes produced from p to p+1, then wakes the stored waker (by reference,
 * through a clone, or by taking the stored waker, by turns). So every wake
 * lands after the poll decided to return SP_PENDING, often while that poll is
 * still running, and the protocol itself never loses a wake: if a ticket
 * stops, the runtime lost the wakeup.
 *
 * Producers: two foreign threads and two producer tasks (on other workers),
 * all racing for the same tickets, on a 2-worker and a 4-worker runtime.
 *
 * Checks: every ticket completes (a watchdog thread reports stuck tickets
 * after a deadline and re-wakes them, so a lost wakeup fails the test instead
 * of hanging it), polls >= rounds + 1 for every ticket (each wake after a
 * SP_PENDING caused a poll), and no ticket is ever polled concurrently with
 * itself (an in_poll flag checked inside poll).
 *
 * Scale: 2 x 1,000,000 wakes; SP_STRESS_SCALE (a factor) scales it, and
 * sanitized builds run 1/20 of it.
 */
#include <errno.h>

#include "unit/sp_test.h"

#define N_TICKETS 256
#define N_THREAD_PRODUCERS 2
#define N_TASK_PRODUCERS 2

struct ticket {
	pthread_mutex_t mu;
	sp_waker w; /* under mu */
	_Atomic uint64_t produced;
	_Atomic uint64_t seen;
	_Atomic uint64_t polls;
	atomic_int in_poll;
	atomic_int done;
	uint64_t rounds;
	char pad[64];
} __attribute__((aligned(64)));

struct stress {
	struct ticket *t;
	int n;
	uint64_t rounds;
	atomic_int done_count;
	atomic_int concurrent_polls;
	atomic_int poll_after_done;
	_Atomic uint64_t wakes;
	_Atomic uint64_t wakes_in_poll; /* wakes issued while the poll still ran */
	atomic_int stop;		/* producers give up (the watchdog's last resort) */
};

/* ---- the ticket future --------------------------------------------------------- */

struct ticket_fut {
	sp_future base;
	int out;
	struct stress *st;
	struct ticket *t;
};

static sp_poll ticket_poll(sp_future *f, sp_context *cx)
{
	struct ticket_fut *self = (struct ticket_fut *)f;
	struct ticket *t = self->t;
	if (atomic_exchange(&t->in_poll, 1))
		atomic_fetch_add(&self->st->concurrent_polls, 1);
	if (atomic_load(&t->done))
		atomic_fetch_add(&self->st->poll_after_done, 1);
	atomic_fetch_add(&t->polls, 1);
	uint64_t p = atomic_load(&t->produced);
	if (p >= t->rounds) {
		atomic_store(&t->done, 1);
		atomic_store(&t->in_poll, 0);
		atomic_fetch_add(&self->st->done_count, 1);
		self->out = 1;
		return SP_READY;
	}
	pthread_mutex_lock(&t->mu);
	sp_waker_store(&t->w, cx);
	pthread_mutex_unlock(&t->mu);
	atomic_store(&t->seen, p); /* from here on producers may wake us */
	/* Every fourth round, linger briefly so the wake tends to arrive while
	 * this poll is still running (the RUNNING -> NOTIFIED path). */
	if ((p & 3) == 0)
		for (int i = 0; i < 512 && atomic_load(&t->produced) == p; i++)
			__asm__ __volatile__("" ::: "memory");
	atomic_store(&t->in_poll, 0);
	return SP_PENDING;
}

static void ticket_drop(sp_future *f)
{
	struct ticket_fut *self = (struct ticket_fut *)f;
	pthread_mutex_lock(&self->t->mu);
	sp_waker_drop(&self->t->w);
	pthread_mutex_unlock(&self->t->mu);
}

/* ---- producing ---------------------------------------------------------------------- */

/* Try to advance ticket t by one step; returns 1 if this caller did. */
static int produce(struct stress *st, struct ticket *t)
{
	uint64_t p = atomic_load(&t->produced);
	if (p >= t->rounds || atomic_load(&t->seen) != p)
		return 0;
	if (!atomic_compare_exchange_strong(&t->produced, &p, p + 1))
		return 0;
	atomic_fetch_add(&st->wakes, 1);
	if (atomic_load(&t->in_poll))
		atomic_fetch_add(&st->wakes_in_poll, 1);
	switch (p % 3) {
	case 0: /* wake by reference under the lock */
		pthread_mutex_lock(&t->mu);
		sp_waker_wake_by_ref(&t->w);
		pthread_mutex_unlock(&t->mu);
		break;
	case 1: { /* wake a clone, outside the lock */
		pthread_mutex_lock(&t->mu);
		sp_waker c = sp_waker_clone(&t->w);
		pthread_mutex_unlock(&t->mu);
		sp_waker_wake(&c);
		break;
	}
	default: { /* take the stored waker and wake it (the poll stores anew) */
		pthread_mutex_lock(&t->mu);
		sp_waker w = t->w;
		t->w = (sp_waker){0};
		pthread_mutex_unlock(&t->mu);
		sp_waker_wake(&w);
		break;
	}
	}
	return 1;
}

/* One pass over the tickets starting at `start`; returns how many advanced. */
static int produce_pass(struct stress *st, int start, int limit)
{
	int made = 0;
	for (int k = 0; k < st->n && k < limit; k++)
		made += produce(st, &st->t[(start + k) % st->n]);
	return made;
}

struct thread_producer {
	struct stress *st;
	int start;
};

static void *thread_producer_main(void *arg)
{
	struct thread_producer *tp = arg;
	struct stress *st = tp->st;
	int start = tp->start;
	while (atomic_load(&st->done_count) < st->n && !atomic_load(&st->stop)) {
		if (produce_pass(st, start, st->n) == 0)
			sched_yield();
		start = (start + 17) % st->n;
	}
	return NULL;
}

/* A producer task: one bounded pass per poll, then it yields. */
struct task_producer {
	sp_future base;
	int out;
	struct stress *st;
	int start;
	atomic_int *in_poll;
	atomic_int *concurrent;
};

static sp_poll task_producer_poll(sp_future *f, sp_context *cx)
{
	struct task_producer *self = (struct task_producer *)f;
	struct stress *st = self->st;
	if (atomic_exchange(self->in_poll, 1))
		atomic_fetch_add(self->concurrent, 1);
	if (atomic_load(&st->done_count) >= st->n || atomic_load(&st->stop)) {
		atomic_store(self->in_poll, 0);
		return SP_READY;
	}
	produce_pass(st, self->start, 64);
	self->start = (self->start + 64) % st->n;
	sp_waker_wake_by_ref(sp_context_waker(cx));
	atomic_store(self->in_poll, 0);
	return SP_PENDING;
}

/* ---- the watchdog -------------------------------------------------------------------- */

struct watchdog {
	struct stress *st;
	unsigned deadline_s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int finished;	    /* under mu */
	atomic_int fired;   /* the deadline passed before everything completed */
	atomic_int stuck;   /* incomplete tickets when it fired */
	atomic_int rescued; /* tickets that completed after the re-wake */
};

static int watchdog_wait(struct watchdog *wd, unsigned seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&wd->mu);
	int rc = 0;
	while (!wd->finished && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
	int finished = wd->finished;
	pthread_mutex_unlock(&wd->mu);
	return finished;
}

static void *watchdog_main(void *arg)
{
	struct watchdog *wd = arg;
	struct stress *st = wd->st;
	if (watchdog_wait(wd, wd->deadline_s))
		return NULL;
	atomic_store(&wd->fired, 1);
	int stuck = 0;
	for (int i = 0; i < st->n; i++) {
		struct ticket *t = &st->t[i];
		if (atomic_load(&t->done))
			continue;
		stuck++;
		pthread_mutex_lock(&t->mu);
		int has_waker = !sp_waker_is_empty(&t->w);
		pthread_mutex_unlock(&t->mu);
		if (stuck <= 16)
			fprintf(stderr,
				"WATCHDOG: ticket %d stuck after %us: produced=%llu seen=%llu "
				"polls=%llu rounds=%llu waker=%s\n",
				i, wd->deadline_s, (unsigned long long)atomic_load(&t->produced),
				(unsigned long long)atomic_load(&t->seen),
				(unsigned long long)atomic_load(&t->polls),
				(unsigned long long)t->rounds, has_waker ? "stored" : "none");
	}
	atomic_store(&wd->stuck, stuck);
	fprintf(stderr, "WATCHDOG: %d of %d tickets incomplete (lost wakeups?); re-waking them\n",
		stuck, st->n);
	/* Re-wake every incomplete ticket so the main thread's joins return
	 * and it can fail the test with this report. */
	for (int i = 0; i < st->n; i++) {
		struct ticket *t = &st->t[i];
		if (atomic_load(&t->done))
			continue;
		pthread_mutex_lock(&t->mu);
		sp_waker_wake_by_ref(&t->w);
		pthread_mutex_unlock(&t->mu);
	}
	if (watchdog_wait(wd, wd->deadline_s))
		return NULL;
	fprintf(stderr, "WATCHDOG: still stuck after the re-wake: the runtime hangs\n");
	fflush(stderr);
	abort();
}

/* ---- one run ---------------------------------------------------------------------------- */

struct run_result {
	int spawn_errors, statuses, fired, stuck, free_rc, driver_spawn_rc;
	int concurrent_polls, poll_after_done, producer_concurrent;
	int incomplete, under_polled, over_produced;
	uint64_t wakes, expected_wakes, wakes_in_poll;
	uint64_t min_polls_minus_rounds;
};

/* A task that sleeps an hour: it makes the runtime use its driver, so idle
 * workers park in epoll_wait (woken through the eventfd) instead of on their
 * futexes: the other parking path, stressed the same way. */
struct long_nap {
	sp_future base;
	sp_sleep s;
};

static sp_poll long_nap_poll(sp_future *f, sp_context *cx)
{
	struct long_nap *self = (struct long_nap *)f;
	if (!self->s.base.poll)
		sp_sleep_init(&self->s, SP_MS(3600ull * 1000));
	return sp_future_poll(&self->s.base, cx);
}

static void long_nap_drop(sp_future *f)
{
	struct long_nap *self = (struct long_nap *)f;
	if (self->s.base.poll)
		sp_future_drop(&self->s.base);
}

static struct run_result run_with(unsigned workers, uint64_t total_wakes, int driver);

static struct run_result run(unsigned workers, uint64_t total_wakes)
{
	return run_with(workers, total_wakes, 0);
}

static struct run_result run_with(unsigned workers, uint64_t total_wakes, int driver)
{
	struct run_result r;
	memset(&r, 0, sizeof r);
	struct stress st;
	memset(&st, 0, sizeof st);
	st.n = N_TICKETS;
	st.rounds = (total_wakes + N_TICKETS - 1) / N_TICKETS;
	st.t = aligned_alloc(64, sizeof(struct ticket) * N_TICKETS);
	assert_non_null(st.t);
	memset(st.t, 0, sizeof(struct ticket) * N_TICKETS);
	for (int i = 0; i < N_TICKETS; i++) {
		pthread_mutex_init(&st.t[i].mu, NULL);
		st.t[i].rounds = st.rounds;
		/* nothing seen before the first poll: no producer may start */
		atomic_store(&st.t[i].seen, UINT64_MAX);
	}
	r.expected_wakes = st.rounds * N_TICKETS;

	struct watchdog wd = {.st = &st, .deadline_s = 30 * SPT_TIME_MULT};
	pthread_mutex_init(&wd.mu, NULL);
	pthread_cond_init(&wd.cv, NULL);
	pthread_t wdt = spt_thread(watchdog_main, &wd);

	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, workers);
	if (driver) {
		struct long_nap nap = {.base = {.poll = long_nap_poll, .drop = long_nap_drop,
						.name = "long_nap"}};
		r.driver_spawn_rc = SP_RUNTIME_SPAWN(rt, "long_nap", NULL, nap);
	}
	sp_join_handle *jh = calloc(N_TICKETS, sizeof *jh);
	assert_non_null(jh);
	for (int i = 0; i < N_TICKETS; i++) {
		struct ticket_fut f = {
			.base = {.poll = ticket_poll, .drop = ticket_drop, .name = "ticket"},
			.st = &st,
			.t = &st.t[i]};
		r.spawn_errors += SP_RUNTIME_SPAWN(rt, "ticket", &jh[i], f) != 0;
	}
	atomic_int prod_in_poll[N_TASK_PRODUCERS];
	atomic_int prod_concurrent = 0;
	sp_join_handle pjh[N_TASK_PRODUCERS];
	for (int k = 0; k < N_TASK_PRODUCERS; k++) {
		atomic_store(&prod_in_poll[k], 0);
		struct task_producer p = {.base = {.poll = task_producer_poll, .name = "producer"},
					  .st = &st,
					  .start = (k + 1) * N_TICKETS / (N_TASK_PRODUCERS + 1),
					  .in_poll = &prod_in_poll[k],
					  .concurrent = &prod_concurrent};
		r.spawn_errors += SP_RUNTIME_SPAWN(rt, "producer", &pjh[k], p) != 0;
	}
	pthread_t tp[N_THREAD_PRODUCERS];
	struct thread_producer tpa[N_THREAD_PRODUCERS];
	for (int k = 0; k < N_THREAD_PRODUCERS; k++) {
		tpa[k] = (struct thread_producer){.st = &st,
						  .start = k * N_TICKETS / N_THREAD_PRODUCERS};
		tp[k] = spt_thread(thread_producer_main, &tpa[k]);
	}

	/* every ticket, in order: blocks until it completes (or is rescued) */
	for (int i = 0; i < N_TICKETS; i++)
		r.statuses |= sp_join_handle_wait(&jh[i]);
	for (int k = 0; k < N_THREAD_PRODUCERS; k++)
		pthread_join(tp[k], NULL);
	for (int k = 0; k < N_TASK_PRODUCERS; k++)
		r.statuses |= sp_join_handle_wait(&pjh[k]);

	pthread_mutex_lock(&wd.mu);
	wd.finished = 1;
	pthread_cond_signal(&wd.cv);
	pthread_mutex_unlock(&wd.mu);
	pthread_join(wdt, NULL);
	r.free_rc = sp_runtime_free(rt);

	r.fired = atomic_load(&wd.fired);
	r.stuck = atomic_load(&wd.stuck);
	r.concurrent_polls = atomic_load(&st.concurrent_polls);
	r.poll_after_done = atomic_load(&st.poll_after_done);
	r.producer_concurrent = atomic_load(&prod_concurrent);
	r.wakes = atomic_load(&st.wakes);
	r.wakes_in_poll = atomic_load(&st.wakes_in_poll);
	r.min_polls_minus_rounds = UINT64_MAX;
	for (int i = 0; i < N_TICKETS; i++) {
		struct ticket *t = &st.t[i];
		uint64_t polls = atomic_load(&t->polls);
		r.incomplete += !atomic_load(&t->done);
		r.under_polled += polls < t->rounds + 1;
		r.over_produced += atomic_load(&t->produced) != t->rounds;
		if (polls >= t->rounds && polls - t->rounds < r.min_polls_minus_rounds)
			r.min_polls_minus_rounds = polls - t->rounds;
		pthread_mutex_destroy(&t->mu);
	}
	pthread_mutex_destroy(&wd.mu);
	pthread_cond_destroy(&wd.cv);
	free(jh);
	free(st.t);
	return r;
}

static void check(struct run_result r)
{
	if (getenv("SPT_VERBOSE"))
		fprintf(stderr,
			"wakes=%llu (during the poll: %llu) expected=%llu min_polls-rounds=%llu\n",
			(unsigned long long)r.wakes, (unsigned long long)r.wakes_in_poll,
			(unsigned long long)r.expected_wakes,
			(unsigned long long)r.min_polls_minus_rounds);
	assert_int_equal(r.spawn_errors, 0);
	assert_int_equal(r.fired, 0); /* nothing was stuck at the deadline */
	assert_int_equal(r.stuck, 0);
	assert_int_equal(r.statuses, 0);
	assert_int_equal(r.incomplete, 0);
	assert_int_equal(r.over_produced, 0);
	assert_int_equal(r.wakes, r.expected_wakes);
	assert_int_equal(r.under_polled, 0);
	assert_int_equal(r.concurrent_polls, 0);
	assert_int_equal(r.poll_after_done, 0);
	assert_int_equal(r.producer_concurrent, 0);
	assert_int_equal(r.free_rc, 0);
}

static uint64_t wakes_per_run(void)
{
	return spt_scaled(1000000, 20 * N_TICKETS);
}

static void lost_wakeup__two_workers_every_wake_polls(void **state)
{
	(void)state;
	/* arrange */
	uint64_t n = wakes_per_run();

	/* act */
	struct run_result r = run(2, n);

	/* assert */
	check(r);
}

static void lost_wakeup__four_workers_every_wake_polls(void **state)
{
	(void)state;
	/* arrange */
	uint64_t n = wakes_per_run();

	/* act */
	struct run_result r = run(4, n);

	/* assert */
	check(r);
}

static void lost_wakeup__two_workers_parking_in_the_driver(void **state)
{
	(void)state;
	/* arrange */
	uint64_t n = wakes_per_run();

	/* act */
	struct run_result r = run_with(2, n, 1);

	/* assert */
	assert_int_equal(r.driver_spawn_rc, 0);
	check(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lost_wakeup__two_workers_every_wake_polls),
		cmocka_unit_test(lost_wakeup__two_workers_parking_in_the_driver),
		cmocka_unit_test(lost_wakeup__four_workers_every_wake_polls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
