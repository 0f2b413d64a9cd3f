/*
 * test_async.c - async functions: SP_ASYNC_BEGIN / SP_AWAIT / SP_RETURN /
 * SP_YIELD / SP_ASYNC_END, frames nested in frames, outputs through `out`,
 * dropping suspended frames.
 *
 * Some tests poll futures by hand with a context like sp_block_on's root (no
 * task, a counting waker: unit/sp_test.h); the others run on a runtime.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit/sp_test.h"

/* ---- a log of events, appended from any thread -------------------------------- */

#define LOG_CAP 64
struct evlog {
	atomic_int n;
	int ev[LOG_CAP];
};

static void evlog_add(struct evlog *l, int e)
{
	int i = atomic_fetch_add(&l->n, 1);
	if (i < LOG_CAP)
		l->ev[i] = e;
}

/* ---- leaf: a value after `yields` SP_YIELDs ------------------------------------- */

struct leaf {
	sp_future base;
	long out;
	long value;
	int yields;
	int k;
	atomic_int *drops; /* optional */
	atomic_int *polls; /* optional */
};

static sp_poll leaf_poll(sp_future *f, sp_context *cx)
{
	struct leaf *self = (struct leaf *)f;
	if (self->polls)
		atomic_fetch_add(self->polls, 1);
	SP_ASYNC_BEGIN(f, cx);
	for (self->k = 0; self->k < self->yields; self->k++)
		SP_YIELD();
	SP_RETURN(self->value);
	SP_ASYNC_END();
}

static void leaf_drop(sp_future *f)
{
	struct leaf *self = (struct leaf *)f;
	if (self->drops)
		atomic_fetch_add(self->drops, 1);
}

static void leaf_init(struct leaf *l, long value, int yields, atomic_int *drops)
{
	memset(l, 0, sizeof *l);
	l->base.poll = leaf_poll;
	l->base.drop = leaf_drop;
	l->base.name = "leaf";
	l->value = value;
	l->yields = yields;
	l->drops = drops;
}

/* Poll by hand until ready; returns the number of polls (0 if it did not
 * finish within max polls). */
static int drive(sp_future *f, struct spt_manual_cx *m, int max)
{
	for (int i = 1; i <= max; i++)
		if (sp_future_poll(f, &m->cx) == SP_READY)
			return i;
	return 0;
}

/* ---- outputs --------------------------------------------------------------------- */

struct pair {
	long a, b;
};

struct make_pair {
	sp_future base;
	struct pair out;
	long x;
};

static sp_poll make_pair_poll(sp_future *f, sp_context *cx)
{
	struct make_pair *self = (struct make_pair *)f;
	SP_ASYNC_BEGIN(f, cx);
	SP_RETURN(((struct pair){self->x, -self->x}));
	SP_ASYNC_END();
}

static void async__returns_struct_value_through_out(void **state)
{
	(void)state;
	/* arrange */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	struct make_pair mp = {.base = {.poll = make_pair_poll, .name = "make_pair"}, .x = 21};

	/* act */
	int polls = drive(&mp.base, &m, 10);

	/* assert */
	assert_int_equal(polls, 1);
	assert_int_equal(mp.out.a, 21);
	assert_int_equal(mp.out.b, -21);
	assert_int_equal(mp.base.resume, -1);
}

/* ---- nested frames -------------------------------------------------------------- */

/* middle: awaits two leaves held in its own frame, returns their sum */
struct middle {
	sp_future base;
	long out;
	long base_value;
	struct leaf l1, l2;
	atomic_int *drops;
};

static sp_poll middle_poll(sp_future *f, sp_context *cx)
{
	struct middle *self = (struct middle *)f;
	SP_ASYNC_BEGIN(f, cx);
	leaf_init(&self->l1, self->base_value, 1, self->drops);
	SP_AWAIT(&self->l1);
	leaf_init(&self->l2, self->l1.out + 1, 2, self->drops);
	SP_AWAIT(&self->l2);
	SP_RETURN(self->l1.out + self->l2.out);
	SP_ASYNC_END();
}

static void middle_init(struct middle *m, long v, atomic_int *drops)
{
	memset(m, 0, sizeof *m);
	m->base.poll = middle_poll;
	m->base.name = "middle";
	m->base_value = v;
	m->drops = drops;
}

