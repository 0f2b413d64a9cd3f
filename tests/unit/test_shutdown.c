/*
 * test_shutdown.c - sp_runtime_free with work still in flight: every future
 * is dropped exactly once, nothing is polled after its drop, wakers held
 * outside keep their tasks' memory alive past the free (ASan in
 * `make sanitize` turns a premature free into a use-after-free report and a
 * missed one into a leak), and runtimes can be created and freed repeatedly.
 */
#include "unit/sp_test.h"

/* ---- bookkeeping shared by every future below ---------------------------------- */

enum kind {
	K_PENDING, /* pending forever, waker stored in itself, never woken */
	K_HELD,	   /* hands a clone of its waker to a foreign thread */
	K_YIELD,   /* wakes itself on every poll: always notified */
	K_LATE,	   /* spawned by the main thread just before the free */
	K_PARENT,  /* spawns a pending child and awaits its join handle */
	K_CHILD,   /* spawned by tasks */
	K_SPAWNER, /* keeps spawning K_CHILD tasks while it can */
};

#define MAX_FUTS 60000

static struct {
	atomic_int drops[MAX_FUTS];
	atomic_int polls[MAX_FUTS];
	atomic_int spawned[MAX_FUTS]; /* 1 when the spawn of this index returned 0 */
	atomic_int poll_after_drop;
	atomic_int spawn_errors; /* spawn failures other than SP_ESHUTDOWN */
	atomic_int shutdown_refusals;
	atomic_int next_child;
	int child_base, child_end;
	sp_waker held[MAX_FUTS];
	atomic_int held_ready[MAX_FUTS];
} g;

static void g_reset(int child_base, int child_end)
{
	for (int i = 0; i < MAX_FUTS; i++) {
		atomic_store(&g.drops[i], 0);
		atomic_store(&g.polls[i], 0);
		atomic_store(&g.spawned[i], 0);
		atomic_store(&g.held_ready[i], 0);
		g.held[i] = (sp_waker){0};
	}
	atomic_store(&g.poll_after_drop, 0);
	atomic_store(&g.spawn_errors, 0);
	atomic_store(&g.shutdown_refusals, 0);
	atomic_store(&g.next_child, child_base);
	g.child_base = child_base;
	g.child_end = child_end;
}

struct shut_fut {
	sp_future base;
	int out;
	int kind;
	int idx;
	sp_waker w;
	int child_rc; /* K_PARENT: the child's spawn result */
	sp_join_handle jh;
};

static void shut_fut_init(struct shut_fut *f, int kind, int idx);

static void spawn_child(void)
{
	int idx = atomic_fetch_add(&g.next_child, 1);
	if (idx >= g.child_end)
		return;
	struct shut_fut c;
	shut_fut_init(&c, K_CHILD, idx);
	int rc = SP_SPAWN("child", NULL, c);
	if (rc == 0)
		atomic_store(&g.spawned[idx], 1);
	else if (rc == SP_ESHUTDOWN)
		atomic_fetch_add(&g.shutdown_refusals, 1);
	else
		atomic_fetch_add(&g.spawn_errors, 1);
}

static sp_poll shut_poll(sp_future *f, sp_context *cx)
{
	struct shut_fut *self = (struct shut_fut *)f;
	if (atomic_load(&g.drops[self->idx]))
		atomic_fetch_add(&g.poll_after_drop, 1);
	int n = atomic_fetch_add(&g.polls[self->idx], 1) + 1;
	switch (self->kind) {
	case K_PENDING:
	case K_CHILD:
	case K_LATE:
		sp_waker_store(&self->w, cx);
		return SP_PENDING;
	case K_HELD:
		if (n == 1) {
			g.held[self->idx] = sp_waker_clone(sp_context_waker(cx));
			atomic_store(&g.held_ready[self->idx], 1);
		}
		return SP_PENDING;
	case K_YIELD:
		sp_waker_wake_by_ref(sp_context_waker(cx));
		return SP_PENDING;
	case K_SPAWNER:
		for (int i = 0; i < 16; i++)
			spawn_child();
		sp_waker_wake_by_ref(sp_context_waker(cx));
		return SP_PENDING;
	case K_PARENT:
		if (n == 1) {
			int idx = atomic_fetch_add(&g.next_child, 1);
			if (idx >= g.child_end) {
				atomic_fetch_add(&g.spawn_errors, 1);
				return SP_PENDING;
			}
			struct shut_fut c;
			shut_fut_init(&c, K_CHILD, idx);
			self->child_rc = SP_SPAWN("child", &self->jh, c);
			if (self->child_rc == 0)
				atomic_store(&g.spawned[idx], 1);
			else
				atomic_fetch_add(&g.spawn_errors, 1);
		}
		if (self->child_rc != 0)
			return SP_PENDING;
		/* await the child's handle by hand: a parent is a leaf future
		 * whose drop must release the handle */
		if (sp_future_poll(&self->jh.base, cx) == SP_READY)
			return SP_READY;
		return SP_PENDING;
	}
	return SP_PENDING;
}

