/*
 * test_combinators.c - sp_join (children run concurrently, each dropped once
 * when ready, unfinished ones dropped with the join) and sp_select (the
 * winner's index, the losers dropped exactly once as soon as the winner is
 * ready, cancel-safety of losing channel/mutex/notify waits).
 */
#include "unit/sp_test.h"

static int wl_len(pthread_mutex_t *lock, sp_waitlist *l)
{
	pthread_mutex_lock(lock);
	int n = 0;
	for (sp_waiter *w = l->head; w; w = w->next)
		n++;
	pthread_mutex_unlock(lock);
	return n;
}

/* ---- join: concurrency ------------------------------------------------------- */

/* Signals the other side, then waits for its own signal. Awaited one after
 * the other, two of these deadlock; joined, both complete. */
struct pinger {
	sp_future base;
	int out;
	int id;
	sp_notify *mine, *other;
	sp_notified nf;
};

static sp_poll pinger_poll(sp_future *f, sp_context *cx)
{
	struct pinger *self = (struct pinger *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_notified_init(&self->nf, self->mine);
	sp_notify_one(self->other);
	SP_AWAIT(&self->nf);
	SP_RETURN(self->id * 10);
	SP_ASYNC_END();
}

static void pinger_init(struct pinger *p, int id, sp_notify *mine, sp_notify *other)
{
	memset(p, 0, sizeof(*p));
	p->base.poll = pinger_poll;
	p->base.name = "pinger";
	p->id = id;
	p->mine = mine;
	p->other = other;
}

struct pair {
	sp_future base;
	int out; /* a.out * 100 + b.out */
	sp_notify *na, *nb;
	struct pinger a, b;
	sp_future *kids[2];
	sp_join j;
};

static sp_poll pair_poll(sp_future *f, sp_context *cx)
{
	struct pair *self = (struct pair *)f;
	SP_ASYNC_BEGIN(f, cx);
	pinger_init(&self->a, 1, self->na, self->nb);
	pinger_init(&self->b, 2, self->nb, self->na);
	self->kids[0] = &self->a.base;
	self->kids[1] = &self->b.base;
	sp_join_init(&self->j, self->kids, 2);
	SP_AWAIT(&self->j);
	if (self->kids[0] || self->kids[1])
		SP_RETURN(-1);
	SP_RETURN(self->a.out * 100 + self->b.out);
	SP_ASYNC_END();
}

/* sp_block_on on a helper thread, so that a broken join fails the test
 * (bounded wait) instead of hanging it. */
struct block_on_arg {
	sp_runtime *rt;
	sp_future *fut;
	int rc;
	atomic_int done;
};

static void *block_on_main(void *arg)
{
	struct block_on_arg *a = arg;
	a->rc = sp_block_on(a->rt, a->fut);
	atomic_store(&a->done, 1);
	return NULL;
}

static void join__children_wait_for_each_other_block_on(void **state)
{
	(void)state;
	/* arrange: the pair is sp_block_on's root future, without a budget */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_notify na, nb;
	sp_notify_init(&na);
	sp_notify_init(&nb);
	struct pair p;
	memset(&p, 0, sizeof p);
	p.base.poll = pair_poll;
	p.base.name = "pair";
	p.na = &na;
	p.nb = &nb;
	struct block_on_arg a = {.rt = rt, .fut = &p.base, .rc = 99};

	/* act */
	pthread_t t = spt_thread(block_on_main, &a);
	int finished = SPT_WAIT_UNTIL(atomic_load(&a.done), SPT_SOON_MS);
	int free_rc = 0;
	if (finished) {
		pthread_join(t, NULL);
		free_rc = sp_runtime_free(rt);
		sp_notify_destroy(&na);
		sp_notify_destroy(&nb);
	} else {
		pthread_detach(t); /* leaked: the test fails below */
	}

	/* assert */
	assert_true(finished);
	assert_int_equal(a.rc, 0);
	assert_int_equal(p.out, 1020); /* both children's outputs kept */
	assert_int_equal(free_rc, 0);
}

static void join__children_wait_for_each_other_in_tasks(void **state)
{
	(void)state;
	/* arrange: 32 pairs on 4 workers */
	enum { N = 32 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	sp_notify n[2 * N];
	for (int i = 0; i < 2 * N; i++)
		sp_notify_init(&n[i]);
	sp_join_handle jh[N];
	int out[N], spawn_errors = 0;

	/* act */
	for (int i = 0; i < N; i++) {
		struct pair p;
		memset(&p, 0, sizeof p);
		p.base.poll = pair_poll;
		p.base.name = "pair";
		p.na = &n[2 * i];
		p.nb = &n[2 * i + 1];
		out[i] = 0;
		spawn_errors += SP_RUNTIME_SPAWN_OUT(rt, "pair", &jh[i], p) != 0;
		jh[i].dst = &out[i];
	}
	int finished = spt_finish_or_abort(rt, jh, N);
	int statuses = 0;
	for (int i = 0; i < N; i++)
		statuses |= sp_join_handle_wait(&jh[i]);
	int free_rc = sp_runtime_free(rt);
	for (int i = 0; i < 2 * N; i++)
		sp_notify_destroy(&n[i]);

	/* assert */
	assert_true(finished);
	assert_int_equal(spawn_errors, 0);
	assert_int_equal(statuses, 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(out[i], 1020);
	assert_int_equal(free_rc, 0);
}

/* ---- join: polling and dropping by hand -------------------------------------- */

static void join__ready_children_dropped_once_never_polled_again(void **state)
{
	(void)state;
	/* arrange: ready at poll 1, ready at poll 3, ready when opened */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	struct spt_probe p[3];
	spt_probe_init(&p[0], 0, 1, 11);
	spt_probe_init(&p[1], 0, 3, 22);
	spt_probe_init(&p[2], 1, 0, 33);
	struct spt_probe_fut f[3];
	sp_future *kids[3];
	for (int i = 0; i < 3; i++) {
		spt_probe_fut_init(&f[i], &p[i]);
		kids[i] = &f[i].base;
	}
	sp_join j;
	sp_join_init(&j, kids, 3);

	/* act */
	sp_poll r1 = sp_future_poll(&j.base, &m.cx);
	int d0_after_1 = atomic_load(&p[0].drops);
	sp_poll r2 = sp_future_poll(&j.base, &m.cx);
	sp_poll r3 = sp_future_poll(&j.base, &m.cx);
	size_t pending_3 = j.pending;
	int woke = spt_probe_open(&p[2]);
	sp_poll r4 = sp_future_poll(&j.base, &m.cx);
	sp_future_drop(&j.base);

	/* assert */
	assert_int_equal(r1, SP_PENDING);
	assert_int_equal(d0_after_1, 1); /* dropped as soon as it was ready */
	assert_int_equal(r2, SP_PENDING);
	assert_int_equal(r3, SP_PENDING);
	assert_int_equal(pending_3, 1);
	assert_true(woke);
	assert_int_equal(r4, SP_READY);
	assert_int_equal(atomic_load(&p[0].polls), 1); /* never polled after ready */
	assert_int_equal(atomic_load(&p[1].polls), 3);
	assert_int_equal(atomic_load(&p[2].polls), 4);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&p[i].drops), 1);
		assert_int_equal(atomic_load(&p[i].after_drop), 0);
		assert_null(kids[i]);
	}
	assert_int_equal(f[0].out, 11);
	assert_int_equal(f[1].out, 22);
	assert_int_equal(f[2].out, 33);
	assert_int_equal(spt_live_wakers(&m), 0);
	for (int i = 0; i < 3; i++)
		spt_probe_destroy(&p[i]);
}