/* outer: a middle frame and a leaf frame inside it */
struct outer {
	sp_future base;
	long out;
	struct middle mid;
	struct leaf tail;
	long first;
	atomic_int *drops;
};

static sp_poll outer_poll(sp_future *f, sp_context *cx)
{
	struct outer *self = (struct outer *)f;
	SP_ASYNC_BEGIN(f, cx);
	middle_init(&self->mid, 10, self->drops);
	SP_AWAIT(&self->mid);
	self->first = self->mid.out; /* 10 + 11 */
	leaf_init(&self->tail, 100, 0, self->drops);
	SP_AWAIT(&self->tail);
	SP_RETURN(self->first * 1000 + self->tail.out);
	SP_ASYNC_END();
}

static void outer_init(struct outer *o, atomic_int *drops)
{
	memset(o, 0, sizeof *o);
	o->base.poll = outer_poll;
	o->base.name = "outer";
	o->drops = drops;
}

static void async__nested_frames_pass_outputs_up(void **state)
{
	(void)state;
	/* arrange */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	atomic_int drops = 0;
	struct outer o;
	outer_init(&o, &drops);

	/* act */
	int polls = drive(&o.base, &m, 100);

	/* assert: l1 yields once, l2 twice, tail never: 4 polls in all */
	assert_int_equal(polls, 4);
	assert_int_equal(o.out, 21 * 1000 + 100);
	assert_int_equal(o.mid.l1.out, 10);
	assert_int_equal(o.mid.l2.out, 11);
	/* every awaited leaf was dropped by SP_AWAIT after its SP_READY */
	assert_int_equal(atomic_load(&drops), 3);
	assert_null(o.base.awaiting);
	/* each SP_YIELD woke the task by reference */
	assert_int_equal(atomic_load(&m.counts.wakes_by_ref), 3);
}

static void async__nested_frames_on_runtime(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int drops = 0;
	struct outer o;
	outer_init(&o, &drops);
	sp_join_handle jh;
	long out = -1;

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "outer", &jh, o);
	jh.dst = &out;
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, 21 * 1000 + 100);
	assert_int_equal(atomic_load(&drops), 3);
	assert_int_equal(free_rc, 0);
}

/* ---- sequencing ------------------------------------------------------------------ */

#define SEQ_N 1000

struct seq {
	sp_future base;
	long out;
	int i;
	int order_ok;
	long sum;
	int seen[SEQ_N];
	struct leaf step;
	atomic_int *drops;
};

static sp_poll seq_poll(sp_future *f, sp_context *cx)
{
	struct seq *self = (struct seq *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->order_ok = 1;
	for (self->i = 0; self->i < SEQ_N; self->i++) {
		leaf_init(&self->step, (long)self->i * self->i, self->i % 3, self->drops);
		SP_AWAIT(&self->step);
		if (self->step.out != (long)self->i * self->i)
			self->order_ok = 0;
		self->seen[self->i]++;
		self->sum += self->step.out;
	}
	SP_RETURN(self->sum);
	SP_ASYNC_END();
}

static void seq_init(struct seq *s, atomic_int *drops)
{
	memset(s, 0, sizeof *s);
	s->base.poll = seq_poll;
	s->base.name = "seq";
	s->drops = drops;
}

static long seq_expected(void)
{
	long e = 0;
	for (long i = 0; i < SEQ_N; i++)
		e += i * i;
	return e;
}

static void async__sequencing_across_many_awaits_by_hand(void **state)
{
	(void)state;
	/* arrange */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	atomic_int drops = 0;
	struct seq *s = malloc(sizeof *s);
	assert_non_null(s);
	seq_init(s, &drops);
	int yields = 0;
	for (int i = 0; i < SEQ_N; i++)
		yields += i % 3;

	/* act */
	int polls = drive(&s->base, &m, 10 * SEQ_N);

	/* assert */
	assert_int_equal(polls, yields + 1);
	assert_true(s->order_ok);
	assert_int_equal(s->out, seq_expected());
	for (int i = 0; i < SEQ_N; i++)
		assert_int_equal(s->seen[i], 1);
	assert_int_equal(atomic_load(&drops), SEQ_N);
	free(s);
}

static void async__sequencing_across_many_awaits_block_on(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int drops = 0;
	struct seq *s = malloc(sizeof *s);
	assert_non_null(s);
	seq_init(s, &drops);

	/* act */
	int rc = sp_block_on(rt, &s->base);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(s->order_ok);
	assert_int_equal(s->out, seq_expected());
	for (int i = 0; i < SEQ_N; i++)
		assert_int_equal(s->seen[i], 1);
	assert_int_equal(atomic_load(&drops), SEQ_N);
	assert_int_equal(free_rc, 0);
	free(s);
}

static void async__sequencing_across_many_awaits_in_task(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int drops = 0;
	struct seq *s = malloc(sizeof *s);
	assert_non_null(s);
	seq_init(s, &drops);
	sp_join_handle jh;
	long out = -1;

	/* act: the task is a copy of *s (a large frame) */
	int rc = sp__spawn(rt, &jh, &s->base, sizeof *s,
			   SP__SITE("seq", offsetof(struct seq, out), sizeof s->out));
	jh.dst = &out;
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, seq_expected());
	assert_int_equal(atomic_load(&drops), SEQ_N);
	assert_int_equal(free_rc, 0);
	free(s);
}

