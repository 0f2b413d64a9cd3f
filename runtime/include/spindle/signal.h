/*
 * spindle/signal.h - await Unix signals (included by spindle.h, after
 * spindle/io.h).
 *
 *   int main(void)
 *   {
 *           sp_signals_block(SIGINT, SIGTERM, 0);  // first, before any thread
 *           sp_runtime_new(&rt, NULL);
 *           ...
 *   }
 *
 *   // in a task:
 *   sp_signal_init(&self->sig, SIGTERM);
 *   SP_AWAIT(&self->sig);                   // self->sig.out == SIGTERM
 *
 * HOW. At its first poll an sp_signal opens a signalfd for its signal,
 * registers it with the current runtime's driver (sp_async_fd) and awaits a
 * read on it; dropping or completing it deregisters and closes the fd. It
 * must be polled on a runtime thread (SP_ENORUNTIME otherwise).
 *
 * BLOCKING IS THE PROGRAM'S JOB. A signalfd sees only signals that are
 * blocked: an unblocked signal runs its disposition instead (for SIGINT and
 * SIGTERM: the process ends). The signal mask is per thread and inherited by
 * the threads a thread creates, and the kernel delivers a process-wide signal
 * to any thread that does not block it. So call sp_signals_block() early in
 * main(), BEFORE CREATING ANY THREAD: the runtime's workers (sp_runtime_new),
 * your own and your libraries' threads. (The blocking pool's threads block
 * the asynchronous signals themselves.) The future checks the mask of the
 * thread that polls it first and completes with SP_EINVAL when its signal is
 * not blocked there, rather than wait for a signal it cannot see.
 *
 * DELIVERY. Process-directed signals (kill(2), ^C at the terminal, a
 * supervisor's SIGTERM) are seen from any thread. Thread-directed ones
 * (pthread_kill, tgkill, a fault) are seen only by a read on that very
 * thread: send to the process. A delivery is consumed by the read that
 * completes a future, so with several futures awaiting one signal each
 * delivery completes one of them (and, as always, a standard signal sent
 * while one is already pending merges with it). A signal that arrived
 * before the future was polled stays pending and completes it at once:
 * nothing is lost between sp_signals_block() and the await.
 */
#ifndef SPINDLE_SIGNAL_H
#define SPINDLE_SIGNAL_H

#include <stdint.h>

/* Block the listed signals in the calling thread (and so in the threads it
 * creates from now on); the list ends with 0. 0, SP_EINVAL for a number that
 * cannot be blocked (SIGKILL, SIGSTOP, out of range), or a negative errno. */
int sp_signals_block(int signo, ...);

/* Completes when signo arrives: out = signo, or a negative errno (SP_EINVAL:
 * a bad signal number, or not blocked in the polling thread). */
typedef struct sp_signal {
	sp_future base;
	int out;
	int signo;    /* read-only */
	uint32_t pid; /* read-only after ready: the sender's pid (0 if none) */
	uint32_t uid; /* read-only after ready: the sender's real uid */
	/* private */
	int state;
	int fd;
	sp_async_fd *afd;
	sp_io_rw rd;
	uint64_t info[16]; /* a struct signalfd_siginfo */
} sp_signal;

void sp_signal_init(sp_signal *s, int signo);

#endif /* SPINDLE_SIGNAL_H */