static void shut_drop(sp_future *f)
{
	struct shut_fut *self = (struct shut_fut *)f;
	sp_waker_drop(&self->w);
	if (self->kind == K_PARENT && self->child_rc == 0)
		sp_future_drop(&self->jh.base);
	atomic_fetch_add(&g.drops[self->idx], 1);
}

static void shut_fut_init(struct shut_fut *f, int kind, int idx)
{
	memset(f, 0, sizeof *f);
	f->base.poll = shut_poll;
	f->base.drop = shut_drop;
	f->base.name = "shut";
	f->kind = kind;
	f->idx = idx;
	f->child_rc = -1;
}

/* ---- the foreign thread that holds K_HELD wakers ------------------------------------- */

struct holder {
	int from, to;
	atomic_int *free_started, *free_returned;
	atomic_int passes_during_free;
	atomic_int missing;
};

/*
 * From the moment the free starts until it returns, wake every held waker
 * over and over (by reference; slots i % 3 == 1 once by value, which
 * consumes them). The tasks keep returning SP_PENDING while the workers run,
 * so many of these wakes schedule a task while the runtime is being torn
 * down. After the free returned, drop the clones still held: the last drop
 * frees the task, so the task memory must have stayed alive until then.
 */
static void *holder_main(void *arg)
{
	struct holder *h = arg;
	SPT_WAIT_UNTIL(atomic_load(h->free_started), 30000);
	for (int i = h->from; i < h->to; i++)
		if (!atomic_load(&g.held_ready[i]))
			atomic_fetch_add(&h->missing, 1);
	for (int pass = 0; !atomic_load(h->free_returned); pass++) {
		for (int i = h->from; i < h->to; i++) {
			if (!atomic_load(&g.held_ready[i]))
				continue;
			if (i % 3 == 1) {
				if (pass == 0)
					sp_waker_wake(&g.held[i]);
			} else {
				sp_waker_wake_by_ref(&g.held[i]);
			}
		}
		if (!atomic_load(h->free_returned))
			atomic_fetch_add(&h->passes_during_free, 1);
	}
	for (int i = h->from; i < h->to; i++)
		if (atomic_load(&g.held_ready[i]))
			sp_waker_drop(&g.held[i]);
	return NULL;
}

/* ---- the mixed shutdown ------------------------------------------------------------------ */

struct mix_result {
	int spawn_rcs, all_polled, free_rc;
	int bad_drops_at_free; /* spawned futures whose drop count != 1 at free */
	int bad_drops_final;   /* the same after the held wakers were dropped */
	int unspawned_dropped; /* drops of futures that never became tasks */
	int poll_after_drop, spawn_errors, missing;
	int children;
	int passes_during_free; /* informational: holder passes that overlapped the free */
};

#define N_HOLDERS 3

static int count_bad_drops(int n_idx, int *unspawned_dropped)
{
	int bad = 0;
	*unspawned_dropped = 0;
	for (int i = 0; i < n_idx; i++) {
		int d = atomic_load(&g.drops[i]);
		int spawned = atomic_load(&g.spawned[i]);
		if (spawned ? d != 1 : d != 0) {
			/* diagnostics for the report: which future, how often */
			if (bad + *unspawned_dropped < 5)
				fprintf(stderr,
					"future %d (spawned=%d): dropped %d times, polled %d "
					"times\n",
					i, spawned, d, atomic_load(&g.polls[i]));
		}
		if (spawned)
			bad += d != 1;
		else
			*unspawned_dropped += d != 0;
	}
	return bad;
}

static int polled_at_least_once(int from, int to)
{
	for (int i = from; i < to; i++)
		if (atomic_load(&g.polls[i]) == 0)
			return 0;
	return 1;
}

