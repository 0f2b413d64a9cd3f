/*
 * test_introspection.c - the always-on counters and the worker-slot registry
 * that the console and the eBPF tracer read: per-task polls, wakes, self-wakes,
 * waker clones/drops, busy time; per-worker polls; the registry slot naming the
 * task and poll function while a poll runs, and cleared after it.
 */
#include <unistd.h>

#include "unit/sp_test.h"

#include "internal.h"

/* The registry's layout (registry.c, version 1), as an outside reader sees it. */
struct registry_v1 {
	uint64_t magic;
	uint32_t version, slot_size, max_slots, clock_kind;
	uint64_t tick0, ns0, mult, hz;
	sp_worker_slot *slots;
};
extern struct registry_v1 sp_trace_registry;

/* A task that checks its own registry slot from inside its poll, spins for a
 * while (busy time), wakes itself twice per poll for 3 polls, then finishes. */
struct look_result {
	_Atomic int slot_ok;   /* our slot named us and looker_poll */
	_Atomic int slot_seen; /* a slot with our task id and thread id exists */
	_Atomic uint64_t my_id;
};

struct looker {
	sp_future base;
	int out;
	int round;
	struct look_result *r;
};

static sp_poll looker_poll(sp_future *f, sp_context *cx)
{
	struct looker *self = (struct looker *)f;
	uint64_t id = sp_task_current_id();
	atomic_store(&self->r->my_id, id);
	for (uint32_t i = 0; i < sp_trace_registry.max_slots; i++) {
		sp_worker_slot *s = &sp_trace_registry.slots[i];
		if (s->task_id == id && s->tid == (uint32_t)gettid()) {
			atomic_store(&self->r->slot_seen, 1);
			if (s->poll_fn == (uint64_t)(uintptr_t)looker_poll && s->poll_start != 0)
				atomic_store(&self->r->slot_ok, 1);
		}
	}
	uint64_t t0 = spt_now_ns();
	while (spt_now_ns() - t0 < 2000000) /* 2 ms of busy time per poll */
		;
	if (self->round++ == 3)
		return SP_READY;
	sp_waker_wake_by_ref(cx->waker);
	sp_waker_wake_by_ref(cx->waker);
	return SP_PENDING;
}

struct found {
	uint64_t id;
	int n;
	sp_task_info info;
};

static void find_cb(const sp_task_info *ti, void *arg)
{
	struct found *f = arg;
	if (ti->id == f->id) {
		f->info = *ti;
		f->n++;
	}
}

static void registry__names_task_and_poll_fn_during_poll(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct look_result r = {0};
	struct looker l = {.base = {.poll = looker_poll, .name = "looker"}, .r = &r};
	sp_join_handle jh;

	/* act */
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "looker", &jh, l), 0);
	uint64_t id = sp_join_handle_id(&jh);
	int status = sp_join_handle_wait(&jh);
	int workers_with_tid = 0, stale = 0;
	for (uint32_t i = 0; i < sp_trace_registry.max_slots; i++) {
		sp_worker_slot *s = &sp_trace_registry.slots[i];
		if (s->tid && s->runtime_id) {
			workers_with_tid++;
			stale += s->task_id == id;
		}
	}
	assert_int_equal(sp_runtime_free(rt), 0);

	/* assert */
	assert_int_equal(status, 0);
	assert_int_equal(atomic_load(&r.my_id), id);
	assert_true(atomic_load(&r.slot_seen));
	assert_true(atomic_load(&r.slot_ok));
	assert_int_equal(sp_trace_registry.magic, 0x5350494e444c4552ull);
	assert_int_equal(sp_trace_registry.version, 1);
	assert_int_equal(sp_trace_registry.slot_size, 64);
	assert_true(sp_trace_registry.hz > 0);
	assert_true(workers_with_tid >= 2);
	assert_int_equal(stale, 0); /* task_id is cleared at poll end */
}

/* Counters: polls, wakes, self-wakes, busy time, clones/drops. */
struct counter_fut {
	sp_future base;
	int out;
	int polls;
	sp_waker stored;
	_Atomic int *gate;
};

