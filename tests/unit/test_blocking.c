/*
 * test_blocking.c - the blocking pool: jobs run in parallel on pool threads
 * while the workers keep polling other tasks, a saturated pool queues jobs
 * FIFO, a dropped job that has not started never runs, dropping a running job
 * waits for its fn, a blocking read(2) completes when another thread writes,
 * idle threads exit after the keep-alive, the current-thread flavour, and
 * the limit from the environment.
 *
 * The pool is process-wide: every test sets the limits it relies on first.
 */
#include <unistd.h>

#include "unit/sp_test.h"

/* ---- jobs ----------------------------------------------------------------------- */

static atomic_int in_flight, max_in_flight, seq;

struct sleep_job {
	unsigned ms;
	_Atomic uint64_t start_ns, end_ns;
	atomic_int order; /* seq value when it started */
	atomic_int ran;
	atomic_int on_pool; /* ran on a "spindle-blk" thread of no runtime */
};

static void counters_reset(void)
{
	atomic_store(&in_flight, 0);
	atomic_store(&max_in_flight, 0);
	atomic_store(&seq, 0);
}

static void sleep_fn(void *arg)
{
	struct sleep_job *j = arg;
	atomic_store(&j->start_ns, spt_now_ns());
	atomic_store(&j->order, atomic_fetch_add(&seq, 1));
	char name[16] = "";
	pthread_getname_np(pthread_self(), name, sizeof(name));
	atomic_store(&j->on_pool, strcmp(name, "spindle-blk") == 0 && !sp_runtime_current());
	int now = atomic_fetch_add(&in_flight, 1) + 1;
	int m = atomic_load(&max_in_flight);
	while (now > m && !atomic_compare_exchange_weak(&max_in_flight, &m, now)) {
	}
	usleep(j->ms * 1000u);
	atomic_fetch_sub(&in_flight, 1);
	atomic_store(&j->end_ns, spt_now_ns());
	atomic_store(&j->ran, 1);
}

static void jobs_init(struct sleep_job *jobs, size_t n, unsigned ms)
{
	memset(jobs, 0, n * sizeof(*jobs));
	for (size_t i = 0; i < n; i++) {
		jobs[i].ms = ms;
		atomic_store(&jobs[i].order, -1);
	}
}

/* A task that awaits one job (submitted at the first poll). */
struct awaiter {
	sp_future base;
	int out;
	void *arg;
	sp_blocking_fn fn;
	sp_blocking b;
};

static sp_poll awaiter_poll(sp_future *f, sp_context *cx)
{
	struct awaiter *self = (struct awaiter *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_blocking_init(&self->b, self->fn, self->arg);
	SP_AWAIT(&self->b);
	SP_RETURN(self->b.out);
	SP_ASYNC_END();
}

static void awaiter_init(struct awaiter *a, sp_blocking_fn fn, void *arg)
{
	memset(a, 0, sizeof(*a));
	a->base = (sp_future){.poll = awaiter_poll, .name = "awaiter"};
	a->fn = fn;
	a->arg = arg;
	a->out = -1;
}

/* Yields until stop; counts the polls that saw a job in flight. (No timer:
 * the point is that the workers stay free, whatever the task does.) */
static atomic_int ticker_stop, ticks_during_jobs;

struct ticker {
	sp_future base;
	int out;
};

static sp_poll ticker_poll(sp_future *f, sp_context *cx)
{
	SP_ASYNC_BEGIN(f, cx);
	while (!atomic_load(&ticker_stop)) {
		SP_YIELD();
		if (atomic_load(&in_flight) > 0)
			atomic_fetch_add(&ticks_during_jobs, 1);
	}
	SP_ASYNC_END();
}

/* ---- settings at first use ----------------------------------------------------------- */

/* Runs first: the pool reads SPINDLE_BLOCKING_THREADS when it is first used. */
static void blocking__max_threads_from_environment_at_first_use(void **state)
{
	(void)state;
	/* arrange */
	setenv("SPINDLE_BLOCKING_THREADS", "3", 1);
	sp_blocking b;
	sp_blocking_init(&b, NULL, NULL);

	/* act */
	sp_blocking_stats st;
	sp_blocking_pool_stats(&st);
	int rc = sp_spawn_blocking(&b, NULL, NULL); /* a NULL fn is refused */
	unsetenv("SPINDLE_BLOCKING_THREADS");

	/* assert */
	assert_int_equal(st.max_threads, 3);
	assert_int_equal(st.threads, 0);
	assert_int_equal(rc, SP_EINVAL);
	assert_int_equal(b.out, SP_EINVAL);
}

/* ---- parallel jobs, workers stay free --------------------------------------------- */

static void blocking__parallel_jobs_leave_workers_free(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(64), 0);
	counters_reset();
	atomic_store(&ticker_stop, 0);
	atomic_store(&ticks_during_jobs, 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct sleep_job jobs[4];
	jobs_init(jobs, 4, 100);
	struct ticker tk = {.base = {.poll = ticker_poll, .name = "ticker"}};
	sp_join_handle tjh, jh[4];
	struct awaiter a[4];
	int rcs = SP_RUNTIME_SPAWN(rt, "ticker", &tjh, tk);

	/* act */
	uint64_t t0 = spt_now_ns();
	for (int i = 0; i < 4; i++) {
		awaiter_init(&a[i], sleep_fn, &jobs[i]);
		rcs |= SP_RUNTIME_SPAWN(rt, "awaiter", &jh[i], a[i]);
	}
	int status = 0;
	for (int i = 0; i < 4; i++)
		status |= sp_join_handle_wait(&jh[i]);
	uint64_t took = spt_now_ns() - t0;
	atomic_store(&ticker_stop, 1);
	int tstatus = sp_join_handle_wait(&tjh);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rcs, 0);
	assert_int_equal(status, 0);
	assert_int_equal(tstatus, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(atomic_load(&jobs[i].ran), 1);
		assert_int_equal(atomic_load(&jobs[i].on_pool), 1);
	}
	assert_int_equal(atomic_load(&max_in_flight), 4);
	assert_true(took >= SP_MS(100));
	assert_true(took < SP_MS(390)); /* serially: 400 ms */
	assert_true(atomic_load(&ticks_during_jobs) >= 100);
}

