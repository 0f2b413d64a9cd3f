/*
 * fanout.c - sequential awaits versus sp_join: three independent "requests"
 * (sleeps of 60, 80 and 100 ms standing in for I/O) awaited one after the
 * other take the sum (~240 ms); joined, the longest (~100 ms). Futures are
 * lazy, so writing them down does not start them: only awaiting does.
 *
 *   build/bin/fanout
 */
#include <stdio.h>

#include "spindle.h"

#define N 3
static const uint64_t ms[N] = {60, 80, 100};

typedef struct fan {
	sp_future base;
	int joined; /* 0: one after the other; 1: sp_join */
	int i;
	sp_sleep req[N];
	sp_future *futs[N];
	sp_join all;
} fan;

static sp_poll fan_poll(sp_future *f, sp_context *cx)
{
	fan *self = (fan *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (!self->joined) {
		for (self->i = 0; self->i < N; self->i++) {
			sp_sleep_init(&self->req[self->i], SP_MS(ms[self->i]));
			SP_AWAIT(&self->req[self->i]); /* each starts when awaited */
		}
	} else {
		for (int i = 0; i < N; i++) {
			sp_sleep_init(&self->req[i], SP_MS(ms[i]));
			self->futs[i] = &self->req[i].base;
		}
		sp_join_init(&self->all, self->futs, N); /* polls all three */
		SP_AWAIT(&self->all);
	}
	SP_ASYNC_END();
}

static double run(sp_runtime *rt, int joined)
{
	fan f = {.base = {.poll = fan_poll, .name = joined ? "joined" : "sequential"},
		 .joined = joined};
	uint64_t t0 = sp_now_ns();
	sp_block_on(rt, &f.base);
	return (double)(sp_now_ns() - t0) / 1e6;
}

int main(void)
{
	sp_runtime *rt;
	int err = sp_runtime_new(&rt, NULL);
	if (err) {
		fprintf(stderr, "fanout: %s\n", sp_strerror(err));
		return 1;
	}
	printf("sequential: 60 + 80 + 100 ms awaited one by one: %6.1f ms\n", run(rt, 0));
	printf("sp_join:    the same three polled together:      %6.1f ms\n", run(rt, 1));
	sp_runtime_free(rt);
	return 0;
}