static int held_ready(int from, int to)
{
	for (int i = from; i < to; i++)
		if (!atomic_load(&g.held_ready[i]))
			return 0;
	return 1;
}

static struct mix_result run_mixed_shutdown(unsigned workers)
{
	struct mix_result r;
	memset(&r, 0, sizeof r);
	int scale = SPT_SANITIZED ? 4 : 1;
	int n_pending = 2000 / scale, n_held = 1000 / scale, n_yield = 8, n_late = 1000 / scale,
	    n_parent = 200 / scale, n_spawner = 2;
	int i0 = 0;
	int pend0 = i0, held0 = pend0 + n_pending, yield0 = held0 + n_held,
	    late0 = yield0 + n_yield, parent0 = late0 + n_late, spawner0 = parent0 + n_parent,
	    child0 = spawner0 + n_spawner;
	int child_end = child0 + 20000 / scale;
	if (getenv("SPT_VERBOSE"))
		fprintf(stderr,
			"layout: pending %d.. held %d.. yield %d.. late %d.. parent %d.. spawner "
			"%d.. "
			"child %d..%d\n",
			pend0, held0, yield0, late0, parent0, spawner0, child0, child_end);
	g_reset(child0, child_end);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, workers);

	for (int i = pend0; i < held0; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_PENDING, i);
		int rc = SP_RUNTIME_SPAWN(rt, "pending", NULL, f);
		r.spawn_rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	for (int i = held0; i < yield0; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_HELD, i);
		int rc = SP_RUNTIME_SPAWN(rt, "held", NULL, f);
		r.spawn_rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	for (int i = yield0; i < late0; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_YIELD, i);
		int rc = SP_RUNTIME_SPAWN(rt, "yield", NULL, f);
		r.spawn_rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	for (int i = parent0; i < spawner0; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_PARENT, i);
		int rc = SP_RUNTIME_SPAWN(rt, "parent", NULL, f);
		r.spawn_rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	r.all_polled = SPT_WAIT_UNTIL(polled_at_least_once(pend0, late0) &&
					      polled_at_least_once(parent0, spawner0) &&
					      held_ready(held0, yield0),
				      SPT_SOON_MS);
	for (int i = spawner0; i < child0; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_SPAWNER, i);
		int rc = SP_RUNTIME_SPAWN(rt, "spawner", NULL, f);
		r.spawn_rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	/* let the spawners get going, then free while they still spawn */
	SPT_WAIT_UNTIL(atomic_load(&g.next_child) >= child0 + n_parent + 500 / scale, SPT_SOON_MS);

	atomic_int free_started = 0, free_returned = 0;
	struct holder h[N_HOLDERS];
	pthread_t ht[N_HOLDERS];
	for (int k = 0; k < N_HOLDERS; k++) {
		h[k] = (struct holder){.from = held0 + k * n_held / N_HOLDERS,
				       .to = held0 + (k + 1) * n_held / N_HOLDERS,
				       .free_started = &free_started,
				       .free_returned = &free_returned};
		ht[k] = spt_thread(holder_main, &h[k]);
	}
	for (int i = late0; i < parent0; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_LATE, i);
		int rc = SP_RUNTIME_SPAWN(rt, "late", NULL, f);
		r.spawn_rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	atomic_store(&free_started, 1);
	r.free_rc = sp_runtime_free(rt);
	int unspawned;
	r.bad_drops_at_free = count_bad_drops(child_end, &unspawned);
	r.unspawned_dropped = unspawned;
	atomic_store(&free_returned, 1);
	for (int k = 0; k < N_HOLDERS; k++)
		pthread_join(ht[k], NULL);
	r.bad_drops_final = count_bad_drops(child_end, &unspawned);
	r.unspawned_dropped += unspawned;
	r.poll_after_drop = atomic_load(&g.poll_after_drop);
	r.spawn_errors = atomic_load(&g.spawn_errors);
	for (int k = 0; k < N_HOLDERS; k++) {
		r.missing += atomic_load(&h[k].missing);
		r.passes_during_free += atomic_load(&h[k].passes_during_free);
	}
	int children = 0;
	for (int i = child0; i < child_end; i++)
		children += atomic_load(&g.spawned[i]);
	r.children = children;
	return r;
}

