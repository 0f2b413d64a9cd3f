/*
 * test_timer_shards.c - timers armed, polled again, fired and dropped across
 * the per-worker timer wheels (driver.c, TIMER SHARDS).
 *
 * Tasks on a 4-worker runtime (and on block_on's thread, which arms in the
 * shard of non-workers) run rounds of three kinds, with a yield between
 * rounds so that tasks move between workers (steals):
 *   SLEEP    a sleep of 0-3 ms: it must not complete before its deadline.
 *   RACE     a select of two sleeps, 1 ms and 1-4 ms: the earlier wins, its
 *            wake polls the later one again (the re-arm path: the waker
 *            changes in the shard the timer was armed in, possibly another
 *            worker's since the task moved) and drops it (disarm).
 *   TIMEOUT  a timeout of 1 ms over a sleep of 30 ms: the timeout fires and
 *            drops the queued inner sleep.
 * Every firer fires its own shard and the other shards whose lock is free,
 * so the same wheel is fired, armed and disarmed by several threads at once.
 * A foreign thread spawns half of the tasks (their first arms happen on
 * whichever worker runs them).
 *
 * Checks: every task finishes every round; no sleep completes before its
 * deadline; every RACE is won by its earlier sleep's deadline, or later (both
 * due); every TIMEOUT times out. Run under TSan by `make sanitize`.
 */
#include <pthread.h>

#include "unit/sp_test.h"

#define N_TASKS 64
#define MS 1000000ull

struct shared {
	atomic_int done;
	atomic_int early;	/* a sleep that completed before its deadline */
	atomic_int bad_race;	/* the later sleep won while the earlier was not due */
	atomic_int bad_timeout; /* a timeout that did not time out */
	atomic_int rounds_total;
};

struct roundtrip {
	sp_future base;
	int out;
	struct shared *sh;
	uint64_t seed;
	int r, rounds;
	unsigned kind;
	uint64_t deadline, deadline2;
	sp_sleep s1, s2;
	sp_future *pair[2];
	sp_select sel;
	sp_timeout to;
	sp_yield y;
};

static uint64_t next_rand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static sp_poll roundtrip_poll(sp_future *f, sp_context *cx)
{
	struct roundtrip *self = (struct roundtrip *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->r = 0; self->r < self->rounds; self->r++) {
		/* if/else, not switch: SP_AWAIT's resume points are case labels */
		self->kind = (unsigned)(next_rand(&self->seed) % 3);
		if (self->kind == 0) { /* SLEEP */
			sp_sleep_init(&self->s1, next_rand(&self->seed) % (3 * MS + 1));
			self->deadline = self->s1.deadline_ns;
			SP_AWAIT(&self->s1);
			if (sp_now_ns() < self->deadline)
				atomic_fetch_add(&self->sh->early, 1);
		} else if (self->kind == 1) { /* RACE */
			sp_sleep_init(&self->s1, 1 * MS);
			sp_sleep_init(&self->s2, (1 + next_rand(&self->seed) % 4) * MS);
			self->deadline = self->s1.deadline_ns;
			self->deadline2 = self->s2.deadline_ns;
			self->pair[0] = &self->s1.base;
			self->pair[1] = &self->s2.base;
			sp_select_init(&self->sel, self->pair, 2);
			SP_AWAIT(&self->sel);
			{
				uint64_t now = sp_now_ns();
				uint64_t won =
					self->sel.out == 0 ? self->deadline : self->deadline2;
				if (now < won)
					atomic_fetch_add(&self->sh->early, 1);
				/* The later one won: fine only if both were due by then
				 * (the wheel's millisecond may hold both). */
				if (self->sel.out == 1 &&
				    self->deadline2 > self->deadline + 1 * MS &&
				    now < self->deadline)
					atomic_fetch_add(&self->sh->bad_race, 1);
			}
		} else { /* TIMEOUT */
			sp_sleep_init(&self->s2, 30 * MS);
			sp_timeout_init(&self->to, &self->s2.base, 1 * MS);
			SP_AWAIT(&self->to);
			if (self->to.out != SP_ETIMEDOUT)
				atomic_fetch_add(&self->sh->bad_timeout, 1);
		}
		atomic_fetch_add(&self->sh->rounds_total, 1);
		sp_yield_init(&self->y);
		SP_AWAIT(&self->y);
	}
	atomic_fetch_add(&self->sh->done, 1);
	SP_ASYNC_END();
}

