/*
 * net.c - TCP on top of sp_async_fd: listen, accept, connect (with an
 * optional timeout), shutdown, close. Reads and writes are the generic fd
 * futures of io.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* sp_sockaddr_parse (udp.c) plus the address length bind/connect want. */
static int parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	int err = sp_sockaddr_parse(ss, host, port);
	*len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	return err;
}

/* Register fd, or close it on failure. */
static int wrap(int fd, sp_async_fd **out)
{
	int err = sp_async_fd_new(out, fd);
	if (err)
		close(fd);
	return err;
}

int sp_tcp_listen(sp_async_fd **out, const char *host, uint16_t port, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int err = parse_addr(host, port, &ss, &len);
	if (err)
		return err;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog > 0 ? backlog : 1024) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return wrap(fd, out);
}

int sp_tcp_local_port(sp_async_fd *sock)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(sp_async_fd_fd(sock), (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- accept ---------------------------------------------------------------------- */

/*
 * One accept against the listener's edge-triggered readiness: try while it
 * looks ready, clear with the tick seen on EAGAIN, wait. SP_READY with *fd
 * the new non-blocking socket or a negative errno; SP_PENDING. Shared by the
 * TCP and Unix accept futures.
 */
sp_poll sp__accept_step(sp_async_fd *listener, sp_context *cx, int *fd)
{
	for (;;) {
		uint64_t tick;
		int ready = sp__io_poll_ready(listener, SP_IO_READ, cx, &tick);
		if (ready == 0)
			return SP_PENDING;
		if (ready < 0) {
			*fd = ready;
			return SP_READY;
		}
		if (!sp_coop_proceed(cx))
			return SP_PENDING;
		*fd = accept4(sp_async_fd_fd(listener), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (*fd >= 0)
			return SP_READY;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*fd = -errno;
			return SP_READY;
		}
		sp__io_clear_ready(listener, SP_IO_READ, tick);
	}
}

static sp_poll accept_poll(sp_future *f, sp_context *cx)
{
	sp_tcp_accept *a = (sp_tcp_accept *)f;
	int fd;
	sp__io_op_hold(a->listener, &a->held);
	if (sp__accept_step(a->listener, cx, &fd) == SP_PENDING)
		return SP_PENDING;
	sp__io_op_put(a->listener, &a->held);
	if (fd < 0) {
		a->out = fd;
		return SP_READY;
	}
	set_nodelay(fd);
	a->out = wrap(fd, &a->stream);
	return SP_READY;
}

static void accept_drop(sp_future *f)
{
	sp_tcp_accept *a = (sp_tcp_accept *)f;
	sp__io_op_put(a->listener, &a->held);
}

void sp_tcp_accept_init(sp_tcp_accept *a, sp_async_fd *listener)
{
	a->base = (sp_future){.poll = accept_poll, .drop = accept_drop, .name = "tcp_accept"};
	a->out = 0;
	a->held = 0;
	a->stream = NULL;
	a->listener = listener;
}

/* ---- connect ---------------------------------------------------------------------- */

static sp_poll connect_poll(sp_future *f, sp_context *cx)
{
	sp_tcp_connect *c = (sp_tcp_connect *)f;
	if (!c->started) {
		c->started = 1;
		struct sockaddr_storage ss;
		socklen_t len;
		c->out = parse_addr(c->host, c->port, &ss, &len);
		if (c->out)
			return SP_READY;
		c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			c->out = -errno;
			return SP_READY;
		}
		set_nodelay(c->fd);
		if (connect(c->fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
			c->out = -errno;
			close(c->fd);
			c->fd = -1;
			return SP_READY;
		}
		int err = sp_async_fd_new(&c->stream, c->fd);
		if (err) {
			c->out = err;
			close(c->fd);
			c->fd = -1;
			return SP_READY;
		}
		if (c->timeout_ns)
			sp_sleep_init(&c->sleep, c->timeout_ns);
	}
	uint64_t tick;
	int ready = sp__io_poll_ready(c->stream, SP_IO_WRITE, cx, &tick);
	if (ready != 0) {
		/* Writable (or failed): the outcome is in SO_ERROR. */
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		c->out = soerr ? -soerr : (ready < 0 ? ready : 0);
	} else if (c->timeout_ns && sp_future_poll(&c->sleep.base, cx) == SP_READY) {
		c->out = SP_ETIMEDOUT;
	} else {
		return SP_PENDING;
	}
	if (c->timeout_ns)
		sp_future_drop(&c->sleep.base);
	if (c->out) {
		sp_tcp_close(c->stream);
		c->stream = NULL;
	}
	c->fd = -1; /* the stream owns it now (or it is closed) */
	return SP_READY;
}

/* Dropped before completion: close the half-open socket. */
static void connect_drop(sp_future *f)
{
	sp_tcp_connect *c = (sp_tcp_connect *)f;
	if (c->fd < 0)
		return;
	if (c->timeout_ns)
		sp_future_drop(&c->sleep.base);
	if (c->stream)
		sp_tcp_close(c->stream);
	else
		close(c->fd);
	c->stream = NULL;
	c->fd = -1;
}

void sp_tcp_connect_init(sp_tcp_connect *c, const char *host, uint16_t port, uint64_t timeout_ns)
{
	c->base = (sp_future){.poll = connect_poll, .drop = connect_drop, .name = "tcp_connect"};
	c->out = 0;
	c->stream = NULL;
	c->fd = -1;
	c->started = 0;
	c->timeout_ns = timeout_ns;
	c->port = port;
	snprintf(c->host, sizeof(c->host), "%s", host ? host : "127.0.0.1");
}

int sp_tcp_shutdown(sp_async_fd *stream, int how)
{
	return shutdown(sp_async_fd_fd(stream), how) < 0 ? -errno : 0;
}

void sp_tcp_close(sp_async_fd *sock)
{
	if (!sock)
		return;
	int fd = sp_async_fd_fd(sock);
	sp_async_fd_free(sock); /* out of epoll before the number can be reused */
	close(fd);
}
