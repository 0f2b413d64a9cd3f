/*
 * test_top_model.c - the model of `spindle top` (console/top_model.h) on
 * synthetic event streams and task-table snapshots: no process, no terminal.
 * Aggregation, the state machine, every warning, sorting, filtering, expiry,
 * the table catch-up, and the hash under churn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spindle.h"
#include "top_model.h"

#define MS 1000000ull
#define T0 (1000 * MS) /* streams start at 1 s */

static int fake_site(void *arg, uint32_t idx, topm_site *out)
{
	static const char *names[] = {"conn", "client", "stats", "hiccup"};
	(void)arg;
	if (idx >= 4)
		return -1;
	snprintf(out->name, sizeof out->name, "%s", names[idx]);
	snprintf(out->file, sizeof out->file, "examples/demo.c");
	out->line = 100 + idx;
	return 0;
}

static topm_model *mk(void)
{
	topm_config c;
	topm_config_default(&c);
	topm_model *m = topm_new(&c, fake_site, NULL);
	assert_non_null(m);
	return m;
}

/* Feed one event; `task` is the ring's current task, `worker` the ring's. */
static void feed(topm_model *m, uint64_t ns, uint32_t type, uint32_t a, uint64_t b, int worker,
		 uint64_t task)
{
	spc_event e = {.ns = ns, .type = type, .a = a, .b = b, .worker = worker, .task = task};
	topm_event(m, &e);
}

static void spawn(topm_model *m, uint64_t ns, uint64_t id, uint32_t site, uint64_t parent)
{
	feed(m, ns, SP_EV_SPAWN, site, id, 0, parent);
}

static void poll_once(topm_model *m, uint64_t ns, uint64_t dur, uint64_t id, int w, int ready)
{
	feed(m, ns, SP_EV_POLL_START, (uint32_t)w, id, w, 0);
	feed(m, ns + dur, SP_EV_POLL_END, ready ? SP_POLL_READY : 0, id, w, id);
}

static size_t count_warn(topm_model *m, unsigned kind, uint64_t task, int *live)
{
	size_t n, hits = 0;
	const topm_warning *w = topm_warnings(m, &n, NULL);
	for (size_t i = 0; i < n; i++)
		if (w[i].kind == kind && (!task || w[i].task == task)) {
			hits++;
			if (live)
				*live = w[i].live;
		}
	return hits;
}

static void lifecycle__counters_times_and_states(void **state)
{
	(void)state;
	/* configure */
	topm_model *m = mk();
	/* run: spawned at T0, polled 5 ms after for 2 ms, idle 10 ms, woken, polled */
	spawn(m, T0, 7, 0, 0);
	poll_once(m, T0 + 5 * MS, 2 * MS, 7, 1, 0);
	feed(m, T0 + 17 * MS, SP_EV_WAKE, SP_WAKE_SRC_REACTOR << SP_WAKE_SRC_SHIFT, 7, 0, 0);
	poll_once(m, T0 + 18 * MS, 1 * MS, 7, 0, 0);
	topm_tick(m, T0 + 30 * MS);
	/* verify */
	topm_task *t = topm_task_get(m, 7);
	assert_non_null(t);
	assert_int_equal(t->state, TOPM_IDLE);
	assert_int_equal(t->polls, 2);
	assert_int_equal(t->wakes, 1);
	assert_int_equal(t->worker, 0);
	uint64_t b, s, i;
	topm_task_times(m, t, &b, &s, &i);
	assert_int_equal(b, 3 * MS);
	assert_int_equal(s, 6 * MS);		/* 5 before the first poll, 1 after the wake */
	assert_int_equal(i, 10 * MS + 11 * MS); /* 7..17 and 19..30 */
	assert_int_equal(topm_task_total(m, t), 30 * MS);
	assert_int_equal(t->max_poll_ns, 2 * MS);
	assert_int_equal(t->max_sched_ns, 5 * MS);
	assert_string_equal(topm_site_get(m, t->site)->name, "conn");
	/* ready ends it */
	poll_once(m, T0 + 40 * MS, MS, 7, 0, 1);
	assert_int_equal(t->state, TOPM_DONE);
	size_t live, done;
	topm_task_count(m, &live, &done);
	assert_int_equal(live, 0);
	assert_int_equal(done, 1);
	topm_free(m);
}

