/*
 * test_oneshot.c - the oneshot channel: send/recv across tasks and threads,
 * close -> SP_EPIPE, a second send -> SP_EPIPE, send to a dropped receiver.
 */
#include "unit/sp_test.h"

/* A task that awaits one oneshot and reports what it got. */
struct rx_task {
	sp_future base;
	int out; /* the recv result: 0 or SP_EPIPE */
	sp_oneshot *ch;
	atomic_int *waiting; /* set just before the await */
	atomic_int *polls;
	sp_oneshot_recv r;
};

static sp_poll rx_poll(sp_future *f, sp_context *cx)
{
	struct rx_task *self = (struct rx_task *)f;
	if (self->polls)
		atomic_fetch_add(self->polls, 1);
	SP_ASYNC_BEGIN(f, cx);
	sp_oneshot_recv_init(&self->r, self->ch);
	if (self->waiting)
		atomic_store(self->waiting, 1);
	SP_AWAIT(&self->r);
	SP_RETURN(self->r.out);
	SP_ASYNC_END();
}

static void rx_init(struct rx_task *t, sp_oneshot *ch, atomic_int *waiting, atomic_int *polls)
{
	memset(t, 0, sizeof *t);
	t->base.poll = rx_poll;
	t->base.name = "rx";
	t->ch = ch;
	t->waiting = waiting;
	t->polls = polls;
}

/* Spawn an rx task and wait until it is suspended on its recv. */
static int spawn_rx_suspended(sp_runtime *rt, sp_join_handle *jh, int *out, sp_oneshot *ch,
			      atomic_int *waiting, atomic_int *polls)
{
	struct rx_task t;
	rx_init(&t, ch, waiting, polls);
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "rx", jh, t);
	if (rc)
		return 0;
	jh->dst = out;
	uint64_t id = sp_join_handle_id(jh);
	return SPT_WAIT_UNTIL(atomic_load(waiting) && spt_task_idle(rt, id), SPT_SOON_MS);
}

/* ---- send / recv -------------------------------------------------------------- */

static void oneshot__send_before_recv_delivers_value(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	struct rx_task t;
	atomic_int polls = 0;
	rx_init(&t, &ch, NULL, &polls);
	sp_join_handle jh;
	int out = 99;

	/* act */
	int send_rc = sp_oneshot_send(&ch, 123);
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "rx", &jh, t);
	jh.dst = &out;
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(send_rc, 0);
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, 0);
	assert_int_equal(ch.value, 123);
	assert_int_equal(atomic_load(&polls), 1);
	assert_int_equal(free_rc, 0);
}

struct sender_arg {
	sp_oneshot *ch;
	uint64_t value;
	int close;
	atomic_int rc;
};

static void *sender_main(void *arg)
{
	struct sender_arg *s = arg;
	if (s->close) {
		sp_oneshot_close(s->ch);
		atomic_store(&s->rc, 0);
	} else {
		atomic_store(&s->rc, sp_oneshot_send(s->ch, s->value));
	}
	return NULL;
}

static void oneshot__recv_pending_then_send_from_foreign_thread(void **state)
{
	(void)state;
	/* arrange: the receiver is suspended before the thread sends */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	atomic_int waiting = 0, polls = 0;
	sp_join_handle jh;
	int out = 99;
	int suspended = spawn_rx_suspended(rt, &jh, &out, &ch, &waiting, &polls);
	struct sender_arg s = {.ch = &ch, .value = 0xDEADBEEFCAFEull, .rc = 1};

	/* act */
	pthread_t t = spt_thread(sender_main, &s);
	pthread_join(t, NULL);
	int done = SPT_WAIT_UNTIL(!spt_task_info(rt, sp_join_handle_id(&jh), NULL) ||
					  !spt_task_idle(rt, sp_join_handle_id(&jh)),
				  SPT_SOON_MS);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_true(suspended);
	assert_true(done);
	assert_int_equal(atomic_load(&s.rc), 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, 0);
	assert_int_equal(ch.value, 0xDEADBEEFCAFEull);
	assert_int_equal(atomic_load(&polls), 2);
	assert_int_equal(free_rc, 0);
}

/* a task that sends once it is polled */
struct tx_task {
	sp_future base;
	int out;
	sp_oneshot *ch;
	uint64_t value;
};

static sp_poll tx_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct tx_task *self = (struct tx_task *)f;
	self->out = sp_oneshot_send(self->ch, self->value);
	return SP_READY;
}