/* ---- saturation and FIFO ------------------------------------------------------------ */

#define BATCH_MAX 8

/* One task submits n jobs in order (sp_spawn_blocking), then awaits each. */
struct batch {
	sp_future base;
	int out;
	int n, i;
	struct sleep_job *jobs;
	sp_blocking b[BATCH_MAX];
};

static sp_poll batch_poll(sp_future *f, sp_context *cx)
{
	struct batch *self = (struct batch *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->n; self->i++)
		if (sp_spawn_blocking(&self->b[self->i], sleep_fn, &self->jobs[self->i]))
			self->out = -1;
	for (self->i = 0; self->i < self->n; self->i++) {
		SP_AWAIT(&self->b[self->i]);
		if (self->b[self->i].out)
			self->out = -1;
	}
	SP_ASYNC_END();
}

static void batch_init(struct batch *b, struct sleep_job *jobs, int n)
{
	memset(b, 0, sizeof(*b));
	b->base = (sp_future){.poll = batch_poll, .name = "batch"};
	b->jobs = jobs;
	b->n = n;
}

static void blocking__saturated_pool_queues_fifo(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(2), 0);
	counters_reset();
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct sleep_job jobs[6];
	jobs_init(jobs, 6, 50);
	struct batch b;
	batch_init(&b, jobs, 6);

	/* act */
	uint64_t t0 = spt_now_ns();
	int rc = sp_block_on(rt, &b.base);
	uint64_t took = spt_now_ns() - t0;
	sp_blocking_stats st;
	sp_blocking_pool_stats(&st);
	sp_runtime_free(rt);
	assert_int_equal(sp_blocking_set_max_threads(64), 0);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(b.out, 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(atomic_load(&jobs[i].ran), 1);
	assert_true(took >= SP_MS(150));
	assert_int_equal(atomic_load(&max_in_flight), 2);
	assert_int_equal(st.max_threads, 2);
	assert_int_equal(st.queued, 0);
	/* FIFO, in waves of two: a job starts after every job of an earlier
	 * wave started (LIFO would start 4 and 5 before 2 and 3). */
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 6; j++)
			if (i / 2 < j / 2)
				assert_true(atomic_load(&jobs[i].start_ns) <
					    atomic_load(&jobs[j].start_ns));
}

static void blocking__single_thread_runs_jobs_in_submit_order(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(1), 0);
	counters_reset();
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct sleep_job jobs[BATCH_MAX];
	jobs_init(jobs, BATCH_MAX, 2);
	struct batch b;
	batch_init(&b, jobs, BATCH_MAX);

	/* act */
	int rc = sp_block_on(rt, &b.base);
	sp_runtime_free(rt);
	assert_int_equal(sp_blocking_set_max_threads(64), 0);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(b.out, 0);
	assert_int_equal(atomic_load(&max_in_flight), 1);
	for (int i = 0; i < BATCH_MAX; i++)
		assert_int_equal(atomic_load(&jobs[i].order), i);
}

