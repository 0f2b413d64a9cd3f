/*
 * test_waker.c - the waker contract (spindle.h, "THE WAKER CONTRACT").
 *
 * A hand-written future (the probe, unit/sp_test.h) hands clones of its waker
 * to the test; the test wakes, wakes by reference or drops them from threads
 * that are not runtime threads, and counts the polls that follow.
 */
#include "unit/sp_test.h"

/* ---- helpers ---------------------------------------------------------------- */

struct opener {
	struct spt_probe *p;
	atomic_int saw_armed; /* the waker was stored before the thread woke it */
	atomic_int woke;      /* the wake found a waker */
};

/* A foreign thread: waits until the future stored its waker, then opens. */
static void *opener_main(void *arg)
{
	struct opener *o = arg;
	int armed = SPT_WAIT_UNTIL(spt_probe_armed(o->p, 0), SPT_SOON_MS);
	atomic_store(&o->saw_armed, armed);
	atomic_store(&o->woke, spt_probe_open(o->p));
	return NULL;
}

/* ---- foreign-thread wake --------------------------------------------------------- */

static void waker__foreign_thread_wake_repolls_and_completes(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 42);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	sp_join_handle jh;
	int out = -1;
	struct opener o = {.p = &p};

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "probe", &jh, f);
	jh.dst = &out;
	pthread_t t = spt_thread(opener_main, &o);
	int done = SPT_WAIT_UNTIL(atomic_load(&p.done), SPT_SOON_MS);
	pthread_join(t, NULL);
	int status = done ? sp_join_handle_wait(&jh) : -1;
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(atomic_load(&o.saw_armed));
	assert_true(atomic_load(&o.woke));
	assert_true(done);
	assert_int_equal(status, 0);
	assert_int_equal(out, 42);
	assert_int_equal(atomic_load(&p.polls), 2);
	assert_int_equal(atomic_load(&p.drops), 1);
	assert_int_equal(atomic_load(&p.concurrent), 0);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* ---- wake_by_ref --------------------------------------------------------------------- */

struct by_ref_waker {
	struct spt_probe *p;
	atomic_int nonempty_after[2]; /* the waker was still set after wake_by_ref */
	atomic_int reached[3];	      /* the poll count it waited for was reached */
};

static void *by_ref_main(void *arg)
{
	struct by_ref_waker *b = arg;
	struct spt_probe *p = b->p;
	for (int i = 0; i < 2; i++) {
		/* wait for poll i+1 to have started (and, for i == 0, the clone) */
		int ok = SPT_WAIT_UNTIL(atomic_load(&p->polls) >= i + 1 && spt_probe_armed(p, 0),
					SPT_SOON_MS);
		atomic_store(&b->reached[i], ok);
		pthread_mutex_lock(&p->mu);
		sp_waker_wake_by_ref(&p->w[0]);
		atomic_store(&b->nonempty_after[i], !sp_waker_is_empty(&p->w[0]));
		pthread_mutex_unlock(&p->mu);
	}
	atomic_store(&b->reached[2], SPT_WAIT_UNTIL(atomic_load(&p->done), SPT_SOON_MS));
	/* The task has completed; the clone outlives it and is dropped here.
	 * (The probe's drop may already have dropped it: dropping an empty waker
	 * is a no-op.) */
	pthread_mutex_lock(&p->mu);
	sp_waker_drop(&p->w[0]);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void waker__wake_by_ref_keeps_waker_usable(void **state)
{
	(void)state;
	/* arrange: poll 1 stores one clone and never touches it again; poll 3
	 * completes. Only the thread's two wake_by_ref calls can get it there. */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 3, 7);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	sp_join_handle jh;
	int out = -1;
	struct by_ref_waker b = {.p = &p};

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "probe", &jh, f);
	jh.dst = &out;
	pthread_t t = spt_thread(by_ref_main, &b);
	pthread_join(t, NULL);
	int done = atomic_load(&p.done);
	int status = done ? sp_join_handle_wait(&jh) : -1;
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(atomic_load(&b.reached[0]));
	assert_true(atomic_load(&b.reached[1]));
	assert_true(atomic_load(&b.nonempty_after[0]));
	assert_true(atomic_load(&b.nonempty_after[1]));
	assert_true(done);
	assert_int_equal(status, 0);
	assert_int_equal(out, 7);
	assert_int_equal(atomic_load(&p.polls), 3);
	assert_int_equal(atomic_load(&p.drops), 1);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* ---- wake consumes ---------------------------------------------------------------- */