static void join__drop_drops_unfinished_children_once(void **state)
{
	(void)state;
	/* arrange: one ready at once, two waiting (holding waker clones) */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	struct spt_probe p[3];
	spt_probe_init(&p[0], 0, 1, 1);
	spt_probe_init(&p[1], 2, 0, 2);
	spt_probe_init(&p[2], 1, 0, 3);
	struct spt_probe_fut f[3];
	sp_future *kids[3];
	for (int i = 0; i < 3; i++) {
		spt_probe_fut_init(&f[i], &p[i]);
		kids[i] = &f[i].base;
	}
	sp_join j;
	sp_join_init(&j, kids, 3);

	/* act */
	sp_poll r = sp_future_poll(&j.base, &m.cx);
	sp_future_drop(&j.base);
	sp_future_drop(&j.base); /* idempotent */

	/* assert */
	assert_int_equal(r, SP_PENDING);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&p[i].drops), 1);
		assert_null(kids[i]);
	}
	assert_int_equal(spt_live_wakers(&m), 0);
	for (int i = 0; i < 3; i++)
		spt_probe_destroy(&p[i]);
}

static void join__empty_is_ready(void **state)
{
	(void)state;
	/* arrange */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	sp_join j;
	sp_join_init(&j, NULL, 0);

	/* act */
	sp_poll r = sp_future_poll(&j.base, &m.cx);
	sp_future_drop(&j.base);

	/* assert */
	assert_int_equal(r, SP_READY);
}

