/*
 * demo.c - a small service to watch: a TCP server with client load, timers,
 * a channel pipeline, and one task that is slow now and then.
 *
 *   build/bin/demo                 # run 10 s, print a status line every second
 *   build/bin/demo --seconds 60    # longer (0: until killed)
 *   build/bin/demo --clients 50    # more load
 *
 * Shape: `clients` tasks connect to the server and send a request line every
 * 5-20 ms (sp_interval); the server spawns a task per connection that answers
 * each line and sends a record (connection, bytes, service time) down a
 * bounded channel to the `stats` task; `stats` prints a line per second from
 * the records and from the runtime's own counters (sp_runtime_tasks,
 * sp_runtime_worker_stats). `hiccup` computes for 30 ms inside one poll every
 * 2 s: the long synchronous section that starves its worker's other tasks,
 * and that spindle's tools flag.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spindle.h"

#define REQ_LEN 32

struct record {
	uint32_t conn;
	uint32_t bytes;
	uint64_t service_ns;
};

static sp_mpsc records; /* conn tasks -> stats */
/* Set by the stats task, read by the clients and the hiccup task on other
 * workers: an atomic (relaxed: it only ends their loops, a tick late at worst). */
static atomic_bool stopping;

/* ---- server side ---------------------------------------------------------------- */

typedef struct conn {
	sp_future base;
	uint32_t id;
	sp_async_fd *s;
	char buf[REQ_LEN];
	uint64_t t0;
	struct record rec;
	sp_io_rw rd, wr;
	sp_mpsc_send send;
} conn;

static sp_poll conn_poll(sp_future *f, sp_context *cx)
{
	conn *self = (conn *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_io_read_exact_init(&self->rd, self->s, self->buf, REQ_LEN);
		SP_AWAIT(&self->rd);
		if (self->rd.out != REQ_LEN)
			break; /* the client went away */
		self->t0 = sp_now_ns();
		self->buf[0] = 'R'; /* the "response" */
		sp_io_write_all_init(&self->wr, self->s, self->buf, REQ_LEN);
		SP_AWAIT(&self->wr);
		if (self->wr.out != REQ_LEN)
			break;
		self->rec = (struct record){self->id, REQ_LEN, sp_now_ns() - self->t0};
		sp_mpsc_send_init(&self->send, &records, &self->rec);
		SP_AWAIT(&self->send); /* backpressure: waits while stats lags */
	}
	sp_tcp_close(self->s);
	self->s = NULL;
	SP_ASYNC_END();
}

/* Futures that own sockets close them when dropped unfinished: at exit the
 * runtime drops every task still running. */
static void conn_drop(sp_future *f)
{
	conn *self = (conn *)f;
	if (self->s)
		sp_tcp_close(self->s);
}

typedef struct server {
	sp_future base;
	sp_async_fd *l;
	uint32_t next_id;
	sp_tcp_accept acc;
} server;

static sp_poll server_poll(sp_future *f, sp_context *cx)
{
	server *self = (server *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_tcp_accept_init(&self->acc, self->l);
		SP_AWAIT(&self->acc);
		if (self->acc.out == SP_EBADF)
			break; /* the listener was closed: shutting down */
		if (self->acc.out)
			continue;
		conn c = {.base = {.poll = conn_poll, .drop = conn_drop, .name = "conn"},
			  .id = ++self->next_id,
			  .s = self->acc.stream};
		if (SP_SPAWN("conn", NULL, c))
			sp_tcp_close(self->acc.stream);
	}
	SP_ASYNC_END();
}

/* ---- client load ------------------------------------------------------------------ */

typedef struct client {
	sp_future base;
	uint16_t port;
	uint64_t period_ns;
	char req[REQ_LEN], resp[REQ_LEN];
	sp_tcp_connect c;
	sp_interval iv;
	sp_interval_tick tick;
	sp_io_rw wr, rd;
} client;

