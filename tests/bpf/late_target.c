/*
 * late_target.c - a target for the tracer tests whose workers start late.
 *
 *   late_target DELAY_MS ROUNDS [futex|stuck]
 *
 * Prints its pid, sleeps DELAY_MS (the tracer attaches meanwhile and finds
 * no worker yet), then starts a 1-worker runtime whose task does, ROUNDS
 * times, a blocking read(2) of a pipe inside its poll: a helper thread
 * writes the byte 80 ms later. Between rounds the task sleeps 100 ms
 * properly. The tracer must find the worker when it appears and name
 * `read` and `reader_poll`.
 *
 * With `futex` the poll blocks in a bare FUTEX_WAIT instead, the call a
 * worker's idle park makes but without the park mark (runtime/internal.h):
 * the tracer must still account it as blocked in `futex`, so its fast path
 * for parks cannot swallow a block inside a poll. Each round sleeps first
 * there, so even the first block comes after the tracer found the worker.
 *
 * With `stuck` the first read blocks until 300 ms after the go signal (or
 * 1.5 s): a tracer attached meanwhile finds the worker already blocked (no
 * switch-out for BPF to see) and must still call it blocked in `read`, from
 * /proc and a scan of its stack.
 *
 * The go signal: with SPINDLE_TEST_GO=PATH in the environment, "wait
 * DELAY_MS" becomes "wait until PATH exists", which the test creates once
 * the tracer says it is attached (attaching a tp_btf program can wait
 * seconds for an RCU grace period on a loaded machine).
 */
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spindle.h"

static int fds[2];
static int rounds;
static int use_futex, stuck;
static _Atomic uint32_t released; /* futex mode: rounds the helper let go */
static const char *go_path;	  /* SPINDLE_TEST_GO */

/* Until the test's go file exists, or ms if there is none. */
static void wait_go(int ms)
{
	if (!go_path) {
		usleep((useconds_t)ms * 1000);
		return;
	}
	for (int i = 0; i < 60000 && access(go_path, F_OK) != 0; i++)
		usleep(1000);
}

static void *writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < rounds; i++) {
		if (stuck && i == 0) {
			wait_go(1200);
			usleep(300 * 1000);
		} else {
			usleep((use_futex && i == 0 ? 180 : 80) * 1000);
		}
		if (use_futex) {
			atomic_fetch_add(&released, 1);
			syscall(SYS_futex, &released, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		} else if (write(fds[1], "x", 1) != 1) {
			break;
		}
		usleep(110 * 1000);
	}
	return NULL;
}

typedef struct reader {
	sp_future base;
	int i;
	sp_sleep nap;
} reader;

static sp_poll reader_poll(sp_future *f, sp_context *cx)
{
	reader *self = (reader *)f;
	char c;

	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < rounds; self->i++) {
		if (use_futex) {
			sp_sleep_init(&self->nap, SP_MS(100));
			SP_AWAIT(&self->nap);
		}
		if (use_futex) {
			/* BUG on purpose: blocks the worker ~80 ms in futex(2) */
			uint32_t v;
			while ((v = atomic_load(&released)) <= (uint32_t)self->i)
				syscall(SYS_futex, &released, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
		} else if (read(fds[0], &c, 1) != 1) { /* BUG on purpose: blocks ~80 ms */
			break;
		}
		if (!use_futex) {
			sp_sleep_init(&self->nap, SP_MS(100));
			SP_AWAIT(&self->nap);
		}
	}
	SP_ASYNC_END();
}

int main(int argc, char **argv)
{
	int delay = argc > 1 ? atoi(argv[1]) : 300;
	rounds = argc > 2 ? atoi(argv[2]) : 5;
	use_futex = argc > 3 && strcmp(argv[3], "futex") == 0;
	stuck = argc > 3 && strcmp(argv[3], "stuck") == 0;
	pthread_t th;

	go_path = getenv("SPINDLE_TEST_GO");
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (!stuck)
		wait_go(delay);
	if (pipe(fds) || pthread_create(&th, NULL, writer, NULL))
		return 1;
	sp_runtime *rt;
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = 1};
	if (sp_runtime_new(&rt, &o))
		return 1;
	reader r = {.base = {.poll = reader_poll, .name = "reader"}};
	sp_join_handle jh;
	SP_RUNTIME_SPAWN(rt, "reader", &jh, r);
	sp_join_handle_wait(&jh);
	sp_runtime_free(rt);
	pthread_join(th, NULL);
	return 0;
}
