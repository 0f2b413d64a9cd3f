/*
 * test_steal.c - work stealing with the local run queue shrunk to 4 slots.
 *
 * With sp__local_queue_cap_override = 4 (set before sp_runtime_new), a task
 * that spawns many tasks overflows its worker's local queue into the
 * injection queue almost at once, and the other workers steal from it. Every
 * task marks its own slot with atomic_fetch_add: a slot at 0 is a lost task,
 * a slot at 2 a task run twice. The worker counters must show the overflow
 * and the steals.
 *
 * Scale: 200,000 tasks; SP_STRESS_SCALE (a factor) scales it, and sanitized
 * builds run 1/20 of it.
 */
#include <unistd.h>

#include "unit/sp_test.h"
#include "internal.h" /* sp__local_queue_cap_override, sp_runtime's spinners */

/* sp__local_queue_cap_override: 0 = the default capacity (256); read at
 * sp_runtime_new. */
static sp_runtime *small_queue_runtime(unsigned workers)
{
	sp__local_queue_cap_override = 4;
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, workers);
	sp__local_queue_cap_override = 0;
	return rt;
}

struct totals {
	uint64_t polls, steals_in, stolen_from, overflows, inject_pops;
	int errors;
};

static struct totals worker_totals(sp_runtime *rt)
{
	struct totals t;
	memset(&t, 0, sizeof t);
	unsigned n = sp_runtime_workers(rt);
	for (unsigned i = 0; i < n; i++) {
		sp_worker_stats s;
		memset(&s, 0, sizeof s);
		if (sp_runtime_worker_stats(rt, i, &s) != 0) {
			t.errors++;
			continue;
		}
		t.polls += s.polls;
		t.steals_in += s.steals_in;
		t.stolen_from += s.stolen_from;
		t.overflows += s.overflows;
		t.inject_pops += s.inject_pops;
	}
	return t;
}

/* ---- fan-out: one task spawns everything ------------------------------------------ */

struct fan {
	atomic_int *slots;
	int n;
	atomic_int done;
	atomic_int spawn_errors;
	atomic_int stolen_early; /* a marker ran while the spawner held its worker */
};

struct marker {
	sp_future base;
	int idx;
	struct fan *fan;
};

static sp_poll marker_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct marker *self = (struct marker *)f;
	atomic_fetch_add(&self->fan->slots[self->idx], 1);
	atomic_fetch_add(&self->fan->done, 1);
	return SP_READY;
}

/* Spawns 1024 markers per poll, then yields, until all are spawned. */
struct spawner {
	sp_future base;
	int out;
	int next;
	struct fan *fan;
};

static sp_poll spawner_poll(sp_future *f, sp_context *cx)
{
	struct spawner *self = (struct spawner *)f;
	struct fan *fan = self->fan;
	if (self->next == 0) {
		/* First put three markers in this worker's local queue (they
		 * fit: no overflow) and keep the worker busy until one of them
		 * ran: only a steal by another worker can run it. */
		for (; self->next < 3 && self->next < fan->n; self->next++) {
			struct marker m = {.base = {.poll = marker_poll, .name = "marker"},
					   .idx = self->next,
					   .fan = fan};
			if (SP_SPAWN("marker", NULL, m) != 0)
				atomic_fetch_add(&fan->spawn_errors, 1);
		}
		uint64_t dl = spt_now_ns() + 5000000000ull * SPT_TIME_MULT;
		while (atomic_load(&fan->done) == 0 && spt_now_ns() < dl)
			sched_yield();
		atomic_store(&fan->stolen_early, atomic_load(&fan->done) > 0);
	}
	for (int k = 0; k < 1024 && self->next < fan->n; k++, self->next++) {
		struct marker m = {.base = {.poll = marker_poll, .name = "marker"},
				   .idx = self->next,
				   .fan = fan};
		if (SP_SPAWN("marker", NULL, m) != 0)
			atomic_fetch_add(&fan->spawn_errors, 1);
	}
	if (self->next >= fan->n)
		return SP_READY;
	sp_waker_wake_by_ref(sp_context_waker(cx));
	return SP_PENDING;
}

static int all_done(struct fan *fan)
{
	return atomic_load(&fan->done) + atomic_load(&fan->spawn_errors) >= fan->n;
}

