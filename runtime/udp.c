/*
 * udp.c - UDP sockets on top of sp_async_fd: bind, connect (the default
 * peer), and the datagram futures send, send_to, recv, recv_from.
 *
 * DATAGRAMS. One future moves exactly one datagram. A send is one sendto(2),
 * which for UDP either queues the whole datagram or fails (EMSGSIZE, ...):
 * there is no partial send to continue. A receive is one recvmsg(2); the
 * kernel's MSG_TRUNC in msg_flags tells that the datagram was longer than the
 * buffer (its tail is gone), and a 0-byte result is an empty datagram, not an
 * end of file.
 *
 * READINESS. The registration is edge-triggered, as for TCP accept in net.c:
 * a future tries the syscall while the direction looks ready, and only on
 * EAGAIN clears the readiness it saw, with the tick it saw, so that an event
 * delivered between the syscall and the clear is not lost; then it looks
 * again (storing its waker). Every attempt spends one unit of the cooperative
 * budget.
 *
 * ERRORS. On a datagram socket an error is not final: an ICMP "port
 * unreachable" for a connected peer raises EPOLLERR once, the next receive
 * consumes it (SP_ECONNREFUSED), and the socket goes on working. io.c clears
 * the error bit with the ready bit on EAGAIN, so later polls wait again.
 *
 * LIFETIME. A future holds a reference on the registration (sp__io_hold) from
 * its first poll until it completes or is dropped, so that a concurrent
 * sp_async_fd_free leaves it memory to look at: it then completes with
 * SP_EBADF.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* ---- addresses -------------------------------------------------------------------- */

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
	switch (ss->ss_family) {
	case AF_INET:
		return sizeof(struct sockaddr_in);
	case AF_INET6:
		return sizeof(struct sockaddr_in6);
	default:
		return 0;
	}
}

int sp_sockaddr_parse(struct sockaddr_storage *out, const char *host, uint16_t port)
{
	if (!out)
		return SP_EINVAL;
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
	if (!host)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return 0;
	}
	return SP_EINVAL; /* numeric addresses only: resolving would block */
}

int sp_sockaddr_port(const struct sockaddr_storage *ss)
{
	if (!ss)
		return SP_EINVAL;
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return SP_EINVAL;
}

/* ---- sockets ---------------------------------------------------------------------- */

int sp_udp_bind(sp_async_fd **out, const char *host, uint16_t port)
{
	if (!out)
		return SP_EINVAL;
	struct sockaddr_storage ss;
	int err = sp_sockaddr_parse(&ss, host, port);
	if (err)
		return err;
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, addr_len(&ss)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	err = sp_async_fd_new(out, fd);
	if (err)
		close(fd);
	return err;
}

int sp_udp_connect(sp_async_fd *sock, const char *host, uint16_t port)
{
	if (!sock)
		return SP_EINVAL;
	struct sockaddr_storage ss;
	int err = sp_sockaddr_parse(&ss, host, port);
	if (err)
		return err;
	/* A datagram connect only records the peer: it never blocks, and it is
	 * not interrupted with EINPROGRESS. */
	if (connect(sp_async_fd_fd(sock), (struct sockaddr *)&ss, addr_len(&ss)) < 0)
		return -errno;
	return 0;
}