static void lifecycle__wake_while_running_reschedules(void **state)
{
	(void)state;
	topm_model *m = mk();
	spawn(m, T0, 3, 1, 0);
	feed(m, T0 + MS, SP_EV_POLL_START, 0, 3, 0, 0);
	feed(m, T0 + MS, SP_EV_WAKE, SP_WAKE_SELF, 3, 0, 3); /* yield */
	feed(m, T0 + 2 * MS, SP_EV_POLL_END, 0, 3, 0, 3);
	topm_task *t = topm_task_get(m, 3);
	assert_int_equal(t->state, TOPM_SCHEDULED);
	assert_int_equal(t->self_wakes, 1);
	topm_free(m);
}

/* A POLL_START can come before its task's SPAWN in time order (the worker
 * stamps it with its last clock reading): the SPAWN still makes the waker
 * counts known, so the lost waker is found (a flaky replay test, 1 in 20). */
static void lost_waker__found_when_the_first_poll_precedes_the_spawn(void **state)
{
	(void)state;
	topm_model *m = mk();
	feed(m, T0, SP_EV_POLL_START, 1, 1, 1, 0);
	spawn(m, T0 + 5000, 1, 0, 0);
	feed(m, T0 + 14000, SP_EV_POLL_END, 0, 1, 1, 1);
	topm_tick(m, T0 + 300 * MS);
	assert_int_equal(topm_task_wakers(topm_task_get(m, 1)), 0);
	assert_int_equal(count_warn(m, TOPM_W_LOST_WAKER, 1, NULL), 1);
	topm_free(m);
}

static void lost_waker__flagged_only_without_outstanding_waker(void **state)
{
	(void)state;
	topm_model *m = mk();
	/* task 1: pending, never stored its waker */
	spawn(m, T0, 1, 0, 0);
	poll_once(m, T0 + MS, MS, 1, 0, 0);
	/* task 2: cloned its waker (a timer holds it) */
	spawn(m, T0, 2, 0, 0);
	feed(m, T0 + MS, SP_EV_POLL_START, 0, 2, 0, 0);
	feed(m, T0 + MS, SP_EV_WAKER_CLONE, SP_HOLD_TIMER, 2, 0, 2);
	feed(m, T0 + 2 * MS, SP_EV_POLL_END, 0, 2, 0, 2);
	/* task 3: cloned, then the holder dropped it without waking: lost */
	spawn(m, T0, 3, 0, 0);
	feed(m, T0 + MS, SP_EV_POLL_START, 1, 3, 1, 0);
	feed(m, T0 + MS, SP_EV_WAKER_CLONE, SP_HOLD_CHANNEL, 3, 1, 3);
	feed(m, T0 + 2 * MS, SP_EV_POLL_END, 0, 3, 1, 3);
	feed(m, T0 + 3 * MS, SP_EV_WAKER_DROP, SP_HOLD_CHANNEL, 3, -1, 0);
	/* too young yet */
	topm_tick(m, T0 + 50 * MS);
	assert_int_equal(count_warn(m, TOPM_W_LOST_WAKER, 0, NULL), 0);
	topm_tick(m, T0 + 500 * MS);
	assert_int_equal(count_warn(m, TOPM_W_LOST_WAKER, 1, NULL), 1);
	assert_int_equal(count_warn(m, TOPM_W_LOST_WAKER, 2, NULL), 0);
	assert_int_equal(count_warn(m, TOPM_W_LOST_WAKER, 3, NULL), 1);
	assert_int_equal(topm_task_wakers(topm_task_get(m, 2)), 1);
	assert_true(topm_task_get(m, 1)->warn & (1u << TOPM_W_LOST_WAKER));
	/* a by-value wake consumes task 2's waker and schedules it: no warning */
	feed(m, T0 + 501 * MS, SP_EV_WAKE, SP_WAKE_BY_VALUE, 2, -1, 0);
	topm_tick(m, T0 + 502 * MS);
	assert_int_equal(topm_task_wakers(topm_task_get(m, 2)), 0);
	assert_int_equal(topm_task_get(m, 2)->state, TOPM_SCHEDULED);
	assert_int_equal(count_warn(m, TOPM_W_LOST_WAKER, 2, NULL), 0);
	char buf[200];
	size_t n;
	const topm_warning *w = topm_warnings(m, &n, NULL);
	topm_warning_text(m, &w[0], buf, sizeof buf);
	assert_non_null(strstr(buf, "never run again"));
	topm_free(m);
}