static void steal__spawn_storm_overflows_and_is_stolen_exactly_once(void **state)
{
	(void)state;
	/* arrange */
	struct fan fan;
	memset(&fan, 0, sizeof fan);
	fan.n = (int)spt_scaled(200000, 4000);
	fan.slots = calloc((size_t)fan.n, sizeof *fan.slots);
	assert_non_null(fan.slots);
	sp_runtime *rt = small_queue_runtime(4);
	struct spawner sp = {.base = {.poll = spawner_poll, .name = "spawner"}, .fan = &fan};
	sp_join_handle jh;

	/* act */
	int rc = SP_RUNTIME_SPAWN(rt, "spawner", &jh, sp);
	int status = sp_join_handle_wait(&jh);
	int finished = SPT_WAIT_UNTIL(all_done(&fan), 20000);
	/* counters are published in batches: wait until they settle */
	struct totals t;
	int settled = SPT_WAIT_UNTIL(
		(t = worker_totals(rt), t.polls >= (uint64_t)fan.n + 1 && t.steals_in > 0 &&
						t.overflows > 0 && t.steals_in == t.stolen_from),
		SPT_SOON_MS);
	int free_rc = finished ? sp_runtime_free(rt) : 0;
	int lost = 0, twice = 0;
	for (int i = 0; i < fan.n; i++) {
		int v = atomic_load(&fan.slots[i]);
		lost += v == 0;
		twice += v > 1;
	}

	if (getenv("SPT_VERBOSE"))
		fprintf(stderr,
			"tasks=%d polls=%llu steals_in=%llu stolen_from=%llu overflows=%llu "
			"inject_pops=%llu\n",
			fan.n, (unsigned long long)t.polls, (unsigned long long)t.steals_in,
			(unsigned long long)t.stolen_from, (unsigned long long)t.overflows,
			(unsigned long long)t.inject_pops);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(atomic_load(&fan.spawn_errors), 0);
	assert_true(finished);
	assert_true(atomic_load(&fan.stolen_early));
	assert_int_equal(lost, 0);
	assert_int_equal(twice, 0);
	assert_int_equal(atomic_load(&fan.done), fan.n);
	assert_int_equal(t.errors, 0);
	assert_true(settled);
	assert_true(t.overflows > 0);
	assert_true(t.steals_in > 0);
	assert_int_equal(t.steals_in, t.stolen_from);
	assert_true(t.polls >= (uint64_t)fan.n + 1);
	assert_int_equal(free_rc, 0);
	free(fan.slots);
}

/* ---- chains with yields ------------------------------------------------------------------ */

#define CHAINS 8
#define YIELDS 3

struct chains {
	int len;
	atomic_int *marks;   /* CHAINS * len */
	atomic_int *polls;   /* CHAINS * len */
	atomic_int *in_poll; /* CHAINS * len */
	atomic_int concurrent;
	atomic_int spawn_errors;
	atomic_int chains_done;
};

struct link {
	sp_future base;
	int out;
	int chain, pos, k;
	struct chains *c;
};

static sp_poll link_body(struct link *self, sp_context *cx);
static sp_poll link_poll(sp_future *f, sp_context *cx);

static void link_init(struct link *l, struct chains *c, int chain, int pos)
{
	memset(l, 0, sizeof *l);
	l->base.poll = link_poll;
	l->base.name = "link";
	l->c = c;
	l->chain = chain;
	l->pos = pos;
}

/* the poll function: an in_poll guard around the async body */
static sp_poll link_poll(sp_future *f, sp_context *cx)
{
	struct link *self = (struct link *)f;
	int slot = self->chain * self->c->len + self->pos;
	if (atomic_exchange(&self->c->in_poll[slot], 1))
		atomic_fetch_add(&self->c->concurrent, 1);
	atomic_fetch_add(&self->c->polls[slot], 1);
	sp_poll r = link_body(self, cx);
	atomic_store(&self->c->in_poll[slot], 0);
	return r;
}

static sp_poll link_body(struct link *self, sp_context *cx)
{
	SP_ASYNC_BEGIN(&self->base, cx);
	for (self->k = 0; self->k < YIELDS; self->k++)
		SP_YIELD();
	if (self->pos + 1 < self->c->len) {
		struct link next;
		link_init(&next, self->c, self->chain, self->pos + 1);
		if (SP_SPAWN("link", NULL, next) != 0)
			atomic_fetch_add(&self->c->spawn_errors, 1);
	} else {
		atomic_fetch_add(&self->c->chains_done, 1);
	}
	atomic_fetch_add(&self->c->marks[self->chain * self->c->len + self->pos], 1);
	SP_RETURN(self->pos);
	SP_ASYNC_END();
}