int sp_udp_local_port(sp_async_fd *sock)
{
	if (!sock)
		return SP_EINVAL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(sp_async_fd_fd(sock), (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return sp_sockaddr_port(&ss);
}

/*
 * Run one datagram syscall against the edge-triggered readiness of dir: try
 * it while the direction looks ready, clear on EAGAIN, wait. The syscall is
 * op(arg), which returns its result or -1 with errno. SP_READY with *res set
 * (the syscall's result or a negative errno), or SP_PENDING.
 */
static sp_poll dgram_step(sp_async_fd *sock, int dir, ssize_t (*op)(void *), void *arg,
			  sp_context *cx, ssize_t *res)
{
	for (;;) {
		uint64_t tick;
		int ready = sp__io_poll_ready(sock, dir, cx, &tick);
		if (ready == 0)
			return SP_PENDING;
		if (ready < 0) {
			*res = ready;
			return SP_READY;
		}
		if (!sp_coop_proceed(cx))
			return SP_PENDING;
		ssize_t n = op(arg);
		if (n >= 0) {
			*res = n;
			return SP_READY;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*res = -errno;
			return SP_READY;
		}
		sp__io_clear_ready(sock, dir, tick);
	}
}

/* ---- send ------------------------------------------------------------------------- */

static ssize_t send_once(void *arg)
{
	sp_udp_send *op = arg;
	const struct sockaddr *to = op->dest_len ? (const struct sockaddr *)&op->dest : NULL;
	return sendto(sp_async_fd_fd(op->sock), op->buf, op->len, MSG_NOSIGNAL, to, op->dest_len);
}

static sp_poll send_poll(sp_future *f, sp_context *cx)
{
	sp_udp_send *op = (sp_udp_send *)f;
	if (op->err) {
		op->out = op->err;
		return SP_READY;
	}
	sp__io_op_hold(op->sock, &op->held);
	if (dgram_step(op->sock, SP_IO_WRITE, send_once, op, cx, &op->out) == SP_PENDING)
		return SP_PENDING;
	sp__io_op_put(op->sock, &op->held);
	return SP_READY;
}

static void send_drop(sp_future *f)
{
	sp_udp_send *op = (sp_udp_send *)f;
	sp__io_op_put(op->sock, &op->held);
}

static void send_init(sp_udp_send *op, sp_async_fd *sock, const void *buf, size_t len,
		      const char *name)
{
	op->base = (sp_future){.poll = send_poll, .drop = send_drop, .name = name};
	op->out = 0;
	op->sock = sock;
	op->buf = buf;
	op->len = len;
	op->err = sock ? 0 : SP_EINVAL;
	op->held = 0;
	op->dest_len = 0;
	memset(&op->dest, 0, sizeof(op->dest));
}

void sp_udp_send_init(sp_udp_send *op, sp_async_fd *sock, const void *buf, size_t len)
{
	send_init(op, sock, buf, len, "udp_send");
}

void sp_udp_send_to_init(sp_udp_send_to *op, sp_async_fd *sock, const void *buf, size_t len,
			 const char *host, uint16_t port)
{
	send_init(op, sock, buf, len, "udp_send_to");
	int err = sp_sockaddr_parse(&op->dest, host, port);
	if (err && !op->err)
		op->err = err;
	op->dest_len = addr_len(&op->dest);
}

void sp_udp_send_to_addr_init(sp_udp_send_to *op, sp_async_fd *sock, const void *buf, size_t len,
			      const struct sockaddr_storage *dest)
{
	send_init(op, sock, buf, len, "udp_send_to");
	if (dest)
		op->dest = *dest;
	op->dest_len = addr_len(&op->dest);
	if (!op->dest_len && !op->err)
		op->err = SP_EINVAL; /* NULL, or not an IPv4/IPv6 address */
}

/* ---- receive ---------------------------------------------------------------------- */

static ssize_t recv_once(void *arg)
{
	sp_udp_recv *op = arg;
	struct iovec iov = {.iov_base = op->buf, .iov_len = op->len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (op->want_from) {
		msg.msg_name = &op->from;
		msg.msg_namelen = sizeof(op->from);
	}
	ssize_t n = recvmsg(sp_async_fd_fd(op->sock), &msg, 0);
	if (n >= 0) {
		op->truncated = (msg.msg_flags & MSG_TRUNC) != 0;
		if (op->want_from)
			op->from_len = msg.msg_namelen;
	}
	return n;
}

static sp_poll recv_poll(sp_future *f, sp_context *cx)
{
	sp_udp_recv *op = (sp_udp_recv *)f;
	if (!op->sock) {
		op->out = SP_EINVAL;
		return SP_READY;
	}
	sp__io_op_hold(op->sock, &op->held);
	if (dgram_step(op->sock, SP_IO_READ, recv_once, op, cx, &op->out) == SP_PENDING)
		return SP_PENDING;
	sp__io_op_put(op->sock, &op->held);
	return SP_READY;
}

static void recv_drop(sp_future *f)
{
	sp_udp_recv *op = (sp_udp_recv *)f;
	sp__io_op_put(op->sock, &op->held);
}

static void recv_init(sp_udp_recv *op, sp_async_fd *sock, void *buf, size_t len, int want_from,
		      const char *name)
{
	op->base = (sp_future){.poll = recv_poll, .drop = recv_drop, .name = name};
	op->out = 0;
	op->truncated = 0;
	op->from_len = 0;
	memset(&op->from, 0, sizeof(op->from));
	op->sock = sock;
	op->buf = buf;
	op->len = len;
	op->want_from = want_from;
	op->held = 0;
}

void sp_udp_recv_init(sp_udp_recv *op, sp_async_fd *sock, void *buf, size_t len)
{
	recv_init(op, sock, buf, len, 0, "udp_recv");
}

void sp_udp_recv_from_init(sp_udp_recv_from *op, sp_async_fd *sock, void *buf, size_t len)
{
	recv_init(op, sock, buf, len, 1, "udp_recv_from");
}
