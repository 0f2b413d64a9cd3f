/*
 * spindle/io.h - timers and I/O (included by spindle.h).
 *
 * Every future here is embedded in the caller's frame, initialised with its
 * _init function, awaited with SP_AWAIT, and leaves its result in `out`
 * (0 or a count on success, a negative errno on failure). They must be polled
 * on a runtime thread (a worker, or inside sp_block_on); the runtime's driver
 * (epoll + a hierarchical timer wheel, 1 ms resolution) wakes them.
 */
#ifndef SPINDLE_IO_H
#define SPINDLE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- timers ------------------------------------------------------------------ */

/* private: a timer wheel entry (runtime/timer_wheel.h) and the waker to fire */
typedef struct sp_timer_slot {
	uint64_t entry[4];
	sp_waker waker;
	_Atomic uint32_t fired;
	uint32_t armed;
	sp_runtime *rt;
} sp_timer_slot;

/* Completes at or after deadline_ns (sp_now_ns() clock), never before. */
typedef struct sp_sleep {
	sp_future base;
	int out;              /* 0 */
	uint64_t deadline_ns; /* read-only */
	sp_timer_slot timer;  /* private */
} sp_sleep;

void sp_sleep_init(sp_sleep *s, uint64_t duration_ns);
void sp_sleep_until_init(sp_sleep *s, uint64_t deadline_ns);

/* Run inner with a time limit: out = 0 if inner completed (its own out holds
 * its result), SP_ETIMEDOUT if the time ran out first (inner is dropped). */
typedef struct sp_timeout {
	sp_future base;
	int out;
	sp_future *inner; /* caller-owned storage, usually in the same frame */
	int inner_done;   /* private */
	sp_sleep sleep;   /* private */
} sp_timeout;

void sp_timeout_init(sp_timeout *t, sp_future *inner, uint64_t duration_ns);

/* A periodic timer: each sp_interval_tick completes at the next period
 * boundary (missed ticks are skipped, not bunched). */
typedef struct sp_interval {
	uint64_t period_ns;
	uint64_t next_ns;
} sp_interval;

typedef struct sp_interval_tick {
	sp_future base;
	int out;
	sp_interval *iv;
	sp_sleep sleep; /* private */
	int started;    /* private */
} sp_interval_tick;

void sp_interval_init(sp_interval *iv, uint64_t period_ns);
void sp_interval_tick_init(sp_interval_tick *t, sp_interval *iv);

#define SP_MS(n) ((uint64_t)(n)*1000000u)
#define SP_US(n) ((uint64_t)(n)*1000u)

/* ---- non-blocking file descriptors --------------------------------------------- */

typedef struct sp_async_fd sp_async_fd;

enum { SP_IO_READ = 0, SP_IO_WRITE = 1 };

/* Register a non-blocking fd with the current runtime's driver (the caller
 * keeps the fd and closes it after sp_async_fd_free). SP_ENORUNTIME off a
 * runtime thread. */
int sp_async_fd_new(sp_async_fd **out, int fd);
/* Deregister (the caller closes the fd afterwards): futures still pending on
 * it complete with SP_EBADF; the handle's memory goes when the last of them
 * is done. Closing the fd without this is a bug: epoll forgets a closed fd
 * silently, and futures waiting on it would wait forever. */
void sp_async_fd_free(sp_async_fd *a);
int sp_async_fd_fd(const sp_async_fd *a);

/* Wait until the fd is readable (SP_IO_READ) or writable: out = the ready
 * bits, or SP_EBADF after sp_async_fd_free. */
typedef struct sp_io_ready {
	sp_future base;
	int out;
	sp_async_fd *afd;
	int dir;
	int held; /* private */
} sp_io_ready;
void sp_io_ready_init(sp_io_ready *r, sp_async_fd *afd, int dir);

/*
 * Read or write. out: bytes transferred, or a negative errno.
 *   read:       at least 1 byte, or 0 at end of file.
 *   read_exact: all len bytes, or SP_EPIPE at end of file before that
 *               (`done` says how many arrived).
 *   write:      at least 1 byte.
 *   write_all:  all len bytes (partial writes are continued).
 * Writes to sockets never raise SIGPIPE (a reset peer gives -EPIPE).
 */
typedef struct sp_io_rw {
	sp_future base;
	ssize_t out;
	size_t done; /* bytes so far */
	/* private */
	sp_async_fd *afd;
	char *buf;
	size_t len;
	int dir;
	int exact;
	int held;
} sp_io_rw;

void sp_io_read_init(sp_io_rw *op, sp_async_fd *afd, void *buf, size_t len);
void sp_io_read_exact_init(sp_io_rw *op, sp_async_fd *afd, void *buf, size_t len);
void sp_io_write_init(sp_io_rw *op, sp_async_fd *afd, const void *buf, size_t len);
void sp_io_write_all_init(sp_io_rw *op, sp_async_fd *afd, const void *buf, size_t len);

/* ---- TCP ------------------------------------------------------------------------ */

/* Listen on host:port (host NULL: 127.0.0.1; port 0: any free port). *out is
 * the listening socket, registered with the current runtime. */
int sp_tcp_listen(sp_async_fd **out, const char *host, uint16_t port, int backlog);
/* The port a socket is bound to, or a negative errno. */
int sp_tcp_local_port(sp_async_fd *sock);

/* Accept one connection: out = 0 and *stream set (non-blocking, TCP_NODELAY,
 * registered), or a negative errno. */
typedef struct sp_tcp_accept {
	sp_future base;
	int out;
	sp_async_fd *stream;
	sp_async_fd *listener; /* private */
	int held;              /* private */
} sp_tcp_accept;
void sp_tcp_accept_init(sp_tcp_accept *a, sp_async_fd *listener);

/* Connect to host:port (numeric IPv4/IPv6 address): out = 0 and stream set,
 * or a negative errno (SP_ETIMEDOUT after timeout_ns if it is not 0). */
typedef struct sp_tcp_connect {
	sp_future base;
	int out;
	sp_async_fd *stream;
	/* private */
	int fd;
	int started;
	uint64_t timeout_ns;
	char host[64];
	uint16_t port;
	sp_sleep sleep;
} sp_tcp_connect;
void sp_tcp_connect_init(sp_tcp_connect *c, const char *host, uint16_t port, uint64_t timeout_ns);

/* shutdown(2) the write side (SHUT_WR) or both; 0 or a negative errno. */
int sp_tcp_shutdown(sp_async_fd *stream, int how);
/* Deregister and close. */
void sp_tcp_close(sp_async_fd *sock);

#endif /* SPINDLE_IO_H */