static void assert_mix(struct mix_result r)
{
	assert_int_equal(r.spawn_rcs, 0);
	assert_true(r.all_polled);
	assert_int_equal(r.missing, 0);
	assert_int_equal(r.free_rc, 0);
	assert_true(r.children > 0);
	assert_int_equal(r.spawn_errors, 0);
	assert_int_equal(r.bad_drops_at_free, 0);
	assert_int_equal(r.bad_drops_final, 0);
	assert_int_equal(r.unspawned_dropped, 0);
	assert_int_equal(r.poll_after_drop, 0);
}

static void shutdown__free_drops_every_future_once_two_workers(void **state)
{
	(void)state;
	/* arrange + act */
	struct mix_result r = run_mixed_shutdown(2);

	/* assert */
	assert_mix(r);
}

static void shutdown__free_drops_every_future_once_four_workers(void **state)
{
	(void)state;
	/* arrange + act */
	struct mix_result r = run_mixed_shutdown(4);

	/* assert */
	assert_mix(r);
}

/* ---- wakes racing the free, many times ---------------------------------------------------------
 */

static void shutdown__wakes_racing_free_never_touch_freed_runtime(void **state)
{
	(void)state;
	/* arrange: each round, K_HELD tasks whose wakers four threads keep
	 * waking while the runtime is freed (a wake that schedules a task must
	 * not reach the runtime's queues or idle state after they were freed:
	 * ASan/TSan report it; a plain build may crash) */
	enum { HELD = 256, HOLDERS = 4 };
	int rounds = SPT_SANITIZED ? 10 : 40;
	int spawn_rcs = 0, not_ready = 0, free_errors = 0, bad = 0, unspawned_total = 0,
	    missing = 0;

	/* act */
	for (int r = 0; r < rounds; r++) {
		g_reset(HELD, HELD);
		sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
		for (int i = 0; i < HELD; i++) {
			struct shut_fut f;
			shut_fut_init(&f, K_HELD, i);
			int rc = SP_RUNTIME_SPAWN(rt, "held", NULL, f);
			spawn_rcs |= rc;
			atomic_store(&g.spawned[i], rc == 0);
		}
		if (!SPT_WAIT_UNTIL(held_ready(0, HELD), SPT_SOON_MS))
			not_ready++;
		atomic_int free_started = 0, free_returned = 0;
		struct holder h[HOLDERS];
		pthread_t ht[HOLDERS];
		for (int k = 0; k < HOLDERS; k++) {
			h[k] = (struct holder){.from = k * HELD / HOLDERS,
					       .to = (k + 1) * HELD / HOLDERS,
					       .free_started = &free_started,
					       .free_returned = &free_returned};
			ht[k] = spt_thread(holder_main, &h[k]);
		}
		atomic_store(&free_started, 1);
		spt_sleep_us((unsigned)(r % 4) * 100); /* vary where the free lands */
		free_errors += sp_runtime_free(rt) != 0;
		int unspawned;
		bad += count_bad_drops(HELD, &unspawned);
		unspawned_total += unspawned;
		atomic_store(&free_returned, 1);
		for (int k = 0; k < HOLDERS; k++) {
			pthread_join(ht[k], NULL);
			missing += atomic_load(&h[k].missing);
		}
	}

	/* assert */
	assert_int_equal(spawn_rcs, 0);
	assert_int_equal(not_ready, 0);
	assert_int_equal(missing, 0);
	assert_int_equal(free_errors, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(unspawned_total, 0);
	assert_int_equal(atomic_load(&g.poll_after_drop), 0);
}

/* ---- shutdown() first, then free ------------------------------------------------------------ */

static void shutdown__shutdown_then_free_drops_pending_tasks(void **state)
{
	(void)state;
	/* arrange */
	g_reset(1000, 1000);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	int rcs = 0;
	for (int i = 0; i < 100; i++) {
		struct shut_fut f;
		shut_fut_init(&f, i % 2 ? K_PENDING : K_YIELD, i);
		int rc = SP_RUNTIME_SPAWN(rt, "p", NULL, f);
		rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	int polled = SPT_WAIT_UNTIL(polled_at_least_once(0, 100), SPT_SOON_MS);

	/* act */
	sp_runtime_shutdown(rt);
	struct shut_fut late;
	shut_fut_init(&late, K_PENDING, 100);
	int late_rc = SP_RUNTIME_SPAWN(rt, "late", NULL, late);
	int free_rc = sp_runtime_free(rt);
	int unspawned;
	int bad = count_bad_drops(101, &unspawned);

	/* assert */
	assert_int_equal(rcs, 0);
	assert_true(polled);
	assert_int_equal(late_rc, SP_ESHUTDOWN);
	assert_int_equal(free_rc, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(unspawned, 0);
	assert_int_equal(atomic_load(&g.poll_after_drop), 0);
}

/* ---- SP_CURRENT_THREAD -------------------------------------------------------------------------
 */

struct ct_root {
	sp_future base;
	int out;
	int from, to;
	int rcs;
};

static sp_poll ct_root_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct ct_root *self = (struct ct_root *)f;
	for (int i = self->from; i < self->to; i++) {
		struct shut_fut c;
		shut_fut_init(&c, i % 2 ? K_PENDING : K_YIELD, i);
		int rc = SP_SPAWN("c", NULL, c);
		self->rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	return SP_READY;
}

static void shutdown__current_thread_free_drops_pending_tasks(void **state)
{
	(void)state;
	/* arrange: tasks spawned from outside (never run: no sp_block_on ran
	 * after them) and tasks spawned inside sp_block_on */
	g_reset(1000, 1000);
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	int rcs = 0;
	for (int i = 0; i < 100; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_PENDING, i);
		int rc = SP_RUNTIME_SPAWN(rt, "outside", NULL, f);
		rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	struct ct_root root = {
		.base = {.poll = ct_root_poll, .name = "root"}, .from = 100, .to = 300};

	/* act */
	int block_rc = sp_block_on(rt, &root.base);
	int free_rc = sp_runtime_free(rt);
	int unspawned;
	int bad = count_bad_drops(300, &unspawned);

	/* assert */
	assert_int_equal(rcs, 0);
	assert_int_equal(block_rc, 0);
	assert_int_equal(root.rcs, 0);
	assert_int_equal(free_rc, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(unspawned, 0);
	assert_int_equal(atomic_load(&g.poll_after_drop), 0);
}

static void shutdown__never_polled_remote_spawns_dropped_once(void **state)
{
	(void)state;
	/* arrange: a current-thread runtime that never runs, so every task
	 * spawned from outside stays queued, never polled: on no owned shard
	 * (those join it at their first poll). Half have join handles, and
	 * half of those are aborted (marked only: the task is queued). */
	enum { N = 100, WITH_HANDLE = 50, ABORTED = 25 };
	g_reset(1000, 1000);
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	sp_join_handle jh[WITH_HANDLE];
	int rcs = 0;
	for (int i = 0; i < N; i++) {
		struct shut_fut f;
		shut_fut_init(&f, K_PENDING, i);
		int rc = i < WITH_HANDLE ? SP_RUNTIME_SPAWN(rt, "queued", &jh[i], f)
					 : SP_RUNTIME_SPAWN(rt, "queued", NULL, f);
		rcs |= rc;
		atomic_store(&g.spawned[i], rc == 0);
	}
	for (int i = 0; i < ABORTED; i++)
		sp_join_handle_abort(&jh[i]);

	/* act */
	int free_rc = sp_runtime_free(rt);
	int drops_at_free = 0, polls = 0;
	for (int i = 0; i < N; i++) {
		drops_at_free += atomic_load(&g.drops[i]) == 1;
		polls += atomic_load(&g.polls[i]);
	}
	int cancelled = 0;
	for (int i = 0; i < WITH_HANDLE; i++)
		cancelled += sp_join_handle_wait(&jh[i]) == SP_ECANCELED;

	/* assert: every future dropped once by the free, none polled, and
	 * every handle reports the cancellation */
	assert_int_equal(rcs, 0);
	assert_int_equal(free_rc, 0);
	assert_int_equal(drops_at_free, N);
	assert_int_equal(polls, 0);
	assert_int_equal(cancelled, WITH_HANDLE);
}

/* ---- free from inside
 * ------------------------------------------------------------------------------ */

struct freer {
	sp_future base;
	int out;
};

static sp_poll freer_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct freer *self = (struct freer *)f;
	self->out = sp_runtime_free(sp_runtime_current());
	return SP_READY;
}

static void shutdown__free_from_runtime_thread_is_edeadlk(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct freer f = {.base = {.poll = freer_poll, .name = "freer"}, .out = 1};
	sp_join_handle jh;
	int out = 1;

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "freer", &jh, f);
	jh.dst = &out;
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, SP_EDEADLK);
	assert_int_equal(free_rc, 0);
}

/* ---- repeated create / free
 * ------------------------------------------------------------------------ */

struct quick {
	sp_future base;
	int out;
	int idx;
};

static sp_poll quick_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct quick *self = (struct quick *)f;
	atomic_fetch_add(&g.polls[self->idx], 1);
	self->out = self->idx;
	return SP_READY;
}

