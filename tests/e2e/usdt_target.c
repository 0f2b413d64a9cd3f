/*
 * usdt_target.c - a short program for test_usdt.sh that passes every kind of
 * USDT point: named spawns from the main thread and from a task, yields
 * (self-wakes, steals between the two workers), sleeps (timer wakes), a
 * blocking job (blocking_start/end, a blocking wake), one long poll and
 * join handles (join wakes).
 *
 *   usdt_target [rounds]      (default 1; each round takes ~100 ms)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spindle.h"
#include "spindle/blocking.h"

#define YIELDERS 8
#define YIELDS 200

typedef struct yielder {
	sp_future base;
	int i;
} yielder;

static sp_poll yielder_poll(sp_future *f, sp_context *cx)
{
	yielder *self = (yielder *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < YIELDS; self->i++)
		SP_YIELD();
	SP_ASYNC_END();
}

static void nap_5ms(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 5 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

typedef struct sleeper {
	sp_future base;
	int i;
	sp_sleep nap;
	sp_blocking job;
} sleeper;

static sp_poll sleeper_poll(sp_future *f, sp_context *cx)
{
	sleeper *self = (sleeper *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < 5; self->i++) {
		sp_sleep_init(&self->nap, SP_MS(5));
		SP_AWAIT(&self->nap);
	}
	sp_blocking_init(&self->job, nap_5ms, NULL);
	SP_AWAIT(&self->job);
	SP_ASYNC_END();
}

/* One poll of ~20 ms: what long_polls.bt is for. */
typedef struct spinner {
	sp_future base;
} spinner;

static sp_poll spinner_poll(sp_future *f, sp_context *cx)
{
	(void)f;
	(void)cx;
	uint64_t end = sp_now_ns() + SP_MS(20);
	while (sp_now_ns() < end)
		;
	return SP_READY;
}

/* Spawns the yielders from inside a task (parent ids) and joins them. */
typedef struct parent {
	sp_future base;
	int i;
	yielder kids[YIELDERS];
	sp_join_handle jh[YIELDERS];
} parent;

static sp_poll parent_poll(sp_future *f, sp_context *cx)
{
	parent *self = (parent *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < YIELDERS; self->i++) {
		self->kids[self->i] = (yielder){.base = {.poll = yielder_poll, .name = "yielder"}};
		if (SP_SPAWN("usdt.yielder", &self->jh[self->i], self->kids[self->i]))
			abort();
	}
	for (self->i = 0; self->i < YIELDERS; self->i++)
		SP_AWAIT(&self->jh[self->i]);
	SP_ASYNC_END();
}

/* The runtime's semaphores of the probes the .bt scripts use (runtime/usdt.h):
 * non-zero once a tracer attached to the probe. */
extern unsigned short spindle_spawn_semaphore, spindle_wake_semaphore,
	spindle_poll_start_semaphore, spindle_poll_end_semaphore;

static int any_probe_attached(void)
{
	return __atomic_load_n(&spindle_spawn_semaphore, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&spindle_wake_semaphore, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&spindle_poll_start_semaphore, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&spindle_poll_end_semaphore, __ATOMIC_RELAXED);
}

/* USDT_TARGET_WAIT=1 (test_usdt.sh): wait, up to 10 s, for a tracer to
 * attach to one of those before the first round, then 200 ms for the rest of its probes.
 * bpftrace -c attaches to the already running child: on a loaded machine
 * the first round was sometimes over before the probes were in (the
 * histograms held one round of two). */
static void wait_for_probes(void)
{
	const char *e = getenv("USDT_TARGET_WAIT");
	if (!e || strcmp(e, "1") != 0)
		return;
	struct timespec ms = {0, 1000000};
	for (int i = 0; i < 10000; i++) {
		if (any_probe_attached()) {
			struct timespec grace = {0, 200000000};
			nanosleep(&grace, NULL);
			return;
		}
		nanosleep(&ms, NULL);
	}
	fprintf(stderr, "usdt_target: no tracer attached in 10 s\n");
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 1;
	wait_for_probes();
	sp_runtime *rt;
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = 2};
	int err = sp_runtime_new(&rt, &o);
	if (err) {
		fprintf(stderr, "usdt_target: %s\n", sp_strerror(err));
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		parent p = {.base = {.poll = parent_poll, .name = "parent"}};
		sleeper s = {.base = {.poll = sleeper_poll, .name = "sleeper"}};
		spinner spin = {.base = {.poll = spinner_poll, .name = "spinner"}};
		sp_join_handle jp, js, jspin;
		if (SP_RUNTIME_SPAWN(rt, "usdt.parent", &jp, p) ||
		    SP_RUNTIME_SPAWN(rt, "usdt.sleeper", &js, s) ||
		    SP_RUNTIME_SPAWN(rt, "usdt.spinner", &jspin, spin)) {
			fprintf(stderr, "usdt_target: spawn failed\n");
			return 1;
		}
		if (sp_join_handle_wait(&jp) || sp_join_handle_wait(&js) ||
		    sp_join_handle_wait(&jspin)) {
			fprintf(stderr, "usdt_target: a task failed\n");
			return 1;
		}
	}
	sp_runtime_free(rt);
	printf("usdt_target: %d round(s) done\n", rounds);
	return 0;
}