/* ---- dropping suspended frames ------------------------------------------------------ */

/* pending forever; stores the waker in itself; logs its drop */
struct forever {
	sp_future base;
	sp_waker w;
	int tag;
	struct evlog *log;
	atomic_int *polls;
};

static sp_poll forever_poll(sp_future *f, sp_context *cx)
{
	struct forever *self = (struct forever *)f;
	if (self->polls)
		atomic_fetch_add(self->polls, 1);
	sp_waker_store(&self->w, cx);
	return SP_PENDING;
}

static void forever_drop(sp_future *f)
{
	struct forever *self = (struct forever *)f;
	sp_waker_drop(&self->w);
	evlog_add(self->log, self->tag);
}

/* an async fn around one inner future of a given type; logs its own drop */
struct wrap_mid {
	sp_future base;
	int tag;
	struct evlog *log;
	struct forever inner;
	atomic_int *polls;
};

static sp_poll wrap_mid_poll(sp_future *f, sp_context *cx)
{
	struct wrap_mid *self = (struct wrap_mid *)f;
	SP_ASYNC_BEGIN(f, cx);
	memset(&self->inner, 0, sizeof self->inner);
	self->inner.base.poll = forever_poll;
	self->inner.base.drop = forever_drop;
	self->inner.tag = 1;
	self->inner.log = self->log;
	self->inner.polls = self->polls;
	SP_AWAIT(&self->inner);
	SP_RETURN_VOID();
	SP_ASYNC_END();
}

static void wrap_drop(sp_future *f)
{
	struct wrap_mid *self = (struct wrap_mid *)f;
	evlog_add(self->log, self->tag);
}

struct wrap_out {
	sp_future base;
	int tag;
	struct evlog *log;
	struct wrap_mid mid;
	atomic_int *polls;
};

static sp_poll wrap_out_poll(sp_future *f, sp_context *cx)
{
	struct wrap_out *self = (struct wrap_out *)f;
	SP_ASYNC_BEGIN(f, cx);
	memset(&self->mid, 0, sizeof self->mid);
	self->mid.base.poll = wrap_mid_poll;
	self->mid.base.drop = wrap_drop;
	self->mid.tag = 2;
	self->mid.log = self->log;
	self->mid.polls = self->polls;
	SP_AWAIT(&self->mid);
	SP_RETURN_VOID();
	SP_ASYNC_END();
}

static void wrap_out_drop(sp_future *f)
{
	struct wrap_out *self = (struct wrap_out *)f;
	evlog_add(self->log, self->tag);
}

static void wrap_out_init(struct wrap_out *o, struct evlog *log, atomic_int *polls)
{
	memset(o, 0, sizeof *o);
	o->base.poll = wrap_out_poll;
	o->base.drop = wrap_out_drop;
	o->base.name = "wrap_out";
	o->tag = 3;
	o->log = log;
	o->polls = polls;
}

