/*
 * test_replay.c - `spindle top --replay`'s model side (console/replay.h) on
 * small recordings written here with the database writer (db.h): the order
 * of events of equal time, the cursor forward and back, tasks from before
 * the recording, the waker aggregate, the worst poll.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "replay.h"

#define MS 1000000ll
#define T0 5000000000ll

/* Timer wake: by value, source TIMER, to the local queue. */
#define WAKE_TIMER                                                                                 \
	(SP_WAKE_BY_VALUE | (SP_WAKE_SRC_TIMER << SP_WAKE_SRC_SHIFT) |                             \
	 (SP_WAKE_Q_LOCAL << SP_WAKE_Q_SHIFT))
#define WAKE_SELF (SP_WAKE_SELF | SP_WAKE_BY_VALUE | (SP_WAKE_Q_LIFO << SP_WAKE_Q_SHIFT))

static char path[64];

/*
 * Task 1 'ticker' (site 7): spawned at 0; polls [1, 2] ms; a timer wake
 * stamped with the next poll's start (5 ms) and that poll [5, 6]; a poll
 * [10, 11] that wakes itself (a self-wake at its start, 10 ms); a poll
 * [12, 42] (30 ms, the worst); done at 50.
 * Task 2 'forgetful' (site 8): spawned at 1; polled [3, 4] pending; no
 * waker ever: a lost waker from 104 on.
 * Task 3 (made-up site): spawned before the recording (spawn -1 s).
 * Task 4 'holder' (site 7): spawned at 2, polled [6, 7]; its waker
 * aggregate: 2 clones (first at 7), 2 drops (last at 80).
 * A spindle trace finding about task 1's worst poll.
 */
static void write_db(void)
{
	char err[256];
	spdb_writer *w;
	snprintf(path, sizeof path, "/tmp/test_replay.%d.db", (int)getpid());
	assert_int_equal(spdb_writer_open(&w, path, err, sizeof err), 0);
	assert_int_equal(spdb_put_meta_int(w, "abi", SPDB_ABI), 0);
	assert_int_equal(spdb_put_meta_int(w, "t0_ns", T0), 0);
	assert_int_equal(spdb_put_meta_int(w, "pid", 42), 0);
	assert_int_equal(spdb_put_meta_text(w, "command", "/bin/ticker --fast"), 0);
	assert_int_equal(spdb_put_meta_int(w, "end_ns", 200 * MS), 0);
	assert_int_equal(spdb_put_site(w, 7, "ticker", "t.c", 10), 0);
	assert_int_equal(spdb_put_site(w, 8, "forgetful", "t.c", 20), 0);
	assert_int_equal(spdb_put_site(w, SPDB_SITE_MADE_UP + 3, "old", "o.c", 30), 0);
	assert_int_equal(spdb_put_task(w, 1, 0, 7, 0, 50 * MS, 0), 0);
	assert_int_equal(spdb_put_task(w, 2, 1, 8, 1 * MS, SPDB_NULL, SPDB_NULL), 0);
	assert_int_equal(
		spdb_put_task(w, 3, 0, SPDB_SITE_MADE_UP + 3, -1000 * MS, SPDB_NULL, SPDB_NULL), 0);
	assert_int_equal(spdb_put_task(w, 4, 0, 7, 2 * MS, SPDB_NULL, SPDB_NULL), 0);
	assert_int_equal(spdb_put_poll(w, 1 * MS, 2 * MS, 1, 0, 0, 1 * MS), 0);
	assert_int_equal(spdb_put_poll(w, 3 * MS, 4 * MS, 2, 1, 0, 2 * MS), 0);
	assert_int_equal(spdb_put_wake(w, 5 * MS, 1, WAKE_TIMER, SPDB_NULL, 0), 0);
	assert_int_equal(spdb_put_poll(w, 5 * MS, 6 * MS, 1, 0, 0, 0), 0);
	assert_int_equal(spdb_put_poll(w, 6 * MS, 7 * MS, 4, 1, 0, 4 * MS), 0);
	assert_int_equal(spdb_put_wake(w, 10 * MS, 1, WAKE_SELF, 1, 0), 0);
	assert_int_equal(spdb_put_poll(w, 10 * MS, 11 * MS, 1, 0, 0, SPDB_NULL), 0);
	assert_int_equal(spdb_put_poll(w, 12 * MS, 42 * MS, 1, 0, SP_POLL_READY, 1 * MS), 0);
	assert_int_equal(spdb_put_waker(w, 4, SP_HOLD_CHANNEL, 0, 2, 2, 0, 7 * MS, 80 * MS), 0);
	assert_int_equal(spdb_put_meta_int(w, "finished", 1), 0);
	assert_int_equal(spdb_writer_close(w, 1), 0);
	/* a finding of spindle trace -o about the worst poll */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO warnings(ts, kind, task, dur, detail, source) "
				      "VALUES (12000000, 'long_poll', 1, 30000000, 'blocked 30.0 ms "
				      "in clock_nanosleep, culprit nap (t.c:5); fix: move it', "
				      "'spindle trace')",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
}

