/*
 * test_task_memory.c - per-task overhead and the one-million-idle-tasks
 * budget: a task costs its 128-byte header plus its future, and 1,000,000
 * idle tasks (each pending with its waker stored) fit in 256 MB of resident
 * memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

#define IDLE_TASKS 1000000

static _Atomic long polled, dropped;

typedef struct idle_fut {
	sp_future base;
	sp_waker waker; /* stored, never woken: the task stays idle */
} idle_fut;

static sp_poll idle_poll(sp_future *f, sp_context *cx)
{
	idle_fut *self = (idle_fut *)f;
	sp_waker_store(&self->waker, cx);
	atomic_fetch_add(&polled, 1);
	return SP_PENDING;
}

static void idle_drop(sp_future *f)
{
	idle_fut *self = (idle_fut *)f;
	sp_waker_drop(&self->waker);
	atomic_fetch_add(&dropped, 1);
}

static long rss_bytes(void)
{
	long pages_total, pages_rss;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
		pages_rss = -1;
	if (f)
		fclose(f);
	return pages_rss * sysconf(_SC_PAGESIZE);
}

static void task_header__is_128_bytes(void **state)
{
	(void)state;
	/* assert */
	assert_int_equal(sizeof(sp__task), 128);
	assert_int_equal(sizeof(sp_worker_slot), 64);
}

static void idle_tasks__million_fit_in_256mb(void **state)
{
	(void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* Sanitizers change every allocation's size: the budget is about the
	 * real allocator, so this check runs only in the plain build. */
	skip();
#endif
	/* arrange */
	sp_runtime *rt;
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = 2};
	assert_int_equal(sp_runtime_new(&rt, &o), 0);
	long before = rss_bytes();

	/* act */
	idle_fut f = {.base = {.poll = idle_poll, .drop = idle_drop, .name = "idle"}};
	for (long i = 0; i < IDLE_TASKS; i++)
		assert_int_equal(SP_RUNTIME_SPAWN(rt, "idle", NULL, f), 0);
	while (atomic_load(&polled) < IDLE_TASKS)
		usleep(1000);
	long grown = rss_bytes() - before;
	assert_int_equal(sp_runtime_free(rt), 0);

	/* assert */
	printf("# %d idle tasks: RSS grew %.1f MB (%.0f bytes per task, frame %zu)\n",
	       IDLE_TASKS, grown / 1048576.0, (double)grown / IDLE_TASKS, sizeof(idle_fut));
	assert_true(grown > 0);
	assert_true(grown <= 256L * 1024 * 1024);
	assert_int_equal(atomic_load(&dropped), IDLE_TASKS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(task_header__is_128_bytes),
		cmocka_unit_test(idle_tasks__million_fit_in_256mb),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