static void async__drop_suspended_outer_drops_awaited_inner(void **state)
{
	(void)state;
	/* arrange: outer -> middle -> inner (pending forever), suspended */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	struct evlog log;
	memset(&log, 0, sizeof log);
	atomic_int polls = 0;
	struct wrap_out o;
	wrap_out_init(&o, &log, &polls);
	sp_poll r = sp_future_poll(&o.base, &m.cx);
	int suspended_chain =
		o.base.awaiting == &o.mid.base && o.mid.base.awaiting == &o.mid.inner.base;

	/* act */
	sp_future_drop(&o.base);
	int after_first = atomic_load(&log.n);
	sp_future_drop(&o.base); /* idempotent */

	/* assert */
	assert_int_equal(r, SP_PENDING);
	assert_int_equal(atomic_load(&polls), 1);
	assert_true(suspended_chain);
	assert_int_equal(after_first, 3);
	assert_int_equal(atomic_load(&log.n), 3);
	/* innermost first, as Rust drops the locals live at the suspension */
	assert_int_equal(log.ev[0], 1);
	assert_int_equal(log.ev[1], 2);
	assert_int_equal(log.ev[2], 3);
	/* the inner future's stored clone was released by its drop */
	assert_int_equal(atomic_load(&m.counts.clones), 1);
	assert_int_equal(atomic_load(&m.counts.drops), 1);
	assert_null(o.base.awaiting);
}

static void async__drop_of_aborted_task_drops_awaited_inner(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct evlog log;
	memset(&log, 0, sizeof log);
	atomic_int polls = 0;
	struct wrap_out o;
	wrap_out_init(&o, &log, &polls);
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN(rt, "wrap_out", &jh, o);
	int polled = SPT_WAIT_UNTIL(
		atomic_load(&polls) == 1 && spt_task_idle(rt, sp_join_handle_id(&jh)), SPT_SOON_MS);

	/* act */
	sp_join_handle_abort(&jh);
	int dropped = SPT_WAIT_UNTIL(atomic_load(&log.n) >= 3, SPT_SOON_MS);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(polled);
	assert_true(dropped);
	assert_int_equal(status, SP_ECANCELED);
	assert_int_equal(atomic_load(&log.n), 3);
	assert_int_equal(log.ev[0], 1);
	assert_int_equal(log.ev[1], 2);
	assert_int_equal(log.ev[2], 3);
	assert_int_equal(free_rc, 0);
}

/* ---- SP_YIELD ------------------------------------------------------------------------ */

struct yielder {
	sp_future base;
	int out;
	int nyields;
	int k;
	atomic_int *polls;
};

static sp_poll yielder_poll(sp_future *f, sp_context *cx)
{
	struct yielder *self = (struct yielder *)f;
	atomic_fetch_add(self->polls, 1);
	SP_ASYNC_BEGIN(f, cx);
	for (self->k = 0; self->k < self->nyields; self->k++)
		SP_YIELD();
	SP_RETURN(self->k);
	SP_ASYNC_END();
}

static void async__yield_returns_pending_exactly_once_by_hand(void **state)
{
	(void)state;
	/* arrange */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	atomic_int polls = 0;
	struct yielder y = {
		.base = {.poll = yielder_poll, .name = "yielder"}, .nyields = 1, .polls = &polls};

	/* act */
	sp_poll r1 = sp_future_poll(&y.base, &m.cx);
	int wakes_after_first = atomic_load(&m.counts.wakes_by_ref);
	sp_poll r2 = sp_future_poll(&y.base, &m.cx);

	/* assert */
	assert_int_equal(r1, SP_PENDING);
	assert_int_equal(wakes_after_first, 1); /* it woke itself before pending */
	assert_int_equal(r2, SP_READY);
	assert_int_equal(y.out, 1);
	assert_int_equal(atomic_load(&polls), 2);
	assert_int_equal(atomic_load(&m.counts.clones), 0);
}

static void async__yield_on_runtime_polls_once_more_per_yield(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int polls1 = 0, polls5 = 0;
	struct yielder y1 = {
		.base = {.poll = yielder_poll, .name = "y1"}, .nyields = 1, .polls = &polls1};
	struct yielder y5 = {
		.base = {.poll = yielder_poll, .name = "y5"}, .nyields = 5, .polls = &polls5};
	sp_join_handle j1, j5;
	int o1 = -1, o5 = -1;

	/* act */
	int rc1 = SP_RUNTIME_SPAWN_OUT(rt, "y1", &j1, y1);
	j1.dst = &o1;
	int rc5 = SP_RUNTIME_SPAWN_OUT(rt, "y5", &j5, y5);
	j5.dst = &o5;
	int s1 = sp_join_handle_wait(&j1);
	int s5 = sp_join_handle_wait(&j5);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc1, 0);
	assert_int_equal(rc5, 0);
	assert_int_equal(s1, 0);
	assert_int_equal(s5, 0);
	assert_int_equal(o1, 1);
	assert_int_equal(o5, 5);
	assert_int_equal(atomic_load(&polls1), 2);
	assert_int_equal(atomic_load(&polls5), 6);
	assert_int_equal(free_rc, 0);
}