static sp_poll client_poll(sp_future *f, sp_context *cx)
{
	client *self = (client *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_tcp_connect_init(&self->c, "127.0.0.1", self->port, SP_MS(1000));
	SP_AWAIT(&self->c);
	if (self->c.out)
		SP_RETURN_VOID();
	memset(self->req, 'q', REQ_LEN);
	sp_interval_init(&self->iv, self->period_ns);
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		sp_interval_tick_init(&self->tick, &self->iv);
		SP_AWAIT(&self->tick);
		sp_io_write_all_init(&self->wr, self->c.stream, self->req, REQ_LEN);
		SP_AWAIT(&self->wr);
		sp_io_read_exact_init(&self->rd, self->c.stream, self->resp, REQ_LEN);
		SP_AWAIT(&self->rd);
		if (self->rd.out != REQ_LEN)
			break;
	}
	sp_tcp_close(self->c.stream);
	self->c.stream = NULL;
	SP_ASYNC_END();
}

static void client_drop(sp_future *f)
{
	client *self = (client *)f;
	if (self->c.stream)
		sp_tcp_close(self->c.stream);
}

/* ---- the slow one ------------------------------------------------------------------ */

typedef struct hiccup {
	sp_future base;
	sp_sleep nap;
	volatile uint64_t sink;
} hiccup;

static void burn_cpu(hiccup *self, uint64_t ns)
{
	uint64_t end = sp_now_ns() + ns;
	while (sp_now_ns() < end)
		self->sink++; /* 30 ms without an await: the bug to catch */
}

static sp_poll hiccup_poll(sp_future *f, sp_context *cx)
{
	hiccup *self = (hiccup *)f;
	SP_ASYNC_BEGIN(f, cx);
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		sp_sleep_init(&self->nap, SP_MS(2000));
		SP_AWAIT(&self->nap);
		burn_cpu(self, SP_MS(30));
	}
	SP_ASYNC_END();
}

/* ---- stats ------------------------------------------------------------------------- */

struct task_census {
	size_t tasks, idle_no_waker;
	uint64_t max_busy_ns;
	const char *busiest;
};

static void census_cb(const sp_task_info *ti, void *arg)
{
	struct task_census *c = arg;
	c->tasks++;
	if (!(ti->state & (SP_TASK_RUNNING | SP_TASK_NOTIFIED)) && ti->live_wakers == 0)
		c->idle_no_waker++;
	if (ti->busy_ns > c->max_busy_ns) {
		c->max_busy_ns = ti->busy_ns;
		c->busiest = ti->site ? ti->site->name : "?";
	}
}

typedef struct stats {
	sp_future base;
	uint64_t started, last_print, seconds;
	uint64_t n, total_ns, max_ns;
	struct record rec;
	sp_mpsc_recv recv;
	sp_timeout to;
} stats;

static void print_status(stats *self)
{
	struct task_census c = {0};
	sp_runtime_tasks(sp_runtime_current(), census_cb, &c);
	uint64_t polls = 0, steals = 0;
	for (unsigned w = 0; w < sp_runtime_workers(sp_runtime_current()); w++) {
		sp_worker_stats ws;
		if (sp_runtime_worker_stats(sp_runtime_current(), w, &ws) == 0) {
			polls += ws.polls;
			steals += ws.steals_in;
		}
	}
	printf("t=%3.0fs requests=%-6llu mean=%6.1fus max=%7.1fus | tasks=%zu polls=%llu "
	       "steals=%llu busiest=%s (%.0f ms busy)\n",
	       (double)(sp_now_ns() - self->started) / 1e9, (unsigned long long)self->n,
	       self->n ? (double)self->total_ns / (double)self->n / 1e3 : 0.0,
	       (double)self->max_ns / 1e3, c.tasks, (unsigned long long)polls,
	       (unsigned long long)steals, c.busiest ? c.busiest : "-",
	       (double)c.max_busy_ns / 1e6);
	fflush(stdout);
	self->n = self->total_ns = self->max_ns = 0;
}