/* ---- select by hand ---------------------------------------------------------- */

static void select__winner_index_and_losers_dropped_once(void **state)
{
	(void)state;
	/* arrange: two waiting children, the third ready at its second poll */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	struct spt_probe p[3];
	spt_probe_init(&p[0], 2, 0, 100);
	spt_probe_init(&p[1], 1, 0, 101);
	spt_probe_init(&p[2], 0, 2, 102);
	struct spt_probe_fut f[3];
	sp_future *kids[3];
	for (int i = 0; i < 3; i++) {
		spt_probe_fut_init(&f[i], &p[i]);
		kids[i] = &f[i].base;
	}
	sp_select s;
	sp_select_init(&s, kids, 3);

	/* act */
	sp_poll r1 = sp_future_poll(&s.base, &m.cx);
	int drops_before =
		atomic_load(&p[0].drops) + atomic_load(&p[1].drops) + atomic_load(&p[2].drops);
	sp_poll r2 = sp_future_poll(&s.base, &m.cx);
	int drops_at_ready[3];
	for (int i = 0; i < 3; i++)
		drops_at_ready[i] = atomic_load(&p[i].drops);
	sp_future_drop(&s.base);
	spt_probe_open(&p[0]); /* a late event for a loser: nobody is woken */

	/* assert */
	assert_int_equal(r1, SP_PENDING);
	assert_int_equal(drops_before, 0);
	assert_int_equal(r2, SP_READY);
	assert_int_equal(s.out, 2);
	assert_int_equal(f[2].out, 102); /* the winner's output stays */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(drops_at_ready[i], 1); /* at once, when the winner was ready */
		assert_int_equal(atomic_load(&p[i].drops), 1); /* and never again */
		assert_int_equal(atomic_load(&p[i].after_drop), 0);
		assert_ptr_equal(kids[i], &f[i].base);
	}
	assert_int_equal(spt_live_wakers(&m), 0);
	assert_int_equal(atomic_load(&m.counts.wakes), 0);
	for (int i = 0; i < 3; i++)
		spt_probe_destroy(&p[i]);
}

static void select__tie_goes_to_lowest_index(void **state)
{
	(void)state;
	/* arrange: both ready at their first poll */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	struct spt_probe p[2];
	spt_probe_init(&p[0], 0, 1, 7);
	spt_probe_init(&p[1], 0, 1, 8);
	struct spt_probe_fut f[2];
	sp_future *kids[2];
	for (int i = 0; i < 2; i++) {
		spt_probe_fut_init(&f[i], &p[i]);
		kids[i] = &f[i].base;
	}
	sp_select s;
	sp_select_init(&s, kids, 2);

	/* act */
	sp_poll r = sp_future_poll(&s.base, &m.cx);
	sp_future_drop(&s.base);

	/* assert */
	assert_int_equal(r, SP_READY);
	assert_int_equal(s.out, 0);
	assert_int_equal(atomic_load(&p[1].polls), 0);
	assert_int_equal(atomic_load(&p[0].drops), 1);
	assert_int_equal(atomic_load(&p[1].drops), 1);
	for (int i = 0; i < 2; i++)
		spt_probe_destroy(&p[i]);
}