/* ---- cancellation ---------------------------------------------------------------------- */

struct gate {
	atomic_int started, open, finished;
};

static void gate_fn(void *arg)
{
	struct gate *g = arg;
	atomic_store(&g->started, 1);
	uint64_t dl = spt_now_ns() + SP_MS(SPT_SOON_MS);
	while (!atomic_load(&g->open) && spt_now_ns() < dl)
		usleep(1000);
	atomic_store(&g->finished, 1);
}

/* Opens the gate 30 ms after it starts. */
static void *open_gate_later(void *arg)
{
	spt_sleep_ms(30);
	atomic_store(&((struct gate *)arg)->open, 1);
	return NULL;
}

static void flag_fn(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
}

static void blocking__dropped_queued_job_never_runs(void **state)
{
	(void)state;
	/* arrange: one thread, busy with the gate; b and c queued behind it */
	assert_int_equal(sp_blocking_set_max_threads(1), 0);
	struct gate g = {0};
	atomic_int b_ran = 0, c_ran = 0;
	sp_blocking a, b, c;
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	int rca = sp_spawn_blocking(&a, gate_fn, &g);
	int started = SPT_WAIT_UNTIL(atomic_load(&g.started), SPT_SOON_MS);
	int rcb = sp_spawn_blocking(&b, flag_fn, &b_ran);
	int rcc = sp_spawn_blocking(&c, flag_fn, &c_ran);
	sp_blocking_stats before, after;
	sp_blocking_pool_stats(&before);

	/* act */
	sp_poll pb = sp_future_poll(&b.base, &m.cx); /* stores a waker in the queued job */
	sp_future_drop(&b.base);
	sp_blocking_pool_stats(&after);
	sp_poll pc1 = sp_future_poll(&c.base, &m.cx);
	atomic_store(&g.open, 1);
	/* FIFO on one thread: once c ran, b would have run before it */
	int woken = SPT_WAIT_UNTIL(atomic_load(&m.counts.wakes) == 1, SPT_SOON_MS);
	sp_poll pc2 = sp_future_poll(&c.base, &m.cx);
	sp_future_drop(&c.base);
	sp_future_drop(&a.base); /* done: c ran after it */
	assert_int_equal(sp_blocking_set_max_threads(64), 0);

	/* assert */
	assert_int_equal(rca | rcb | rcc, 0);
	assert_true(started);
	assert_int_equal(before.queued, 2);
	assert_int_equal(after.queued, 1);
	assert_int_equal(pb, SP_PENDING);
	assert_int_equal(pc1, SP_PENDING);
	assert_true(woken);
	assert_int_equal(pc2, SP_READY);
	assert_int_equal(c.out, 0);
	assert_int_equal(atomic_load(&c_ran), 1);
	assert_int_equal(atomic_load(&b_ran), 0);
	assert_int_equal(atomic_load(&g.finished), 1);
	/* every waker clone was woken or dropped */
	assert_int_equal(atomic_load(&m.counts.clones), 2);
	assert_int_equal(atomic_load(&m.counts.drops), 2);
}

static void blocking__drop_while_running_waits_for_fn(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(64), 0);
	struct gate g = {0};
	sp_blocking a;
	int rc = sp_spawn_blocking(&a, gate_fn, &g);
	int started = SPT_WAIT_UNTIL(atomic_load(&g.started), SPT_SOON_MS);

	/* act: the gate opens 30 ms from now; drop meanwhile */
	pthread_t opener = spt_thread(open_gate_later, &g);
	uint64_t t0 = spt_now_ns();
	sp_future_drop(&a.base);
	uint64_t took = spt_now_ns() - t0;
	int finished_at_drop = atomic_load(&g.finished);
	pthread_join(opener, NULL);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(started);
	assert_int_equal(finished_at_drop, 1);
	assert_true(took >= SP_MS(20));
}

/* A task awaiting a running job is aborted: the drop (here, on the main
 * thread: the task is idle) returns after fn did. */
