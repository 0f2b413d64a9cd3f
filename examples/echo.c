/*
 * echo.c - a TCP echo server: one task accepts, one task per connection
 * echoes until the peer closes.
 *
 *   build/bin/echo 7000            # then: nc 127.0.0.1 7000
 *   build/bin/echo 7000 --once     # exit after the first connection closes
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spindle.h"

/* One connection: read what comes, write it all back, until EOF or error. */
typedef struct conn {
	sp_future base;
	sp_async_fd *s;
	char buf[4096];
	sp_io_rw rd, wr;
} conn;

static sp_poll conn_poll(sp_future *f, sp_context *cx)
{
	conn *self = (conn *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_io_read_init(&self->rd, self->s, self->buf, sizeof(self->buf));
		SP_AWAIT(&self->rd);
		if (self->rd.out <= 0) /* 0: the peer closed; < 0: an error */
			break;
		sp_io_write_all_init(&self->wr, self->s, self->buf, (size_t)self->rd.out);
		SP_AWAIT(&self->wr);
		if (self->wr.out < 0)
			break;
	}
	sp_tcp_close(self->s);
	self->s = NULL;
	SP_ASYNC_END();
}

/* A future that owns a resource releases it when dropped unfinished (the
 * runtime drops every remaining future at sp_runtime_free). */
static void conn_drop(sp_future *f)
{
	conn *self = (conn *)f;
	if (self->s)
		sp_tcp_close(self->s);
}

/* The acceptor: spawn a conn task per client (or await one, with --once). */
typedef struct server {
	sp_future base;
	int out;
	uint16_t port;
	int once;
	sp_async_fd *listener;
	sp_tcp_accept acc;
	sp_join_handle jh;
} server;

static sp_poll server_poll(sp_future *f, sp_context *cx)
{
	server *self = (server *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->out = sp_tcp_listen(&self->listener, "127.0.0.1", self->port, 128);
	if (self->out) {
		fprintf(stderr, "echo: cannot listen on 127.0.0.1:%u: %s\n", self->port,
			sp_strerror(self->out));
		SP_RETURN(self->out);
	}
	printf("echo: listening on 127.0.0.1:%d\n", sp_tcp_local_port(self->listener));
	fflush(stdout);
	for (;;) {
		sp_tcp_accept_init(&self->acc, self->listener);
		SP_AWAIT(&self->acc);
		if (self->acc.out) {
			fprintf(stderr, "echo: accept: %s\n", sp_strerror(self->acc.out));
			continue;
		}
		conn c = {.base = {.poll = conn_poll, .drop = conn_drop, .name = "echo-conn"},
			  .s = self->acc.stream};
		if (SP_SPAWN("echo-conn", &self->jh, c))
			sp_tcp_close(self->acc.stream);
		else if (self->once)
			break;
		else
			sp_join_handle_detach(&self->jh);
	}
	SP_AWAIT(&self->jh); /* --once: wait for that connection to finish */
	sp_tcp_close(self->listener);
	SP_RETURN(0);
	SP_ASYNC_END();
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--once"))) {
		fprintf(stderr, "usage: echo PORT [--once]\n"
				"example: echo 7000   then: nc 127.0.0.1 7000\n");
		return 2;
	}
	char *end;
	long port = strtol(argv[1], &end, 10);
	if (*end || port < 0 || port > 65535) {
		fprintf(stderr, "echo: bad port '%s' (want 0..65535)\n", argv[1]);
		return 2;
	}
	sp_runtime *rt;
	int err = sp_runtime_new(&rt, NULL);
	if (err) {
		fprintf(stderr, "echo: %s\n", sp_strerror(err));
		return 1;
	}
	server s = {.base = {.poll = server_poll, .name = "echo-server"},
		    .port = (uint16_t)port,
		    .once = argc == 3};
	sp_block_on(rt, &s.base);
	sp_runtime_free(rt);
	return s.out ? 1 : 0;
}