static void select__dropped_unfinished_drops_every_child_once(void **state)
{
	(void)state;
	/* arrange */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	struct spt_probe p[3];
	struct spt_probe_fut f[3];
	sp_future *kids[3];
	for (int i = 0; i < 3; i++) {
		spt_probe_init(&p[i], 1, 0, i);
		spt_probe_fut_init(&f[i], &p[i]);
		kids[i] = &f[i].base;
	}
	sp_select s, empty;
	sp_select_init(&s, kids, 3);
	sp_select_init(&empty, NULL, 0);

	/* act */
	sp_poll r = sp_future_poll(&s.base, &m.cx);
	sp_future_drop(&s.base);
	sp_future_drop(&s.base);
	sp_poll re = sp_future_poll(&empty.base, &m.cx);
	sp_future_drop(&empty.base);

	/* assert */
	assert_int_equal(r, SP_PENDING);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&p[i].drops), 1);
	assert_int_equal(spt_live_wakers(&m), 0);
	assert_int_equal(re, SP_READY);
	assert_int_equal(empty.out, SP_EINVAL);
	for (int i = 0; i < 3; i++)
		spt_probe_destroy(&p[i]);
}

static void select__granted_loser_passes_lock_on(void **state)
{
	(void)state;
	/* arrange: select(acquire 1 permit, lock) with neither available: both
	 * queue. Then both are granted before the select polls again. */
	struct spt_manual_cx m;
	spt_manual_cx_init(&m);
	sp_semaphore sem;
	sp_semaphore_init(&sem, 0);
	sp_mutex mu;
	sp_mutex_init(&mu);
	sp_mutex_try_lock(&mu);
	sp_semaphore_acquire acq;
	sp_mutex_lock lk;
	sp_semaphore_acquire_init(&acq, &sem, 1);
	sp_mutex_lock_init(&lk, &mu);
	sp_future *kids[2] = {&acq.base, &lk.base};
	sp_select s;
	sp_select_init(&s, kids, 2);

	/* act */
	sp_poll r1 = sp_future_poll(&s.base, &m.cx);
	int qa = wl_len(&sem.lock, &sem.waiters), ql = wl_len(&mu.lock, &mu.waiters);
	sp_mutex_unlock(&mu);	       /* granted to lk */
	sp_semaphore_release(&sem, 1); /* granted to acq */
	sp_poll r2 = sp_future_poll(&s.base, &m.cx);
	int relock = sp_mutex_try_lock(&mu); /* lk passed the lock on: free */
	size_t avail = sp_semaphore_available(&sem);
	sp_future_drop(&s.base);
	sp_mutex_unlock(&mu);
	sp_semaphore_destroy(&sem);
	sp_mutex_destroy(&mu);

	/* assert */
	assert_int_equal(r1, SP_PENDING);
	assert_int_equal(qa, 1);
	assert_int_equal(ql, 1);
	assert_int_equal(r2, SP_READY);
	assert_int_equal(s.out, 0);
	assert_int_equal(relock, 0);
	assert_int_equal(avail, 0); /* the winner holds it */
	assert_int_equal(spt_live_wakers(&m), 0);
}

/* ---- select on a runtime: cancel-safety of losing waits ---------------------- */

/* select(recv, notified(stop)) once: out = the winner's index. */
struct recv_or_stop {
	sp_future base;
	int out;
	sp_mpsc *ch;
	sp_notify *stop;
	atomic_int *armed;
	int item;
	sp_mpsc_recv r;
	sp_notified nf;
	sp_future *kids[2];
	sp_select sel;
};

