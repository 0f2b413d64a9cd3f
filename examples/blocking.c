/*
 * blocking.c - the two ways to starve an async runtime, and their fixes.
 *
 *   build/bin/blocking            # the bugs
 *   build/bin/blocking --fixed    # the same service, done right
 *   build/bin/blocking --seconds 30
 *   build/bin/blocking --workers 1  # every stall delays the ticker's timer
 *
 * On a runtime with 2 workers, a `ticker` task wakes every 10 ms and measures
 * how late it runs: that is what every other task of the service feels.
 * Two culprits share the workers with it:
 *
 *   sleeper   calls usleep(50 ms) inside its poll every 500 ms: a blocking
 *             system call in async code. Its worker is stuck in the kernel.
 *             Fix: move the call to the blocking pool (sp_spawn_blocking).
 *   spinner   computes for 100 ms inside one poll every 700 ms: a long
 *             synchronous section between two awaits. Fix: split the work
 *             and yield (SP_YIELD) between slices.
 *
 * Each second the program prints the ticker's worst lateness. With the bugs
 * it reaches tens of milliseconds; with --fixed it stays near a
 * millisecond. These are the cases spindle's console, report and tracer are
 * built to catch and name.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spindle.h"

static int fixed;
/* Set by the ticker, read by the culprits on other workers: an atomic
 * (relaxed: it only ends their loops). */
static atomic_bool stopping;

/* ---- the victim ----------------------------------------------------------------- */

typedef struct ticker {
	sp_future base;
	uint64_t seconds, started, window_start, expect;
	int64_t worst_ns;
	sp_sleep nap;
} ticker;

static sp_poll ticker_poll(sp_future *f, sp_context *cx)
{
	ticker *self = (ticker *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->started = self->window_start = sp_now_ns();
	while (sp_now_ns() - self->started < self->seconds * 1000000000u) {
		self->expect = sp_now_ns() + SP_MS(10);
		sp_sleep_until_init(&self->nap, self->expect);
		SP_AWAIT(&self->nap);
		int64_t late = (int64_t)(sp_now_ns() - self->expect);
		if (late > self->worst_ns)
			self->worst_ns = late;
		if (sp_now_ns() - self->window_start >= SP_MS(1000)) {
			printf("t=%2.0fs ticker worst lateness %6.1f ms%s\n",
			       (double)(sp_now_ns() - self->started) / 1e9,
			       (double)self->worst_ns / 1e6,
			       self->worst_ns > (int64_t)SP_MS(20) ? "   <- starved" : "");
			fflush(stdout);
			self->worst_ns = 0;
			self->window_start = sp_now_ns();
		}
	}
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	SP_ASYNC_END();
}

/* ---- culprit 1: a blocking call ------------------------------------------------ */

static void blocking_call(void *arg)
{
	(void)arg;
	usleep(50 * 1000); /* stands for a blocking read(2), a DNS lookup, a DB call */
}

typedef struct sleeper {
	sp_future base;
	sp_sleep nap;
	sp_blocking job;
} sleeper;

static sp_poll sleeper_poll(sp_future *f, sp_context *cx)
{
	sleeper *self = (sleeper *)f;
	SP_ASYNC_BEGIN(f, cx);
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		sp_sleep_init(&self->nap, SP_MS(500));
		SP_AWAIT(&self->nap);
		if (!fixed) {
			blocking_call(NULL); /* BUG: blocks this worker for 50 ms */
		} else {
			sp_blocking_init(&self->job, blocking_call, NULL);
			SP_AWAIT(&self->job); /* runs on a pool thread */
		}
	}
	SP_ASYNC_END();
}

/* ---- culprit 2: a long computation -------------------------------------------- */

typedef struct spinner {
	sp_future base;
	int slice;
	volatile uint64_t sink;
	sp_sleep nap;
} spinner;

static void compute(spinner *self, uint64_t ns)
{
	uint64_t end = sp_now_ns() + ns;
	while (sp_now_ns() < end)
		self->sink++;
}

static sp_poll spinner_poll(sp_future *f, sp_context *cx)
{
	spinner *self = (spinner *)f;
	SP_ASYNC_BEGIN(f, cx);
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		sp_sleep_init(&self->nap, SP_MS(700));
		SP_AWAIT(&self->nap);
		if (!fixed) {
			compute(self, SP_MS(100)); /* BUG: 100 ms without an await */
		} else {
			for (self->slice = 0; self->slice < 100; self->slice++) {
				compute(self, SP_MS(1));
				SP_YIELD(); /* let the others run between slices */
			}
		}
	}
	SP_ASYNC_END();
}

/* ---- main ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	uint64_t seconds = 5;
	unsigned workers = 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fixed")) {
			fixed = 1;
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*end || n <= 0 || n > 86400) {
				fprintf(stderr, "blocking: --seconds wants 1..86400\n");
				return 2;
			}
			seconds = (uint64_t)n;
		} else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*end || n <= 0 || n > 64) {
				fprintf(stderr, "blocking: --workers wants 1..64\n");
				return 2;
			}
			workers = (unsigned)n;
		} else {
			fprintf(stderr, "usage: blocking [--fixed] [--seconds N] [--workers N]\n"
					"example: blocking --fixed --seconds 10\n");
			return 2;
		}
	}
	sp_runtime *rt;
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = workers};
	int err = sp_runtime_new(&rt, &o);
	if (err) {
		fprintf(stderr, "blocking: %s\n", sp_strerror(err));
		return 1;
	}
	printf("blocking: %s, pid %d, %u worker%s\n",
	       fixed ? "fixed (blocking pool + yields)" : "with the bugs (usleep and a 100 ms spin)",
	       (int)getpid(), workers, workers == 1 ? "" : "s");
	sleeper s = {.base = {.poll = sleeper_poll, .name = "sleeper"}};
	spinner p = {.base = {.poll = spinner_poll, .name = "spinner"}};
	ticker t = {.base = {.poll = ticker_poll, .name = "ticker"}, .seconds = seconds};
	if (SP_RUNTIME_SPAWN(rt, "sleeper", NULL, s) || SP_RUNTIME_SPAWN(rt, "spinner", NULL, p)) {
		fprintf(stderr, "blocking: spawn failed\n");
		return 1;
	}
	sp_join_handle jh;
	SP_RUNTIME_SPAWN(rt, "ticker", &jh, t);
	sp_join_handle_wait(&jh);
	sp_runtime_free(rt);
	return 0;
}