static void long_poll__live_then_recent_then_gone(void **state)
{
	(void)state;
	topm_model *m = mk();
	spawn(m, T0, 9, 3, 0);
	feed(m, T0 + MS, SP_EV_POLL_START, 1, 9, 1, 0);
	topm_tick(m, T0 + 6 * MS);
	assert_int_equal(count_warn(m, TOPM_W_LONG_POLL, 9, NULL), 0);
	int live = -1;
	topm_tick(m, T0 + 21 * MS);
	assert_int_equal(count_warn(m, TOPM_W_LONG_POLL, 9, &live), 1);
	assert_int_equal(live, 1);
	char age[32];
	topm_cell(m, topm_task_get(m, 9), TOPM_COL_AGE, age, sizeof age);
	assert_string_equal(age, "20.0ms");
	feed(m, T0 + 31 * MS, SP_EV_POLL_END, 0, 9, 1, 9);
	topm_tick(m, T0 + 40 * MS);
	assert_int_equal(count_warn(m, TOPM_W_LONG_POLL, 9, &live), 1);
	assert_int_equal(live, 0);
	size_t n;
	const topm_warning *w = topm_warnings(m, &n, NULL);
	assert_int_equal(w[0].value_ns, 30 * MS);
	topm_tick(m, T0 + 31 * MS + topm_cfg(m)->warn_hold_ns + MS);
	assert_int_equal(count_warn(m, TOPM_W_LONG_POLL, 9, NULL), 0);
	topm_free(m);
}

static void blocked_worker__names_worker_and_task(void **state)
{
	(void)state;
	topm_model *m = mk();
	spawn(m, T0, 5, 0, 0);
	feed(m, T0 + MS, SP_EV_POLL_START, 1, 5, 1, 0);
	topm_tick(m, T0 + 200 * MS);
	size_t n;
	const topm_warning *w = topm_warnings(m, &n, NULL);
	assert_int_equal(count_warn(m, TOPM_W_BLOCKED_WORKER, 5, NULL), 1);
	for (size_t i = 0; i < n; i++)
		if (w[i].kind == TOPM_W_BLOCKED_WORKER)
			assert_int_equal(w[i].worker, 1);
	assert_int_equal(topm_worker_get(m, 1)->current, 5);
	topm_free(m);
}

static void self_wake_and_sched_delay(void **state)
{
	(void)state;
	topm_model *m = mk();
	spawn(m, T0, 1, 0, 0);
	spawn(m, T0, 2, 0, 0);
	uint64_t ns = T0 + MS;
	for (int i = 0; i < 30; i++, ns += MS) {
		feed(m, ns, SP_EV_POLL_START, 0, 1, 0, 0);
		feed(m, ns, SP_EV_WAKE, i < 20 ? SP_WAKE_SELF : 0, 1, 0, i < 20 ? 1 : 0);
		feed(m, ns + 100, SP_EV_POLL_END, 0, 1, 0, 1);
		feed(m, ns + 200, SP_EV_POLL_START, 0, 2, 0, 0);
		feed(m, ns + 200, SP_EV_WAKE, i < 10 ? SP_WAKE_SELF : 0, 2, 0, i < 10 ? 2 : 0);
		feed(m, ns + 300, SP_EV_POLL_END, 0, 2, 0, 2);
	}
	topm_tick(m, ns);
	assert_int_equal(count_warn(m, TOPM_W_SELF_WAKE, 1, NULL), 1);
	assert_int_equal(count_warn(m, TOPM_W_SELF_WAKE, 2, NULL), 0);
	/* both scheduled since their last poll end; 15 ms later task 1 is delayed */
	int live = -1;
	topm_tick(m, ns + 15 * MS);
	assert_int_equal(count_warn(m, TOPM_W_SCHED_DELAY, 1, &live), 1);
	assert_int_equal(live, 1);
	feed(m, ns + 16 * MS, SP_EV_POLL_START, 0, 1, 0, 0);
	topm_tick(m, ns + 17 * MS);
	assert_int_equal(count_warn(m, TOPM_W_SCHED_DELAY, 1, &live), 1);
	assert_int_equal(live, 0);
	topm_free(m);
}

