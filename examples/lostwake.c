/*
 * lostwake.c - the classic bug: a hand-written future returns SP_PENDING
 * without storing the waker anywhere. Nothing will ever wake the task; it
 * sits idle forever. The runtime's counters show it: the task is idle, was
 * polled once, and has no live waker — which is exactly the signature the
 * console and the report flag ("lost waker").
 *
 *   build/bin/lostwake
 *   build/bin/lostwake --seconds 30   # stay stuck longer (to watch it in spindle top)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spindle.h"

typedef struct forgetful {
	sp_future base;
	int polls;
} forgetful;

static sp_poll forgetful_poll(sp_future *f, sp_context *cx)
{
	forgetful *self = (forgetful *)f;
	(void)cx; /* BUG: the waker in cx is neither cloned nor stored */
	self->polls++;
	return SP_PENDING;
}

static void show(const sp_task_info *ti, void *arg)
{
	(void)arg;
	int idle = !(ti->state & (SP_TASK_RUNNING | SP_TASK_NOTIFIED));
	printf("task %llu '%s' (%s:%u): %s, polls=%llu, live wakers=%u%s\n",
	       (unsigned long long)ti->id, ti->site->name, ti->site->file, ti->site->line,
	       idle ? "idle" : "scheduled", (unsigned long long)ti->polls, ti->live_wakers,
	       idle && ti->live_wakers == 0 ? "  <- lost waker: nothing can wake it" : "");
}

int main(int argc, char **argv)
{
	uint64_t ms = 200;
	if (argc == 3 && !strcmp(argv[1], "--seconds") && atof(argv[2]) > 0) {
		ms = (uint64_t)(atof(argv[2]) * 1000);
	} else if (argc != 1) {
		fprintf(stderr, "usage: lostwake [--seconds N]\nexample: lostwake --seconds 30\n");
		return 2;
	}
	sp_runtime *rt;
	int err = sp_runtime_new(&rt, NULL);
	if (err) {
		fprintf(stderr, "lostwake: %s\n", sp_strerror(err));
		return 1;
	}
	forgetful f = {.base = {.poll = forgetful_poll, .name = "forgetful"}};
	sp_join_handle jh;
	SP_RUNTIME_SPAWN(rt, "forgetful", &jh, f);

	/* Give it time to be polled, then look. */
	sp_sleep nap;
	sp_sleep_init(&nap, SP_MS(ms));
	sp_block_on(rt, &nap.base);
	sp_runtime_tasks(rt, show, NULL);

	sp_join_handle_abort(&jh); /* the only way out: cancel it */
	int status = sp_join_handle_wait(&jh);
	printf("aborted: %s\n", sp_strerror(status));
	sp_runtime_free(rt);
	return 0;
}