static void waker__wake_consumes_the_waker(void **state)
{
	(void)state;
	/* arrange: poll 1 stores two clones (w[0], w[1]); poll 3 completes. */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 2, 3, 1);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	sp_join_handle jh;

	/* act: the main thread (not a runtime thread) wakes clone 0 by value */
	int rc = SP_RUNTIME_SPAWN(rt, "probe", &jh, f);
	int armed = SPT_WAIT_UNTIL(spt_probe_armed(&p, 1), SPT_SOON_MS);
	pthread_mutex_lock(&p.mu);
	sp_waker_wake(&p.w[0]);
	int empty_after_wake = sp_waker_is_empty(&p.w[0]);
	pthread_mutex_unlock(&p.mu);
	int polled_again = SPT_WAIT_UNTIL(atomic_load(&p.polls) >= 2 &&
						  spt_task_idle(rt, atomic_load(&p.task_id)),
					  SPT_SOON_MS);
	sp_task_info ti;
	memset(&ti, 0, sizeof ti);
	int found = spt_task_info(rt, atomic_load(&p.task_id), &ti);
	int woke_second = spt_probe_wake(&p, 1);
	int done = SPT_WAIT_UNTIL(atomic_load(&p.done), SPT_SOON_MS);
	int status = done ? sp_join_handle_wait(&jh) : -1;
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(armed);
	assert_true(empty_after_wake);
	assert_true(polled_again);
	assert_true(found);
	/* the consumed clone is gone; the one in w[1] is still live */
	assert_int_equal(ti.live_wakers, 1);
	assert_true(woke_second);
	assert_true(done);
	assert_int_equal(status, 0);
	assert_int_equal(atomic_load(&p.polls), 3);
	assert_int_equal(atomic_load(&p.drops), 1);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* ---- drop without wake --------------------------------------------------------------- */

static void waker__dropped_clone_leaves_task_idle(void **state)
{
	(void)state;
	/* arrange: two clones; the future completes at its second poll */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 2, 2, 5);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	sp_join_handle jh;
	int out = -1;

	/* act: drop clone 0 without waking; wait; then wake through clone 1 */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "probe", &jh, f);
	jh.dst = &out;
	int armed = SPT_WAIT_UNTIL(spt_probe_armed(&p, 1), SPT_SOON_MS);
	pthread_mutex_lock(&p.mu);
	sp_waker_drop(&p.w[0]);
	int empty_after_drop = sp_waker_is_empty(&p.w[0]);
	pthread_mutex_unlock(&p.mu);
	spt_sleep_ms(50);
	int polls_after_drop = atomic_load(&p.polls);
	int done_after_drop = atomic_load(&p.done);
	int woke = spt_probe_wake(&p, 1);
	int done = SPT_WAIT_UNTIL(atomic_load(&p.done), SPT_SOON_MS);
	int status = done ? sp_join_handle_wait(&jh) : -1;
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(armed);
	assert_true(empty_after_drop);
	assert_int_equal(polls_after_drop, 1);
	assert_false(done_after_drop);
	assert_true(woke);
	assert_true(done);
	assert_int_equal(status, 0);
	assert_int_equal(out, 5);
	assert_int_equal(atomic_load(&p.polls), 2);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* ---- coalescing ------------------------------------------------------------------------ */

/* Spins inside its poll until released: keeps the only worker busy. */
struct blocker_fut {
	sp_future base;
	atomic_int *started;
	atomic_int *release;
};

static sp_poll blocker_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct blocker_fut *self = (struct blocker_fut *)f;
	atomic_store(self->started, 1);
	uint64_t dl = spt_now_ns() + 10ull * 1000000000ull * SPT_TIME_MULT;
	while (!atomic_load(self->release) && spt_now_ns() < dl)
		sched_yield();
	return SP_READY;
}

