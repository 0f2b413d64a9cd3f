/*
 * test_join.c - join handles: outputs, waiting, awaiting, abort, detach,
 * misuse errors, task ids and parent ids.
 */
#include "unit/sp_test.h"

/* ---- futures used below -------------------------------------------------------- */

struct record {
	uint64_t id;
	char tag[16];
	uint32_t check;
};

/* completes at its first poll with a 32-byte output */
struct rec_fut {
	sp_future base;
	struct record out;
	uint64_t id;
	atomic_int *drops;
};

static sp_poll rec_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct rec_fut *self = (struct rec_fut *)f;
	self->out.id = self->id;
	snprintf(self->out.tag, sizeof self->out.tag, "rec-%u", (unsigned)self->id);
	self->out.check = (uint32_t)(self->id * 2654435761u);
	return SP_READY;
}

static void rec_drop(sp_future *f)
{
	struct rec_fut *self = (struct rec_fut *)f;
	if (self->drops)
		atomic_fetch_add(self->drops, 1);
}

/* spins inside its first poll until released, then returns SP_PENDING
 * (storing its waker, or waking itself when self_wake is set) */
struct spinner {
	sp_future base;
	int out;
	int self_wake;
	sp_waker w;
	atomic_int *started, *release, *polls, *drops, *spin_timeout;
};

static sp_poll spinner_poll(sp_future *f, sp_context *cx)
{
	struct spinner *self = (struct spinner *)f;
	atomic_fetch_add(self->polls, 1);
	atomic_store(self->started, 1);
	uint64_t dl = spt_now_ns() + 10ull * 1000000000ull * SPT_TIME_MULT;
	while (!atomic_load(self->release))
		if (spt_now_ns() > dl) {
			atomic_store(self->spin_timeout, 1);
			break;
		}
	if (self->self_wake)
		sp_waker_wake_by_ref(sp_context_waker(cx));
	else
		sp_waker_store(&self->w, cx);
	return SP_PENDING;
}

static void spinner_drop(sp_future *f)
{
	struct spinner *self = (struct spinner *)f;
	sp_waker_drop(&self->w);
	atomic_fetch_add(self->drops, 1);
}

/* ---- outputs and waiting ------------------------------------------------------------ */

static void join__spawn_out_copies_output_to_dst(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int drops = 0;
	struct rec_fut f = {.base = {.poll = rec_poll, .drop = rec_drop, .name = "rec"},
			    .id = 4242,
			    .drops = &drops};
	struct record got;
	memset(&got, 0xAB, sizeof got);
	sp_join_handle jh;

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "rec", &jh, f);
	uint64_t id_before = sp_join_handle_id(&jh);
	jh.dst = &got;
	int status = sp_join_handle_wait(&jh);
	uint64_t id_after = sp_join_handle_id(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(jh.status, 0);
	assert_int_equal(got.id, 4242);
	assert_string_equal(got.tag, "rec-4242");
	assert_int_equal(got.check, (uint32_t)(4242u * 2654435761u));
	assert_true(id_before != 0);
	assert_int_equal(id_after, 0);
	assert_int_equal(atomic_load(&drops), 1);
	assert_int_equal(free_rc, 0);
}

struct opener_arg {
	struct spt_probe *p;
	unsigned delay_ms;
	atomic_int woke;
};

static void *open_later(void *arg)
{
	struct opener_arg *o = arg;
	SPT_WAIT_UNTIL(spt_probe_armed(o->p, 0), SPT_SOON_MS);
	spt_sleep_ms(o->delay_ms);
	atomic_store(&o->woke, spt_probe_open(o->p));
	return NULL;
}

static void join__wait_from_main_thread_blocks_until_task_completes(void **state)
{
	(void)state;
	/* arrange: the task completes only when a thread opens it, 30 ms after
	 * its first poll; the main thread is already blocked in the wait */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 31);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	sp_join_handle jh;
	int out = -1;
	struct opener_arg o = {.p = &p, .delay_ms = 30};

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "probe", &jh, f);
	jh.dst = &out;
	pthread_t t = spt_thread(open_later, &o);
	int status = sp_join_handle_wait(&jh);
	int opened_before_return = atomic_load(&p.open);
	pthread_join(t, NULL);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_true(opened_before_return);
	assert_true(atomic_load(&o.woke));
	assert_int_equal(out, 31);
	assert_int_equal(atomic_load(&p.polls), 2);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* awaits a slow child (a probe the test opens) and a fast one */
