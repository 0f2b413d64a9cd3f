/*
 * trace_load.c - a target for `spindle record` that traces a steady number of
 * events per second: measures the recorder's sustained ingest and its loss.
 *
 *   SPINDLE_TRACE=1 build/bin/trace-load [--rate EVENTS_PER_S] [--seconds S]
 *                                        [--workers N] [--tasks N]
 *
 * TASKS tasks yield in a loop (SP_YIELD: a poll is POLL_START, a self WAKE and
 * POLL_END, 3 events). They share a budget of polls that grows at rate / 3
 * per second; a task that is ahead of it sleeps 1 ms (a timer). At the end it
 * prints the polls made and the events they traced (3 per poll, plus about
 * 4 per sleep), so a recording can be checked against it.
 * Defaults: 1000000 events/s, 5 s, 1 worker, 8 tasks.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spindle.h"

static uint64_t rate = 1000000, seconds = 5, t0;
static atomic_uint_fast64_t polls, sleeps;

typedef struct yielder {
	sp_future base;
	uint64_t n;
	sp_sleep nap;
} yielder;

/* Polls allowed by now. */
static uint64_t budget(void)
{
	return (sp_now_ns() - t0) * (rate / 3) / 1000000000u;
}

static sp_poll yielder_poll(sp_future *f, sp_context *cx)
{
	yielder *self = (yielder *)f;
	SP_ASYNC_BEGIN(f, cx);
	while (sp_now_ns() - t0 < seconds * 1000000000u) {
		atomic_fetch_add_explicit(&polls, 1, memory_order_relaxed);
		if (++self->n % 32 == 0 &&
		    atomic_load_explicit(&polls, memory_order_relaxed) > budget()) {
			atomic_fetch_add_explicit(&sleeps, 1, memory_order_relaxed);
			sp_sleep_init(&self->nap, SP_MS(1));
			SP_AWAIT(&self->nap);
		} else {
			SP_YIELD();
		}
	}
	SP_ASYNC_END();
}

static uint64_t arg(const char *s, uint64_t max)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || !v || v > max) {
		fprintf(stderr, "trace-load: bad value '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned workers = 1, ntasks = 8;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--rate"))
			rate = arg(argv[++i], 100000000);
		else if (i + 1 < argc && !strcmp(argv[i], "--seconds"))
			seconds = arg(argv[++i], 86400);
		else if (i + 1 < argc && !strcmp(argv[i], "--workers"))
			workers = (unsigned)arg(argv[++i], 64);
		else if (i + 1 < argc && !strcmp(argv[i], "--tasks"))
			ntasks = (unsigned)arg(argv[++i], 4096);
		else {
			fprintf(stderr, "usage: trace-load [--rate EVENTS_PER_S] [--seconds S] "
					"[--workers N] [--tasks N]\n");
			return 2;
		}
	}
	sp_runtime *rt;
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = workers};
	int err = sp_runtime_new(&rt, &o);
	if (err) {
		fprintf(stderr, "trace-load: %s\n", sp_strerror(err));
		return 1;
	}
	yielder *y = calloc(ntasks, sizeof *y);
	sp_join_handle *jh = calloc(ntasks, sizeof *jh);
	if (!y || !jh)
		return 1;
	t0 = sp_now_ns();
	for (unsigned i = 0; i < ntasks; i++) {
		y[i].base = (sp_future){.poll = yielder_poll, .name = "yielder"};
		if (SP_RUNTIME_SPAWN(rt, "yielder", &jh[i], y[i])) {
			fprintf(stderr, "trace-load: spawn failed\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < ntasks; i++)
		sp_join_handle_wait(&jh[i]);
	double s = (double)(sp_now_ns() - t0) / 1e9;
	uint64_t p = atomic_load(&polls), sl = atomic_load(&sleeps);
	printf("trace-load: %llu polls, %llu sleeps in %.2f s: about %.0f events/s\n",
	       (unsigned long long)p, (unsigned long long)sl, s, (double)(3 * p + 4 * sl) / s);
	sp_runtime_free(rt);
	free(y);
	free(jh);
	return 0;
}