static sp_poll recv_or_stop_poll(sp_future *f, sp_context *cx)
{
	struct recv_or_stop *self = (struct recv_or_stop *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_mpsc_recv_init(&self->r, self->ch, &self->item);
	sp_notified_init(&self->nf, self->stop);
	self->kids[0] = &self->r.base;
	self->kids[1] = &self->nf.base;
	sp_select_init(&self->sel, self->kids, 2);
	atomic_store(self->armed, 1);
	SP_AWAIT(&self->sel);
	SP_RETURN(self->sel.out == 0 ? self->item * 10 : self->sel.out);
	SP_ASYNC_END();
}

static void select__losing_recv_and_notified_leave_no_waiter(void **state)
{
	(void)state;
	/* arrange: two tasks wait in select(recv, stop) */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 4);
	sp_notify stop;
	sp_notify_init(&stop);
	atomic_int armed[2] = {0, 0};
	sp_join_handle jh[2];
	int out[2] = {-5, -5}, rc = 0;
	for (int i = 0; i < 2; i++) {
		struct recv_or_stop t = {
			.base = {.poll = recv_or_stop_poll, .name = "recv_or_stop"},
			.ch = &ch,
			.stop = &stop,
			.armed = &armed[i]};
		rc |= SP_RUNTIME_SPAWN_OUT(rt, "recv_or_stop", &jh[i], t);
		jh[i].dst = &out[i];
	}
	int waiting = SPT_WAIT_UNTIL(wl_len(&ch.lock, &ch.recv_waiters) == 2 &&
					     wl_len(&stop.lock, &stop.waiters) == 2,
				     SPT_SOON_MS);

	/* act: one item (one task wins by recv), then one stop (the other) */
	sp_mpsc_try_send(&ch, &(int){4});
	int one_left = SPT_WAIT_UNTIL(wl_len(&ch.lock, &ch.recv_waiters) == 1 &&
					      wl_len(&stop.lock, &stop.waiters) == 1 &&
					      sp_mpsc_len(&ch) == 0,
				      SPT_SOON_MS);
	sp_notify_one(&stop);
	int finished = spt_finish_or_abort(rt, jh, 2);
	int statuses = sp_join_handle_wait(&jh[0]) | sp_join_handle_wait(&jh[1]);
	int rq = wl_len(&ch.lock, &ch.recv_waiters), nq = wl_len(&stop.lock, &stop.waiters);
	sp_mpsc_try_send(&ch, &(int){5}); /* nobody waits: it stays, not lost */
	int late = 0, late_rc = sp_mpsc_try_recv(&ch, &late);
	int permit = stop.permit;
	int free_rc = sp_runtime_free(rt);
	sp_mpsc_destroy(&ch);
	sp_notify_destroy(&stop);

	/* assert */
	assert_true(finished);
	assert_int_equal(rc, 0);
	assert_true(waiting);
	assert_true(one_left);
	assert_int_equal(statuses, 0);
	assert_true((out[0] == 40 && out[1] == 1) || (out[0] == 1 && out[1] == 40));
	assert_int_equal(rq, 0);
	assert_int_equal(nq, 0);
	assert_int_equal(permit, 0); /* the stop was consumed, not stored */
	assert_int_equal(late_rc, 0);
	assert_int_equal(late, 5);
	assert_int_equal(free_rc, 0);
}

/* Receives in a loop of select(recv, notified(stop)) until stop wins, then
 * drains with try_recv: out = items received; order checked. */
struct select_consumer {
	sp_future base;
	int out;
	sp_mpsc *ch;
	sp_notify *stop;
	int item, expect, order_errors;
	sp_mpsc_recv r;
	sp_notified nf;
	sp_future *kids[2];
	sp_select sel;
};