struct awaiter {
	sp_future base;
	int out;
	struct spt_probe *slow_p;
	atomic_int *polls;
	atomic_int *waiting; /* set before suspending on the slow child */
	int rc_slow, rc_fast;
	int st_slow, st_fast;
	int out_slow;
	struct record out_fast;
	struct spt_probe_fut slow;
	struct rec_fut fast;
	sp_join_handle jslow, jfast;
};

static sp_poll awaiter_poll(sp_future *f, sp_context *cx)
{
	struct awaiter *self = (struct awaiter *)f;
	atomic_fetch_add(self->polls, 1);
	SP_ASYNC_BEGIN(f, cx);
	spt_probe_fut_init(&self->slow, self->slow_p);
	self->rc_slow = SP_SPAWN_OUT("slow", &self->jslow, self->slow);
	self->fast = (struct rec_fut){.base = {.poll = rec_poll, .name = "fast"}, .id = 7};
	self->rc_fast = SP_SPAWN_OUT("fast", &self->jfast, self->fast);
	if (self->rc_slow || self->rc_fast)
		SP_RETURN(-1);
	self->jslow.dst = &self->out_slow;
	atomic_store(self->waiting, 1);
	SP_AWAIT(&self->jslow);
	self->st_slow = self->jslow.status;
	self->jfast.dst = &self->out_fast;
	SP_AWAIT(&self->jfast);
	self->st_fast = self->jfast.status;
	SP_RETURN(1);
	SP_ASYNC_END();
}

static void join__await_handle_from_another_task(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 55);
	atomic_int polls = 0, waiting = 0;
	struct awaiter *a = calloc(1, sizeof *a);
	assert_non_null(a);
	a->base.poll = awaiter_poll;
	a->base.name = "awaiter";
	a->slow_p = &p;
	a->polls = &polls;
	a->waiting = &waiting;
	sp_join_handle jh;

	/* act: once the awaiter is suspended on the slow child, open it */
	int rc = sp__spawn(rt, &jh, &a->base, sizeof *a, SP__SITE("awaiter", 0, 0));
	int suspended =
		SPT_WAIT_UNTIL(atomic_load(&waiting) && spt_probe_armed(&p, 0), SPT_SOON_MS);
	spt_sleep_ms(10);
	int polls_while_suspended = atomic_load(&polls);
	int woke = spt_probe_open(&p);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(suspended);
	assert_int_equal(polls_while_suspended, 1);
	assert_true(woke);
	assert_int_equal(status, 0);
	assert_int_equal(atomic_load(&p.polls), 2);
	assert_int_equal(atomic_load(&polls), 2); /* woken once by the join */
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
	free(a);
}

/* The same, collecting the awaiter's own results through its output. */
struct awaiter_report {
	int rc_slow, rc_fast, st_slow, st_fast, out_slow;
	struct record out_fast;
};

struct awaiter2 {
	sp_future base;
	struct awaiter_report out;
	struct awaiter inner;
};

static sp_poll awaiter2_poll(sp_future *f, sp_context *cx)
{
	struct awaiter2 *self = (struct awaiter2 *)f;
	SP_ASYNC_BEGIN(f, cx);
	SP_AWAIT(&self->inner);
	self->out.rc_slow = self->inner.rc_slow;
	self->out.rc_fast = self->inner.rc_fast;
	self->out.st_slow = self->inner.st_slow;
	self->out.st_fast = self->inner.st_fast;
	self->out.out_slow = self->inner.out_slow;
	self->out.out_fast = self->inner.out_fast;
	SP_RETURN_VOID();
	SP_ASYNC_END();
}

