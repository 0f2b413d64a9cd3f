/*
 * test_signal.c - awaiting signals: a task waiting for SIGUSR1 completes when
 * the process is sent it, a signal sent before the await is not lost, the
 * same task awaits a signal twice, SIGTERM, a signal that is not blocked is
 * refused (SP_EINVAL), and dropping a waiting future closes its signalfd.
 *
 * Every signal used is blocked with sp_signals_block on the main thread
 * before the runtime that awaits it is created (cmocka starts no threads), so
 * the workers inherit the mask. Signals are sent to the process (kill), and
 * each test leaves none pending.
 */
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include "unit/sp_test.h"

/* A task that awaits `rounds` deliveries of signo, one sp_signal each. */
struct sig_waiter {
	sp_future base;
	int out;
	int signo;
	int rounds, i;
	atomic_int *got;
	_Atomic uint32_t *pid;
	sp_signal s;
};

static sp_poll sig_waiter_poll(sp_future *f, sp_context *cx)
{
	struct sig_waiter *self = (struct sig_waiter *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->rounds; self->i++) {
		sp_signal_init(&self->s, self->signo);
		SP_AWAIT(&self->s);
		if (self->s.out != self->signo)
			SP_RETURN(self->s.out);
		if (self->pid)
			atomic_store(self->pid, self->s.pid);
		if (self->got)
			atomic_fetch_add(self->got, 1);
	}
	SP_RETURN(self->signo);
	SP_ASYNC_END();
}

static void sig_waiter_init(struct sig_waiter *w, int signo, int rounds, atomic_int *got,
			    _Atomic uint32_t *pid)
{
	memset(w, 0, sizeof(*w));
	w->base = (sp_future){.poll = sig_waiter_poll, .name = "sig_waiter"};
	w->signo = signo;
	w->rounds = rounds;
	w->got = got;
	w->pid = pid;
	w->out = -1;
}

