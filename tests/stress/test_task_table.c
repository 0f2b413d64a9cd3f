/*
 * test_task_table.c - the task table written on request (trace.c, TASK
 * TABLE) while the runtime runs flat out.
 *
 * A traced 4-worker runtime runs tasks that yield (so they are stolen and
 * complete away from their shard's owner), spawn children that finish at
 * once, and sleep; a foreign thread spawns more (they join a shard at their
 * first poll) and aborts some before they run. Meanwhile a reader thread in
 * this process asks for the table over and over (sp__seg_table_request) and
 * reads it, as `spindle top` does from another process. The table writer
 * thread thus enters and refreshes slots while workers insert, remove and
 * complete the same tasks and free their slots.
 *
 * Checks: every request is served (no time-out); no snapshot holds two slots
 * with one task id, and every id seen was handed out; an idle anchor task is in
 * every snapshot taken while it lives, with its one poll; after the free,
 * a last request finds no task of this runtime left in the table (every slot
 * went back when its task left its shard). Run under TSan by `make sanitize`.
 */
#include <pthread.h>
#include <unistd.h>

#include "trace_segment.h"
#include "unit/sp_test.h"

#define ROUNDS (SPT_SANITIZED ? 400 : 2000)
#define N_TASKS 48
#define N_FOREIGN (SPT_SANITIZED ? 500 : 2000)

struct shared {
	atomic_int done;
	_Atomic uint64_t max_id; /* the highest task id handed out so far */
	atomic_int stop_reader;
};

static void note_id(struct shared *sh, uint64_t id)
{
	uint64_t cur = atomic_load(&sh->max_id);
	while (cur < id && !atomic_compare_exchange_weak(&sh->max_id, &cur, id))
		;
}

struct child {
	sp_future base;
	int out;
	sp_yield y;
};