static void join__awaited_handles_deliver_status_and_output(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 55);
	atomic_int polls = 0, waiting = 0;
	struct awaiter2 *a = calloc(1, sizeof *a);
	assert_non_null(a);
	a->base.poll = awaiter2_poll;
	a->base.name = "awaiter2";
	a->inner.base.poll = awaiter_poll;
	a->inner.slow_p = &p;
	a->inner.polls = &polls;
	a->inner.waiting = &waiting;
	struct awaiter_report rep;
	memset(&rep, 0x5A, sizeof rep);
	sp_join_handle jh;

	/* act */
	int rc = sp__spawn(rt, &jh, &a->base, sizeof *a,
			   SP__SITE("awaiter2", offsetof(struct awaiter2, out), sizeof a->out));
	jh.dst = &rep;
	int suspended =
		SPT_WAIT_UNTIL(atomic_load(&waiting) && spt_probe_armed(&p, 0), SPT_SOON_MS);
	int woke = spt_probe_open(&p);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(suspended);
	assert_true(woke);
	assert_int_equal(status, 0);
	assert_int_equal(rep.rc_slow, 0);
	assert_int_equal(rep.rc_fast, 0);
	assert_int_equal(rep.st_slow, 0);
	assert_int_equal(rep.st_fast, 0);
	assert_int_equal(rep.out_slow, 55);
	assert_int_equal(rep.out_fast.id, 7);
	assert_string_equal(rep.out_fast.tag, "rec-7");
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
	free(a);
}

/* ---- abort --------------------------------------------------------------------------- */

static void join__abort_idle_task_drops_future_immediately(void **state)
{
	(void)state;
	/* arrange: a probe pending forever (nobody opens it), polled once, idle */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 1);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN(rt, "probe", &jh, f);
	uint64_t id = sp_join_handle_id(&jh);
	int idle = SPT_WAIT_UNTIL(atomic_load(&p.polls) == 1 && spt_task_idle(rt, id), SPT_SOON_MS);
	int drops_before = atomic_load(&p.drops);

	/* act */
	sp_join_handle_abort(&jh);
	int drops_right_after = atomic_load(&p.drops);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(idle);
	assert_int_equal(drops_before, 0);
	assert_int_equal(drops_right_after, 1);
	assert_int_equal(status, SP_ECANCELED);
	assert_int_equal(jh.status, SP_ECANCELED);
	assert_int_equal(atomic_load(&p.polls), 1);
	assert_int_equal(atomic_load(&p.drops), 1);
	assert_int_equal(atomic_load(&p.after_drop), 0);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* Abort while queued behind a blocker on a single worker. */
static sp_poll block_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct spinner *self = (struct spinner *)f;
	atomic_store(self->started, 1);
	uint64_t dl = spt_now_ns() + 10ull * 1000000000ull * SPT_TIME_MULT;
	while (!atomic_load(self->release) && spt_now_ns() < dl)
		sched_yield();
	return SP_READY;
}

static void join__abort_queued_task_cancels_it(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 1);
	atomic_int started = 0, release = 0, bpolls = 0, bdrops = 0, bto = 0;
	struct spinner blocker = {.base = {.poll = block_poll, .name = "blocker"},
				  .started = &started,
				  .release = &release,
				  .polls = &bpolls,
				  .drops = &bdrops,
				  .spin_timeout = &bto};
	sp_join_handle bjh, jh;
	int brc = SP_RUNTIME_SPAWN(rt, "blocker", &bjh, blocker);
	int busy = SPT_WAIT_UNTIL(atomic_load(&started), SPT_SOON_MS);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 1);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	int rc = SP_RUNTIME_SPAWN(rt, "queued", &jh, f);

	/* act */
	sp_join_handle_abort(&jh);
	atomic_store(&release, 1);
	int status = sp_join_handle_wait(&jh);
	int bstatus = sp_join_handle_wait(&bjh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(brc, 0);
	assert_true(busy);
	assert_int_equal(rc, 0);
	assert_int_equal(status, SP_ECANCELED);
	assert_int_equal(bstatus, 0);
	assert_int_equal(atomic_load(&p.drops), 1);
	assert_int_equal(atomic_load(&p.done), 0);
	assert_int_equal(atomic_load(&p.after_drop), 0);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

static int task_completed(sp_runtime *rt, uint64_t id)
{
	sp_task_info ti;
	if (!spt_task_info(rt, id, &ti))
		return 1; /* no longer live: it completed */
	return (ti.state & SP_TASK_COMPLETE) != 0;
}

static void join__abort_after_completion_gives_status_zero(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int drops = 0;
	struct rec_fut f = {.base = {.poll = rec_poll, .drop = rec_drop, .name = "rec"},
			    .id = 77,
			    .drops = &drops};
	sp_join_handle jh;
	struct record got;
	memset(&got, 0, sizeof got);
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "rec", &jh, f);
	uint64_t id = sp_join_handle_id(&jh);
	int completed =
		SPT_WAIT_UNTIL(atomic_load(&drops) == 1 && task_completed(rt, id), SPT_SOON_MS);

	/* act */
	sp_join_handle_abort(&jh);
	jh.dst = &got;
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(completed);
	assert_int_equal(status, 0);
	assert_int_equal(got.id, 77);
	assert_string_equal(got.tag, "rec-77");
	assert_int_equal(atomic_load(&drops), 1);
	assert_int_equal(free_rc, 0);
}