static void quick_drop(sp_future *f)
{
	struct quick *self = (struct quick *)f;
	atomic_fetch_add(&g.drops[self->idx], 1);
}

static void shutdown__repeated_create_free_100_times(void **state)
{
	(void)state;
	/* arrange */
	enum { ROUNDS = 100, PER = 12 };
	g_reset(ROUNDS * PER, ROUNDS * PER);
	int new_errors = 0, spawn_errors = 0, wait_errors = 0, free_errors = 0, wrong_out = 0;
	int workers_wrong = 0, bad_rounds = 0;

	/* act */
	for (int r = 0; r < ROUNDS; r++) {
		unsigned workers = (unsigned)(r % 4) + 1;
		sp_runtime_opts o = {.flavor = r % 10 == 9 ? SP_CURRENT_THREAD : SP_MULTI_THREAD,
				     .workers = workers,
				     .name = "rep"};
		sp_runtime *rt = NULL;
		if (sp_runtime_new(&rt, &o) != 0 || !rt) {
			new_errors++;
			continue;
		}
		if (o.flavor == SP_MULTI_THREAD && sp_runtime_workers(rt) != workers)
			workers_wrong++;
		int base = r * PER;
		if (r % 5 != 4) { /* every fifth runtime stays empty */
			for (int k = 0; k < PER; k++) {
				int idx = base + k;
				int rc;
				if (k < 4) {
					struct quick q = {
						.base = {.poll = quick_poll, .drop = quick_drop},
						.idx = idx};
					rc = SP_RUNTIME_SPAWN(rt, "quick", NULL, q);
				} else if (k < 6 && o.flavor == SP_MULTI_THREAD) {
					struct quick q = {
						.base = {.poll = quick_poll, .drop = quick_drop},
						.idx = idx};
					sp_join_handle jh;
					int out = -1;
					rc = SP_RUNTIME_SPAWN_OUT(rt, "quick", &jh, q);
					if (rc == 0) {
						jh.dst = &out;
						if (sp_join_handle_wait(&jh) != 0)
							wait_errors++;
						if (out != idx)
							wrong_out++;
					}
				} else {
					struct shut_fut f;
					shut_fut_init(&f, k % 2 ? K_PENDING : K_YIELD, idx);
					rc = SP_RUNTIME_SPAWN(rt, "pending", NULL, f);
				}
				if (rc == 0)
					atomic_store(&g.spawned[idx], 1);
				else
					spawn_errors++;
			}
		}
		if (sp_runtime_free(rt) != 0)
			free_errors++;
		for (int k = 0; k < PER; k++) {
			int idx = base + k;
			if (atomic_load(&g.drops[idx]) != atomic_load(&g.spawned[idx]))
				bad_rounds++;
		}
	}

	/* assert */
	assert_int_equal(new_errors, 0);
	assert_int_equal(workers_wrong, 0);
	assert_int_equal(spawn_errors, 0);
	assert_int_equal(wait_errors, 0);
	assert_int_equal(wrong_out, 0);
	assert_int_equal(free_errors, 0);
	assert_int_equal(bad_rounds, 0);
	assert_int_equal(atomic_load(&g.poll_after_drop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shutdown__free_drops_every_future_once_two_workers),
		cmocka_unit_test(shutdown__free_drops_every_future_once_four_workers),
		cmocka_unit_test(shutdown__wakes_racing_free_never_touch_freed_runtime),
		cmocka_unit_test(shutdown__shutdown_then_free_drops_pending_tasks),
		cmocka_unit_test(shutdown__current_thread_free_drops_pending_tasks),
		cmocka_unit_test(shutdown__never_polled_remote_spawns_dropped_once),
		cmocka_unit_test(shutdown__free_from_runtime_thread_is_edeadlk),
		cmocka_unit_test(shutdown__repeated_create_free_100_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