static void oneshot__send_from_another_task(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	atomic_int waiting = 0, polls = 0;
	sp_join_handle rjh, tjh;
	int rout = 99, tout = 99;
	int suspended = spawn_rx_suspended(rt, &rjh, &rout, &ch, &waiting, &polls);
	struct tx_task tx = {.base = {.poll = tx_poll, .name = "tx"}, .ch = &ch, .value = 77};

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "tx", &tjh, tx);
	tjh.dst = &tout;
	int tstatus = sp_join_handle_wait(&tjh);
	int rstatus = sp_join_handle_wait(&rjh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_true(suspended);
	assert_int_equal(rc, 0);
	assert_int_equal(tstatus, 0);
	assert_int_equal(tout, 0);
	assert_int_equal(rstatus, 0);
	assert_int_equal(rout, 0);
	assert_int_equal(ch.value, 77);
	assert_int_equal(atomic_load(&polls), 2);
	assert_int_equal(free_rc, 0);
}

struct bo_root {
	sp_future base;
	int out;
	sp_oneshot *ch;
	sp_oneshot_recv r;
};

static sp_poll bo_root_poll(sp_future *f, sp_context *cx)
{
	struct bo_root *self = (struct bo_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_oneshot_recv_init(&self->r, self->ch);
	SP_AWAIT(&self->r);
	SP_RETURN(self->r.out);
	SP_ASYNC_END();
}

static void *send_after_delay(void *arg)
{
	struct sender_arg *s = arg;
	spt_sleep_ms(20);
	atomic_store(&s->rc, sp_oneshot_send(s->ch, s->value));
	return NULL;
}

static void oneshot__recv_in_block_on_with_foreign_sender(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	struct bo_root root = {
		.base = {.poll = bo_root_poll, .name = "bo_root"}, .out = 99, .ch = &ch};
	struct sender_arg s = {.ch = &ch, .value = 5, .rc = 1};
	pthread_t t = spt_thread(send_after_delay, &s);

	/* act */
	int rc = sp_block_on(rt, &root.base);
	pthread_join(t, NULL);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(root.out, 0);
	assert_int_equal(atomic_load(&s.rc), 0);
	assert_int_equal(ch.value, 5);
	assert_int_equal(free_rc, 0);
}

/* ---- close and misuse -------------------------------------------------------------- */

static void oneshot__close_before_recv_is_epipe(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	struct rx_task t;
	rx_init(&t, &ch, NULL, NULL);
	sp_join_handle jh;
	int out = 99;

	/* act */
	sp_oneshot_close(&ch);
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "rx", &jh, t);
	jh.dst = &out;
	int status = sp_join_handle_wait(&jh);
	int send_after_close = sp_oneshot_send(&ch, 1);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, SP_EPIPE);
	assert_int_equal(send_after_close, SP_EPIPE);
	assert_int_equal(free_rc, 0);
}

static void oneshot__close_while_recv_pending_is_epipe(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	atomic_int waiting = 0, polls = 0;
	sp_join_handle jh;
	int out = 99;
	int suspended = spawn_rx_suspended(rt, &jh, &out, &ch, &waiting, &polls);
	struct sender_arg s = {.ch = &ch, .close = 1, .rc = 1};

	/* act */
	pthread_t t = spt_thread(sender_main, &s);
	pthread_join(t, NULL);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_true(suspended);
	assert_int_equal(status, 0);
	assert_int_equal(out, SP_EPIPE);
	assert_int_equal(atomic_load(&polls), 2);
	assert_int_equal(free_rc, 0);
}

static void oneshot__second_send_is_epipe(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	struct rx_task t;
	rx_init(&t, &ch, NULL, NULL);
	sp_join_handle jh;
	int out = 99;

	/* act */
	int first = sp_oneshot_send(&ch, 1);
	int second = sp_oneshot_send(&ch, 2);
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "rx", &jh, t);
	jh.dst = &out;
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(first, 0);
	assert_int_equal(second, SP_EPIPE);
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, 0);
	assert_int_equal(ch.value, 1); /* the refused value did not overwrite it */
	assert_int_equal(free_rc, 0);
}

static void oneshot__send_after_receiver_dropped_is_epipe(void **state)
{
	(void)state;
	/* arrange: the receiver is suspended on its recv, then aborted: its
	 * frame, with the recv future, is dropped */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_oneshot ch;
	sp_oneshot_init(&ch);
	atomic_int waiting = 0, polls = 0;
	sp_join_handle jh;
	int out = 99;
	int suspended = spawn_rx_suspended(rt, &jh, &out, &ch, &waiting, &polls);
	sp_join_handle_abort(&jh);
	int status = sp_join_handle_wait(&jh);

	/* act */
	int send_rc = sp_oneshot_send(&ch, 8);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_true(suspended);
	assert_int_equal(status, SP_ECANCELED);
	assert_int_equal(send_rc, SP_EPIPE);
	assert_int_equal(free_rc, 0);
}

/* ---- many channels across tasks and threads ------------------------------------------------ */

#define MANY 4000

struct many_rx {
	sp_future base;
	int out;
	int i;
	sp_oneshot *ch;
	atomic_int *ok, *bad;
	sp_oneshot_recv r;
};