struct spin_result {
	int rc, started, drops_right_after, drops_while_running, status, polls, drops, timeout,
		free_rc;
};

static struct spin_result run_abort_running(int self_wake)
{
	struct spin_result r;
	memset(&r, 0, sizeof r);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int started = 0, release = 0, polls = 0, drops = 0, to = 0;
	struct spinner s = {.base = {.poll = spinner_poll, .drop = spinner_drop, .name = "spinner"},
			    .self_wake = self_wake,
			    .started = &started,
			    .release = &release,
			    .polls = &polls,
			    .drops = &drops,
			    .spin_timeout = &to};
	sp_join_handle jh;
	r.rc = SP_RUNTIME_SPAWN(rt, "spinner", &jh, s);
	r.started = SPT_WAIT_UNTIL(atomic_load(&started), SPT_SOON_MS);
	sp_join_handle_abort(&jh);
	r.drops_right_after = atomic_load(&drops);
	spt_sleep_ms(20);
	r.drops_while_running = atomic_load(&drops);
	atomic_store(&release, 1);
	r.status = sp_join_handle_wait(&jh);
	spt_sleep_ms(10);
	r.polls = atomic_load(&polls);
	r.drops = atomic_load(&drops);
	r.timeout = atomic_load(&to);
	r.free_rc = sp_runtime_free(rt);
	return r;
}

static void join__abort_running_task_drops_at_next_suspension(void **state)
{
	(void)state;
	/* arrange + act: the task stores its waker and returns SP_PENDING */
	struct spin_result r = run_abort_running(0);

	/* assert */
	assert_int_equal(r.rc, 0);
	assert_true(r.started);
	assert_int_equal(r.drops_right_after, 0);
	assert_int_equal(r.drops_while_running, 0);
	assert_int_equal(r.timeout, 0);
	assert_int_equal(r.status, SP_ECANCELED);
	assert_int_equal(r.polls, 1);
	assert_int_equal(r.drops, 1);
	assert_int_equal(r.free_rc, 0);
}

static void join__abort_running_self_waking_task_is_not_polled_again(void **state)
{
	(void)state;
	/* arrange + act: the task wakes itself and returns SP_PENDING */
	struct spin_result r = run_abort_running(1);

	/* assert */
	assert_int_equal(r.rc, 0);
	assert_true(r.started);
	assert_int_equal(r.drops_right_after, 0);
	assert_int_equal(r.drops_while_running, 0);
	assert_int_equal(r.timeout, 0);
	assert_int_equal(r.status, SP_ECANCELED);
	assert_int_equal(r.polls, 1);
	assert_int_equal(r.drops, 1);
	assert_int_equal(r.free_rc, 0);
}

/* ---- detach / drop the handle ------------------------------------------------------- */

static void run_unobserved(int use_detach, int *polls_before_open, int *done, int *drops,
			   int *free_rc)
{
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 3);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "probe", &jh, f);
	if (use_detach)
		sp_join_handle_detach(&jh);
	else
		sp_future_drop(&jh.base);
	SPT_WAIT_UNTIL(spt_probe_armed(&p, 0), SPT_SOON_MS);
	*polls_before_open = rc ? -1 : atomic_load(&p.polls);
	spt_probe_open(&p);
	*done = SPT_WAIT_UNTIL(atomic_load(&p.done) && atomic_load(&p.drops) == 1, SPT_SOON_MS);
	*free_rc = sp_runtime_free(rt);
	*drops = atomic_load(&p.drops);
	spt_probe_destroy(&p);
}

static void join__detach_lets_task_run_to_completion(void **state)
{
	(void)state;
	/* arrange + act */
	int polls_before_open, done, drops, free_rc;
	run_unobserved(1, &polls_before_open, &done, &drops, &free_rc);

	/* assert */
	assert_int_equal(polls_before_open, 1);
	assert_true(done);
	assert_int_equal(drops, 1);
	assert_int_equal(free_rc, 0);
}