static sp_poll counter_poll(sp_future *f, sp_context *cx)
{
	struct counter_fut *self = (struct counter_fut *)f;
	self->polls++;
	if (self->polls == 1) {
		/* two clones: one kept, one dropped right away */
		sp_waker extra = sp_waker_clone(cx->waker);
		sp_waker_drop(&extra);
		sp_waker_store(&self->stored, cx);
		return SP_PENDING;
	}
	if (self->polls == 2) {
		sp_waker_wake_by_ref(cx->waker); /* a self-wake */
		return SP_PENDING;
	}
	if (!atomic_load(self->gate)) {
		sp_waker_store(&self->stored, cx); /* same task: kept, no clone */
		return SP_PENDING;
	}
	sp_waker_drop(&self->stored);
	return SP_READY;
}

static void counters__polls_wakes_clones_and_busy_time(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	static _Atomic int gate;
	atomic_store(&gate, 0);
	struct counter_fut c = {.base = {.poll = counter_poll, .name = "counter"}, .gate = &gate};
	sp_join_handle jh;
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "counter", &jh, c), 0);
	uint64_t id = sp_join_handle_id(&jh);

	/* act: after poll 1 the task is idle with one stored clone; wake it from
	 * here through a clone of our own (clone + wake by value). */
	int idle1 = SPT_WAIT_UNTIL(spt_task_idle(rt, id), SPT_SOON_MS);
	struct found f1 = {.id = id};
	sp_runtime_tasks(rt, find_cb, &f1);
	sp_waker w = {&sp__task_waker_vtable, jh.task};
	sp_waker mine = sp_waker_clone(&w);
	sp_waker_wake(&mine);
	/* polls 2 (self-wake) and 3 follow; then it waits on the gate */
	int idle3 = SPT_WAIT_UNTIL(spt_task_idle(rt, id) && ({
					   struct found fx = {.id = id};
					   sp_runtime_tasks(rt, find_cb, &fx);
					   fx.info.polls >= 3;
				   }),
				   SPT_SOON_MS);
	struct found f3 = {.id = id};
	sp_runtime_tasks(rt, find_cb, &f3);
	sp_worker_stats ws0, ws1;
	atomic_store(&gate, 1);
	sp_waker w2 = sp_waker_clone(&w);
	sp_waker_wake(&w2);
	int status = sp_join_handle_wait(&jh);
	/* Worker counters are published in batches (at park, every 61 ticks):
	 * wait for the batch that contains these polls. */
	int published = SPT_WAIT_UNTIL(sp_runtime_worker_stats(rt, 0, &ws0) == 0 &&
					       sp_runtime_worker_stats(rt, 1, &ws1) == 0 &&
					       ws0.polls + ws1.polls >= 4 && ws0.tid && ws1.tid,
				       SPT_SOON_MS);
	int bad_worker = sp_runtime_worker_stats(rt, 2, &ws1);
	assert_int_equal(sp_runtime_free(rt), 0);

	/* assert */
	assert_true(idle1);
	assert_true(idle3);
	assert_int_equal(f1.n, 1);
	assert_int_equal(f1.info.polls, 1);
	assert_int_equal(f1.info.waker_clones, 2);
	assert_int_equal(f1.info.waker_drops, 1);
	assert_int_equal(f1.info.live_wakers, 1);
	assert_int_equal(f1.info.wakes, 0);
	assert_string_equal(f1.info.site->name, "counter");
	assert_true(f1.info.site->line > 0);
	assert_int_equal(f3.info.polls, 3);
	assert_int_equal(f3.info.wakes, 2);      /* ours + the self-wake */
	assert_int_equal(f3.info.self_wakes, 1);
	assert_int_equal(f3.info.waker_clones, 3); /* + our clone */
	assert_int_equal(f3.info.waker_drops, 2);  /* + our wake by value */
	assert_int_equal(f3.info.live_wakers, 1);
	assert_true(f3.info.busy_ns > 0);
	assert_true(f3.info.idle_ns > 0);
	assert_int_equal(status, 0);
	assert_int_equal(bad_worker, SP_EINVAL);
	assert_true(published);
	/* spawned and woken from this thread: its polls came through the
	 * injection queue, in at least one take and at most one a task */
	assert_true(ws0.inject_ops + ws1.inject_ops >= 1);
	assert_true(ws0.inject_ops + ws1.inject_ops <= ws0.inject_pops + ws1.inject_pops);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(registry__names_task_and_poll_fn_during_poll),
		cmocka_unit_test(counters__polls_wakes_clones_and_busy_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