static void workers__steals_parks_rates(void **state)
{
	(void)state;
	topm_model *m = mk();
	spc_event th = {.ns = T0,
			.type = SP_EV_THREAD,
			.a = 1,
			.b = SP_THREAD_WORKER,
			.worker = 1,
			.tid = 4242};
	topm_event(m, &th);
	topm_tick(m, T0);
	spawn(m, T0, 1, 0, 0);
	feed(m, T0 + MS, SP_EV_STEAL, 0, 3, 1, 0);
	feed(m, T0 + MS, SP_EV_PARK, 0, 0, 0, 0);
	poll_once(m, T0 + 100 * MS, 250 * MS, 1, 1, 0);
	topm_tick(m, T0 + 1000 * MS);
	const topm_worker *w1 = topm_worker_get(m, 1), *w0 = topm_worker_get(m, 0);
	assert_int_equal(topm_worker_count(m), 2);
	assert_int_equal(w1->tid, 4242);
	assert_int_equal(w1->steals_in, 3);
	assert_int_equal(w0->steals_out, 3);
	assert_int_equal(w0->parks, 1);
	assert_int_equal(w1->polls, 1);
	assert_true(w1->busy_pct > 24.9 && w1->busy_pct < 25.1);
	assert_true(w1->polls_per_s > 0.99 && w1->polls_per_s < 1.01);
	topm_free(m);
}

static topm_model *three_tasks(void)
{
	topm_model *m = mk();
	spawn(m, T0, 10, 0, 0); /* conn, demo.c:100 */
	spawn(m, T0, 11, 1, 0); /* client, demo.c:101 */
	spawn(m, T0, 12, 2, 0); /* stats, demo.c:102 */
	for (int i = 0; i < 3; i++)
		poll_once(m, T0 + MS + (uint64_t)i * MS, 100, 10, 0, 0);
	poll_once(m, T0 + 5 * MS, 100, 11, 0, 0);
	for (int i = 0; i < 2; i++)
		poll_once(m, T0 + 7 * MS + (uint64_t)i * MS, 100, 12, 0, 0);
	topm_tick(m, T0 + 20 * MS);
	return m;
}

static void view__sorts_by_any_column_and_reverses(void **state)
{
	(void)state;
	topm_model *m = three_tasks();
	topm_task **v = NULL;
	size_t cap = 0;
	topm_view_opts o = {.sort_col = TOPM_COL_POLLS};
	assert_int_equal(topm_view(m, &o, &v, &cap), 3);
	assert_int_equal(v[0]->id, 10); /* polls descending: 3, 2, 1 */
	assert_int_equal(v[1]->id, 12);
	assert_int_equal(v[2]->id, 11);
	o.reverse = 1;
	topm_view(m, &o, &v, &cap);
	assert_int_equal(v[0]->id, 11);
	o = (topm_view_opts){.sort_col = TOPM_COL_NAME};
	topm_view(m, &o, &v, &cap);
	assert_int_equal(v[0]->id, 11); /* client, conn, stats */
	assert_int_equal(v[1]->id, 10);
	assert_int_equal(v[2]->id, 12);
	/* every column sorts without crashing and keeps all rows */
	for (int c = 0; c < TOPM_COL__COUNT; c++) {
		o.sort_col = c;
		assert_int_equal(topm_view(m, &o, &v, &cap), 3);
	}
	assert_int_equal(topm_col_by_key("polls"), TOPM_COL_POLLS);
	assert_int_equal(topm_col_by_key("nope"), -1);
	free(v);
	topm_free(m);
}