static void join__dropped_handle_lets_task_run_to_completion(void **state)
{
	(void)state;
	/* arrange + act */
	int polls_before_open, done, drops, free_rc;
	run_unobserved(0, &polls_before_open, &done, &drops, &free_rc);

	/* assert */
	assert_int_equal(polls_before_open, 1);
	assert_true(done);
	assert_int_equal(drops, 1);
	assert_int_equal(free_rc, 0);
}

/* ---- consumed handles ------------------------------------------------------------------ */

static void join__second_wait_gives_einval(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct rec_fut f = {.base = {.poll = rec_poll, .name = "rec"}, .id = 1};
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN(rt, "rec", &jh, f);

	/* act */
	int first = sp_join_handle_wait(&jh);
	int second = sp_join_handle_wait(&jh);
	int second_field = jh.status;
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(first, 0);
	assert_int_equal(second, SP_EINVAL);
	assert_int_equal(second_field, SP_EINVAL);
	assert_int_equal(free_rc, 0);
}

struct twice {
	sp_future base;
	int out;
	int rc, st1, st2, out1;
	struct rec_fut child;
	struct record got;
	sp_join_handle jh;
};

static sp_poll twice_poll(sp_future *f, sp_context *cx)
{
	struct twice *self = (struct twice *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->child = (struct rec_fut){.base = {.poll = rec_poll, .name = "child"}, .id = 9};
	self->rc = SP_SPAWN_OUT("child", &self->jh, self->child);
	if (self->rc)
		SP_RETURN(-1);
	self->jh.dst = &self->got;
	SP_AWAIT(&self->jh);
	self->st1 = self->jh.status;
	self->out1 = (int)self->got.id;
	self->got.id = 0;
	SP_AWAIT(&self->jh); /* consumed: completes with SP_EINVAL */
	self->st2 = self->jh.status;
	SP_RETURN(self->got.id == 0 ? 1 : 0); /* no second copy either */
	SP_ASYNC_END();
}

static void join__second_await_gives_einval(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct twice t;
	memset(&t, 0, sizeof t);
	t.base.poll = twice_poll;
	t.base.name = "twice";

	/* act: as the block_on root, the frame is ours to inspect */
	int rc = sp_block_on(rt, &t.base);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(t.rc, 0);
	assert_int_equal(t.st1, 0);
	assert_int_equal(t.out1, 9);
	assert_int_equal(t.st2, SP_EINVAL);
	assert_int_equal(t.out, 1);
	assert_int_equal(free_rc, 0);
}

/* ---- misuse errors -------------------------------------------------------------------- */

static void join__null_future_or_runtime_is_einval(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_join_handle jh;
	struct rec_fut f = {.base = {.poll = rec_poll, .name = "rec"}, .id = 1};

	/* act */
	int spawn_null = sp__spawn(rt, &jh, NULL, sizeof f, SP__SITE("null", 0, 0));
	int spawn_null_detached = sp__spawn(rt, NULL, NULL, sizeof f, SP__SITE("null", 0, 0));
	int block_null_fut = sp_block_on(rt, NULL);
	int block_null_rt = sp_block_on(NULL, &f.base);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(spawn_null, SP_EINVAL);
	assert_int_equal(spawn_null_detached, SP_EINVAL);
	assert_int_equal(block_null_fut, SP_EINVAL);
	assert_int_equal(block_null_rt, SP_EINVAL);
	assert_int_equal(free_rc, 0);
}

static void join__spawn_after_shutdown_is_eshutdown(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int drops = 0;
	struct rec_fut f = {.base = {.poll = rec_poll, .drop = rec_drop, .name = "rec"},
			    .id = 1,
			    .drops = &drops};
	sp_join_handle jh;

	/* act */
	sp_runtime_shutdown(rt);
	int rc = SP_RUNTIME_SPAWN(rt, "late", &jh, f);
	int rc_detached = SP_RUNTIME_SPAWN(rt, "late", NULL, f);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, SP_ESHUTDOWN);
	assert_int_equal(rc_detached, SP_ESHUTDOWN);
	assert_int_equal(atomic_load(&drops), 0); /* never became a task */
	assert_int_equal(free_rc, 0);
}

struct spawn_probe {
	atomic_int rc;
	atomic_int had_runtime;
};

static void *spawn_from_foreign(void *arg)
{
	struct spawn_probe *sp = arg;
	struct rec_fut f = {.base = {.poll = rec_poll, .name = "rec"}, .id = 1};
	sp_join_handle jh;
	atomic_store(&sp->had_runtime, sp_runtime_current() != NULL);
	atomic_store(&sp->rc, SP_SPAWN("foreign", &jh, f));
	return NULL;
}

