/*
 * many_tasks.c - a target for measuring the tools at scale: N live tasks
 * (default 100000), each sleeping 5-10 s in a loop, for S seconds.
 *
 *   SPINDLE_TRACE=1 build/bin/many-tasks 100000 600 &
 *   bench/top_cost.sh $!           # spindle top's CPU and RSS at 1 Hz
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <spindle.h>
#include <spindle/io.h>

struct napper {
	sp_future base;
	uint64_t seed;
	sp_sleep s;
};

static sp_poll napper_poll(sp_future *f, sp_context *cx)
{
	struct napper *self = (struct napper *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		self->seed = self->seed * 6364136223846793005ull + 1442695040888963407ull;
		sp_sleep_init(&self->s, SP_MS(5000 + (self->seed >> 33) % 5000));
		SP_AWAIT(&self->s);
	}
	SP_ASYNC_END();
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	long secs = argc > 2 ? atol(argv[2]) : 60;
	if (n <= 0 || secs <= 0) {
		fprintf(stderr, "usage: many-tasks [TASKS] [SECONDS]\n");
		return 2;
	}
	sp_runtime *rt;
	if (sp_runtime_new(&rt, NULL) != 0)
		return 1;
	for (long i = 0; i < n; i++) {
		struct napper t = {.base = {.poll = napper_poll, .name = "napper"}, .seed = (uint64_t)i};
		if (SP_RUNTIME_SPAWN(rt, "napper", NULL, t) != 0) {
			fprintf(stderr, "many-tasks: spawn failed at %ld\n", i);
			return 1;
		}
	}
	fprintf(stderr, "many-tasks: %ld tasks, pid %d, %ld s\n", n, (int)getpid(), secs);
	struct timespec ts = {secs, 0};
	nanosleep(&ts, NULL);
	sp_runtime_free(rt);
	return 0;
}