/* With a limit (the screen's head) the first rows are exactly those of a
 * full sort; the others are all there, in any order. */
static void view__limit_orders_the_head_like_a_full_sort(void **state)
{
	(void)state;
	topm_model *m = mk();
	uint64_t seed = 5;
	for (uint64_t id = 1; id <= 2000; id++) {
		spawn(m, T0, id, 0, 0);
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned polls = 1 + (unsigned)((seed >> 33) % 50); /* many ties */
		for (unsigned k = 0; k < polls; k++)
			poll_once(m, T0 + MS + k * 1000, 100, id, 0, 0);
	}
	topm_tick(m, T0 + 20 * MS);
	topm_task **full = NULL, **head = NULL;
	size_t cf = 0, ch = 0;
	for (int rev = 0; rev < 2; rev++) {
		topm_view_opts o = {.sort_col = TOPM_COL_POLLS, .reverse = rev};
		size_t n = topm_view(m, &o, &full, &cf);
		o.limit = 37;
		size_t nh = topm_view(m, &o, &head, &ch);
		assert_int_equal(n, 2000);
		assert_int_equal(nh, 2000);
		for (size_t i = 0; i < 37; i++)
			assert_int_equal(head[i]->id, full[i]->id);
		uint64_t sum_full = 0, sum_head = 0;
		for (size_t i = 0; i < n; i++)
			sum_full += full[i]->id, sum_head += head[i]->id;
		assert_int_equal(sum_full, sum_head);
	}
	free(full);
	free(head);
	topm_free(m);
}

static void view__filters_by_name_or_location_and_done(void **state)
{
	(void)state;
	topm_model *m = three_tasks();
	topm_task **v = NULL;
	size_t cap = 0;
	topm_view_opts o = {.sort_col = TOPM_COL_ID, .filter = "CLI"};
	assert_int_equal(topm_view(m, &o, &v, &cap), 1);
	assert_int_equal(v[0]->id, 11);
	o.filter = "demo.c:102";
	assert_int_equal(topm_view(m, &o, &v, &cap), 1);
	assert_int_equal(v[0]->id, 12);
	o.filter = "demo.c";
	assert_int_equal(topm_view(m, &o, &v, &cap), 3);
	o.filter = "zzz";
	assert_int_equal(topm_view(m, &o, &v, &cap), 0);
	feed(m, T0 + 30 * MS, SP_EV_TASK_DONE, 1, 11, -1, 0);
	o.filter = NULL;
	assert_int_equal(topm_view(m, &o, &v, &cap), 2);
	o.show_done = 1;
	assert_int_equal(topm_view(m, &o, &v, &cap), 3);
	char st[16];
	topm_cell(m, topm_task_get(m, 11), TOPM_COL_STATE, st, sizeof st);
	assert_string_equal(st, "aborted");
	free(v);
	topm_free(m);
}

static void expiry__done_tasks_leave_after_keep_and_cap(void **state)
{
	(void)state;
	topm_config c;
	topm_config_default(&c);
	c.keep_done_ns = 1000 * MS;
	c.max_done = 10;
	topm_model *m = topm_new(&c, fake_site, NULL);
	for (uint64_t id = 1; id <= 50; id++) {
		spawn(m, T0, id, 0, 0);
		poll_once(m, T0 + id * MS, 10, id, 0, 1);
	}
	size_t live, done;
	topm_tick(m, T0 + 100 * MS);
	topm_task_count(m, &live, &done);
	assert_int_equal(done, 10); /* the newest ten */
	assert_null(topm_task_get(m, 40));
	assert_non_null(topm_task_get(m, 41));
	topm_tick(m, T0 + 2000 * MS);
	assert_int_equal(topm_task_count(m, NULL, NULL), 0);
	topm_free(m);
}

static sp__seg_task slot(uint64_t id, uint32_t state, uint64_t polls)
{
	sp__seg_task t = {.id = id,
			  .state = state,
			  .polls = polls,
			  .site = SP_SITE_NONE,
			  .line = 42,
			  .busy_ns = 3 * MS,
			  .wakes = polls};
	snprintf(t.name, sizeof t.name, "forgetful");
	snprintf(t.file, sizeof t.file, "examples/lostwake.c");
	return t;
}