static sp_poll many_rx_poll(sp_future *f, sp_context *cx)
{
	struct many_rx *self = (struct many_rx *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_oneshot_recv_init(&self->r, self->ch);
	SP_AWAIT(&self->r);
	if (self->r.out == 0 && self->ch->value == (uint64_t)self->i * 7u + 1u)
		atomic_fetch_add(self->ok, 1);
	else
		atomic_fetch_add(self->bad, 1);
	SP_RETURN_VOID();
	SP_ASYNC_END();
}

struct many_tx {
	sp_future base;
	int out;
	sp_oneshot *chs;
	int from, to; /* odd indexes in [from, to) */
	atomic_int *send_errors;
};

static sp_poll many_tx_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct many_tx *self = (struct many_tx *)f;
	for (int i = self->from; i < self->to; i++)
		if (i % 2 == 1 && sp_oneshot_send(&self->chs[i], (uint64_t)i * 7u + 1u) != 0)
			atomic_fetch_add(self->send_errors, 1);
	return SP_READY;
}

struct many_thread_arg {
	sp_oneshot *chs;
	atomic_int send_errors;
};

static void *many_thread_main(void *arg)
{
	struct many_thread_arg *a = arg;
	for (int i = 0; i < MANY; i += 2)
		if (sp_oneshot_send(&a->chs[i], (uint64_t)i * 7u + 1u) != 0)
			atomic_fetch_add(&a->send_errors, 1);
	return NULL;
}

static void oneshot__many_channels_across_tasks_and_threads(void **state)
{
	(void)state;
	/* arrange: MANY receiver tasks; even channels are sent by a foreign
	 * thread, odd ones by four sender tasks, racing with the receivers */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	sp_oneshot *chs = calloc(MANY, sizeof *chs);
	sp_join_handle *rjh = calloc(MANY, sizeof *rjh);
	assert_non_null(chs);
	assert_non_null(rjh);
	for (int i = 0; i < MANY; i++)
		sp_oneshot_init(&chs[i]);
	atomic_int ok = 0, bad = 0, task_send_errors = 0;
	struct many_thread_arg ta = {.chs = chs};
	int spawn_errors = 0;

	/* act */
	for (int i = 0; i < MANY; i++) {
		struct many_rx r = {.base = {.poll = many_rx_poll, .name = "many_rx"},
				    .i = i,
				    .ch = &chs[i],
				    .ok = &ok,
				    .bad = &bad};
		spawn_errors += SP_RUNTIME_SPAWN(rt, "many_rx", &rjh[i], r) != 0;
	}
	pthread_t t = spt_thread(many_thread_main, &ta);
	sp_join_handle tjh[4];
	for (int k = 0; k < 4; k++) {
		struct many_tx tx = {.base = {.poll = many_tx_poll, .name = "many_tx"},
				     .chs = chs,
				     .from = k * (MANY / 4),
				     .to = (k + 1) * (MANY / 4),
				     .send_errors = &task_send_errors};
		spawn_errors += SP_RUNTIME_SPAWN(rt, "many_tx", &tjh[k], tx) != 0;
	}
	pthread_join(t, NULL);
	int finished = SPT_WAIT_UNTIL(atomic_load(&ok) + atomic_load(&bad) == MANY, SPT_SOON_MS);
	int statuses = 0;
	if (finished) {
		for (int k = 0; k < 4; k++)
			statuses |= sp_join_handle_wait(&tjh[k]);
		for (int i = 0; i < MANY; i++)
			statuses |= sp_join_handle_wait(&rjh[i]);
	}
	int free_rc = finished ? sp_runtime_free(rt) : 0;

	/* assert */
	assert_int_equal(spawn_errors, 0);
	assert_true(finished);
	assert_int_equal(atomic_load(&ok), MANY);
	assert_int_equal(atomic_load(&bad), 0);
	assert_int_equal(atomic_load(&ta.send_errors), 0);
	assert_int_equal(atomic_load(&task_send_errors), 0);
	assert_int_equal(statuses, 0);
	assert_int_equal(free_rc, 0);
	free(chs);
	free(rjh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(oneshot__send_before_recv_delivers_value),
		cmocka_unit_test(oneshot__recv_pending_then_send_from_foreign_thread),
		cmocka_unit_test(oneshot__send_from_another_task),
		cmocka_unit_test(oneshot__recv_in_block_on_with_foreign_sender),
		cmocka_unit_test(oneshot__close_before_recv_is_epipe),
		cmocka_unit_test(oneshot__close_while_recv_pending_is_epipe),
		cmocka_unit_test(oneshot__second_send_is_epipe),
		cmocka_unit_test(oneshot__send_after_receiver_dropped_is_epipe),
		cmocka_unit_test(oneshot__many_channels_across_tasks_and_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