static void waker__wakes_before_next_poll_coalesce(void **state)
{
	(void)state;
	/* arrange: one worker. The probe is polled once and stores a clone in
	 * w[0]; it completes at its third poll. A blocker then occupies the only
	 * worker while the test wakes the probe fifteen times, so every wake
	 * lands before the probe's next poll: they must make exactly one poll. */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 1);
	struct spt_probe p;
	spt_probe_init(&p, 1, 3, 9);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	atomic_int started = 0, release = 0;
	struct blocker_fut b = {.base = {.poll = blocker_poll, .name = "blocker"},
				.started = &started,
				.release = &release};
	sp_join_handle jh, bjh;

	int rc = SP_RUNTIME_SPAWN(rt, "probe", &jh, f);
	int armed = SPT_WAIT_UNTIL(spt_probe_armed(&p, 0), SPT_SOON_MS);
	int brc = SP_RUNTIME_SPAWN(rt, "blocker", &bjh, b);
	int busy = SPT_WAIT_UNTIL(atomic_load(&started), SPT_SOON_MS);

	/* act */
	pthread_mutex_lock(&p.mu);
	for (int i = 0; i < 10; i++)
		sp_waker_wake_by_ref(&p.w[0]);
	for (int i = 0; i < 5; i++) {
		sp_waker c = sp_waker_clone(&p.w[0]);
		sp_waker_wake(&c);
	}
	pthread_mutex_unlock(&p.mu);
	int polls_while_busy = atomic_load(&p.polls);
	atomic_store(&release, 1);
	int second = SPT_WAIT_UNTIL(atomic_load(&p.polls) >= 2, SPT_SOON_MS);
	spt_sleep_ms(50); /* room for (wrong) extra polls */
	int polls_after_wakes = atomic_load(&p.polls);
	int woke = spt_probe_wake(&p, 0); /* the clone is still there */
	int done = SPT_WAIT_UNTIL(atomic_load(&p.done), SPT_SOON_MS);
	int status = done ? sp_join_handle_wait(&jh) : -1;
	int bstatus = sp_join_handle_wait(&bjh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(brc, 0);
	assert_true(armed);
	assert_true(busy);
	assert_int_equal(polls_while_busy, 1);
	assert_true(second);
	assert_int_equal(polls_after_wakes, 2);
	assert_true(woke);
	assert_true(done);
	assert_int_equal(atomic_load(&p.polls), 3);
	assert_int_equal(status, 0);
	assert_int_equal(bstatus, 0);
	assert_int_equal(atomic_load(&p.concurrent), 0);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* ---- wakes during the task's own poll ------------------------------------------------- */

/*
 * mode SELF: poll 1 wakes itself (three times by reference and once through
 *   a clone) and returns SP_PENDING without storing anything.
 * mode FOREIGN: poll 1 stores a clone in s->w and spins until another thread
 *   has woken it, then returns SP_PENDING.
 * Poll 2 stores a clone in s->w2 and returns SP_PENDING; poll 3 completes.
 */
enum { DURING_SELF, DURING_FOREIGN };

struct during {
	pthread_mutex_t mu;
	sp_waker w, w2;
	int mode;
	atomic_int polls, in_poll1, woken, done, spin_timeout, drops;
};

struct during_fut {
	sp_future base;
	int out;
	struct during *s;
};

static sp_poll during_poll(sp_future *f, sp_context *cx)
{
	struct during_fut *self = (struct during_fut *)f;
	struct during *s = self->s;
	int n = atomic_fetch_add(&s->polls, 1) + 1;
	if (n == 1) {
		if (s->mode == DURING_SELF) {
			for (int i = 0; i < 3; i++)
				sp_waker_wake_by_ref(sp_context_waker(cx));
			sp_waker c = sp_waker_clone(sp_context_waker(cx));
			sp_waker_wake(&c);
		} else {
			pthread_mutex_lock(&s->mu);
			sp_waker_store(&s->w, cx);
			pthread_mutex_unlock(&s->mu);
			atomic_store(&s->in_poll1, 1);
			uint64_t dl = spt_now_ns() + 5ull * 1000000000ull * SPT_TIME_MULT;
			while (!atomic_load(&s->woken))
				if (spt_now_ns() > dl) {
					atomic_store(&s->spin_timeout, 1);
					break;
				}
		}
		return SP_PENDING;
	}
	if (n == 2) {
		pthread_mutex_lock(&s->mu);
		sp_waker_store(&s->w2, cx);
		pthread_mutex_unlock(&s->mu);
		return SP_PENDING;
	}
	self->out = n;
	atomic_store(&s->done, 1);
	return SP_READY;
}

static void during_drop(sp_future *f)
{
	struct during_fut *self = (struct during_fut *)f;
	pthread_mutex_lock(&self->s->mu);
	sp_waker_drop(&self->s->w);
	sp_waker_drop(&self->s->w2);
	pthread_mutex_unlock(&self->s->mu);
	atomic_fetch_add(&self->s->drops, 1);
}

static int during_w2_armed(struct during *s)
{
	pthread_mutex_lock(&s->mu);
	int r = !sp_waker_is_empty(&s->w2);
	pthread_mutex_unlock(&s->mu);
	return r;
}

static void during_wake(struct during *s, sp_waker *slot)
{
	pthread_mutex_lock(&s->mu);
	sp_waker w = *slot;
	slot->vtable = NULL;
	slot->data = NULL;
	pthread_mutex_unlock(&s->mu);
	sp_waker_wake(&w);
}

struct during_result {
	int rc, status, out, reached_poll2, polls_after_pause, done, free_rc, in_poll1;
};

static struct during_result run_during(int mode)
{
	struct during_result r;
	memset(&r, 0, sizeof r);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct during s;
	memset(&s, 0, sizeof s);
	pthread_mutex_init(&s.mu, NULL);
	s.mode = mode;
	struct during_fut f = {.base = {.poll = during_poll, .drop = during_drop, .name = "during"},
			       .s = &s};
	sp_join_handle jh;
	r.rc = SP_RUNTIME_SPAWN_OUT(rt, "during", &jh, f);
	jh.dst = &r.out;
	if (mode == DURING_FOREIGN) {
		r.in_poll1 = SPT_WAIT_UNTIL(atomic_load(&s.in_poll1), SPT_SOON_MS);
		during_wake(&s, &s.w); /* the task is inside poll 1 right now */
		atomic_store(&s.woken, 1);
	} else {
		r.in_poll1 = 1;
	}
	r.reached_poll2 = SPT_WAIT_UNTIL(during_w2_armed(&s), SPT_SOON_MS);
	spt_sleep_ms(50); /* a second extra poll would show up here */
	r.polls_after_pause = atomic_load(&s.polls);
	during_wake(&s, &s.w2);
	r.done = SPT_WAIT_UNTIL(atomic_load(&s.done), SPT_SOON_MS);
	r.status = r.done ? sp_join_handle_wait(&jh) : -1;
	r.free_rc = sp_runtime_free(rt);
	pthread_mutex_destroy(&s.mu);
	return r;
}

static void waker__self_wake_during_poll_schedules_exactly_one_more_poll(void **state)
{
	(void)state;
	/* arrange + act */
	struct during_result r = run_during(DURING_SELF);

	/* assert */
	assert_int_equal(r.rc, 0);
	assert_true(r.reached_poll2);
	assert_int_equal(r.polls_after_pause, 2);
	assert_true(r.done);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out, 3);
	assert_int_equal(r.free_rc, 0);
}