static void blocking__abort_task_with_running_job(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(64), 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct gate g = {0};
	struct awaiter a;
	awaiter_init(&a, gate_fn, &g);
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN(rt, "awaiter", &jh, a);
	int started = SPT_WAIT_UNTIL(atomic_load(&g.started), SPT_SOON_MS);
	int idle = SPT_WAIT_UNTIL(spt_task_idle(rt, sp_join_handle_id(&jh)), SPT_SOON_MS);
	pthread_t opener = spt_thread(open_gate_later, &g);

	/* act */
	sp_join_handle_abort(&jh);
	int status = sp_join_handle_wait(&jh);
	int finished = atomic_load(&g.finished);
	pthread_join(opener, NULL);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(started);
	assert_true(idle);
	assert_int_equal(status, SP_ECANCELED);
	assert_int_equal(finished, 1);
}

/* ---- a blocking read(2) ---------------------------------------------------------------- */

struct read_req {
	int fd;
	char buf[16];
	ssize_t n;
};

static void read_fn(void *arg)
{
	struct read_req *r = arg;
	r->n = read(r->fd, r->buf, sizeof(r->buf)); /* blocks: a plain pipe */
}

static void *late_writer(void *arg)
{
	int fd = *(int *)arg;
	spt_sleep_ms(20);
	ssize_t w = write(fd, "hello", 5);
	(void)w;
	return NULL;
}

static void blocking__pipe_read_completes_when_another_thread_writes(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(64), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct read_req req = {.fd = p[0], .n = -100};
	struct awaiter a;
	awaiter_init(&a, read_fn, &req);
	pthread_t th = spt_thread(late_writer, &p[1]);

	/* act */
	uint64_t t0 = spt_now_ns();
	int rc = sp_block_on(rt, &a.base);
	uint64_t took = spt_now_ns() - t0;
	pthread_join(th, NULL);
	sp_runtime_free(rt);
	close(p[0]);
	close(p[1]);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(a.out, 0);
	assert_int_equal(req.n, 5);
	assert_memory_equal(req.buf, "hello", 5);
	assert_true(took >= SP_MS(15));
}

/* ---- the current-thread flavour ------------------------------------------------------- */

static void blocking__current_thread_runtime(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(64), 0);
	counters_reset();
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	struct sleep_job job;
	jobs_init(&job, 1, 10);
	struct awaiter a;
	awaiter_init(&a, sleep_fn, &job);

	/* act */
	int rc = sp_block_on(rt, &a.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(a.out, 0);
	assert_int_equal(atomic_load(&job.ran), 1);
	assert_int_equal(atomic_load(&job.on_pool), 1);
}

/* ---- settings and keep-alive ---------------------------------------------------------- */

static int pool_threads(void)
{
	sp_blocking_stats st;
	sp_blocking_pool_stats(&st);
	return (int)st.threads;
}

static void blocking__idle_threads_exit_after_keep_alive(void **state)
{
	(void)state;
	/* arrange */
	assert_int_equal(sp_blocking_set_max_threads(64), 0);
	int einval = sp_blocking_set_max_threads(0);
	atomic_int ran = 0;
	sp_blocking b;
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);

	/* act */
	sp_blocking_set_keep_alive(SP_MS(200));
	int rc = sp_spawn_blocking(&b, flag_fn, &ran);
	int done = SPT_WAIT_UNTIL(sp_future_poll(&b.base, &m.cx) == SP_READY, SPT_SOON_MS);
	sp_future_drop(&b.base);
	int threads_after_job = pool_threads();
	int gone = SPT_WAIT_UNTIL(pool_threads() == 0, SPT_SOON_MS);
	sp_blocking_set_keep_alive(0);

	/* assert */
	assert_int_equal(einval, SP_EINVAL);
	assert_int_equal(rc, 0);
	assert_true(done);
	assert_int_equal(atomic_load(&ran), 1);
	assert_true(threads_after_job >= 1);
	assert_true(gone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(blocking__max_threads_from_environment_at_first_use),
		cmocka_unit_test(blocking__parallel_jobs_leave_workers_free),
		cmocka_unit_test(blocking__saturated_pool_queues_fifo),
		cmocka_unit_test(blocking__single_thread_runs_jobs_in_submit_order),
		cmocka_unit_test(blocking__dropped_queued_job_never_runs),
		cmocka_unit_test(blocking__drop_while_running_waits_for_fn),
		cmocka_unit_test(blocking__abort_task_with_running_job),
		cmocka_unit_test(blocking__pipe_read_completes_when_another_thread_writes),
		cmocka_unit_test(blocking__current_thread_runtime),
		cmocka_unit_test(blocking__idle_threads_exit_after_keep_alive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