struct root {
	sp_future base;
	int out;
	struct shared *sh;
	int rounds;
	int i;
	sp_join_handle jh[N_TASKS / 2];
	struct roundtrip own; /* block_on's own rounds: the non-worker shard */
};

static struct roundtrip make_task(struct shared *sh, uint64_t seed, int rounds)
{
	struct roundtrip t = {.base = {.poll = roundtrip_poll, .name = "roundtrip"},
			      .sh = sh,
			      .seed = seed,
			      .rounds = rounds};
	return t;
}

static sp_poll root_poll(sp_future *f, sp_context *cx)
{
	struct root *self = (struct root *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < N_TASKS / 2; self->i++) {
		struct roundtrip t = make_task(self->sh, 1000u + (uint64_t)self->i, self->rounds);
		if (SP_SPAWN("roundtrip", &self->jh[self->i], t) != 0)
			SP_RETURN(-1);
	}
	self->own = make_task(self->sh, 7, self->rounds / 4 + 1);
	SP_AWAIT(&self->own);
	for (self->i = 0; self->i < N_TASKS / 2; self->i++)
		SP_AWAIT(&self->jh[self->i]);
	SP_ASYNC_END();
}

/* Spawn sites live as long as their tasks: a static, not a literal. */
static const sp_spawn_site roundtrip_site = {"roundtrip", __FILE__, __LINE__, 0, 0};

struct foreign {
	sp_runtime *rt;
	struct shared *sh;
	int rounds;
	sp_join_handle jh[N_TASKS / 2];
	int spawn_errors;
};

static void *foreign_main(void *arg)
{
	struct foreign *fo = arg;
	for (int i = 0; i < N_TASKS / 2; i++) {
		struct roundtrip t = make_task(fo->sh, 5000u + (uint64_t)i, fo->rounds);
		if (sp__spawn(fo->rt, &fo->jh[i], &t.base, sizeof t, &roundtrip_site) != 0)
			fo->spawn_errors++;
	}
	return NULL;
}

static void timer_shards__armed_fired_and_dropped_across_workers(void **state)
{
	(void)state;
	/* arrange */
	struct shared sh = {0};
	int rounds = (int)spt_scaled(60, 8);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	struct foreign fo = {.rt = rt, .sh = &sh, .rounds = rounds};
	struct root root = {
		.base = {.poll = root_poll, .name = "root"}, .sh = &sh, .rounds = rounds};
	pthread_t th;

	/* act */
	assert_int_equal(pthread_create(&th, NULL, foreign_main, &fo), 0);
	int rc = sp_block_on(rt, &root.base);
	pthread_join(th, NULL);
	int waited = 0;
	for (int i = 0; i < N_TASKS / 2; i++)
		waited += sp_join_handle_wait(&fo.jh[i]) == 0;
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(fo.spawn_errors, 0);
	assert_int_equal(waited, N_TASKS / 2);
	assert_int_equal(atomic_load(&sh.done), N_TASKS + 1);
	assert_int_equal(atomic_load(&sh.rounds_total), N_TASKS * rounds + rounds / 4 + 1);
	assert_int_equal(atomic_load(&sh.early), 0);
	assert_int_equal(atomic_load(&sh.bad_race), 0);
	assert_int_equal(atomic_load(&sh.bad_timeout), 0);
}

/* A runtime freed while timers wait in several shards drops them all. */
static void timer_shards__free_with_timers_in_every_shard(void **state)
{
	(void)state;
	/* arrange */
	struct shared sh = {0};
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	for (int i = 0; i < 64; i++) {
		struct roundtrip t = make_task(&sh, 99u + (uint64_t)i, 1);
		/* TIMEOUT rounds hold a 30 ms sleep; most are still queued
		 * when the runtime goes. */
		assert_int_equal(sp__spawn(rt, NULL, &t.base, sizeof t, &roundtrip_site), 0);
	}
	SPT_WAIT_UNTIL(atomic_load(&sh.rounds_total) > 0, SPT_SOON_MS);

	/* act */
	sp_runtime_free(rt); /* ASan: no leak, no use after free */

	/* assert */
	assert_int_equal(atomic_load(&sh.early), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(timer_shards__armed_fired_and_dropped_across_workers),
		cmocka_unit_test(timer_shards__free_with_timers_in_every_shard),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