/* A spawns B on a single worker, then yields: B must have run before A
 * resumes ("let other tasks run"). use_yield_future picks sp_yield. */
struct flag_fut {
	sp_future base;
	atomic_int *flag;
};

static sp_poll flag_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct flag_fut *self = (struct flag_fut *)f;
	atomic_store(self->flag, 1);
	return SP_READY;
}

struct polite {
	sp_future base;
	int out; /* B's flag as seen after the yield */
	int use_yield_future;
	int spawn_rc;
	atomic_int *b_ran;
	struct flag_fut b;
	sp_yield y;
};

static sp_poll polite_poll(sp_future *f, sp_context *cx)
{
	struct polite *self = (struct polite *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->b = (struct flag_fut){.base = {.poll = flag_poll, .name = "b"}, .flag = self->b_ran};
	self->spawn_rc = SP_SPAWN("b", NULL, self->b);
	if (self->use_yield_future) {
		sp_yield_init(&self->y);
		SP_AWAIT(&self->y);
	} else {
		SP_YIELD();
	}
	SP_RETURN(self->spawn_rc == 0 ? atomic_load(self->b_ran) : -1);
	SP_ASYNC_END();
}

static int run_polite(int use_yield_future)
{
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 1);
	atomic_int b_ran = 0;
	struct polite a;
	memset(&a, 0, sizeof a);
	a.base.poll = polite_poll;
	a.base.name = "polite";
	a.use_yield_future = use_yield_future;
	a.b_ran = &b_ran;
	sp_join_handle jh;
	int out = -2;
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "polite", &jh, a);
	jh.dst = &out;
	int status = rc ? rc : sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);
	if (rc || status || free_rc)
		return -3;
	return out;
}

static void async__yield_lets_other_tasks_run(void **state)
{
	(void)state;
	/* arrange + act */
	int seen = run_polite(0);

	/* assert */
	assert_int_equal(seen, 1);
}

static void async__yield_future_lets_other_tasks_run(void **state)
{
	(void)state;
	/* arrange + act */
	int seen = run_polite(1);

	/* assert */
	assert_int_equal(seen, 1);
}

/* ---- polled after ready: abort ------------------------------------------------------- */

static void async__poll_after_ready_aborts_with_invariant_message(void **state)
{
	(void)state;
	/* arrange */
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);

	/* act: in a child, poll a finished async fn again */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		struct spt_manual_cx m;
		spt_manual_cx_init(&m);
		struct make_pair mp = {.base = {.poll = make_pair_poll}, .x = 1};
		if (sp_future_poll(&mp.base, &m.cx) != SP_READY)
			_exit(3);
		sp_future_poll(&mp.base, &m.cx);
		_exit(4); /* not reached when the runtime aborts */
	}
	close(pipefd[1]);
	char buf[4096];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof buf - 1 && (n = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	close(pipefd[0]);
	int wstatus = 0;
	waitpid(pid, &wstatus, 0);

	/* assert */
	assert_true(WIFSIGNALED(wstatus));
	assert_int_equal(WTERMSIG(wstatus), SIGABRT);
	assert_non_null(strstr(buf, "invariant broken"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(async__returns_struct_value_through_out),
		cmocka_unit_test(async__nested_frames_pass_outputs_up),
		cmocka_unit_test(async__nested_frames_on_runtime),
		cmocka_unit_test(async__sequencing_across_many_awaits_by_hand),
		cmocka_unit_test(async__sequencing_across_many_awaits_block_on),
		cmocka_unit_test(async__sequencing_across_many_awaits_in_task),
		cmocka_unit_test(async__drop_suspended_outer_drops_awaited_inner),
		cmocka_unit_test(async__drop_of_aborted_task_drops_awaited_inner),
		cmocka_unit_test(async__yield_returns_pending_exactly_once_by_hand),
		cmocka_unit_test(async__yield_on_runtime_polls_once_more_per_yield),
		cmocka_unit_test(async__yield_lets_other_tasks_run),
		cmocka_unit_test(async__yield_future_lets_other_tasks_run),
		cmocka_unit_test(async__poll_after_ready_aborts_with_invariant_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
