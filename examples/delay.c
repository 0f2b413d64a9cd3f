/*
 * delay.c - the hand-written Delay future: the waker contract made explicit.
 *
 * The first poll before the deadline clones the waker and hands it to a
 * thread that sleeps until the deadline and then wakes the task. That is the
 * whole contract: return SP_PENDING only after arranging for the waker to be
 * called. (A real program uses the runtime's timer wheel instead of a thread
 * per delay; this is the illustration.)
 *
 * Then the lazy-futures lesson: two independent 100 ms operations awaited one
 * after the other take ~200 ms; spawned as two tasks and joined, ~100 ms.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "spindle.h"

typedef struct delay {
	sp_future base;
	uint64_t deadline_ns;
	int thread_started;
} delay;

struct alarm {
	uint64_t deadline_ns;
	sp_waker waker;
};

static void *alarm_thread(void *arg)
{
	struct alarm *a = arg;
	uint64_t now = sp_now_ns();
	if (now < a->deadline_ns) {
		uint64_t left = a->deadline_ns - now;
		struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
		nanosleep(&ts, NULL);
	}
	sp_waker_wake(&a->waker); /* wake consumes the clone */
	free(a);
	return NULL;
}

static sp_poll delay_poll(sp_future *f, sp_context *cx)
{
	delay *d = (delay *)f;
	if (sp_now_ns() >= d->deadline_ns)
		return SP_READY;
	if (!d->thread_started) {
		struct alarm *a = malloc(sizeof(*a));
		pthread_t th;
		if (!a)
			abort();
		a->deadline_ns = d->deadline_ns;
		a->waker = sp_waker_clone(sp_context_waker(cx));
		if (pthread_create(&th, NULL, alarm_thread, a) != 0)
			abort();
		pthread_detach(th);
		d->thread_started = 1;
	}
	return SP_PENDING; /* the alarm thread will wake us */
}

static void delay_init(delay *d, uint64_t ms)
{
	d->base = (sp_future){.poll = delay_poll, .name = "delay"};
	d->deadline_ns = sp_now_ns() + ms * 1000000u;
	d->thread_started = 0;
}

/* async fn example() { Delay::new(100 ms).await; println!(...) } */
typedef struct example {
	sp_future base;
	delay d;
} example;

static sp_poll example_poll(sp_future *f, sp_context *cx)
{
	example *self = (example *)f;
	SP_ASYNC_BEGIN(f, cx);
	delay_init(&self->d, 100);
	SP_AWAIT(&self->d);
	printf("100ms have passed\n");
	SP_ASYNC_END();
}

/* A stand-in for an independent 100 ms operation (a query, a request). */
typedef struct op {
	sp_future base;
	int out;
	int id;
	delay d;
} op;

static sp_poll op_poll(sp_future *f, sp_context *cx)
{
	op *self = (op *)f;
	SP_ASYNC_BEGIN(f, cx);
	delay_init(&self->d, 100);
	SP_AWAIT(&self->d);
	SP_RETURN(self->id * 10);
	SP_ASYNC_END();
}

static void op_init(op *o, int id)
{
	o->base = (sp_future){.poll = op_poll, .name = "op"};
	o->id = id;
}

/* let a = op(1).await; let b = op(2).await;  -- sequential */
typedef struct sequential {
	sp_future base;
	int out;
	op a, b;
} sequential;

static sp_poll sequential_poll(sp_future *f, sp_context *cx)
{
	sequential *self = (sequential *)f;
	SP_ASYNC_BEGIN(f, cx);
	op_init(&self->a, 1); /* lazy: nothing runs yet */
	op_init(&self->b, 2);
	SP_AWAIT(&self->a);   /* a runs to completion ... */
	SP_AWAIT(&self->b);   /* ... and only then b starts */
	SP_RETURN(self->a.out + self->b.out);
	SP_ASYNC_END();
}

/* Both spawned as tasks first, then joined: they run at the same time. */
typedef struct joined {
	sp_future base;
	int out;
	op a, b;
	int ra, rb;
	sp_join_handle ha, hb;
} joined;

static sp_poll joined_poll(sp_future *f, sp_context *cx)
{
	joined *self = (joined *)f;
	SP_ASYNC_BEGIN(f, cx);
	op_init(&self->a, 1);
	op_init(&self->b, 2);
	if (SP_SPAWN_OUT("op-a", &self->ha, self->a) || SP_SPAWN_OUT("op-b", &self->hb, self->b))
		abort();
	self->ha.dst = &self->ra;
	self->hb.dst = &self->rb;
	SP_AWAIT(&self->ha);
	SP_AWAIT(&self->hb);
	SP_RETURN(self->ra + self->rb);
	SP_ASYNC_END();
}

int main(void)
{
	sp_runtime *rt;
	int err = sp_runtime_new(&rt, NULL);
	if (err) {
		fprintf(stderr, "delay: %s\n", sp_strerror(err));
		return 1;
	}
	example ex = {.base = {.poll = example_poll, .name = "example"}};
	uint64_t t0 = sp_now_ns();
	sp_block_on(rt, &ex.base);
	printf("block_on returned after %.1f ms\n", (double)(sp_now_ns() - t0) / 1e6);

	sequential s = {.base = {.poll = sequential_poll, .name = "sequential"}};
	t0 = sp_now_ns();
	sp_block_on(rt, &s.base);
	double seq_ms = (double)(sp_now_ns() - t0) / 1e6;
	printf("sequential: two 100 ms operations awaited one after the other: %.1f ms (result %d)\n",
	       seq_ms, s.out);

	joined j = {.base = {.poll = joined_poll, .name = "joined"}};
	t0 = sp_now_ns();
	sp_block_on(rt, &j.base);
	double join_ms = (double)(sp_now_ns() - t0) / 1e6;
	printf("joined:     the same two operations spawned and joined:      %.1f ms (result %d)\n",
	       join_ms, j.out);
	sp_runtime_free(rt);
	return 0;
}