static sp_poll select_consumer_poll(sp_future *f, sp_context *cx)
{
	struct select_consumer *self = (struct select_consumer *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_mpsc_recv_init(&self->r, self->ch, &self->item);
		sp_notified_init(&self->nf, self->stop);
		self->kids[0] = &self->nf.base;
		self->kids[1] = &self->r.base;
		sp_select_init(&self->sel, self->kids, 2);
		SP_AWAIT(&self->sel);
		if (self->sel.out == 0)
			break;
		if (self->r.out)
			SP_RETURN(-1);
		self->order_errors += self->item != self->expect;
		self->expect++;
	}
	while (sp_mpsc_try_recv(self->ch, &self->item) == 0) {
		self->order_errors += self->item != self->expect;
		self->expect++;
	}
	SP_RETURN(self->order_errors ? -2 : self->expect);
	SP_ASYNC_END();
}

/* Sends 0..n-1, then signals stop. */
struct seq_producer {
	sp_future base;
	int out;
	sp_mpsc *ch;
	sp_notify *stop;
	int n, i;
	sp_mpsc_send s;
};

static sp_poll seq_producer_poll(sp_future *f, sp_context *cx)
{
	struct seq_producer *self = (struct seq_producer *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->n; self->i++) {
		sp_mpsc_send_init(&self->s, self->ch, &self->i);
		SP_AWAIT(&self->s);
		if (self->s.out)
			SP_RETURN(-1);
	}
	sp_notify_one(self->stop);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void select__recv_loop_loses_no_item_to_cancellation(void **state)
{
	(void)state;
	/* arrange: the stop signal is checked first in every round, so recv
	 * futures are created and cancelled over and over */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	int n = (int)spt_scaled(20000, 500);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 4);
	sp_notify stop;
	sp_notify_init(&stop);
	struct select_consumer c = {
		.base = {.poll = select_consumer_poll, .name = "select_consumer"},
		.ch = &ch,
		.stop = &stop};
	struct seq_producer p = {.base = {.poll = seq_producer_poll, .name = "seq_producer"},
				 .ch = &ch,
				 .stop = &stop,
				 .n = n};
	sp_join_handle cj, pj;
	int cout = -5, pout = -5;

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "consumer", &cj, c);
	cj.dst = &cout;
	rc |= SP_RUNTIME_SPAWN_OUT(rt, "producer", &pj, p);
	pj.dst = &pout;
	int finished = spt_finish_or_abort(rt, &pj, 1) & spt_finish_or_abort(rt, &cj, 1);
	int statuses = sp_join_handle_wait(&pj) | sp_join_handle_wait(&cj);
	int free_rc = sp_runtime_free(rt);
	int rq = wl_len(&ch.lock, &ch.recv_waiters), sq = wl_len(&ch.lock, &ch.send_waiters);
	int nq = wl_len(&stop.lock, &stop.waiters);
	sp_mpsc_destroy(&ch);
	sp_notify_destroy(&stop);

	/* assert */
	assert_true(finished);
	assert_int_equal(rc, 0);
	assert_int_equal(statuses, 0);
	assert_int_equal(pout, 0);
	assert_int_equal(cout, n); /* every item once, in order */
	assert_int_equal(rq, 0);
	assert_int_equal(sq, 0);
	assert_int_equal(nq, 0);
	assert_int_equal(free_rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(join__children_wait_for_each_other_block_on),
		cmocka_unit_test(join__children_wait_for_each_other_in_tasks),
		cmocka_unit_test(join__ready_children_dropped_once_never_polled_again),
		cmocka_unit_test(join__drop_drops_unfinished_children_once),
		cmocka_unit_test(join__empty_is_ready),
		cmocka_unit_test(select__winner_index_and_losers_dropped_once),
		cmocka_unit_test(select__tie_goes_to_lowest_index),
		cmocka_unit_test(select__dropped_unfinished_drops_every_child_once),
		cmocka_unit_test(select__granted_loser_passes_lock_on),
		cmocka_unit_test(select__losing_recv_and_notified_leave_no_waiter),
		cmocka_unit_test(select__recv_loop_loses_no_item_to_cancellation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