static int is_pending(int signo)
{
	sigset_t set;
	sigpending(&set);
	return sigismember(&set, signo);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ---- tests ------------------------------------------------------------------------ */

static void signal__task_completes_when_process_gets_sigusr1(void **state)
{
	(void)state;
	/* arrange: block first, then create the runtime's threads */
	int brc = sp_signals_block(SIGUSR1, 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	_Atomic uint32_t pid = 0;
	struct sig_waiter w;
	sig_waiter_init(&w, SIGUSR1, 1, NULL, &pid);
	int out = 0;
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "sig_waiter", &jh, w);
	jh.dst = &out;
	/* waiting: its signalfd is registered */
	int idle = SPT_WAIT_UNTIL(spt_task_idle(rt, sp_join_handle_id(&jh)), SPT_SOON_MS);

	/* act */
	int krc = kill(getpid(), SIGUSR1);
	int status = sp_join_handle_wait(&jh);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(brc, 0);
	assert_int_equal(rc, 0);
	assert_true(idle);
	assert_int_equal(krc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, SIGUSR1);
	assert_int_equal(atomic_load(&pid), (uint32_t)getpid());
	assert_false(is_pending(SIGUSR1));
}

static void signal__sent_before_the_await_is_not_lost(void **state)
{
	(void)state;
	/* arrange: the signal is pending before any future exists */
	int brc = sp_signals_block(SIGUSR2, 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	int krc = kill(getpid(), SIGUSR2);
	int pending = is_pending(SIGUSR2);
	struct sig_waiter w;
	sig_waiter_init(&w, SIGUSR2, 1, NULL, NULL);

	/* act */
	int rc = sp_block_on(rt, &w.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(brc | krc, 0);
	assert_true(pending);
	assert_int_equal(rc, 0);
	assert_int_equal(w.out, SIGUSR2);
	assert_false(is_pending(SIGUSR2));
}

static void signal__one_task_awaits_twice(void **state)
{
	(void)state;
	/* arrange */
	int brc = sp_signals_block(SIGUSR1, 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	atomic_int got = 0;
	struct sig_waiter w;
	sig_waiter_init(&w, SIGUSR1, 2, &got, NULL);
	int out = 0;
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "sig_waiter", &jh, w);
	jh.dst = &out;

	/* act: the second signal only after the first was consumed (standard
	 * signals pending together merge into one) */
	int idle1 = SPT_WAIT_UNTIL(spt_task_idle(rt, sp_join_handle_id(&jh)), SPT_SOON_MS);
	kill(getpid(), SIGUSR1);
	int first = SPT_WAIT_UNTIL(atomic_load(&got) == 1, SPT_SOON_MS);
	kill(getpid(), SIGUSR1);
	int status = sp_join_handle_wait(&jh);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(brc | rc, 0);
	assert_true(idle1);
	assert_true(first);
	assert_int_equal(status, 0);
	assert_int_equal(out, SIGUSR1);
	assert_int_equal(atomic_load(&got), 2);
	assert_false(is_pending(SIGUSR1));
}

static void signal__sigterm(void **state)
{
	(void)state;
	/* arrange */
	int brc = sp_signals_block(SIGTERM, SIGINT, 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct sig_waiter w;
	sig_waiter_init(&w, SIGTERM, 1, NULL, NULL);
	int out = 0;
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "sigterm", &jh, w);
	jh.dst = &out;
	int idle = SPT_WAIT_UNTIL(spt_task_idle(rt, sp_join_handle_id(&jh)), SPT_SOON_MS);

	/* act */
	kill(getpid(), SIGTERM);
	int status = sp_join_handle_wait(&jh);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(brc | rc, 0);
	assert_true(idle);
	assert_int_equal(status, 0);
	assert_int_equal(out, SIGTERM);
}

static void signal__unblocked_or_bad_signal_is_einval(void **state)
{
	(void)state;
	/* arrange: SIGWINCH is never blocked here */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_signal unblocked, bad;
	sp_signal_init(&unblocked, SIGWINCH);
	sp_signal_init(&bad, SIGKILL);

	/* act */
	int rc1 = sp_block_on(rt, &unblocked.base);
	int rc2 = sp_block_on(rt, &bad.base);
	sp_runtime_free(rt);
	int brc_kill = sp_signals_block(SIGKILL, 0);
	int brc_range = sp_signals_block(SIGUSR1, 100000, 0);

	/* assert */
	assert_int_equal(rc1 | rc2, 0);
	assert_int_equal(unblocked.out, SP_EINVAL);
	assert_int_equal(bad.out, SP_EINVAL);
	assert_int_equal(brc_kill, SP_EINVAL);
	assert_int_equal(brc_range, SP_EINVAL);
}

static void signal__dropped_waiter_closes_its_fd(void **state)
{
	(void)state;
	/* arrange */
	int brc = sp_signals_block(SIGUSR1, 0);
	int fds_before = count_fds();
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct sig_waiter w;
	sig_waiter_init(&w, SIGUSR1, 1, NULL, NULL);
	sp_join_handle jh;
	int rc = SP_RUNTIME_SPAWN(rt, "sig_waiter", &jh, w);
	int idle = SPT_WAIT_UNTIL(spt_task_idle(rt, sp_join_handle_id(&jh)), SPT_SOON_MS);

	/* act: cancel the waiting task, then send: the signal stays pending
	 * for the next future */
	sp_join_handle_abort(&jh);
	int status = sp_join_handle_wait(&jh);
	kill(getpid(), SIGUSR1);
	int pending_after_cancel = is_pending(SIGUSR1);
	struct sig_waiter w2;
	sig_waiter_init(&w2, SIGUSR1, 1, NULL, NULL);
	int rc2 = sp_block_on(rt, &w2.base);
	sp_runtime_free(rt);
	int fds_after = count_fds();

	/* assert */
	assert_int_equal(brc | rc | rc2, 0);
	assert_true(idle);
	assert_int_equal(status, SP_ECANCELED);
	assert_true(pending_after_cancel);
	assert_int_equal(w2.out, SIGUSR1);
	assert_true(fds_before > 0);
	assert_int_equal(fds_after, fds_before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(signal__task_completes_when_process_gets_sigusr1),
		cmocka_unit_test(signal__sent_before_the_await_is_not_lost),
		cmocka_unit_test(signal__one_task_awaits_twice),
		cmocka_unit_test(signal__sigterm),
		cmocka_unit_test(signal__unblocked_or_bad_signal_is_einval),
		cmocka_unit_test(signal__dropped_waiter_closes_its_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