static void join__spawn_outside_runtime_thread_is_enoruntime(void **state)
{
	(void)state;
	/* arrange: a runtime exists, but neither thread below belongs to it */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct rec_fut f = {.base = {.poll = rec_poll, .name = "rec"}, .id = 1};
	sp_join_handle jh;
	struct spawn_probe fp = {.rc = 1, .had_runtime = 1};

	/* act */
	sp_runtime *cur = sp_runtime_current();
	int rc_main = SP_SPAWN("main", &jh, f);
	int rc_main_detached = SP_SPAWN("main", NULL, f);
	pthread_t t = spt_thread(spawn_from_foreign, &fp);
	pthread_join(t, NULL);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_null(cur);
	assert_int_equal(rc_main, SP_ENORUNTIME);
	assert_int_equal(rc_main_detached, SP_ENORUNTIME);
	assert_int_equal(atomic_load(&fp.had_runtime), 0);
	assert_int_equal(atomic_load(&fp.rc), SP_ENORUNTIME);
	assert_int_equal(free_rc, 0);
}

/* tries sp_block_on and sp_join_handle_wait from inside a task */
struct deadlocker {
	sp_future base;
	int out;
	int block_rc, wait_rc, spawn_rc, child_status;
	struct rec_fut inner;
	struct rec_fut child;
	struct record got;
	sp_join_handle jh;
};

static sp_poll deadlocker_poll(sp_future *f, sp_context *cx)
{
	struct deadlocker *self = (struct deadlocker *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->inner = (struct rec_fut){.base = {.poll = rec_poll, .name = "inner"}, .id = 2};
	self->block_rc = sp_block_on(sp_runtime_current(), &self->inner.base);
	self->child = (struct rec_fut){.base = {.poll = rec_poll, .name = "child"}, .id = 3};
	self->spawn_rc = SP_SPAWN_OUT("child", &self->jh, self->child);
	if (self->spawn_rc)
		SP_RETURN(-1);
	self->wait_rc = sp_join_handle_wait(&self->jh);
	/* the refused wait did not consume the handle: await it */
	self->jh.dst = &self->got;
	SP_AWAIT(&self->jh);
	self->child_status = self->jh.status;
	SP_RETURN((int)self->got.id);
	SP_ASYNC_END();
}

static void join__blocking_calls_inside_task_are_edeadlk(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct deadlocker *d = calloc(1, sizeof *d);
	assert_non_null(d);
	d->base.poll = deadlocker_poll;
	d->base.name = "deadlocker";
	sp_join_handle jh;

	/* act: the site copies the four result codes (contiguous ints) */
	int rc = sp__spawn(
		rt, &jh, &d->base, sizeof *d,
		SP__SITE("deadlocker", offsetof(struct deadlocker, block_rc), 4 * sizeof(int)));
	int codes[4] = {99, 99, 99, 99};
	jh.dst = codes;
	int done = SPT_WAIT_UNTIL(task_completed(rt, sp_join_handle_id(&jh)), SPT_SOON_MS);
	if (!done) /* a worker is stuck in the blocking call: freeing would hang */
		fail_msg("the task did not complete: a blocking call inside it hung");
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);
	free(d);

	/* assert: codes = block_rc, wait_rc, spawn_rc, child_status */
	assert_int_equal(rc, 0);
	assert_true(done);
	assert_int_equal(status, 0);
	assert_int_equal(codes[0], SP_EDEADLK);
	assert_int_equal(codes[1], SP_EDEADLK);
	assert_int_equal(codes[2], 0);
	assert_int_equal(codes[3], 0);
	assert_int_equal(free_rc, 0);
}

/* ---- ids ---------------------------------------------------------------------------------- */

struct idrec {
	sp_future base;
	int out;
	_Atomic uint64_t *slot;
};

static sp_poll idrec_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct idrec *self = (struct idrec *)f;
	atomic_store(self->slot, sp_task_current_id());
	return SP_READY;
}

#define IDS_N 200

