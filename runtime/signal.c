/*
 * signal.c - awaiting signals through signalfd and the runtime's driver.
 *
 * An sp_signal owns one signalfd (for its one signal) from its first poll to
 * its completion or drop, registered with the polling thread's runtime as an
 * sp_async_fd, and reads it with the ordinary read future (sp_io_rw): the
 * driver's edge-triggered epoll reports the fd readable when the signal is
 * pending for the process, including a signal already pending when the fd
 * is registered (epoll checks readiness at EPOLL_CTL_ADD). Reading the
 * signalfd dequeues the signal, so the kernel's pending set is the only
 * queue: nothing is buffered here and nothing global is shared between
 * futures or runtimes.
 *
 * STATES (the owner's; a future is polled and dropped by one thread at a
 * time, so no atomics here):
 *   FRESH    nothing opened yet.
 *   WAITING  fd and afd are open, rd is an initialised (maybe polled) read.
 *   DONE     out is set, nothing is open. Terminal.
 * Every path out of WAITING (ready, error, drop) drops rd (its reference on
 * afd) first, then frees afd (deregistering the fd) and closes the fd, in
 * that order, as io.h requires.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(struct signalfd_siginfo) == sizeof(((sp_signal *)0)->info),
	       "sp_signal.info holds one signalfd_siginfo");

enum { SIG_FRESH = 0, SIG_WAITING = 1, SIG_DONE = 2 };

static bool signo_valid(int signo)
{
	return signo >= 1 && signo <= SIGRTMAX && signo != SIGKILL && signo != SIGSTOP;
}

int sp_signals_block(int signo, ...)
{
	sigset_t set;
	sigemptyset(&set);
	va_list ap;
	va_start(ap, signo);
	for (int s = signo; s != 0; s = va_arg(ap, int)) {
		if (!signo_valid(s) || sigaddset(&set, s) != 0) {
			va_end(ap);
			return SP_EINVAL;
		}
	}
	va_end(ap);
	int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
	return rc ? -rc : 0;
}

/* Open and register the signalfd: 0 or a negative errno. */
static int signal_open(sp_signal *s)
{
	if (!signo_valid(s->signo))
		return SP_EINVAL;
	if (!sp_runtime_current())
		return SP_ENORUNTIME;
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, s->signo))
		return SP_EINVAL; /* the signal would never reach the fd */
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, s->signo);
	int fd = signalfd(-1, &one, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = sp_async_fd_new(&s->afd, fd);
	if (err) {
		close(fd);
		return err;
	}
	s->fd = fd;
	return 0;
}

static void signal_close(sp_signal *s)
{
	sp_future_drop(&s->rd.base); /* its reference on afd */
	sp_async_fd_free(s->afd);
	close(s->fd);
	s->afd = NULL;
	s->fd = -1;
}

static sp_poll signal_poll(sp_future *f, sp_context *cx)
{
	sp_signal *s = (sp_signal *)f;
	if (s->state == SIG_DONE)
		return SP_READY;
	if (s->state == SIG_FRESH) {
		int err = signal_open(s);
		if (err) {
			s->out = err;
			s->state = SIG_DONE;
			return SP_READY;
		}
		sp_io_read_init(&s->rd, s->afd, s->info, sizeof(s->info));
		s->state = SIG_WAITING;
	}
	if (sp_future_poll(&s->rd.base, cx) == SP_PENDING)
		return SP_PENDING;
	if (s->rd.out == (ssize_t)sizeof(struct signalfd_siginfo)) {
		const struct signalfd_siginfo *si = (const struct signalfd_siginfo *)s->info;
		s->out = (int)si->ssi_signo;
		s->pid = si->ssi_pid;
		s->uid = si->ssi_uid;
	} else {
		/* A signalfd reads whole records; anything else is an error. */
		s->out = s->rd.out < 0 ? (int)s->rd.out : SP_EBADF;
	}
	signal_close(s);
	s->state = SIG_DONE;
	return SP_READY;
}

static void signal_drop(sp_future *f)
{
	sp_signal *s = (sp_signal *)f;
	if (s->state == SIG_WAITING)
		signal_close(s);
	s->state = SIG_DONE;
}

void sp_signal_init(sp_signal *s, int signo)
{
	s->base = (sp_future){.poll = signal_poll, .drop = signal_drop, .name = "signal"};
	s->out = 0;
	s->signo = signo;
	s->pid = 0;
	s->uid = 0;
	s->state = SIG_FRESH;
	s->fd = -1;
	s->afd = NULL;
}
