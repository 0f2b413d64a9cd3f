/*
 * test_udp_unix.c - UDP datagrams over loopback (a 1000-datagram ping-pong
 * checked for order and content, the sender's address, truncation, the
 * errors a datagram send or receive reports) and Unix-domain stream sockets
 * (echo with many concurrent connections, refused and missing paths, stale
 * socket files, half-close, the abstract namespace, a full backlog, EPIPE
 * without SIGPIPE), and futures freed or aborted while they wait.
 *
 * Tasks record what they saw in frame fields and atomics; only the main
 * thread asserts. Every wait for a datagram is bounded by sp_timeout.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit/sp_test.h"

#define BOUND_NS (SP_MS(SPT_SOON_MS) * SPT_TIME_MULT)

/* A private directory for socket files, removed by tmpdir_remove. */
static char tmpdir[64];

static void tmpdir_make(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/spindle-unix-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

static void tmpdir_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void tmpdir_remove(void)
{
	assert_int_equal(rmdir(tmpdir), 0); /* fails if a socket file was left */
}

static int path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- UDP ping-pong ------------------------------------------------------------------ */

#define PINGS 1000
#define DGRAM_MAX 1400

static atomic_int udp_errors;

/* Datagram i: DGRAM_MAX-cycling length, its index in the first 4 bytes, then
 * a pattern that depends on i. */
static size_t ping_fill(char *buf, int i)
{
	size_t len = 4 + ((size_t)i * 37) % (DGRAM_MAX - 4);
	uint32_t seq = (uint32_t)i;
	memcpy(buf, &seq, 4);
	for (size_t k = 4; k < len; k++)
		buf[k] = (char)(i * 31 + (int)k * 7);
	return len;
}

/* Echoes every datagram back to its sender until an empty one arrives. */
struct udp_echo_server {
	sp_future base;
	int out;
	sp_async_fd *s;
	int client_port;
	int echoed, wrong_port;
	char buf[DGRAM_MAX];
	sp_udp_recv_from rx;
	sp_udp_send_to tx;
	sp_timeout to;
};

static sp_poll udp_echo_server_poll(sp_future *f, sp_context *cx)
{
	struct udp_echo_server *self = (struct udp_echo_server *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_udp_recv_from_init(&self->rx, self->s, self->buf, sizeof(self->buf));
		sp_timeout_init(&self->to, &self->rx.base, BOUND_NS);
		SP_AWAIT(&self->to);
		if (self->to.out || self->rx.out < 0 || self->rx.truncated) {
			atomic_fetch_add(&udp_errors, 1);
			break;
		}
		if (self->rx.out == 0)
			break; /* the client is done */
		if (sp_sockaddr_port(&self->rx.from) != self->client_port)
			self->wrong_port++;
		sp_udp_send_to_addr_init(&self->tx, self->s, self->buf, (size_t)self->rx.out,
					 &self->rx.from);
		SP_AWAIT(&self->tx);
		if (self->tx.out != self->rx.out) {
			atomic_fetch_add(&udp_errors, 1);
			break;
		}
		self->echoed++;
	}
	SP_RETURN(0);
	SP_ASYNC_END();
}

/* Sends PINGS datagrams on a connected socket, each after the echo of the
 * one before, and checks every echo; then an empty datagram. */
struct udp_ping_client {
	sp_future base;
	int out;
	sp_async_fd *s;
	int i, ok;
	size_t len;
	char msg[DGRAM_MAX], back[DGRAM_MAX + 1];
	sp_udp_send tx;
	sp_udp_recv rx;
	sp_timeout to;
};

static sp_poll udp_ping_client_poll(sp_future *f, sp_context *cx)
{
	struct udp_ping_client *self = (struct udp_ping_client *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < PINGS; self->i++) {
		self->len = ping_fill(self->msg, self->i);
		sp_udp_send_init(&self->tx, self->s, self->msg, self->len);
		SP_AWAIT(&self->tx);
		if (self->tx.out != (ssize_t)self->len) {
			atomic_fetch_add(&udp_errors, 1);
			break;
		}
		sp_udp_recv_init(&self->rx, self->s, self->back, sizeof(self->back));
		sp_timeout_init(&self->to, &self->rx.base, BOUND_NS);
		SP_AWAIT(&self->to);
		if (self->to.out || self->rx.out != (ssize_t)self->len || self->rx.truncated ||
		    memcmp(self->msg, self->back, self->len)) {
			atomic_fetch_add(&udp_errors, 1);
			break;
		}
		self->ok++;
	}
	sp_udp_send_init(&self->tx, self->s, "", 0);
	SP_AWAIT(&self->tx);
	SP_RETURN(0);
	SP_ASYNC_END();
}

/* Spawned tasks report through these (their frames are the runtime's). */
static atomic_int pp_client_ok, pp_server_echoed, pp_server_wrong_port;

static sp_poll pp_client_poll(sp_future *f, sp_context *cx)
{
	struct udp_ping_client *self = (struct udp_ping_client *)f;
	sp_poll r = udp_ping_client_poll(f, cx);
	if (r == SP_READY)
		atomic_store(&pp_client_ok, self->ok);
	return r;
}

static sp_poll pp_server_poll(sp_future *f, sp_context *cx)
{
	struct udp_echo_server *self = (struct udp_echo_server *)f;
	sp_poll r = udp_echo_server_poll(f, cx);
	if (r == SP_READY) {
		atomic_store(&pp_server_echoed, self->echoed);
		atomic_store(&pp_server_wrong_port, self->wrong_port);
	}
	return r;
}

struct pp_root {
	sp_future base;
	int out;
	sp_async_fd *a, *b;
	sp_join_handle jc, js;
};

static sp_poll pp_root_poll(sp_future *f, sp_context *cx)
{
	struct pp_root *self = (struct pp_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_udp_bind(&self->a, "127.0.0.1", 0) || sp_udp_bind(&self->b, "127.0.0.1", 0))
		SP_RETURN(-1);
	if (sp_udp_connect(self->a, "127.0.0.1", (uint16_t)sp_udp_local_port(self->b)))
		SP_RETURN(-2);
	{
		struct udp_echo_server s = {.base = {.poll = pp_server_poll, .name = "server"},
					    .s = self->b,
					    .client_port = sp_udp_local_port(self->a)};
		struct udp_ping_client c = {.base = {.poll = pp_client_poll, .name = "client"},
					    .s = self->a};
		if (SP_SPAWN("server", &self->js, s) || SP_SPAWN("client", &self->jc, c))
			SP_RETURN(-3);
	}
	SP_AWAIT(&self->jc);
	SP_AWAIT(&self->js);
	sp_tcp_close(self->a);
	sp_tcp_close(self->b);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void udp__ping_pong_1000_datagrams_in_order(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct pp_root root = {.base = {.poll = pp_root_poll, .name = "pp_root"}};
	atomic_store(&udp_errors, 0);
	atomic_store(&pp_client_ok, -1);
	atomic_store(&pp_server_echoed, -1);
	atomic_store(&pp_server_wrong_port, -1);

	/* act */
	int rc = sp_block_on(rt, &root.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(root.out, 0);
	assert_int_equal(atomic_load(&udp_errors), 0);
	assert_int_equal(atomic_load(&pp_client_ok), PINGS);
	assert_int_equal(atomic_load(&pp_server_echoed), PINGS);
	assert_int_equal(atomic_load(&pp_server_wrong_port), 0);
}

/* ---- UDP: source address, truncation, errors ------------------------------------------ */

struct udp_from {
	sp_future base;
	int out;
	sp_async_fd *a, *b;
	int a_port, from_port;
	ssize_t sent, got;
	int family;
	char from_host[INET_ADDRSTRLEN];
	char buf[16];
	sp_udp_send_to tx;
	sp_udp_recv_from rx;
	sp_timeout to;
};

static sp_poll udp_from_poll(sp_future *f, sp_context *cx)
{
	struct udp_from *self = (struct udp_from *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_udp_bind(&self->a, NULL, 0) || sp_udp_bind(&self->b, NULL, 0))
		SP_RETURN(-1);
	self->a_port = sp_udp_local_port(self->a);
	sp_udp_send_to_init(&self->tx, self->a, "hi", 2, "127.0.0.1",
			    (uint16_t)sp_udp_local_port(self->b));
	SP_AWAIT(&self->tx);
	self->sent = self->tx.out;
	sp_udp_recv_from_init(&self->rx, self->b, self->buf, sizeof(self->buf));
	sp_timeout_init(&self->to, &self->rx.base, BOUND_NS);
	SP_AWAIT(&self->to);
	self->got = self->to.out ? self->to.out : self->rx.out;
	self->from_port = sp_sockaddr_port(&self->rx.from);
	self->family = self->rx.from.ss_family;
	inet_ntop(AF_INET, &((struct sockaddr_in *)&self->rx.from)->sin_addr, self->from_host,
		  sizeof(self->from_host));
	sp_tcp_close(self->a);
	sp_tcp_close(self->b);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void udp__recv_from_reports_the_sender(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct udp_from u = {.base = {.poll = udp_from_poll, .name = "udp_from"}};

	/* act */
	int rc = sp_block_on(rt, &u.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(u.out, 0);
	assert_int_equal(u.sent, 2);
	assert_int_equal(u.got, 2);
	assert_memory_equal(u.buf, "hi", 2);
	assert_true(u.a_port > 0);
	assert_int_equal(u.from_port, u.a_port);
	assert_int_equal(u.family, AF_INET);
	assert_string_equal(u.from_host, "127.0.0.1");
}

struct udp_trunc {
	sp_future base;
	int out;
	sp_async_fd *a, *b;
	char big[100];
	char buf[10];
	char first[10];
	ssize_t got1, got2;
	int trunc1, trunc2;
	sp_udp_send_to tx;
	sp_udp_recv rx;
	sp_timeout to;
};

static sp_poll udp_trunc_poll(sp_future *f, sp_context *cx)
{
	struct udp_trunc *self = (struct udp_trunc *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_udp_bind(&self->a, "127.0.0.1", 0) || sp_udp_bind(&self->b, "127.0.0.1", 0))
		SP_RETURN(-1);
	for (int k = 0; k < (int)sizeof(self->big); k++)
		self->big[k] = (char)('A' + k % 26);
	sp_udp_send_to_init(&self->tx, self->a, self->big, sizeof(self->big), "127.0.0.1",
			    (uint16_t)sp_udp_local_port(self->b));
	SP_AWAIT(&self->tx);
	if (self->tx.out != (ssize_t)sizeof(self->big))
		SP_RETURN(-2);
	sp_udp_send_to_init(&self->tx, self->a, "small", 5, "127.0.0.1",
			    (uint16_t)sp_udp_local_port(self->b));
	SP_AWAIT(&self->tx);
	if (self->tx.out != 5)
		SP_RETURN(-3);
	/* a 100-byte datagram into 10 bytes: cut, and its tail is gone */
	sp_udp_recv_init(&self->rx, self->b, self->buf, sizeof(self->buf));
	sp_timeout_init(&self->to, &self->rx.base, BOUND_NS);
	SP_AWAIT(&self->to);
	self->got1 = self->to.out ? self->to.out : self->rx.out;
	self->trunc1 = self->rx.truncated;
	memcpy(self->first, self->buf, sizeof(self->first));
	/* the next receive gets the next datagram, whole */
	sp_udp_recv_init(&self->rx, self->b, self->buf, sizeof(self->buf));
	sp_timeout_init(&self->to, &self->rx.base, BOUND_NS);
	SP_AWAIT(&self->to);
	self->got2 = self->to.out ? self->to.out : self->rx.out;
	self->trunc2 = self->rx.truncated;
	sp_tcp_close(self->a);
	sp_tcp_close(self->b);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void udp__short_buffer_truncates_one_datagram(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	struct udp_trunc u = {.base = {.poll = udp_trunc_poll, .name = "udp_trunc"}};

	/* act */
	int rc = sp_block_on(rt, &u.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(u.out, 0);
	assert_int_equal(u.got1, 10);
	assert_int_equal(u.trunc1, 1);
	assert_memory_equal(u.first, "ABCDEFGHIJ", 10);
	assert_int_equal(u.got2, 5);
	assert_int_equal(u.trunc2, 0);
	assert_memory_equal(u.buf, "small", 5);
}

struct udp_errs {
	sp_future base;
	int out;
	int bind_bad_host;
	ssize_t send_unconnected, send_to_bad_host, send_too_big, send_to_null, recv_null;
	sp_async_fd *a;
	char *big;
	char buf[16];
	sp_udp_send tx;
	sp_udp_recv rx;
};

static sp_poll udp_errs_poll(sp_future *f, sp_context *cx)
{
	struct udp_errs *self = (struct udp_errs *)f;
	sp_async_fd *dummy = NULL;
	SP_ASYNC_BEGIN(f, cx);
	self->bind_bad_host = sp_udp_bind(&dummy, "localhost", 0);
	if (dummy)
		sp_tcp_close(dummy);
	if (sp_udp_bind(&self->a, "127.0.0.1", 0))
		SP_RETURN(-1);
	sp_udp_send_init(&self->tx, self->a, "x", 1);
	SP_AWAIT(&self->tx);
	self->send_unconnected = self->tx.out;
	sp_udp_send_to_init(&self->tx, self->a, "x", 1, "not-an-address", 9);
	SP_AWAIT(&self->tx);
	self->send_to_bad_host = self->tx.out;
	sp_udp_send_to_addr_init(&self->tx, self->a, "x", 1, NULL);
	SP_AWAIT(&self->tx);
	self->send_to_null = self->tx.out;
	sp_udp_send_to_init(&self->tx, self->a, self->big, 70000, "127.0.0.1",
			    (uint16_t)sp_udp_local_port(self->a));
	SP_AWAIT(&self->tx);
	self->send_too_big = self->tx.out;
	sp_udp_recv_init(&self->rx, NULL, self->buf, sizeof(self->buf));
	SP_AWAIT(&self->rx);
	self->recv_null = self->rx.out;
	sp_tcp_close(self->a);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void udp__errors_are_negative_errno(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct udp_errs u = {.base = {.poll = udp_errs_poll, .name = "udp_errs"},
			     .big = calloc(1, 70000)};

	/* act */
	int rc = sp_block_on(rt, &u.base);
	sp_runtime_free(rt);
	free(u.big);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(u.out, 0);
	assert_int_equal(u.bind_bad_host, SP_EINVAL);
	assert_int_equal(u.send_unconnected, -EDESTADDRREQ);
	assert_int_equal(u.send_to_bad_host, SP_EINVAL);
	assert_int_equal(u.send_to_null, SP_EINVAL);
	assert_int_equal(u.send_too_big, -EMSGSIZE);
	assert_int_equal(u.recv_null, SP_EINVAL);
}

/* Counts the polls of the future it wraps. */
struct counted {
	sp_future base;
	int out;
	sp_future *inner;
	int polls;
};

static sp_poll counted_poll(sp_future *f, sp_context *cx)
{
	struct counted *self = (struct counted *)f;
	self->polls++;
	return sp_future_poll(self->inner, cx);
}

static void counted_drop(sp_future *f)
{
	struct counted *self = (struct counted *)f;
	sp_future_drop(self->inner);
}

static void counted_init(struct counted *c, sp_future *inner)
{
	*c = (struct counted){
		.base = {.poll = counted_poll, .drop = counted_drop, .name = "counted"},
		.inner = inner};
}

/*
 * A connected socket learns of a closed peer port from the ICMP error: one
 * receive reports SP_ECONNREFUSED, and the socket goes on working. Run in a
 * spawned task, whose budget turns a receive that spins on the consumed
 * error into many polls rather than a hang.
 */
struct udp_icmp {
	sp_future base;
	int out;
	uint16_t closed_port;
	sp_async_fd *c, *p;
	ssize_t sent, refused, idle, echoed, reply;
	int idle_polls, reply_polls;
	struct udp_icmp *report;
	char buf[16];
	sp_udp_send tx;
	sp_udp_recv_from rx;
	struct counted cnt;
	sp_timeout to;
};

static sp_poll udp_icmp_poll(sp_future *f, sp_context *cx)
{
	struct udp_icmp *self = (struct udp_icmp *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_udp_bind(&self->c, "127.0.0.1", 0) || sp_udp_bind(&self->p, "127.0.0.1", 0) ||
	    sp_udp_connect(self->c, "127.0.0.1", self->closed_port))
		SP_RETURN(-1);
	sp_udp_send_init(&self->tx, self->c, "ping", 4);
	SP_AWAIT(&self->tx);
	self->sent = self->tx.out;
	sp_udp_recv_init(&self->rx, self->c, self->buf, sizeof(self->buf));
	sp_timeout_init(&self->to, &self->rx.base, BOUND_NS);
	SP_AWAIT(&self->to);
	self->refused = self->to.out ? self->to.out : self->rx.out;
	/* nothing comes: the receive waits (without spinning) */
	sp_udp_recv_init(&self->rx, self->c, self->buf, sizeof(self->buf));
	counted_init(&self->cnt, &self->rx.base);
	sp_timeout_init(&self->to, &self->cnt.base, SP_MS(50));
	SP_AWAIT(&self->to);
	self->idle = self->to.out ? self->to.out : self->rx.out;
	self->idle_polls = self->cnt.polls;
	/* a new peer: datagrams flow again */
	if (sp_udp_connect(self->c, "127.0.0.1", (uint16_t)sp_udp_local_port(self->p)))
		SP_RETURN(-2);
	sp_udp_send_init(&self->tx, self->c, "again", 5);
	SP_AWAIT(&self->tx);
	sp_udp_recv_from_init(&self->rx, self->p, self->buf, sizeof(self->buf));
	sp_timeout_init(&self->to, &self->rx.base, BOUND_NS);
	SP_AWAIT(&self->to);
	self->echoed = self->to.out ? self->to.out : self->rx.out;
	if (self->echoed != 5)
		SP_RETURN(-3);
	sp_udp_send_to_addr_init(&self->tx, self->p, self->buf, 5, &self->rx.from);
	SP_AWAIT(&self->tx);
	memset(self->buf, 0, sizeof(self->buf));
	sp_udp_recv_init(&self->rx, self->c, self->buf, sizeof(self->buf));
	counted_init(&self->cnt, &self->rx.base);
	sp_timeout_init(&self->to, &self->cnt.base, BOUND_NS);
	SP_AWAIT(&self->to);
	self->reply = self->to.out ? self->to.out : self->rx.out;
	self->reply_polls = self->cnt.polls;
	sp_tcp_close(self->c);
	sp_tcp_close(self->p);
	memcpy(self->report, self, sizeof(*self)); /* the results, for the main thread */
	SP_RETURN(0);
	SP_ASYNC_END();
}

struct spawn_one {
	sp_future base;
	int out;
	int task_out;
	struct udp_icmp *task;
	sp_join_handle jh;
};

static sp_poll spawn_one_poll(sp_future *f, sp_context *cx)
{
	struct spawn_one *self = (struct spawn_one *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (SP_SPAWN_OUT("udp_icmp", &self->jh, *self->task))
		SP_RETURN(-1);
	self->jh.dst = &self->task_out;
	SP_AWAIT(&self->jh);
	SP_RETURN(self->jh.status);
	SP_ASYNC_END();
}

static uint16_t closed_udp_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void udp__connected_socket_works_on_after_icmp_error(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct udp_icmp t = {.base = {.poll = udp_icmp_poll, .name = "udp_icmp"},
			     .closed_port = closed_udp_port(),
			     .report = &t};
	struct spawn_one root = {
		.base = {.poll = spawn_one_poll, .name = "root"}, .task_out = -1, .task = &t};

	/* act */
	int rc = sp_block_on(rt, &root.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(root.out, 0);
	assert_int_equal(root.task_out, 0);
	assert_int_equal(t.sent, 4);
	assert_int_equal(t.refused, SP_ECONNREFUSED);
	assert_int_equal(t.idle, SP_ETIMEDOUT);
	assert_true(t.idle_polls < 50); /* a spin would be thousands */
	assert_int_equal(t.echoed, 5);
	assert_int_equal(t.reply, 5);
	assert_memory_equal(t.buf, "again", 5);
}

/* ---- futures whose socket is freed, or which are aborted, while they wait ---------- */

struct udp_waiter {
	sp_future base;
	ssize_t out;
	sp_async_fd *s;
	char buf[8];
	sp_udp_recv rx;
};

static sp_poll udp_waiter_poll(sp_future *f, sp_context *cx)
{
	struct udp_waiter *self = (struct udp_waiter *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_udp_recv_init(&self->rx, self->s, self->buf, sizeof(self->buf));
	SP_AWAIT(&self->rx);
	SP_RETURN(self->rx.out);
	SP_ASYNC_END();
}

struct unix_acceptor {
	sp_future base;
	int out;
	sp_async_fd *l;
	sp_unix_accept acc;
};

static sp_poll unix_acceptor_poll(sp_future *f, sp_context *cx)
{
	struct unix_acceptor *self = (struct unix_acceptor *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_unix_accept_init(&self->acc, self->l);
	SP_AWAIT(&self->acc);
	sp_tcp_close(self->acc.stream);
	SP_RETURN(self->acc.out);
	SP_ASYNC_END();
}

/* Make the sockets on a runtime thread (registration needs one). */
struct make_socks {
	sp_future base;
	int out;
	const char *path;
	sp_async_fd *udp, *listener;
};

static sp_poll make_socks_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct make_socks *self = (struct make_socks *)f;
	self->out = sp_udp_bind(&self->udp, "127.0.0.1", 0);
	if (!self->out)
		self->out = sp_unix_listen(&self->listener, self->path, 16);
	return SP_READY;
}

static void sockets__free_while_pending_gives_ebadf(void **state)
{
	(void)state;
	/* arrange */
	char path[64];
	snprintf(path, sizeof(path), "@spindle-test-free-%d", (int)getpid());
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct make_socks m = {.base = {.poll = make_socks_poll}, .path = path};
	assert_int_equal(sp_block_on(rt, &m.base), 0);
	assert_int_equal(m.out, 0);
	int ufd = sp_async_fd_fd(m.udp), lfd = sp_async_fd_fd(m.listener);
	struct udp_waiter w = {.base = {.poll = udp_waiter_poll, .name = "udp_waiter"}, .s = m.udp};
	struct unix_acceptor a = {.base = {.poll = unix_acceptor_poll, .name = "acceptor"},
				  .l = m.listener};
	sp_join_handle jw, ja;
	ssize_t got_w = 0;
	int got_a = 0;
	assert_int_equal(SP_RUNTIME_SPAWN_OUT(rt, "udp_waiter", &jw, w), 0);
	assert_int_equal(SP_RUNTIME_SPAWN_OUT(rt, "acceptor", &ja, a), 0);
	jw.dst = &got_w;
	ja.dst = &got_a;
	int idle = SPT_WAIT_UNTIL(spt_task_idle(rt, sp_join_handle_id(&jw)) &&
					  spt_task_idle(rt, sp_join_handle_id(&ja)),
				  SPT_SOON_MS);

	/* act */
	sp_async_fd_free(m.udp);
	sp_async_fd_free(m.listener);
	int st_w = sp_join_handle_wait(&jw);
	int st_a = sp_join_handle_wait(&ja);
	close(ufd);
	close(lfd);
	sp_runtime_free(rt);

	/* assert */
	assert_true(idle);
	assert_int_equal(st_w, 0);
	assert_int_equal(st_a, 0);
	assert_int_equal(got_w, SP_EBADF);
	assert_int_equal(got_a, SP_EBADF);
}

/* Aborting the waiting tasks drops their futures, which must give their
 * references back: the sockets are then freed by the close (LeakSanitizer
 * would report the registrations otherwise). */
static void sockets__abort_while_pending_releases_the_socket(void **state)
{
	(void)state;
	/* arrange */
	char path[64];
	snprintf(path, sizeof(path), "@spindle-test-abort-%d", (int)getpid());
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct make_socks m = {.base = {.poll = make_socks_poll}, .path = path};
	assert_int_equal(sp_block_on(rt, &m.base), 0);
	assert_int_equal(m.out, 0);
	struct udp_waiter w = {.base = {.poll = udp_waiter_poll, .name = "udp_waiter"}, .s = m.udp};
	struct unix_acceptor a = {.base = {.poll = unix_acceptor_poll, .name = "acceptor"},
				  .l = m.listener};
	sp_join_handle jw, ja;
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "udp_waiter", &jw, w), 0);
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "acceptor", &ja, a), 0);
	int idle = SPT_WAIT_UNTIL(spt_task_idle(rt, sp_join_handle_id(&jw)) &&
					  spt_task_idle(rt, sp_join_handle_id(&ja)),
				  SPT_SOON_MS);

	/* act */
	sp_join_handle_abort(&jw);
	sp_join_handle_abort(&ja);
	int st_w = sp_join_handle_wait(&jw);
	int st_a = sp_join_handle_wait(&ja);
	sp_tcp_close(m.udp);
	sp_unix_close(m.listener);
	sp_runtime_free(rt);

	/* assert */
	assert_true(idle);
	assert_int_equal(st_w, SP_ECANCELED);
	assert_int_equal(st_a, SP_ECANCELED);
}

/* ---- Unix echo ---------------------------------------------------------------------- */

#define UNIX_CONNS 100
#define ROUNDS 10
#define MSG 64

static atomic_int echo_errors, echoed_ok;

struct echo_server {
	sp_future base;
	int out;
	sp_async_fd *l;
	int n, i;
	sp_unix_accept acc;
};

static sp_poll echo_server_poll(sp_future *f, sp_context *cx)
{
	struct echo_server *self = (struct echo_server *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->n; self->i++) {
		sp_unix_accept_init(&self->acc, self->l);
		SP_AWAIT(&self->acc);
		if (self->acc.out) {
			atomic_fetch_add(&echo_errors, 1);
			continue;
		}
		if (spt_spawn_echo_conn(self->acc.stream, &echo_errors))
			atomic_fetch_add(&echo_errors, 1);
	}
	SP_ASYNC_END();
}

struct echo_client {
	sp_future base;
	int out;
	const char *path;
	int r;
	char msg[MSG], back[MSG];
	sp_unix_connect conn;
	sp_io_rw wr, rd;
};

static sp_poll echo_client_poll(sp_future *f, sp_context *cx)
{
	struct echo_client *self = (struct echo_client *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_unix_connect_init(&self->conn, self->path);
	SP_AWAIT(&self->conn);
	if (self->conn.out) {
		atomic_fetch_add(&echo_errors, 1);
		SP_RETURN(-1);
	}
	for (self->r = 0; self->r < ROUNDS; self->r++) {
		memset(self->msg, 'a' + self->r, MSG);
		sp_io_write_all_init(&self->wr, self->conn.stream, self->msg, MSG);
		SP_AWAIT(&self->wr);
		sp_io_read_exact_init(&self->rd, self->conn.stream, self->back, MSG);
		SP_AWAIT(&self->rd);
		if (self->wr.out != MSG || self->rd.out != MSG ||
		    memcmp(self->msg, self->back, MSG)) {
			atomic_fetch_add(&echo_errors, 1);
			break;
		}
	}
	if (self->r == ROUNDS)
		atomic_fetch_add(&echoed_ok, 1);
	sp_tcp_close(self->conn.stream);
	SP_ASYNC_END();
}

struct echo_root {
	sp_future base;
	int out;
	int n, i;
	const char *path;
	int file_while_listening, file_after_close;
	sp_async_fd *l;
	sp_join_handle server;
	sp_join_handle *clients;
};

static sp_poll echo_root_poll(sp_future *f, sp_context *cx)
{
	struct echo_root *self = (struct echo_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_unix_listen(&self->l, self->path, 4096))
		SP_RETURN(-1);
	self->file_while_listening = path_exists(self->path);
	{
		struct echo_server s = {.base = {.poll = echo_server_poll, .name = "server"},
					.l = self->l,
					.n = self->n};
		if (SP_SPAWN("server", &self->server, s))
			SP_RETURN(-2);
	}
	for (self->i = 0; self->i < self->n; self->i++) {
		struct echo_client c = {.base = {.poll = echo_client_poll, .name = "client"},
					.path = self->path};
		if (SP_SPAWN("client", &self->clients[self->i], c))
			SP_RETURN(-3);
	}
	for (self->i = 0; self->i < self->n; self->i++)
		SP_AWAIT(&self->clients[self->i]);
	SP_AWAIT(&self->server);
	sp_unix_close(self->l);
	self->file_after_close = path_exists(self->path);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void unix__echo_with_many_concurrent_connections(void **state)
{
	(void)state;
	/* arrange */
	char path[128];
	tmpdir_make();
	tmpdir_path(path, sizeof(path), "echo.sock");
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct echo_root root = {.base = {.poll = echo_root_poll, .name = "echo_root"},
				 .n = UNIX_CONNS,
				 .path = path};
	root.clients = calloc(UNIX_CONNS, sizeof(sp_join_handle));
	atomic_store(&echo_errors, 0);
	atomic_store(&echoed_ok, 0);

	/* act */
	int rc = sp_block_on(rt, &root.base);
	sp_runtime_free(rt);
	free(root.clients);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(root.out, 0);
	assert_int_equal(atomic_load(&echo_errors), 0);
	assert_int_equal(atomic_load(&echoed_ok), UNIX_CONNS);
	assert_true(root.file_while_listening);
	assert_false(root.file_after_close); /* sp_unix_close removed it */
	tmpdir_remove();
}

/* ---- Unix: missing and stale paths, listen over existing files --------------------- */

/* Bind a socket to path and close it: the file stays, nobody listens. */
static void make_stale_socket_file(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

struct unix_refused {
	sp_future base;
	int out;
	const char *missing, *stale, *abstract;
	int r_missing, r_stale, r_abstract, r_empty;
	sp_unix_connect conn;
};

static sp_poll unix_refused_poll(sp_future *f, sp_context *cx)
{
	struct unix_refused *self = (struct unix_refused *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_unix_connect_init(&self->conn, self->missing);
	SP_AWAIT(&self->conn);
	self->r_missing = self->conn.out;
	sp_unix_connect_init(&self->conn, self->stale);
	SP_AWAIT(&self->conn);
	self->r_stale = self->conn.out;
	sp_unix_connect_init(&self->conn, self->abstract);
	SP_AWAIT(&self->conn);
	self->r_abstract = self->conn.out;
	sp_unix_connect_init(&self->conn, "");
	SP_AWAIT(&self->conn);
	self->r_empty = self->conn.out;
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void unix__connect_without_listener_fails(void **state)
{
	(void)state;
	/* arrange */
	char missing[128], stale[128], abstract[64];
	tmpdir_make();
	tmpdir_path(missing, sizeof(missing), "missing.sock");
	tmpdir_path(stale, sizeof(stale), "stale.sock");
	snprintf(abstract, sizeof(abstract), "@spindle-test-nobody-%d", (int)getpid());
	make_stale_socket_file(stale);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct unix_refused u = {.base = {.poll = unix_refused_poll, .name = "refused"},
				 .missing = missing,
				 .stale = stale,
				 .abstract = abstract};

	/* act */
	int rc = sp_block_on(rt, &u.base);
	sp_runtime_free(rt);
	unlink(stale);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(u.out, 0);
	assert_int_equal(u.r_missing, -ENOENT);
	assert_int_equal(u.r_stale, SP_ECONNREFUSED);
	assert_int_equal(u.r_abstract, SP_ECONNREFUSED);
	assert_int_equal(u.r_empty, SP_EINVAL);
	tmpdir_remove();
}

struct unix_files {
	sp_future base;
	int out;
	const char *sock_path, *file_path, *long_path;
	int r_stale, r_live, r_file, r_long, r_empty;
	int accepted, file_after_stream_close, file_after_close;
	sp_async_fd *l, *l2;
	sp_unix_connect conn;
	sp_unix_accept acc;
};

static sp_poll unix_files_poll(sp_future *f, sp_context *cx)
{
	struct unix_files *self = (struct unix_files *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->r_stale = sp_unix_listen(&self->l, self->sock_path, 16); /* replaces the file */
	if (self->r_stale)
		SP_RETURN(-1);
	sp_unix_connect_init(&self->conn, self->sock_path);
	SP_AWAIT(&self->conn);
	sp_unix_accept_init(&self->acc, self->l);
	SP_AWAIT(&self->acc);
	self->accepted = self->conn.out == 0 && self->acc.out == 0;
	self->r_live = sp_unix_listen(&self->l2, self->sock_path, 16);
	self->r_file = sp_unix_listen(&self->l2, self->file_path, 16);
	self->r_long = sp_unix_listen(&self->l2, self->long_path, 16);
	self->r_empty = sp_unix_listen(&self->l2, "", 16);
	/* an accepted stream reports the listener's path but does not own it */
	sp_unix_close(self->acc.stream);
	self->file_after_stream_close = path_exists(self->sock_path);
	sp_unix_close(self->conn.stream);
	sp_unix_close(self->l);
	self->file_after_close = path_exists(self->sock_path);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void unix__listen_replaces_only_a_stale_socket_file(void **state)
{
	(void)state;
	/* arrange */
	char sock_path[128], file_path[128], long_path[200];
	tmpdir_make();
	tmpdir_path(sock_path, sizeof(sock_path), "s.sock");
	tmpdir_path(file_path, sizeof(file_path), "plain");
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	make_stale_socket_file(sock_path);
	int fd = open(file_path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	struct unix_files u = {.base = {.poll = unix_files_poll, .name = "files"},
			       .sock_path = sock_path,
			       .file_path = file_path,
			       .long_path = long_path};

	/* act */
	int rc = sp_block_on(rt, &u.base);
	sp_runtime_free(rt);
	int plain_kept = path_exists(file_path);
	unlink(file_path);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(u.out, 0);
	assert_int_equal(u.r_stale, 0);
	assert_true(u.accepted);
	assert_int_equal(u.r_live, -EADDRINUSE);
	assert_int_equal(u.r_file, -EADDRINUSE);
	assert_int_equal(u.r_long, -ENAMETOOLONG);
	assert_int_equal(u.r_empty, SP_EINVAL);
	assert_true(plain_kept);
	assert_true(u.file_after_stream_close);
	assert_false(u.file_after_close);
	tmpdir_remove();
}

/* ---- Unix: half-close, abstract namespace, EPIPE ------------------------------------ */

/* A connected pair through a listener on path: l, client, server. */
struct unix_pair {
	sp_future base;
	int out;
	const char *path;
	sp_async_fd *l, *client, *server;
	ssize_t eof_read, reply_read, client_write, write_after_close;
	int mode;
	char buf[16];
	sp_unix_connect conn;
	sp_unix_accept acc;
	sp_io_rw rd, wr;
	sp_timeout to;
};

enum { PAIR_HALF_CLOSE, PAIR_EXCHANGE, PAIR_EPIPE };

static sp_poll unix_pair_poll(sp_future *f, sp_context *cx)
{
	struct unix_pair *self = (struct unix_pair *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_unix_listen(&self->l, self->path, 16))
		SP_RETURN(-1);
	sp_unix_connect_init(&self->conn, self->path);
	SP_AWAIT(&self->conn);
	sp_unix_accept_init(&self->acc, self->l);
	SP_AWAIT(&self->acc);
	if (self->conn.out || self->acc.out)
		SP_RETURN(-2);
	self->client = self->conn.stream;
	self->server = self->acc.stream;
	if (self->mode == PAIR_HALF_CLOSE) {
		/* the client is done sending: the server reads EOF, and can
		 * still answer */
		sp_tcp_shutdown(self->client, SHUT_WR);
		sp_io_read_init(&self->rd, self->server, self->buf, sizeof(self->buf));
		sp_timeout_init(&self->to, &self->rd.base, BOUND_NS);
		SP_AWAIT(&self->to);
		self->eof_read = self->to.out ? self->to.out : self->rd.out;
		sp_io_write_all_init(&self->wr, self->server, "bye", 3);
		SP_AWAIT(&self->wr);
		sp_io_read_exact_init(&self->rd, self->client, self->buf, 3);
		sp_timeout_init(&self->to, &self->rd.base, BOUND_NS);
		SP_AWAIT(&self->to);
		self->reply_read = self->to.out ? self->to.out : self->rd.out;
	} else if (self->mode == PAIR_EXCHANGE) {
		sp_io_write_all_init(&self->wr, self->client, "ping", 4);
		SP_AWAIT(&self->wr);
		self->client_write = self->wr.out;
		sp_io_read_exact_init(&self->rd, self->server, self->buf, 4);
		sp_timeout_init(&self->to, &self->rd.base, BOUND_NS);
		SP_AWAIT(&self->to);
		self->reply_read = self->to.out ? self->to.out : self->rd.out;
	} else {
		/* the peer is gone: the write fails, no SIGPIPE */
		sp_tcp_close(self->server);
		self->server = NULL;
		sp_io_write_all_init(&self->wr, self->client, "x", 1);
		SP_AWAIT(&self->wr);
		self->write_after_close = self->wr.out;
	}
	sp_tcp_close(self->client);
	sp_tcp_close(self->server);
	sp_unix_close(self->l);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void unix__half_close_reads_eof(void **state)
{
	(void)state;
	/* arrange */
	char path[128];
	tmpdir_make();
	tmpdir_path(path, sizeof(path), "half.sock");
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct unix_pair p = {.base = {.poll = unix_pair_poll, .name = "half_close"},
			      .path = path,
			      .mode = PAIR_HALF_CLOSE};

	/* act */
	int rc = sp_block_on(rt, &p.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(p.out, 0);
	assert_int_equal(p.eof_read, 0);
	assert_int_equal(p.reply_read, 3);
	assert_memory_equal(p.buf, "bye", 3);
	tmpdir_remove();
}

static void unix__abstract_namespace_socket_works(void **state)
{
	(void)state;
	/* arrange */
	char path[64];
	snprintf(path, sizeof(path), "@spindle-test-abstract-%d", (int)getpid());
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct unix_pair p = {.base = {.poll = unix_pair_poll, .name = "abstract"},
			      .path = path,
			      .mode = PAIR_EXCHANGE};

	/* act */
	int rc = sp_block_on(rt, &p.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(p.out, 0);
	assert_int_equal(p.client_write, 4);
	assert_int_equal(p.reply_read, 4);
	assert_memory_equal(p.buf, "ping", 4);
	assert_false(path_exists(path)); /* no file, not even one named "@..." */
	assert_false(path_exists(path + 1));
}

static void unix__write_to_closed_peer_is_epipe_without_sigpipe(void **state)
{
	(void)state;
	/* arrange: SIGPIPE keeps its default action, which would end the test */
	char path[64];
	snprintf(path, sizeof(path), "@spindle-test-epipe-%d", (int)getpid());
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	struct unix_pair p = {.base = {.poll = unix_pair_poll, .name = "epipe"},
			      .path = path,
			      .mode = PAIR_EPIPE};

	/* act */
	int rc = sp_block_on(rt, &p.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(p.out, 0);
	assert_int_equal(p.write_after_close, SP_EPIPE);
}

/* ---- Unix: connects wait out a full backlog ------------------------------------------ */

#define BACKLOG_CLIENTS 8

static atomic_int bl_errors, bl_connected, bl_before_accepting;
static atomic_bool bl_accepting;

struct bl_client {
	sp_future base;
	int out;
	const char *path;
	sp_unix_connect conn;
	sp_timeout to;
};

static sp_poll bl_client_poll(sp_future *f, sp_context *cx)
{
	struct bl_client *self = (struct bl_client *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_unix_connect_init(&self->conn, self->path);
	sp_timeout_init(&self->to, &self->conn.base, BOUND_NS);
	SP_AWAIT(&self->to);
	if (self->to.out || self->conn.out) {
		atomic_fetch_add(&bl_errors, 1);
		SP_RETURN(-1);
	}
	if (!atomic_load(&bl_accepting))
		atomic_fetch_add(&bl_before_accepting, 1);
	atomic_fetch_add(&bl_connected, 1);
	sp_tcp_close(self->conn.stream);
	SP_RETURN(0);
	SP_ASYNC_END();
}

struct bl_root {
	sp_future base;
	int out;
	const char *path;
	int i, accepted;
	sp_async_fd *l;
	sp_join_handle clients[BACKLOG_CLIENTS];
	sp_sleep nap;
	sp_unix_accept acc;
	sp_timeout to;
};

static sp_poll bl_root_poll(sp_future *f, sp_context *cx)
{
	struct bl_root *self = (struct bl_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_unix_listen(&self->l, self->path, 1))
		SP_RETURN(-1);
	for (self->i = 0; self->i < BACKLOG_CLIENTS; self->i++) {
		struct bl_client c = {.base = {.poll = bl_client_poll, .name = "client"},
				      .path = self->path};
		if (SP_SPAWN("client", &self->clients[self->i], c))
			SP_RETURN(-2);
	}
	/* let every client try while nobody accepts: the queue fills */
	sp_sleep_init(&self->nap, SP_MS(30));
	SP_AWAIT(&self->nap);
	atomic_store(&bl_accepting, true);
	for (self->i = 0; self->i < BACKLOG_CLIENTS; self->i++) {
		sp_unix_accept_init(&self->acc, self->l);
		sp_timeout_init(&self->to, &self->acc.base, BOUND_NS);
		SP_AWAIT(&self->to);
		if (self->to.out || self->acc.out)
			break;
		sp_tcp_close(self->acc.stream);
		self->accepted++;
	}
	for (self->i = 0; self->i < BACKLOG_CLIENTS; self->i++)
		SP_AWAIT(&self->clients[self->i]);
	sp_unix_close(self->l);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void unix__connect_waits_while_backlog_is_full(void **state)
{
	(void)state;
	/* arrange: one thread, so every client tries during the root's nap */
	char path[64];
	snprintf(path, sizeof(path), "@spindle-test-backlog-%d", (int)getpid());
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	struct bl_root root = {.base = {.poll = bl_root_poll, .name = "backlog"}, .path = path};
	atomic_store(&bl_errors, 0);
	atomic_store(&bl_connected, 0);
	atomic_store(&bl_before_accepting, 0);
	atomic_store(&bl_accepting, false);

	/* act */
	int rc = sp_block_on(rt, &root.base);
	sp_runtime_free(rt);

	/* assert: a backlog of 1 admits at most 2 before the first accept */
	assert_int_equal(rc, 0);
	assert_int_equal(root.out, 0);
	assert_int_equal(atomic_load(&bl_errors), 0);
	assert_int_equal(atomic_load(&bl_connected), BACKLOG_CLIENTS);
	assert_int_equal(root.accepted, BACKLOG_CLIENTS);
	assert_true(atomic_load(&bl_before_accepting) <= 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(udp__ping_pong_1000_datagrams_in_order),
		cmocka_unit_test(udp__recv_from_reports_the_sender),
		cmocka_unit_test(udp__short_buffer_truncates_one_datagram),
		cmocka_unit_test(udp__errors_are_negative_errno),
		cmocka_unit_test(udp__connected_socket_works_on_after_icmp_error),
		cmocka_unit_test(sockets__free_while_pending_gives_ebadf),
		cmocka_unit_test(sockets__abort_while_pending_releases_the_socket),
		cmocka_unit_test(unix__echo_with_many_concurrent_connections),
		cmocka_unit_test(unix__connect_without_listener_fails),
		cmocka_unit_test(unix__listen_replaces_only_a_stale_socket_file),
		cmocka_unit_test(unix__half_close_reads_eof),
		cmocka_unit_test(unix__abstract_namespace_socket_works),
		cmocka_unit_test(unix__write_to_closed_peer_is_epipe_without_sigpipe),
		cmocka_unit_test(unix__connect_waits_while_backlog_is_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