static void waker__foreign_wake_during_poll_schedules_exactly_one_more_poll(void **state)
{
	(void)state;
	/* arrange + act */
	struct during_result r = run_during(DURING_FOREIGN);

	/* assert */
	assert_int_equal(r.rc, 0);
	assert_true(r.in_poll1);
	assert_true(r.reached_poll2);
	assert_int_equal(r.polls_after_pause, 2);
	assert_true(r.done);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out, 3);
	assert_int_equal(r.free_rc, 0);
}

/* ---- laziness ---------------------------------------------------------------------------- */

struct lazy_async {
	sp_future base;
	int out;
	atomic_int *effects;
};

static sp_poll lazy_async_poll(sp_future *f, sp_context *cx)
{
	struct lazy_async *self = (struct lazy_async *)f;
	SP_ASYNC_BEGIN(f, cx);
	atomic_fetch_add(self->effects, 1);
	SP_RETURN(11);
	SP_ASYNC_END();
}

static void lazy_async_init(struct lazy_async *a, atomic_int *effects)
{
	memset(a, 0, sizeof *a);
	a->base.poll = lazy_async_poll;
	a->base.name = "lazy_async";
	a->effects = effects;
}

static void waker__futures_are_lazy_until_polled(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 0, 1, 3);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	atomic_int effects = 0;
	struct lazy_async a;
	lazy_async_init(&a, &effects);
	spt_sleep_ms(20);
	int probe_polls_before = atomic_load(&p.polls);
	int effects_before = atomic_load(&effects);

	/* act */
	sp_join_handle jh, ajh;
	int out = -1, aout = -1;
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "probe", &jh, f);
	jh.dst = &out;
	int arc = SP_RUNTIME_SPAWN_OUT(rt, "lazy_async", &ajh, a);
	ajh.dst = &aout;
	int status = sp_join_handle_wait(&jh);
	int astatus = sp_join_handle_wait(&ajh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(probe_polls_before, 0);
	assert_int_equal(effects_before, 0);
	assert_int_equal(rc, 0);
	assert_int_equal(arc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(astatus, 0);
	assert_int_equal(atomic_load(&p.polls), 1);
	assert_int_equal(atomic_load(&effects), 1);
	assert_int_equal(out, 3);
	assert_int_equal(aout, 11);
	/* spawn polled a copy: the caller's structs were never polled */
	assert_int_equal(f.local_polls, 0);
	assert_int_equal(a.base.resume, 0);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* ---- sp_block_on ------------------------------------------------------------------------- */

static void waker__block_on_hand_written_future_woken_by_foreign_thread(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct spt_probe p;
	spt_probe_init(&p, 1, 0, 99);
	struct spt_probe_fut f;
	spt_probe_fut_init(&f, &p);
	struct opener o = {.p = &p};
	pthread_t t = spt_thread(opener_main, &o);

	/* act */
	int rc = sp_block_on(rt, &f.base);
	pthread_join(t, NULL);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_true(atomic_load(&o.saw_armed));
	assert_true(atomic_load(&o.woke));
	assert_int_equal(f.out, 99);
	assert_int_equal(atomic_load(&p.polls), 2);
	assert_int_equal(f.local_polls, 2); /* block_on polls the caller's memory */
	assert_int_equal(atomic_load(&p.drops), 1);
	assert_int_equal(free_rc, 0);
	spt_probe_destroy(&p);
}

/* ---- SP_CURRENT_THREAD -------------------------------------------------------------------- */

static pthread_t g_main_thread;

struct ct_child {
	sp_future base;
	int out;
	int n;
	atomic_int *on_main;  /* polls that ran on the main thread */
	atomic_int *off_main; /* polls that ran elsewhere */
	atomic_int *wrong_rt; /* polls that saw another current runtime */
	sp_runtime *rt;
};

static sp_poll ct_child_poll(sp_future *f, sp_context *cx)
{
	struct ct_child *self = (struct ct_child *)f;
	if (pthread_equal(pthread_self(), g_main_thread))
		atomic_fetch_add(self->on_main, 1);
	else
		atomic_fetch_add(self->off_main, 1);
	if (sp_runtime_current() != self->rt)
		atomic_fetch_add(self->wrong_rt, 1);
	SP_ASYNC_BEGIN(f, cx);
	SP_YIELD();
	SP_RETURN(self->n * 10);
	SP_ASYNC_END();
}

#define CT_CHILDREN 8

struct ct_root {
	sp_future base;
	int out;
	int i;
	sp_runtime *rt;
	atomic_int *on_main, *off_main, *wrong_rt;
	sp_join_handle *pre; /* spawned from main before sp_block_on */
	int pre_out;
	int spawn_rc[CT_CHILDREN];
	int status[CT_CHILDREN];
	int res[CT_CHILDREN];
	sp_join_handle jh[CT_CHILDREN];
	struct ct_child child;
};

static sp_poll ct_root_poll(sp_future *f, sp_context *cx)
{
	struct ct_root *self = (struct ct_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < CT_CHILDREN; self->i++) {
		memset(&self->child, 0, sizeof self->child);
		self->child.base.poll = ct_child_poll;
		self->child.base.name = "ct_child";
		self->child.n = self->i + 1;
		self->child.on_main = self->on_main;
		self->child.off_main = self->off_main;
		self->child.wrong_rt = self->wrong_rt;
		self->child.rt = self->rt;
		self->spawn_rc[self->i] = SP_SPAWN_OUT("ct_child", &self->jh[self->i], self->child);
	}
	for (self->i = 0; self->i < CT_CHILDREN; self->i++) {
		if (self->spawn_rc[self->i] != 0)
			continue;
		self->jh[self->i].dst = &self->res[self->i];
		SP_AWAIT(&self->jh[self->i]);
		self->status[self->i] = self->jh[self->i].status;
	}
	self->pre->dst = &self->pre_out;
	SP_AWAIT(self->pre);
	SP_RETURN(self->pre->status);
	SP_ASYNC_END();
}

static void waker__current_thread_runs_spawned_tasks_inside_block_on(void **state)
{
	(void)state;
	/* arrange */
	g_main_thread = pthread_self();
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	atomic_int on_main = 0, off_main = 0, wrong_rt = 0;
	struct ct_child pre = {.base = {.poll = ct_child_poll, .name = "ct_pre"},
			       .n = 100,
			       .on_main = &on_main,
			       .off_main = &off_main,
			       .wrong_rt = &wrong_rt,
			       .rt = rt};
	sp_join_handle pre_jh;
	int pre_rc = SP_RUNTIME_SPAWN_OUT(rt, "ct_pre", &pre_jh, pre);
	spt_sleep_ms(20); /* no worker thread exists that could run it */
	int polls_before_block_on = atomic_load(&on_main) + atomic_load(&off_main);
	struct ct_root root;
	memset(&root, 0, sizeof root);
	root.base.poll = ct_root_poll;
	root.base.name = "ct_root";
	root.rt = rt;
	root.on_main = &on_main;
	root.off_main = &off_main;
	root.wrong_rt = &wrong_rt;
	root.pre = &pre_jh;
	root.out = -1;

	/* act */
	int rc = sp_block_on(rt, &root.base);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(pre_rc, 0);
	assert_int_equal(polls_before_block_on, 0);
	assert_int_equal(rc, 0);
	assert_int_equal(root.out, 0);
	assert_int_equal(root.pre_out, 1000);
	for (int i = 0; i < CT_CHILDREN; i++) {
		assert_int_equal(root.spawn_rc[i], 0);
		assert_int_equal(root.status[i], 0);
		assert_int_equal(root.res[i], (i + 1) * 10);
	}
	/* each child and the pre-spawned task: two polls (SP_YIELD), all here */
	assert_int_equal(atomic_load(&on_main), 2 * (CT_CHILDREN + 1));
	assert_int_equal(atomic_load(&off_main), 0);
	assert_int_equal(atomic_load(&wrong_rt), 0);
	assert_int_equal(free_rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(waker__foreign_thread_wake_repolls_and_completes),
		cmocka_unit_test(waker__wake_by_ref_keeps_waker_usable),
		cmocka_unit_test(waker__wake_consumes_the_waker),
		cmocka_unit_test(waker__dropped_clone_leaves_task_idle),
		cmocka_unit_test(waker__wakes_before_next_poll_coalesce),
		cmocka_unit_test(waker__self_wake_during_poll_schedules_exactly_one_more_poll),
		cmocka_unit_test(waker__foreign_wake_during_poll_schedules_exactly_one_more_poll),
		cmocka_unit_test(waker__futures_are_lazy_until_polled),
		cmocka_unit_test(waker__block_on_hand_written_future_woken_by_foreign_thread),
		cmocka_unit_test(waker__current_thread_runs_spawned_tasks_inside_block_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
