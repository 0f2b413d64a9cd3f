/*
 * test_net.c - readiness and wakers on a socketpair, TCP echo with many
 * concurrent connections over loopback, half-close, refused connects, and a
 * registration freed while a read waits on it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit/sp_test.h"

/* ---- socketpair readiness --------------------------------------------------------- */

struct pair_reader {
	sp_future base;
	int out;
	int fd;
	sp_async_fd *afd;
	char buf[16];
	ssize_t got;
	sp_io_rw rd;
};

static sp_poll pair_reader_poll(sp_future *f, sp_context *cx)
{
	struct pair_reader *self = (struct pair_reader *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_async_fd_new(&self->afd, self->fd))
		SP_RETURN(-1);
	sp_io_read_init(&self->rd, self->afd, self->buf, sizeof(self->buf));
	SP_AWAIT(&self->rd);
	self->got = self->rd.out;
	sp_async_fd_free(self->afd);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void *late_writer(void *arg)
{
	int fd = *(int *)arg;
	spt_sleep_ms(20);
	ssize_t w = write(fd, "hello", 5);
	(void)w;
	return NULL;
}

static void net__socketpair_read_waits_for_data(void **state)
{
	(void)state;
	/* arrange */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct pair_reader r = {.base = {.poll = pair_reader_poll, .name = "reader"}, .fd = sv[0]};
	pthread_t th = spt_thread(late_writer, &sv[1]);

	/* act */
	uint64_t t0 = spt_now_ns();
	int rc = sp_block_on(rt, &r.base);
	uint64_t took = spt_now_ns() - t0;
	pthread_join(th, NULL);
	sp_runtime_free(rt);
	close(sv[0]);
	close(sv[1]);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(r.out, 0);
	assert_int_equal(r.got, 5);
	assert_memory_equal(r.buf, "hello", 5);
	assert_true(took >= SP_MS(15));
}

/* ---- echo -------------------------------------------------------------------------- */

#define ROUNDS 10
#define MSG 64

static atomic_int echo_errors, echoed_ok;

struct server {
	sp_future base;
	int out;
	sp_async_fd *l;
	int n, i;
	sp_tcp_accept acc;
};

static sp_poll server_poll(sp_future *f, sp_context *cx)
{
	struct server *self = (struct server *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->n; self->i++) {
		sp_tcp_accept_init(&self->acc, self->l);
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

struct client {
	sp_future base;
	int out;
	uint16_t port;
	int r;
	char msg[MSG], back[MSG];
	sp_tcp_connect conn;
	sp_io_rw wr, rd;
};

static sp_poll client_poll(sp_future *f, sp_context *cx)
{
	struct client *self = (struct client *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_tcp_connect_init(&self->conn, "127.0.0.1", self->port, SP_MS(10000));
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
		if (self->wr.out != MSG || self->rd.out != MSG || memcmp(self->msg, self->back, MSG)) {
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
	sp_async_fd *l;
	sp_join_handle server;
	sp_join_handle *clients;
};

static sp_poll echo_root_poll(sp_future *f, sp_context *cx)
{
	struct echo_root *self = (struct echo_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_tcp_listen(&self->l, "127.0.0.1", 0, 4096))
		SP_RETURN(-1);
	{
		struct server s = {.base = {.poll = server_poll, .name = "server"},
				   .l = self->l,
				   .n = self->n};
		if (SP_SPAWN("server", &self->server, s))
			SP_RETURN(-2);
	}
	for (self->i = 0; self->i < self->n; self->i++) {
		struct client c = {.base = {.poll = client_poll, .name = "client"},
				   .port = (uint16_t)sp_tcp_local_port(self->l)};
		if (SP_SPAWN("client", &self->clients[self->i], c))
			SP_RETURN(-3);
	}
	for (self->i = 0; self->i < self->n; self->i++)
		SP_AWAIT(&self->clients[self->i]);
	SP_AWAIT(&self->server);
	sp_tcp_close(self->l);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void net__echo_with_many_concurrent_connections(void **state)
{
	(void)state;
	/* arrange */
	int n = (int)spt_scaled(1000, 50);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct echo_root root = {.base = {.poll = echo_root_poll, .name = "echo_root"}, .n = n};
	root.clients = calloc((size_t)n, sizeof(sp_join_handle));
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
	assert_int_equal(atomic_load(&echoed_ok), n);
}

/* ---- half close, refused, freed while waiting -------------------------------------- */

struct half_close {
	sp_future base;
	int out;
	sp_async_fd *l, *srv;
	ssize_t eof_read;
	char buf[8];
	sp_tcp_connect conn;
	sp_tcp_accept acc;
	sp_io_rw rd;
};

static sp_poll half_close_poll(sp_future *f, sp_context *cx)
{
	struct half_close *self = (struct half_close *)f;
	SP_ASYNC_BEGIN(f, cx);
	if (sp_tcp_listen(&self->l, NULL, 0, 16))
		SP_RETURN(-1);
	sp_tcp_connect_init(&self->conn, "127.0.0.1", (uint16_t)sp_tcp_local_port(self->l), 0);
	SP_AWAIT(&self->conn);
	sp_tcp_accept_init(&self->acc, self->l);
	SP_AWAIT(&self->acc);
	if (self->conn.out || self->acc.out)
		SP_RETURN(-2);
	self->srv = self->acc.stream;
	sp_tcp_shutdown(self->conn.stream, SHUT_WR); /* the client is done sending */
	sp_io_read_init(&self->rd, self->srv, self->buf, sizeof(self->buf));
	SP_AWAIT(&self->rd);
	self->eof_read = self->rd.out;
	sp_tcp_close(self->srv);
	sp_tcp_close(self->conn.stream);
	sp_tcp_close(self->l);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void net__half_close_reads_eof(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_CURRENT_THREAD, 1);
	struct half_close h = {.base = {.poll = half_close_poll, .name = "half_close"}};

	/* act */
	int rc = sp_block_on(rt, &h.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(h.out, 0);
	assert_int_equal(h.eof_read, 0);
}

struct refused {
	sp_future base;
	int out;
	uint16_t port;
	sp_tcp_connect conn;
};

static sp_poll refused_poll(sp_future *f, sp_context *cx)
{
	struct refused *self = (struct refused *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_tcp_connect_init(&self->conn, "127.0.0.1", self->port, SP_MS(5000));
	SP_AWAIT(&self->conn);
	SP_RETURN(self->conn.out);
	SP_ASYNC_END();
}

static void net__connect_to_closed_port_is_refused(void **state)
{
	(void)state;
	/* arrange: a port nobody listens on (bound, then closed) */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct refused r = {.base = {.poll = refused_poll, .name = "refused"},
			    .port = ntohs(a.sin_port)};

	/* act */
	int rc = sp_block_on(rt, &r.base);
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(rc, 0);
	assert_int_equal(r.out, SP_ECONNREFUSED);
}

/* A task reads a socketpair end; the main thread frees the registration. */
struct orphan {
	sp_future base;
	int out;
	sp_async_fd *afd;
	char buf[8];
	sp_io_rw rd;
};

static sp_poll orphan_poll(sp_future *f, sp_context *cx)
{
	struct orphan *self = (struct orphan *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_io_read_init(&self->rd, self->afd, self->buf, sizeof(self->buf));
	SP_AWAIT(&self->rd);
	SP_RETURN((int)self->rd.out);
	SP_ASYNC_END();
}

struct make_afd {
	sp_future base;
	int out;
	int fd;
	sp_async_fd *afd;
};

static sp_poll make_afd_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	struct make_afd *self = (struct make_afd *)f;
	self->out = sp_async_fd_new(&self->afd, self->fd);
	return SP_READY;
}

static void net__free_while_read_pending_gives_ebadf(void **state)
{
	(void)state;
	/* arrange */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	struct make_afd m = {.base = {.poll = make_afd_poll}, .fd = sv[0]};
	assert_int_equal(sp_block_on(rt, &m.base), 0);
	assert_int_equal(m.out, 0);
	struct orphan o = {.base = {.poll = orphan_poll, .name = "orphan"}, .afd = m.afd};
	sp_join_handle jh;
	int got = 0;
	assert_int_equal(SP_RUNTIME_SPAWN_OUT(rt, "orphan", &jh, o), 0);
	jh.dst = &got;
	uint64_t id = sp_join_handle_id(&jh);
	int idle = SPT_WAIT_UNTIL(spt_task_idle(rt, id), SPT_SOON_MS);

	/* act */
	sp_async_fd_free(m.afd);
	int st = sp_join_handle_wait(&jh);
	close(sv[0]);
	close(sv[1]);
	sp_runtime_free(rt);

	/* assert */
	assert_true(idle);
	assert_int_equal(st, 0);
	assert_int_equal(got, SP_EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(net__socketpair_read_waits_for_data),
		cmocka_unit_test(net__echo_with_many_concurrent_connections),
		cmocka_unit_test(net__half_close_reads_eof),
		cmocka_unit_test(net__connect_to_closed_port_is_refused),
		cmocka_unit_test(net__free_while_read_pending_gives_ebadf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