static replay *open_it(void)
{
	topm_config c;
	char err[256];
	replay *r;
	topm_config_default(&c);
	write_db();
	assert_int_equal(replay_open(&r, path, &c, err, sizeof err), 0);
	return r;
}

static void close_it(replay *r)
{
	replay_close(r);
	unlink(path);
}

static topm_task *task(replay *r, uint64_t id)
{
	topm_task *t = topm_task_get(replay_model(r), id);
	assert_non_null(t);
	return t;
}

static void ties__timer_wake_before_its_poll_self_wake_after(void **state)
{
	(void)state;
	replay *r = open_it();
	assert_int_equal(replay_pid(r), 42);
	assert_int_equal(replay_end(r), 200 * MS);
	/* after the timer-woken poll: idle, not scheduled (the wake came first) */
	assert_int_equal(replay_seek(r, 8 * MS, 0), 0);
	assert_int_equal(task(r, 1)->state, TOPM_IDLE);
	assert_int_equal(task(r, 1)->polls, 2);
	assert_int_equal(task(r, 1)->wakes, 1);
	assert_int_equal(task(r, 1)->sched_ns, 1 * MS); /* the spawn's wait only */
	/* after the self-woken poll: scheduled again (the wake came inside) */
	assert_int_equal(replay_seek(r, 11 * MS + 500000, 0), 0);
	assert_int_equal(task(r, 1)->state, TOPM_SCHEDULED);
	assert_int_equal(task(r, 1)->self_wakes, 1);
	/* names come from the sites table, the parent from tasks.parent */
	assert_string_equal(topm_site_get(replay_model(r), task(r, 2)->site)->name, "forgetful");
	assert_int_equal(task(r, 2)->parent, 1);
	close_it(r);
}

static void cursor__long_poll_live_then_past_then_back(void **state)
{
	(void)state;
	replay *r = open_it();
	int64_t start, dur;
	uint64_t id;
	assert_int_equal(replay_worst_poll(r, &start, &dur, &id), 0);
	assert_int_equal(start, 12 * MS);
	assert_int_equal(dur, 30 * MS);
	assert_int_equal(id, 1);
	/* inside the worst poll: running, a live long-poll warning */
	assert_int_equal(replay_seek(r, 32 * MS, 10 * MS), 0);
	assert_int_equal(task(r, 1)->state, TOPM_RUNNING);
	assert_int_equal(topm_task_poll_age(replay_model(r), task(r, 1)), 20 * MS);
	assert_true(task(r, 1)->warn & (1u << TOPM_W_LONG_POLL));
	assert_int_equal((int64_t)topm_now(replay_model(r)), T0 + 32 * MS);
	/* past its end, and done */
	assert_int_equal(replay_seek(r, 60 * MS, 10 * MS), 0);
	assert_int_equal(task(r, 1)->state, TOPM_DONE);
	assert_int_equal(task(r, 1)->long_poll_ns, 30 * MS);
	/* back: a rebuilt model says the same as the first time */
	assert_int_equal(replay_seek(r, 32 * MS, 10 * MS), 0);
	assert_int_equal(replay_cursor(r), 32 * MS);
	assert_int_equal(task(r, 1)->state, TOPM_RUNNING);
	assert_int_equal(task(r, 1)->polls, 3);
	/* clamped to the recording */
	assert_int_equal(replay_seek(r, -5, 0), 0);
	assert_int_equal(replay_cursor(r), 0);
	assert_int_equal(replay_seek(r, 999 * MS, 0), 0);
	assert_int_equal(replay_cursor(r), 200 * MS);
	close_it(r);
}