static void join__task_ids_unique_increasing_and_current(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	static _Atomic uint64_t seen[IDS_N];
	static uint64_t ids[IDS_N];
	static sp_join_handle jh[IDS_N];
	int rcs = 0;

	/* act */
	for (int i = 0; i < IDS_N; i++) {
		atomic_store(&seen[i], 0);
		struct idrec f = {.base = {.poll = idrec_poll, .name = "idrec"}, .slot = &seen[i]};
		rcs |= SP_RUNTIME_SPAWN(rt, "idrec", &jh[i], f);
		ids[i] = sp_join_handle_id(&jh[i]);
	}
	int statuses = 0;
	for (int i = 0; i < IDS_N; i++)
		statuses |= sp_join_handle_wait(&jh[i]);
	uint64_t outside = sp_task_current_id();
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rcs, 0);
	assert_int_equal(statuses, 0);
	assert_int_equal(outside, 0);
	assert_true(ids[0] != 0);
	for (int i = 1; i < IDS_N; i++)
		assert_true(ids[i] > ids[i - 1]);
	for (int i = 0; i < IDS_N; i++)
		assert_int_equal(atomic_load(&seen[i]), ids[i]);
	assert_int_equal(free_rc, 0);
}

/* four tasks, each spawning children in one poll; ids gathered globally */
#define SPAWNERS 4
#define PER_SPAWNER 250

struct multi_spawner {
	sp_future base;
	int out;
	uint64_t *ids; /* PER_SPAWNER slots */
	atomic_int *failures;
	_Atomic uint64_t *child_seen;
};

static sp_poll multi_spawner_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct multi_spawner *self = (struct multi_spawner *)f;
	for (int i = 0; i < PER_SPAWNER; i++) {
		struct idrec c = {.base = {.poll = idrec_poll, .name = "c"},
				  .slot = &self->child_seen[i]};
		sp_join_handle jh;
		if (SP_SPAWN("c", &jh, c) != 0) {
			atomic_fetch_add(self->failures, 1);
			continue;
		}
		self->ids[i] = sp_join_handle_id(&jh);
		sp_join_handle_detach(&jh);
	}
	return SP_READY;
}