static void steal__yielding_chains_run_every_link_once(void **state)
{
	(void)state;
	/* arrange */
	struct chains c;
	memset(&c, 0, sizeof c);
	c.len = (int)spt_scaled(5000, 100);
	size_t n = (size_t)CHAINS * (size_t)c.len;
	c.marks = calloc(n, sizeof *c.marks);
	c.polls = calloc(n, sizeof *c.polls);
	c.in_poll = calloc(n, sizeof *c.in_poll);
	assert_non_null(c.marks);
	assert_non_null(c.polls);
	assert_non_null(c.in_poll);
	sp_runtime *rt = small_queue_runtime(4);
	int rcs = 0;

	/* act */
	for (int ch = 0; ch < CHAINS; ch++) {
		struct link l;
		link_init(&l, &c, ch, 0);
		rcs |= SP_RUNTIME_SPAWN(rt, "link", NULL, l);
	}
	int finished = SPT_WAIT_UNTIL(
		atomic_load(&c.chains_done) + atomic_load(&c.spawn_errors) >= CHAINS, 20000);
	int free_rc = finished ? sp_runtime_free(rt) : 0;
	int bad_marks = 0, bad_polls = 0;
	for (size_t i = 0; i < n; i++) {
		bad_marks += atomic_load(&c.marks[i]) != 1;
		bad_polls += atomic_load(&c.polls[i]) != YIELDS + 1;
	}

	/* assert */
	assert_int_equal(rcs, 0);
	assert_true(finished);
	assert_int_equal(atomic_load(&c.spawn_errors), 0);
	assert_int_equal(atomic_load(&c.chains_done), CHAINS);
	assert_int_equal(bad_marks, 0);
	assert_int_equal(bad_polls, 0);
	assert_int_equal(atomic_load(&c.concurrent), 0);
	assert_int_equal(free_rc, 0);
	free(c.marks);
	free(c.polls);
	free(c.in_poll);
}

/* ---- capped spinners: remote bursts with workers parking between them ---------------- */

/*
 * SPINDLE_SPINNERS=1 on 4 workers: one searcher at a time spins, the others
 * park at once. Bursts of spawns from this (non-worker) thread with pauses
 * between them make the workers search, spin and park over and over: every
 * task must still run exactly once (a lost wake-up would strand a burst and
 * time the wait out), and no more than one worker may ever be spinning.
 */
static void spinners__capped_spin_runs_remote_bursts_exactly_once(void **state)
{
	(void)state;
	/* arrange */
	struct fan fan;
	memset(&fan, 0, sizeof fan);
	int bursts = (int)spt_scaled(400, 40), per = 256;
	fan.n = bursts * per;
	fan.slots = calloc((size_t)fan.n, sizeof *fan.slots);
	assert_non_null(fan.slots);
	setenv("SPINDLE_SPINNERS", "1", 1);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	unsetenv("SPINDLE_SPINNERS");
	uint32_t cap = rt->max_spinners, most = 0;

	/* act */
	for (int b = 0; b < bursts; b++) {
		for (int k = 0; k < per; k++) {
			struct marker m = {.base = {.poll = marker_poll, .name = "marker"},
					   .idx = b * per + k,
					   .fan = &fan};
			if (SP_RUNTIME_SPAWN(rt, "marker", NULL, m) != 0)
				atomic_fetch_add(&fan.spawn_errors, 1);
			uint32_t now = atomic_load_explicit(&rt->spinners, memory_order_relaxed);
			most = now > most ? now : most;
		}
		usleep(b % 4 == 0 ? 200 : 20); /* long enough, now and then, to park */
	}
	int finished = SPT_WAIT_UNTIL(all_done(&fan), 20000);
	int free_rc = finished ? sp_runtime_free(rt) : 0;
	int bad = 0;
	for (int i = 0; i < fan.n; i++)
		bad += atomic_load(&fan.slots[i]) != 1;
	free(fan.slots);

	if (getenv("SPT_VERBOSE"))
		print_message("spinners: at most %u seen at once\n", most);

	/* assert */
	assert_int_equal(cap, 1);
	assert_true(finished);
	assert_int_equal(free_rc, 0);
	assert_int_equal(atomic_load(&fan.spawn_errors), 0);
	assert_int_equal(bad, 0);
	assert_true(most <= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(steal__spawn_storm_overflows_and_is_stolen_exactly_once),
		cmocka_unit_test(steal__yielding_chains_run_every_link_once),
		cmocka_unit_test(spinners__capped_spin_runs_remote_bursts_exactly_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