static void findings__shown_once_the_poll_ended(void **state)
{
	(void)state;
	replay *r = open_it();
	size_t n, total;
	char text[200];
	assert_int_equal(replay_seek(r, 30 * MS, 0), 0);
	assert_false(task(r, 1)->warn & (1u << TOPM_W_KERNEL));
	assert_int_equal(replay_seek(r, 45 * MS, 0), 0);
	assert_true(task(r, 1)->warn & (1u << TOPM_W_KERNEL));
	const topm_warning *w = topm_warnings(replay_model(r), &n, &total);
	size_t i = 0;
	while (i < n && w[i].kind != TOPM_W_KERNEL)
		i++;
	assert_true(i < n);
	assert_int_equal(w[i].task, 1);
	topm_warning_text(replay_model(r), &w[i], text, sizeof text);
	assert_non_null(strstr(text, "blocked 30.0 ms in clock_nanosleep"));
	assert_null(strstr(text, "fix:"));
	close_it(r);
}

static void wakers__lost_waker_and_aggregate(void **state)
{
	(void)state;
	replay *r = open_it();
	/* forgetful: spawned in the recording, no waker: lost after 100 ms idle */
	assert_int_equal(replay_seek(r, 50 * MS, 0), 0);
	assert_false(task(r, 2)->warn & (1u << TOPM_W_LOST_WAKER));
	assert_int_equal(replay_seek(r, 110 * MS, 0), 0);
	assert_true(task(r, 2)->warn & (1u << TOPM_W_LOST_WAKER));
	/* holder: both clones count from the first change, both drops at the
	 * last: in between it holds wakers, after it none (lost at 7 + 100) */
	assert_int_equal(replay_seek(r, 50 * MS, 0), 0);
	assert_int_equal(topm_task_wakers(task(r, 4)), 2);
	assert_int_equal(replay_seek(r, 150 * MS, 0), 0);
	assert_int_equal(topm_task_wakers(task(r, 4)), 0);
	assert_true(task(r, 4)->warn & (1u << TOPM_W_LOST_WAKER));
	/* spawned before the recording: idle since its spawn, wakers unknown,
	 * never a lost waker; named from its made-up site */
	topm_task *old = task(r, 3);
	assert_int_equal(old->state, TOPM_IDLE);
	assert_int_equal(old->polls, 0);
	assert_int_equal(topm_task_wakers(old), -1);
	assert_int_equal((int64_t)old->spawn_ns, T0 - 1000 * MS);
	assert_false(old->warn & (1u << TOPM_W_LOST_WAKER));
	assert_string_equal(topm_site_get(replay_model(r), old->site)->name, "old");
	close_it(r);
}

static void open__bad_files_one_line(void **state)
{
	(void)state;
	topm_config c;
	char err[256];
	replay *r;
	topm_config_default(&c);
	assert_int_equal(replay_open(&r, "/nonexistent/x.db", &c, err, sizeof err), -1);
	assert_null(r);
	assert_non_null(strstr(err, "/nonexistent/x.db"));
	assert_null(strchr(err, '\n'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ties__timer_wake_before_its_poll_self_wake_after),
		cmocka_unit_test(cursor__long_poll_live_then_past_then_back),
		cmocka_unit_test(findings__shown_once_the_poll_ended),
		cmocka_unit_test(wakers__lost_waker_and_aggregate),
		cmocka_unit_test(open__bad_files_one_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