static int all_nonzero(_Atomic uint64_t *v, int n)
{
	for (int i = 0; i < n; i++)
		if (atomic_load(&v[i]) == 0)
			return 0;
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void join__task_ids_unique_across_concurrent_spawners(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	static uint64_t ids[SPAWNERS * PER_SPAWNER];
	static _Atomic uint64_t child_seen[SPAWNERS * PER_SPAWNER];
	memset(ids, 0, sizeof ids);
	for (int i = 0; i < SPAWNERS * PER_SPAWNER; i++)
		atomic_store(&child_seen[i], 0);
	atomic_int failures = 0;
	sp_join_handle jh[SPAWNERS];
	int rcs = 0;

	/* act */
	for (int s = 0; s < SPAWNERS; s++) {
		struct multi_spawner m = {.base = {.poll = multi_spawner_poll, .name = "spawner"},
					  .ids = &ids[s * PER_SPAWNER],
					  .failures = &failures,
					  .child_seen = &child_seen[s * PER_SPAWNER]};
		rcs |= SP_RUNTIME_SPAWN(rt, "spawner", &jh[s], m);
	}
	int statuses = 0;
	for (int s = 0; s < SPAWNERS; s++)
		statuses |= sp_join_handle_wait(&jh[s]);
	int all_ran = SPT_WAIT_UNTIL(all_nonzero(child_seen, SPAWNERS * PER_SPAWNER), SPT_SOON_MS);
	int free_rc = sp_runtime_free(rt);
	int increasing_per_spawner = 1;
	for (int s = 0; s < SPAWNERS; s++)
		for (int i = 1; i < PER_SPAWNER; i++)
			if (ids[s * PER_SPAWNER + i] <= ids[s * PER_SPAWNER + i - 1])
				increasing_per_spawner = 0;
	int ids_match = 1;
	for (int i = 0; i < SPAWNERS * PER_SPAWNER; i++)
		if (atomic_load(&child_seen[i]) != ids[i])
			ids_match = 0;
	qsort(ids, SPAWNERS * PER_SPAWNER, sizeof ids[0], cmp_u64);
	int dups = 0;
	for (int i = 1; i < SPAWNERS * PER_SPAWNER; i++)
		dups += ids[i] == ids[i - 1];

	/* assert */
	assert_int_equal(rcs, 0);
	assert_int_equal(statuses, 0);
	assert_int_equal(atomic_load(&failures), 0);
	assert_true(all_ran);
	assert_true(ids[0] != 0);
	assert_int_equal(dups, 0);
	assert_true(increasing_per_spawner);
	assert_true(ids_match);
	assert_int_equal(free_rc, 0);
}

/* parent spawns a child that stays pending until the test opens it */
struct parent {
	sp_future base;
	int out;
	struct spt_probe *p;
	_Atomic uint64_t *self_id, *child_id;
	int rc;
	struct spt_probe_fut child;
	sp_join_handle jh;
};

static sp_poll parent_poll(sp_future *f, sp_context *cx)
{
	struct parent *self = (struct parent *)f;
	SP_ASYNC_BEGIN(f, cx);
	spt_probe_fut_init(&self->child, self->p);
	self->rc = SP_SPAWN("child", &self->jh, self->child);
	if (self->rc)
		SP_RETURN(self->rc);
	atomic_store(self->child_id, sp_join_handle_id(&self->jh));
	atomic_store(self->self_id, sp_task_current_id());
	SP_AWAIT(&self->jh);
	SP_RETURN(self->jh.status);
	SP_ASYNC_END();
}

static void join__parent_id_recorded(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 0);
	_Atomic uint64_t parent_id = 0, child_id = 0;
	struct parent *par = calloc(1, sizeof *par);
	assert_non_null(par);
	par->base.poll = parent_poll;
	par->base.name = "parent";
	par->p = &p;
	par->self_id = &parent_id;
	par->child_id = &child_id;
	sp_join_handle jh;
	int out = -1;
	int rc = sp__spawn(rt, &jh, &par->base, sizeof *par,
			   SP__SITE("parent", offsetof(struct parent, out), sizeof(int)));
	jh.dst = &out;
	uint64_t handle_id = sp_join_handle_id(&jh);
	int child_polled =
		SPT_WAIT_UNTIL(atomic_load(&child_id) != 0 && spt_probe_armed(&p, 0), SPT_SOON_MS);

	/* act */
	sp_task_info ci, pi;
	memset(&ci, 0, sizeof ci);
	memset(&pi, 0, sizeof pi);
	int child_found = spt_task_info(rt, atomic_load(&child_id), &ci);
	int parent_found = spt_task_info(rt, handle_id, &pi);
	spt_probe_open(&p);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(child_polled);
	assert_int_equal(atomic_load(&parent_id), handle_id);
	assert_true(child_found);
	assert_true(parent_found);
	assert_int_equal(ci.id, atomic_load(&child_id));
	assert_int_equal(ci.parent_id, handle_id);
	assert_int_equal(pi.parent_id, 0); /* spawned from a non-runtime thread */
	assert_non_null(ci.site);
	assert_string_equal(ci.site->name, "child");
	assert_non_null(pi.site);
	assert_string_equal(pi.site->name, "parent");
	assert_int_equal(status, 0);
	assert_int_equal(out, 0);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
	free(par);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(join__spawn_out_copies_output_to_dst),
		cmocka_unit_test(join__wait_from_main_thread_blocks_until_task_completes),
		cmocka_unit_test(join__await_handle_from_another_task),
		cmocka_unit_test(join__awaited_handles_deliver_status_and_output),
		cmocka_unit_test(join__abort_idle_task_drops_future_immediately),
		cmocka_unit_test(join__abort_queued_task_cancels_it),
		cmocka_unit_test(join__abort_after_completion_gives_status_zero),
		cmocka_unit_test(join__abort_running_task_drops_at_next_suspension),
		cmocka_unit_test(join__abort_running_self_waking_task_is_not_polled_again),
		cmocka_unit_test(join__detach_lets_task_run_to_completion),
		cmocka_unit_test(join__dropped_handle_lets_task_run_to_completion),
		cmocka_unit_test(join__second_wait_gives_einval),
		cmocka_unit_test(join__second_await_gives_einval),
		cmocka_unit_test(join__null_future_or_runtime_is_einval),
		cmocka_unit_test(join__spawn_after_shutdown_is_eshutdown),
		cmocka_unit_test(join__spawn_outside_runtime_thread_is_enoruntime),
		cmocka_unit_test(join__blocking_calls_inside_task_are_edeadlk),
		cmocka_unit_test(join__task_ids_unique_increasing_and_current),
		cmocka_unit_test(join__task_ids_unique_across_concurrent_spawners),
		cmocka_unit_test(join__parent_id_recorded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