static sp_poll child_poll(sp_future *f, sp_context *cx)
{
	struct child *self = (struct child *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_yield_init(&self->y);
	SP_AWAIT(&self->y);
	SP_ASYNC_END();
}

struct worker_task {
	sp_future base;
	int out;
	struct shared *sh;
	int r;
	sp_yield y;
	sp_sleep s;
};

static sp_poll worker_task_poll(sp_future *f, sp_context *cx)
{
	struct worker_task *self = (struct worker_task *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->r = 0; self->r < ROUNDS; self->r++) {
		{
			struct child c = {.base = {.poll = child_poll, .name = "child"}};
			sp_join_handle jh;
			if (SP_SPAWN("child", &jh, c) == 0) {
				note_id(self->sh, sp_join_handle_id(&jh));
				sp_join_handle_detach(&jh);
			}
		}
		if (self->r % 8 == 0) {
			sp_sleep_init(&self->s, 200000); /* 0.2 ms */
			SP_AWAIT(&self->s);
		} else {
			sp_yield_init(&self->y);
			SP_AWAIT(&self->y);
		}
	}
	atomic_fetch_add(&self->sh->done, 1);
	SP_ASYNC_END();
}

/* Idle until aborted: always in the table while it lives. */
struct anchor {
	sp_future base;
	int out;
	sp_waker w;
};

static sp_poll anchor_poll(sp_future *f, sp_context *cx)
{
	struct anchor *self = (struct anchor *)f;
	sp_waker_store(&self->w, cx);
	return SP_PENDING;
}

static void anchor_drop(sp_future *f)
{
	struct anchor *self = (struct anchor *)f;
	sp_waker_drop(&self->w);
}

struct reader {
	struct shared *sh;
	uint64_t anchor_id;
	int requests, timeouts, dup_ids, anchor_missing, anchor_bad_polls, overflows;
	uint64_t min_seen, max_seen; /* checked against the ids handed out, after */
	int open_rc;
};

struct snap {
	uint64_t ids[4096];
	size_t n;
	int overflow;
	uint64_t anchor_id;
	int anchor_seen;
	uint64_t anchor_polls;
};

static void collect(unsigned slot, const sp__seg_task *t, void *arg)
{
	(void)slot;
	struct snap *s = arg;
	if (s->n < sizeof s->ids / sizeof s->ids[0])
		s->ids[s->n++] = t->id;
	else
		s->overflow = 1;
	if (t->id == s->anchor_id) {
		s->anchor_seen = 1;
		s->anchor_polls = t->polls;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	sp__seg_reader r;
	rd->open_rc = sp__seg_open(&r, (int)getpid());
	if (rd->open_rc)
		return NULL;
	static struct snap s; /* one reader thread */
	while (!atomic_load(&rd->sh->stop_reader)) {
		int rc = sp__seg_table_request(&r, 5000);
		rd->requests++;
		if (rc) {
			rd->timeouts++;
			continue;
		}
		memset(&s, 0, sizeof s);
		s.anchor_id = rd->anchor_id;
		sp__seg_read_tasks(&r, collect, &s, NULL);
		rd->overflows += s.overflow; /* ids past the buffer went unchecked */
		qsort(s.ids, s.n, sizeof s.ids[0], cmp_u64);
		for (size_t i = 0; i < s.n; i++)
			if (i && s.ids[i] == s.ids[i - 1])
				rd->dup_ids++;
		if (s.n && (!rd->min_seen || s.ids[0] < rd->min_seen))
			rd->min_seen = s.ids[0];
		if (s.n && s.ids[s.n - 1] > rd->max_seen)
			rd->max_seen = s.ids[s.n - 1];
		if (!s.anchor_seen)
			rd->anchor_missing++;
		else if (s.anchor_polls != 1)
			rd->anchor_bad_polls++;
	}
	sp__seg_close(&r);
	return NULL;
}

struct foreign {
	sp_runtime *rt;
	struct shared *sh;
	int spawn_errors;
};

static void *foreign_main(void *arg)
{
	struct foreign *fo = arg;
	for (int i = 0; i < N_FOREIGN; i++) {
		struct child c = {.base = {.poll = child_poll, .name = "foreign_child"}};
		sp_join_handle jh;
		if (SP_RUNTIME_SPAWN(fo->rt, "foreign_child", &jh, c) != 0) {
			fo->spawn_errors++;
			continue;
		}
		note_id(fo->sh, sp_join_handle_id(&jh));
		if (i % 3 == 0)
			sp_join_handle_abort(&jh); /* often before its first poll */
		sp_join_handle_wait(&jh);
	}
	return NULL;
}

static size_t count_ids_above(sp__seg_reader *r, uint64_t floor_id)
{
	static struct snap s;
	memset(&s, 0, sizeof s);
	sp__seg_read_tasks(r, collect, &s, NULL);
	size_t n = 0;
	for (size_t i = 0; i < s.n; i++)
		n += s.ids[i] >= floor_id;
	return n;
}

static void table__refresh_races_the_workers(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = 4, .trace = 1};
	sp_runtime *rt = NULL;
	assert_int_equal(sp_runtime_new(&rt, &o), 0);
	static struct shared sh;
	memset(&sh, 0, sizeof sh);
	struct anchor an = {.base = {.poll = anchor_poll, .drop = anchor_drop, .name = "anchor"}};
	sp_join_handle ja;
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "anchor", &ja, an), 0);
	uint64_t first_id = sp_join_handle_id(&ja);
	note_id(&sh, first_id);
	/* the anchor has polled once and waits: in every table from now on */
	assert_true(SPT_WAIT_UNTIL(spt_task_idle(rt, first_id), SPT_SOON_MS));
	struct reader rd = {.sh = &sh, .anchor_id = first_id};
	pthread_t rt_reader = spt_thread(reader_main, &rd);
	struct foreign fo = {.rt = rt, .sh = &sh};
	pthread_t rt_foreign = spt_thread(foreign_main, &fo);

	/* act */
	sp_join_handle jh[N_TASKS];
	int spawn_rcs = 0;
	for (int i = 0; i < N_TASKS; i++) {
		struct worker_task t = {.base = {.poll = worker_task_poll, .name = "worker_task"},
					.sh = &sh};
		spawn_rcs |= SP_RUNTIME_SPAWN(rt, "worker_task", &jh[i], t);
		note_id(&sh, sp_join_handle_id(&jh[i]));
	}
	for (int i = 0; i < N_TASKS; i++)
		sp_join_handle_wait(&jh[i]);
	pthread_join(rt_foreign, NULL);
	atomic_store(&sh.stop_reader, 1);
	pthread_join(rt_reader, NULL);
	sp_join_handle_abort(&ja);
	int anchor_rc = sp_join_handle_wait(&ja);
	sp_runtime_free(rt);
	sp__seg_reader r;
	int open_rc = sp__seg_open(&r, (int)getpid());
	int last_rc = open_rc ? open_rc : sp__seg_table_request(&r, 5000);
	size_t left = open_rc ? 1 : count_ids_above(&r, first_id);
	if (!open_rc)
		sp__seg_close(&r);

	/* assert */
	assert_int_equal(spawn_rcs, 0);
	assert_int_equal(atomic_load(&sh.done), N_TASKS);
	assert_int_equal(fo.spawn_errors, 0);
	assert_int_equal(anchor_rc, SP_ECANCELED);
	assert_int_equal(rd.open_rc, 0);
	assert_true(rd.requests > 0);
	assert_int_equal(rd.timeouts, 0);
	assert_int_equal(rd.overflows, 0);
	assert_int_equal(rd.dup_ids, 0);
	/* every id seen was one of ours (noted once its spawn returned) */
	assert_true(rd.min_seen >= first_id);
	assert_true(rd.max_seen <= atomic_load(&sh.max_id));
	assert_int_equal(rd.anchor_missing, 0);
	assert_int_equal(rd.anchor_bad_polls, 0);
	assert_int_equal(last_rc, 0);
	assert_int_equal(left, 0);
	if (getenv("SPT_VERBOSE"))
		fprintf(stderr, "%d table requests served\n", rd.requests);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table__refresh_races_the_workers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