static void snapshot__seeds_raises_and_ends_missing(void **state)
{
	(void)state;
	topm_model *m = mk();
	spawn(m, T0, 20, 0, 0); /* known from events */
	poll_once(m, T0 + MS, MS, 20, 0, 0);
	/* the table: 20 is ahead of the events, 21 was never seen (late attach) */
	topm_snapshot_begin(m, T0 + 100 * MS);
	sp__seg_task a = slot(20, 0, 5), b = slot(21, 0, 1);
	topm_snapshot_task(m, &a, T0, T0 + 2 * MS);
	topm_snapshot_task(m, &b, T0, T0 + 2 * MS);
	topm_snapshot_end(m, T0 + 100 * MS, 1);
	assert_int_equal(topm_task_get(m, 20)->polls, 5);
	topm_task *t = topm_task_get(m, 21);
	assert_non_null(t);
	assert_int_equal(t->state, TOPM_IDLE);
	char loc[64];
	topm_cell(m, t, TOPM_COL_LOC, loc, sizeof loc);
	assert_string_equal(loc, "lostwake.c:42");
	/* seeded idle with no waker: a lost waker once old enough */
	topm_tick(m, T0 + 300 * MS);
	assert_int_equal(count_warn(m, TOPM_W_LOST_WAKER, 21, NULL), 1);
	/* 20 leaves the table; it ends at the second snapshot without it */
	for (int i = 0; i < 2; i++) {
		topm_snapshot_begin(m, T0 + (400 + (uint64_t)i) * MS);
		topm_snapshot_task(m, &b, T0, T0 + 2 * MS);
		topm_snapshot_end(m, T0 + (400 + (uint64_t)i) * MS, 1);
		assert_int_equal(topm_task_get(m, 20)->state, i ? TOPM_DONE : TOPM_IDLE);
	}
	/* an incomplete table ends nothing */
	topm_snapshot_begin(m, T0 + 500 * MS);
	topm_snapshot_end(m, T0 + 500 * MS, 0);
	topm_snapshot_begin(m, T0 + 501 * MS);
	topm_snapshot_end(m, T0 + 501 * MS, 0);
	assert_int_equal(topm_task_get(m, 21)->state, TOPM_IDLE);
	topm_free(m);
}

/* A model that drops a task as soon as it is done (no history kept). */
static topm_model *model_forgetting_done(void)
{
	topm_config c;
	topm_config_default(&c);
	c.keep_done_ns = 0;
	c.max_done = 0;
	return topm_new(&c, NULL, NULL);
}

static void hash__churn_keeps_every_lookup_right(void **state)
{
	(void)state;
	topm_model *m = model_forgetting_done();
	const uint64_t N = 100000;
	for (uint64_t id = 1; id <= N; id++)
		spawn(m, T0, id * 7919, 0, 0);
	assert_int_equal(topm_task_count(m, NULL, NULL), N);
	/* end every third one, expire them, check all lookups */
	for (uint64_t id = 3; id <= N; id += 3)
		feed(m, T0 + 1, SP_EV_TASK_DONE, 0, id * 7919, -1, 0);
	topm_tick(m, T0 + 10);
	for (uint64_t id = 1; id <= N; id++) {
		topm_task *t = topm_task_get(m, id * 7919);
		if (id % 3 == 0)
			assert_null(t);
		else
			assert_true(t && t->id == id * 7919);
	}
	assert_int_equal(topm_task_count(m, NULL, NULL), N - N / 3);
	/* records are reused: the pool does not grow on churn */
	for (uint64_t id = 1; id <= N / 3; id++)
		spawn(m, T0 + 20, (N + id) * 7919, 0, 0);
	assert_int_equal(topm_task_count(m, NULL, NULL), N);
	assert_non_null(topm_task_get(m, (N + 1) * 7919));
	topm_free(m);
}