static sp_poll stats_poll(sp_future *f, sp_context *cx)
{
	stats *self = (stats *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->started = self->last_print = sp_now_ns();
	for (;;) {
		/* A record, or a second without one: either way, maybe print. */
		sp_mpsc_recv_init(&self->recv, &records, &self->rec);
		sp_timeout_init(&self->to, &self->recv.base, SP_MS(1000));
		SP_AWAIT(&self->to);
		if (self->to.out == 0 && self->recv.out == 0) {
			self->n++;
			self->total_ns += self->rec.service_ns;
			if (self->rec.service_ns > self->max_ns)
				self->max_ns = self->rec.service_ns;
		}
		if (sp_now_ns() - self->last_print >= SP_MS(1000)) {
			self->last_print = sp_now_ns();
			print_status(self);
		}
		if (self->seconds && sp_now_ns() - self->started >= self->seconds * 1000000000u)
			break;
	}
	atomic_store_explicit(&stopping, true, memory_order_relaxed);
	SP_ASYNC_END();
}

/* ---- main ---------------------------------------------------------------------------- */

typedef struct root {
	sp_future base;
	int out;
	int clients, i;
	uint64_t seconds;
	sp_async_fd *l;
	sp_join_handle st;
} root;

static sp_poll root_poll(sp_future *f, sp_context *cx)
{
	root *self = (root *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->out = sp_tcp_listen(&self->l, "127.0.0.1", 0, 1024);
	if (self->out) {
		fprintf(stderr, "demo: listen: %s\n", sp_strerror(self->out));
		SP_RETURN(self->out);
	}
	{
		server s = {.base = {.poll = server_poll, .name = "server"}, .l = self->l};
		hiccup h = {.base = {.poll = hiccup_poll, .name = "hiccup"}};
		stats st = {.base = {.poll = stats_poll, .name = "stats"}, .seconds = self->seconds};
		if (SP_SPAWN("server", NULL, s) || SP_SPAWN("hiccup", NULL, h) ||
		    SP_SPAWN("stats", &self->st, st))
			SP_RETURN(-1);
	}
	for (self->i = 0; self->i < self->clients; self->i++) {
		client c = {.base = {.poll = client_poll, .drop = client_drop, .name = "client"},
			    .port = (uint16_t)sp_tcp_local_port(self->l),
			    .period_ns = SP_MS(5 + (uint64_t)(self->i * 7) % 16)};
		if (SP_SPAWN("client", NULL, c))
			SP_RETURN(-1);
	}
	printf("demo: server on 127.0.0.1:%d, %d clients, pid %d\n", sp_tcp_local_port(self->l),
	       self->clients, (int)getpid());
	SP_AWAIT(&self->st); /* the stats task ends the run */
	sp_tcp_close(self->l);
	SP_RETURN(0);
	SP_ASYNC_END();
}

static long arg_num(const char *flag, const char *v, long max)
{
	char *end;
	long n = v ? strtol(v, &end, 10) : -1;
	if (!v || *end || n < 0 || n > max) {
		fprintf(stderr, "demo: %s wants a number 0..%ld\n", flag, max);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	root r = {.base = {.poll = root_poll, .name = "demo"}, .clients = 20, .seconds = 10};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds"))
			r.seconds = (uint64_t)arg_num("--seconds", argv[++i < argc ? i : 0], 86400);
		else if (!strcmp(argv[i], "--clients"))
			r.clients = (int)arg_num("--clients", argv[++i < argc ? i : 0], 10000);
		else {
			fprintf(stderr, "usage: demo [--seconds N] [--clients N]\n"
					"example: demo --seconds 30 --clients 50\n");
			return 2;
		}
	}
	if (sp_mpsc_init(&records, sizeof(struct record), 256)) {
		fprintf(stderr, "demo: cannot create the channel\n");
		return 1;
	}
	sp_runtime *rt;
	int err = sp_runtime_new(&rt, NULL);
	if (err) {
		fprintf(stderr, "demo: %s\n", sp_strerror(err));
		return 1;
	}
	sp_block_on(rt, &r.base);
	sp_runtime_free(rt); /* drops the server, clients and conns still running */
	sp_mpsc_destroy(&records);
	return r.out ? 1 : 0;
}
