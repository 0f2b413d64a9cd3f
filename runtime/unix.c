/*
 * unix.c - Unix-domain stream sockets on top of sp_async_fd: listen (with
 * stale-socket removal and Linux's abstract namespace), accept, connect,
 * close. Reads, writes and shutdown are the generic fd futures of io.c and
 * sp_tcp_shutdown of net.c, which work on any stream socket.
 *
 * PATHS. "@name" is the abstract name "name" (sun_path starts with a NUL and
 * the address length, not a terminator, ends it); anything else is a
 * filesystem path, NUL-terminated within sun_path.
 *
 * STALE FILES. A filesystem socket outlives the process that bound it, and
 * bind() on its path then fails with EADDRINUSE. sp_unix_listen removes such
 * a file only when it is a socket and a connect to it is refused, i.e. no
 * socket is bound to it any more; a live listener keeps its path (the probe
 * connect shows up there as a connection closed at once). The check and the
 * removal are not atomic: two processes racing for one path may both see it
 * stale; one bind then fails with EADDRINUSE. sp_unix_close removes the path
 * of a listener before closing it, so that no other process can have bound it
 * again in between.
 *
 * CONNECT. A non-blocking connect(2) on a Unix stream socket does not go
 * through EINPROGRESS: it connects at once, fails at once, or returns EAGAIN
 * while the listener's backlog is full. The kernel wakes nobody when the
 * backlog drains, so the connect future retries on a timer (1 ms, doubling to
 * 32 ms) instead of waiting for readiness.
 *
 * ACCEPT follows accept_poll in net.c: loop on accept4() until EAGAIN, then
 * clear the read readiness with the tick seen, then wait; the future holds a
 * reference on the listener from its first poll to its end.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define CONNECT_BACKOFF_MIN_MS 1u
#define CONNECT_BACKOFF_MAX_MS 32u

/* Fill sa for path ("@name": abstract). 0 or a negative errno. */
static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	if (!path || !path[0])
		return SP_EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = strlen(path);
	if (path[0] == '@') {
		/* sun_path[0] = '\0', then the n - 1 bytes of the name */
		if (n > sizeof(sa->sun_path))
			return -ENAMETOOLONG;
		memcpy(sa->sun_path + 1, path + 1, n - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		return 0;
	}
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

static int is_socket_file(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* A socket file that no socket is bound to any more: connect is refused. */
static int is_stale(const struct sockaddr_un *sa, socklen_t len)
{
	if (!is_socket_file(sa->sun_path))
		return 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int stale = connect(fd, (const struct sockaddr *)sa, len) < 0 && errno == ECONNREFUSED;
	close(fd);
	return stale;
}

int sp_unix_listen(sp_async_fd **out, const char *path, int backlog)
{
	if (!out)
		return SP_EINVAL;
	struct sockaddr_un sa;
	socklen_t len;
	int err = unix_addr(path, &sa, &len);
	if (err)
		return err;
	int abstract = sa.sun_path[0] == '\0';
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = bind(fd, (struct sockaddr *)&sa, len);
	if (rc < 0 && errno == EADDRINUSE && !abstract && is_stale(&sa, len)) {
		unlink(sa.sun_path);
		rc = bind(fd, (struct sockaddr *)&sa, len);
	}
	if (rc < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (listen(fd, backlog > 0 ? backlog : 1024) < 0) {
		err = -errno;
		if (!abstract)
			unlink(sa.sun_path); /* the file our bind created */
		close(fd);
		return err;
	}
	err = sp_async_fd_new(out, fd);
	if (err) {
		if (!abstract)
			unlink(sa.sun_path);
		close(fd);
	}
	return err;
}

void sp_unix_close(sp_async_fd *sock)
{
	if (!sock)
		return;
	int fd = sp_async_fd_fd(sock);
	int listening = 0;
	socklen_t ol = sizeof(listening);
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	/* Accepted streams report the listener's address too: only a listener
	 * owns its path. */
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) == 0 && listening &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sa.sun_family == AF_UNIX &&
	    len > offsetof(struct sockaddr_un, sun_path) + 1 && sa.sun_path[0] != '\0') {
		/* sun_path need not be terminated when it is full */
		char path[sizeof(sa.sun_path) + 1];
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		if (n > sizeof(sa.sun_path))
			n = sizeof(sa.sun_path);
		memcpy(path, sa.sun_path, n);
		path[n] = '\0';
		if (is_socket_file(path))
			unlink(path);
	}
	sp_tcp_close(sock);
}

/* ---- accept ---------------------------------------------------------------------- */

static sp_poll accept_poll(sp_future *f, sp_context *cx)
{
	sp_unix_accept *a = (sp_unix_accept *)f;
	int fd;
	if (!a->listener) {
		a->out = SP_EINVAL;
		return SP_READY;
	}
	sp__io_op_hold(a->listener, &a->held);
	if (sp__accept_step(a->listener, cx, &fd) == SP_PENDING)
		return SP_PENDING;
	sp__io_op_put(a->listener, &a->held);
	if (fd < 0) {
		a->out = fd;
		return SP_READY;
	}
	a->out = sp_async_fd_new(&a->stream, fd);
	if (a->out) {
		a->stream = NULL;
		close(fd);
	}
	return SP_READY;
}

static void accept_drop(sp_future *f)
{
	sp_unix_accept *a = (sp_unix_accept *)f;
	if (a->listener)
		sp__io_op_put(a->listener, &a->held);
}

void sp_unix_accept_init(sp_unix_accept *a, sp_async_fd *listener)
{
	a->base = (sp_future){.poll = accept_poll, .drop = accept_drop, .name = "unix_accept"};
	a->out = 0;
	a->held = 0;
	a->stream = NULL;
	a->listener = listener;
}

/* ---- connect ---------------------------------------------------------------------- */

static sp_poll connect_poll(sp_future *f, sp_context *cx)
{
	sp_unix_connect *c = (sp_unix_connect *)f;
	if (!c->started) {
		c->started = 1;
		if (c->err) {
			c->out = c->err;
			return SP_READY;
		}
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			c->out = -errno;
			return SP_READY;
		}
	}
	for (;;) {
		if (c->sleeping) {
			if (sp_future_poll(&c->sleep.base, cx) == SP_PENDING)
				return SP_PENDING;
			sp_future_drop(&c->sleep.base);
			c->sleeping = 0;
		}
		if (!sp_coop_proceed(cx))
			return SP_PENDING;
		if (connect(c->fd, (struct sockaddr *)&c->addr, c->addr_len) == 0 ||
		    errno == EISCONN)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			c->out = -errno;
			close(c->fd);
			c->fd = -1;
			return SP_READY;
		}
		/* The backlog is full: try again later. */
		sp_sleep_init(&c->sleep, SP_MS(c->backoff_ms));
		c->sleeping = 1;
		if (c->backoff_ms < CONNECT_BACKOFF_MAX_MS)
			c->backoff_ms *= 2;
	}
	c->out = sp_async_fd_new(&c->stream, c->fd);
	if (c->out) {
		c->stream = NULL;
		close(c->fd);
	}
	c->fd = -1; /* the stream owns it now (or it is closed) */
	return SP_READY;
}

/* Dropped before completion: close the unconnected socket. */
static void connect_drop(sp_future *f)
{
	sp_unix_connect *c = (sp_unix_connect *)f;
	if (c->sleeping) {
		sp_future_drop(&c->sleep.base);
		c->sleeping = 0;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

void sp_unix_connect_init(sp_unix_connect *c, const char *path)
{
	c->base = (sp_future){.poll = connect_poll, .drop = connect_drop, .name = "unix_connect"};
	c->out = 0;
	c->stream = NULL;
	c->fd = -1;
	c->started = 0;
	c->sleeping = 0;
	c->backoff_ms = CONNECT_BACKOFF_MIN_MS;
	c->err = unix_addr(path, &c->addr, &c->addr_len);
}