/* The model looks ids up through a small direct-mapped cache in front of the
 * hash (slot: the id's low bits). Ids that share a slot, and a record that
 * is removed and then reused for another id, must never be confused: events
 * of the removed id make a new task, and the reused record's counters stay
 * its own. */
static void hash__cache_keeps_colliding_and_reused_ids_apart(void **state)
{
	(void)state;
	topm_model *m = model_forgetting_done();
	/* 64 ids per slot for 4 slots, events interleaved across them */
	const uint64_t step = 1u << 16, per = 64;
	for (uint64_t k = 0; k < per; k++)
		for (uint64_t s = 1; s <= 4; s++)
			spawn(m, T0, s + k * step, 0, 0);
	for (int round = 0; round < 3; round++)
		for (uint64_t k = 0; k < per; k++)
			for (uint64_t s = 1; s <= 4; s++) {
				uint64_t id = s + k * step;
				feed(m, T0 + 1, SP_EV_WAKE, SP_WAKE_BY_VALUE, id, 0, 0);
				if (s % 2)
					feed(m, T0 + 1, SP_EV_WAKER_CLONE, SP_HOLD_TIMER, id, 0, 0);
			}
	for (uint64_t k = 0; k < per; k++)
		for (uint64_t s = 1; s <= 4; s++) {
			topm_task *t = topm_task_get(m, s + k * step);
			assert_non_null(t);
			assert_int_equal(t->id, s + k * step);
			assert_int_equal(t->wakes, 3);
			assert_int_equal(t->drops, 3);
			assert_int_equal(t->clones, s % 2 ? 3 : 0);
		}
	/* end and expire id 1, just looked up (cached); its record goes to
	 * the free list and the next new task takes it */
	feed(m, T0 + 2, SP_EV_WAKE, 0, 1, 0, 0);
	feed(m, T0 + 2, SP_EV_TASK_DONE, 0, 1, -1, 0);
	topm_task *old = topm_task_get(m, 1);
	assert_non_null(old);
	topm_tick(m, T0 + 10);
	assert_null(topm_task_get(m, 1));
	spawn(m, T0 + 20, 9999, 0, 0);
	topm_task *reused = topm_task_get(m, 9999);
	assert_ptr_equal(reused, old);
	/* an event of the removed id: a new task, not the reused record */
	feed(m, T0 + 21, SP_EV_WAKE, 0, 1, 0, 0);
	topm_task *again = topm_task_get(m, 1);
	assert_non_null(again);
	assert_ptr_not_equal(again, reused);
	assert_int_equal(again->wakes, 1);
	assert_int_equal(reused->wakes, 0);
	assert_int_equal(reused->id, 9999);
	/* and the reused record's own events reach it */
	feed(m, T0 + 22, SP_EV_WAKE, 0, 9999, 0, 0);
	assert_int_equal(reused->wakes, 1);
	assert_int_equal(again->wakes, 1);
	/* a task removed from the cache's slot by its neighbours is still found */
	for (uint64_t k = 1; k < per; k++)
		feed(m, T0 + 23, SP_EV_WAKE, 0, 2 + k * step, 0, 0);
	feed(m, T0 + 23, SP_EV_WAKE, 0, 2, 0, 0);
	assert_int_equal(topm_task_get(m, 2)->wakes, 4);
	assert_int_equal(topm_task_get(m, 2 + step)->wakes, 4);
	topm_free(m);
}

static void hist__percentiles_and_sparkline(void **state)
{
	(void)state;
	uint16_t h[TOPM_HIST_BUCKETS] = {0};
	assert_int_equal(topm_hist_pct(h, 50), 0);
	assert_int_equal(topm_hist_bucket(500), 0);
	assert_int_equal(topm_hist_bucket(1500), 1);
	assert_int_equal(topm_hist_bucket(10 * MS), 14);
	/* the bucket is the bit length of the microseconds, capped at the
	 * last: the same as shifting them down one bit at a time */
	for (unsigned bit = 0; bit < 64; bit++)
		for (int d = -1; d <= 1; d++)
			for (uint64_t scale = 1; scale <= 1000; scale *= 1000) {
				uint64_t ns = ((1ull << bit) + (uint64_t)(int64_t)d) * scale;
				uint64_t us = ns / 1000;
				unsigned want = 0;
				while (us && want < TOPM_HIST_BUCKETS - 1) {
					us >>= 1;
					want++;
				}
				assert_int_equal(topm_hist_bucket(ns), want);
			}
	assert_int_equal(topm_hist_bucket(UINT64_MAX), TOPM_HIST_BUCKETS - 1);
	h[topm_hist_bucket(3000)] = 90; /* 90 polls in [2,4) us */
	h[topm_hist_bucket(20 * MS)] = 9;
	h[topm_hist_bucket(900 * MS)] = 1;
	assert_int_equal(topm_hist_pct(h, 50), 4000);
	assert_int_equal(topm_hist_pct(h, 90), 4000);
	assert_int_equal(topm_hist_pct(h, 99), topm_hist_bucket_end(topm_hist_bucket(20 * MS)));
	char sp[TOPM_HIST_BUCKETS + 1];
	topm_sparkline(h, sp);
	assert_int_equal(strlen(sp), TOPM_HIST_BUCKETS);
	assert_int_equal(sp[2], '@');
	assert_int_equal(sp[0], ' ');
	char b[32];
	topm_fmt_ns(1500, b, sizeof b);
	assert_string_equal(b, "1us");
	topm_fmt_ns(30 * MS, b, sizeof b);
	assert_string_equal(b, "30.0ms");
	topm_fmt_ns(125000 * MS, b, sizeof b);
	assert_string_equal(b, "2m05s");
}

static void focus__collects_the_selected_tasks_events(void **state)
{
	(void)state;
	topm_model *m = mk();
	spawn(m, T0, 1, 0, 0);
	for (int i = 0; i < 20; i++)
		poll_once(m, T0 + (uint64_t)i * MS, 10, 1, 0, 0);
	topm_focus(m, 1);
	topm_ev e[TOPM_FOCUS_EVENTS];
	assert_int_equal(topm_focus_events(m, e, TOPM_FOCUS_EVENTS), TOPM_TASK_EVENTS);
	for (int i = 20; i < 300; i++)
		poll_once(m, T0 + (uint64_t)i * MS, 10, 1, 0, 0);
	size_t n = topm_focus_events(m, e, TOPM_FOCUS_EVENTS);
	assert_int_equal(n, TOPM_FOCUS_EVENTS);
	assert_int_equal(e[n - 1].type, SP_EV_POLL_END);
	assert_true(e[0].ns < e[n - 1].ns);
	uint64_t kids[4];
	spawn(m, T0 + 400 * MS, 2, 0, 1);
	spawn(m, T0 + 400 * MS, 3, 0, 1);
	assert_int_equal(topm_children(m, 1, kids, 4), 2);
	assert_int_equal(topm_task_get(m, 2)->parent, 1);
	topm_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lifecycle__counters_times_and_states),
		cmocka_unit_test(lifecycle__wake_while_running_reschedules),
		cmocka_unit_test(lost_waker__flagged_only_without_outstanding_waker),
		cmocka_unit_test(lost_waker__found_when_the_first_poll_precedes_the_spawn),
		cmocka_unit_test(long_poll__live_then_recent_then_gone),
		cmocka_unit_test(blocked_worker__names_worker_and_task),
		cmocka_unit_test(self_wake_and_sched_delay),
		cmocka_unit_test(workers__steals_parks_rates),
		cmocka_unit_test(view__sorts_by_any_column_and_reverses),
		cmocka_unit_test(view__limit_orders_the_head_like_a_full_sort),
		cmocka_unit_test(view__filters_by_name_or_location_and_done),
		cmocka_unit_test(expiry__done_tasks_leave_after_keep_and_cap),
		cmocka_unit_test(snapshot__seeds_raises_and_ends_missing),
		cmocka_unit_test(hash__churn_keeps_every_lookup_right),
		cmocka_unit_test(hash__cache_keeps_colliding_and_reused_ids_apart),
		cmocka_unit_test(hist__percentiles_and_sparkline),
		cmocka_unit_test(focus__collects_the_selected_tasks_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
