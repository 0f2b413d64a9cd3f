/*
 * spindle_bench.c - scheduler benchmarks for spindle, comparable with the
 * Tokio 1.24 and Go 1.19 anchors in shared/anchors.
 *
 * Usage: spindle-bench <workload|all|list> [runs=5] [iters_per_run]
 *
 * The command line, the workloads (bodies, counts, default iterations) and
 * the output follow the anchors' contract, so run-anchors.sh can put this
 * binary in the same table (ANCHOR_EXTRA_CMD):
 *
 *   # <workload> runtime=spindle-0.1 workers=W runs=R iters_per_run=I ...
 *   <workload> <seconds> <ops_per_second>          one line per timed run
 *   median <workload> <seconds> <ops_per_second>
 *
 * A run is `iters` back-to-back iterations of the workload body, after an
 * untimed warm-up of ceil(iters / 10) iterations. A watchdog thread ends the
 * process with `<workload> DNF DNF`, `median <workload> DNF DNF` and status 3
 * when the warm-up or one run exceeds ANCHOR_RUN_TIMEOUT_S (default 30 s).
 * Bad arguments: one line on stderr, status 2. The timer workload also prints
 * lateness percentiles; SPINDLE_BENCH_TIMER_DUMP=FILE writes each task's
 * start, sleep and lateness in its last iteration (timer_dump).
 * SPINDLE_BENCH_WORKERS=N runs N workers instead of 2 (scaling runs);
 * SPINDLE_BENCH_TCP_TRIPS=N: tcp_echo's round trips per connection (1000);
 * SPINDLE_BENCH_STATS=1 adds a `# stats` line of the workers' counters.
 *
 * Mapping from the Tokio bench: a Rust async block is a future struct with a
 * hand-written poll function (or an SP_ASYNC frame); tokio::spawn is
 * SP_SPAWN, rt.spawn from the main thread is SP_RUNTIME_SPAWN; the std mpsc
 * channel that wakes the main thread is a POSIX semaphore; Arc'd state is a
 * pointer to the `struct bench` of the workload.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spindle.h"

/* Worker threads: 2 as in the anchors; SPINDLE_BENCH_WORKERS=N (1..1024)
 * changes it for scaling runs (the busy workloads start 2N and N busy tasks,
 * as the anchors do for their worker count). */
#define DEFAULT_WORKERS 2
static int bench_workers = DEFAULT_WORKERS;

/* Counts per iteration, as in Tokio's benches/rt_multi_threaded.rs. */
#define NUM_SPAWN 10000	     /* spawn_many_local*, spawn_many_remote_idle/busy1 */
#define NUM_SPAWN_BUSY2 1000 /* spawn_many_remote_busy2 */
#define YIELD_TASKS 200	     /* yield_many: tasks ... */
#define YIELDS_PER_TASK 1000 /* ... times yields */
#define NUM_PINGS 1000	     /* ping_pong */
#define CHAIN_LEN 1000	     /* chained_spawn */
#define TIMER_TASKS 100000   /* timer: tasks that each sleep ... */
#define TIMER_MIN_MS 1	     /* ... between these bounds */
#define TIMER_MAX_MS 50
#define STALL_NS 10000	     /* stall(): 10 us */
#define DEFAULT_RUNS 5
#define DEFAULT_TIMEOUT_S 30

#define STR_(x) #x
#define STR(x) STR_(x)
#define RUNTIME_NAME "spindle-" STR(SP_VERSION_MAJOR) "." STR(SP_VERSION_MINOR)

#define USAGE "usage: spindle-bench <workload|all|list> [runs=5] [iters_per_run]"

/* ---- helpers -------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Report a broken expectation (a runtime bug, most likely) and abort. */
static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("spindle-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void check(int rc, const char *what)
{
	if (rc)
		die("%s failed: %s (%s)", what, sp_strerror(rc), sp_err_name(rc));
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Simulated CPU work, as in Tokio's bench: spin on sched_yield for 10 us. */
static void stall(void)
{
	uint64_t start = mono_ns();

	while (mono_ns() - start < STALL_NS)
		sched_yield();
}

static void sem_wait_intr(sem_t *s)
{
	while (sem_wait(s) != 0) {
		if (errno != EINTR)
			die("sem_wait: %s", strerror(errno));
	}
}

/* The header of a future with a hand-written poll function. */
/* clang-format off */
#define FUTURE(fn, nm) { .poll = (fn), .name = (nm) }
/* clang-format on */

/* ---- per-workload state --------------------------------------------------- */

/* What the tasks of one workload share (the Arcs and channels in Tokio's). */
struct bench {
	sp_runtime *rt;
	sem_t done;		 /* the std mpsc channel to the main thread */
	atomic_size_t rem;	 /* tasks left before `done` is posted */
	atomic_bool busy;	 /* the busy tasks of busy1/busy2 run while set */
	sp_join_handle *handles; /* NUM_SPAWN, reused by every iteration */
};

static void bench_open(struct bench *b)
{
	sp_runtime_opts opts = {.flavor = SP_MULTI_THREAD, .workers = bench_workers};

	memset(b, 0, sizeof(*b));
	check(sp_runtime_new(&b->rt, &opts), "sp_runtime_new");
	if (sem_init(&b->done, 0, 0))
		die("sem_init: %s", strerror(errno));
	atomic_init(&b->rem, 0);
	atomic_init(&b->busy, true);
	b->handles = calloc(NUM_SPAWN, sizeof(*b->handles));
	if (!b->handles)
		die("out of memory");
}

/* SPINDLE_BENCH_STATS=1: the workers' counters over the warm-up and the
 * runs, summed (as last published: at each park and every few ticks), with
 * what they say about contention: parks per thousand polls (a park is a
 * futex or epoll sleep and, mostly, a wake-up by another thread) and tasks
 * per take from the injection queue (each take is one lock hold). */
static void print_stats(const struct bench *b)
{
	sp_worker_stats sum = {0}, ws;

	for (int i = 0; i < bench_workers; i++) {
		if (sp_runtime_worker_stats(b->rt, (unsigned)i, &ws))
			continue;
		sum.polls += ws.polls;
		sum.parks += ws.parks;
		sum.steal_ops += ws.steal_ops;
		sum.steals_in += ws.steals_in;
		sum.inject_ops += ws.inject_ops;
		sum.inject_pops += ws.inject_pops;
		sum.lifo_polls += ws.lifo_polls;
		sum.overflows += ws.overflows;
	}
	printf("# stats workers=%d polls=%llu parks=%llu steal_ops=%llu steals_in=%llu "
	       "inject_ops=%llu inject_pops=%llu lifo_polls=%llu overflows=%llu "
	       "parks_per_1k_polls=%.2f tasks_per_inject_op=%.2f\n",
	       bench_workers, (unsigned long long)sum.polls, (unsigned long long)sum.parks,
	       (unsigned long long)sum.steal_ops, (unsigned long long)sum.steals_in,
	       (unsigned long long)sum.inject_ops, (unsigned long long)sum.inject_pops,
	       (unsigned long long)sum.lifo_polls, (unsigned long long)sum.overflows,
	       sum.polls ? 1000.0 * (double)sum.parks / (double)sum.polls : 0.0,
	       sum.inject_ops ? (double)sum.inject_pops / (double)sum.inject_ops : 0.0);
}

static void bench_close(struct bench *b)
{
	const char *st = getenv("SPINDLE_BENCH_STATS");

	if (st && *st && strcmp(st, "0"))
		print_stats(b);
	atomic_store_explicit(&b->busy, false, memory_order_relaxed);
	check(sp_runtime_free(b->rt), "sp_runtime_free");
	sem_destroy(&b->done);
	free(b->handles);
}

/* One task finished: the last of `rem` signals the main thread. */
static void countdown(struct bench *b)
{
	if (atomic_fetch_sub_explicit(&b->rem, 1, memory_order_relaxed) == 1)
		sem_post(&b->done);
}

/* ---- leaf tasks ------------------------------------------------------------ */

/* async {} */
struct empty {
	sp_future base;
};

static sp_poll empty_poll(sp_future *f, sp_context *cx)
{
	(void)f;
	(void)cx;
	return SP_READY;
}

/* async move { if 1 == rem.fetch_sub(1) { tx.send(()) } } */
struct counted {
	sp_future base;
	struct bench *b;
};

static sp_poll counted_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	countdown(((struct counted *)f)->b);
	return SP_READY;
}

/* tokio::spawn NUM_SPAWN counted tasks on the current runtime. */
static void spawn_counted(struct bench *b)
{
	struct counted t = {.base = FUTURE(counted_poll, "counted"), .b = b};

	for (int i = 0; i < NUM_SPAWN; i++)
		check(SP_SPAWN("bench.counted", NULL, t), "SP_SPAWN(counted)");
}

/* ---- spawn_many_local, spawn_many_local_task ------------------------------ */

/* The block_on future: spawn, then block on the channel, as Tokio's bench. */
struct local_root {
	sp_future base;
	struct bench *b;
};

static sp_poll local_root_poll(sp_future *f, sp_context *cx)
{
	struct bench *b = ((struct local_root *)f)->b;

	(void)cx;
	spawn_counted(b);
	sem_wait_intr(&b->done);
	return SP_READY;
}

static void spawn_many_local(struct bench *b)
{
	struct local_root root = {.base = FUTURE(local_root_poll, "local_root"), .b = b};

	atomic_store_explicit(&b->rem, NUM_SPAWN, memory_order_relaxed);
	check(sp_block_on(b->rt, &root.base), "sp_block_on");
}

/* A task on a worker issues the spawns: they go to its local queue. */
struct local_spawner {
	sp_future base;
	struct bench *b;
};

static sp_poll local_spawner_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	spawn_counted(((struct local_spawner *)f)->b);
	return SP_READY;
}

static void spawn_many_local_task(struct bench *b)
{
	struct local_spawner t = {.base = FUTURE(local_spawner_poll, "local_spawner"), .b = b};

	atomic_store_explicit(&b->rem, NUM_SPAWN, memory_order_relaxed);
	check(SP_RUNTIME_SPAWN(b->rt, "bench.local_spawner", NULL, t), "SP_RUNTIME_SPAWN");
	sem_wait_intr(&b->done);
}

/* ---- spawn_many_remote_* --------------------------------------------------- */

/* async { for h in handles { h.await.unwrap() } } */
struct join_all {
	sp_future base;
	sp_join_handle *hs;
	size_t n, i;
};

static sp_poll join_all_poll(sp_future *f, sp_context *cx)
{
	struct join_all *self = (struct join_all *)f;

	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->n; self->i++) {
		SP_AWAIT(&self->hs[self->i]);
		if (self->hs[self->i].status != 0)
			die("join handle %zu: status %s", self->i,
			    sp_err_name(self->hs[self->i].status));
	}
	SP_ASYNC_END();
}

/* n rt.spawn(async {}) from the main thread, then await every handle. */
static void spawn_remote_and_join(struct bench *b, size_t n)
{
	struct empty t = {.base = FUTURE(empty_poll, "empty")};
	struct join_all join = {
		.base = FUTURE(join_all_poll, "join_all"), .hs = b->handles, .n = n};

	for (size_t i = 0; i < n; i++)
		check(SP_RUNTIME_SPAWN(b->rt, "bench.remote", &b->handles[i], t),
		      "SP_RUNTIME_SPAWN");
	check(sp_block_on(b->rt, &join.base), "sp_block_on");
}

static void spawn_many_remote(struct bench *b)
{
	spawn_remote_and_join(b, NUM_SPAWN);
}

static void spawn_many_remote_busy2(struct bench *b)
{
	spawn_remote_and_join(b, NUM_SPAWN_BUSY2);
}

/* busy1: while flag { yield_now().await; stall(); } */
struct busy_yielder {
	sp_future base;
	struct bench *b;
	sp_yield y;
};

static sp_poll busy_yielder_poll(sp_future *f, sp_context *cx)
{
	struct busy_yielder *self = (struct busy_yielder *)f;

	SP_ASYNC_BEGIN(f, cx);
	while (atomic_load_explicit(&self->b->busy, memory_order_relaxed)) {
		sp_yield_init(&self->y);
		SP_AWAIT(&self->y);
		stall();
	}
	SP_ASYNC_END();
}

static void start_busy1(struct bench *b)
{
	struct busy_yielder t = {.base = FUTURE(busy_yielder_poll, "busy_yielder"), .b = b};

	for (int i = 0; i < 2 * bench_workers; i++)
		check(SP_RUNTIME_SPAWN(b->rt, "bench.busy1", NULL, t), "SP_RUNTIME_SPAWN");
}

/* busy2: a chain link; while the flag is set it stalls and spawns the next. */
struct busy_link {
	sp_future base;
	struct bench *b;
};

static sp_poll busy_link_poll(sp_future *f, sp_context *cx)
{
	struct bench *b = ((struct busy_link *)f)->b;
	struct busy_link next = {.base = FUTURE(busy_link_poll, "busy_link"), .b = b};

	int rc;

	(void)cx;
	if (!atomic_load_explicit(&b->busy, memory_order_relaxed))
		return SP_READY;
	stall();
	/* The runtime may be shutting down since the flag was read: fine. */
	rc = SP_SPAWN("bench.busy2.link", NULL, next);
	if (rc != SP_ESHUTDOWN)
		check(rc, "SP_SPAWN(busy link)");
	return SP_READY;
}

/* rt.spawn(async { iter(flag) }): the first link is spawned from a worker. */
struct busy_chain_start {
	sp_future base;
	struct bench *b;
};

static sp_poll busy_chain_start_poll(sp_future *f, sp_context *cx)
{
	struct busy_link link = {.base = FUTURE(busy_link_poll, "busy_link"),
				 .b = ((struct busy_chain_start *)f)->b};

	(void)cx;
	check(SP_SPAWN("bench.busy2.link", NULL, link), "SP_SPAWN(busy link)");
	return SP_READY;
}

static void start_busy2(struct bench *b)
{
	struct busy_chain_start t = {.base = FUTURE(busy_chain_start_poll, "busy_chain_start"),
				     .b = b};

	for (int i = 0; i < bench_workers; i++)
		check(SP_RUNTIME_SPAWN(b->rt, "bench.busy2.start", NULL, t), "SP_RUNTIME_SPAWN");
}

/* ---- yield_many ---------------------------------------------------------- */

struct yielder {
	sp_future base;
	struct bench *b;
	sp_yield y;
	int i;
};

static sp_poll yielder_poll(sp_future *f, sp_context *cx)
{
	struct yielder *self = (struct yielder *)f;

	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < YIELDS_PER_TASK; self->i++) {
		sp_yield_init(&self->y);
		SP_AWAIT(&self->y);
	}
	sem_post(&self->b->done);
	SP_ASYNC_END();
}

static void yield_many(struct bench *b)
{
	struct yielder t = {.base = FUTURE(yielder_poll, "yielder"), .b = b};

	for (int i = 0; i < YIELD_TASKS; i++)
		check(SP_RUNTIME_SPAWN(b->rt, "bench.yielder", NULL, t), "SP_RUNTIME_SPAWN");
	for (int i = 0; i < YIELD_TASKS; i++)
		sem_wait_intr(&b->done);
}

/* ---- ping_pong ------------------------------------------------------------- */

/* The child: rx1.await; tx2.send(()). Both channels live in the parent. */
struct pp_child {
	sp_future base;
	sp_oneshot *ch1, *ch2;
	sp_oneshot_recv rx1;
};

static sp_poll pp_child_poll(sp_future *f, sp_context *cx)
{
	struct pp_child *self = (struct pp_child *)f;

	SP_ASYNC_BEGIN(f, cx);
	sp_oneshot_recv_init(&self->rx1, self->ch1);
	SP_AWAIT(&self->rx1);
	check(self->rx1.out, "ping_pong: rx1");
	check(sp_oneshot_send(self->ch2, 1), "ping_pong: tx2.send");
	SP_ASYNC_END();
}

/*
 * The parent: spawn the child, tx1.send(()), rx2.await. It owns both
 * channels (in its task frame, so they do not move after init) and outlives
 * the child's use of them: the child's last access is its send on ch2,
 * which is what the parent waits for.
 */
struct pp_parent {
	sp_future base;
	struct bench *b;
	sp_oneshot ch1, ch2;
	sp_oneshot_recv rx2;
};

static void pp_spawn_child(struct pp_parent *self)
{
	struct pp_child child = {
		.base = FUTURE(pp_child_poll, "pp_child"), .ch1 = &self->ch1, .ch2 = &self->ch2};

	check(SP_SPAWN("bench.pp_child", NULL, child), "SP_SPAWN(pp_child)");
}

static sp_poll pp_parent_poll(sp_future *f, sp_context *cx)
{
	struct pp_parent *self = (struct pp_parent *)f;

	SP_ASYNC_BEGIN(f, cx);
	sp_oneshot_init(&self->ch1);
	sp_oneshot_init(&self->ch2);
	pp_spawn_child(self);
	check(sp_oneshot_send(&self->ch1, 1), "ping_pong: tx1.send");
	sp_oneshot_recv_init(&self->rx2, &self->ch2);
	SP_AWAIT(&self->rx2);
	check(self->rx2.out, "ping_pong: rx2");
	countdown(self->b);
	SP_ASYNC_END();
}

/* The task that spawns the NUM_PINGS parents. */
struct pp_spawner {
	sp_future base;
	struct bench *b;
};

static sp_poll pp_spawner_poll(sp_future *f, sp_context *cx)
{
	struct pp_parent t = {.base = FUTURE(pp_parent_poll, "pp_parent"),
			      .b = ((struct pp_spawner *)f)->b};

	(void)cx;
	for (int i = 0; i < NUM_PINGS; i++)
		check(SP_SPAWN("bench.pp_parent", NULL, t), "SP_SPAWN(pp_parent)");
	return SP_READY;
}

/* ---- chained_spawn ---------------------------------------------------------- */

/* Link n spawns link n - 1; link 0 signals the main thread. */
struct chain_link {
	sp_future base;
	struct bench *b;
	int n;
};

static sp_poll chain_link_poll(sp_future *f, sp_context *cx)
{
	struct chain_link *self = (struct chain_link *)f;
	struct chain_link next = {
		.base = FUTURE(chain_link_poll, "chain_link"), .b = self->b, .n = self->n - 1};

	(void)cx;
	if (self->n == 0)
		sem_post(&self->b->done);
	else
		check(SP_SPAWN("bench.chain", NULL, next), "SP_SPAWN(chain)");
	return SP_READY;
}

/* ---- block_on roots for ping_pong and chained_spawn ---------------------- */

static void spawn_pp_spawner(struct bench *b)
{
	struct pp_spawner t = {.base = FUTURE(pp_spawner_poll, "pp_spawner"), .b = b};

	check(SP_SPAWN("bench.pp_spawner", NULL, t), "SP_SPAWN(pp_spawner)");
}

static void spawn_chain(struct bench *b)
{
	struct chain_link t = {
		.base = FUTURE(chain_link_poll, "chain_link"), .b = b, .n = CHAIN_LEN};

	check(SP_SPAWN("bench.chain", NULL, t), "SP_SPAWN(chain)");
}

/* async { tokio::spawn(first); done_rx.recv() } */
struct spawn_and_wait {
	sp_future base;
	struct bench *b;
	void (*spawn_first)(struct bench *b);
};

static sp_poll spawn_and_wait_poll(sp_future *f, sp_context *cx)
{
	struct spawn_and_wait *self = (struct spawn_and_wait *)f;

	(void)cx;
	self->spawn_first(self->b);
	sem_wait_intr(&self->b->done);
	return SP_READY;
}

static void block_on_spawn_and_wait(struct bench *b, void (*spawn_first)(struct bench *b))
{
	struct spawn_and_wait root = {.base = FUTURE(spawn_and_wait_poll, "spawn_and_wait"),
				      .b = b,
				      .spawn_first = spawn_first};

	check(sp_block_on(b->rt, &root.base), "sp_block_on");
}

static void ping_pong(struct bench *b)
{
	atomic_store_explicit(&b->rem, NUM_PINGS, memory_order_relaxed);
	block_on_spawn_and_wait(b, spawn_pp_spawner);
}

static void chained_spawn(struct bench *b)
{
	block_on_spawn_and_wait(b, spawn_chain);
}

/* ---- the workload table ---------------------------------------------------- */

/* ---- tcp_echo --------------------------------------------------------------- */

#define TCP_CONNS 200
#define TCP_ROUND_TRIPS 1000
#define TCP_MSG 64

/* Round trips per connection: TCP_ROUND_TRIPS as in the anchors, or
 * SPINDLE_BENCH_TCP_TRIPS for runs short enough to time a tracer inside one
 * process (bench/trace_inproc.sh); not comparable with the anchors then. */
static uint64_t tcp_round_trips = TCP_ROUND_TRIPS;

/* Server side of one connection: read what comes, write it all back. */
struct echo_conn {
	sp_future base;
	int out;
	sp_async_fd *s;
	char buf[4096];
	sp_io_rw rd, wr;
};

static sp_poll echo_conn_poll(sp_future *f, sp_context *cx)
{
	struct echo_conn *self = (struct echo_conn *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_io_read_init(&self->rd, self->s, self->buf, sizeof(self->buf));
		SP_AWAIT(&self->rd);
		if (self->rd.out <= 0)
			break;
		sp_io_write_all_init(&self->wr, self->s, self->buf, (size_t)self->rd.out);
		SP_AWAIT(&self->wr);
		if (self->wr.out < 0)
			die("echo write: %s", sp_strerror((int)self->wr.out));
	}
	if (self->rd.out < 0)
		die("echo read: %s", sp_strerror((int)self->rd.out));
	sp_tcp_close(self->s);
	self->s = NULL;
	SP_ASYNC_END();
}

static void echo_conn_drop(sp_future *f)
{
	struct echo_conn *self = (struct echo_conn *)f;
	if (self->s)
		sp_tcp_close(self->s); /* cancelled at runtime free */
}

struct echo_server {
	sp_future base;
	int out;
	sp_async_fd *l;
	int i;
	sp_tcp_accept acc;
};

static sp_poll echo_server_poll(sp_future *f, sp_context *cx)
{
	struct echo_server *self = (struct echo_server *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < TCP_CONNS; self->i++) {
		sp_tcp_accept_init(&self->acc, self->l);
		SP_AWAIT(&self->acc);
		check(self->acc.out, "accept");
		struct echo_conn c = {
			.base = {.poll = echo_conn_poll, .drop = echo_conn_drop, .name = "echo_conn"},
			.s = self->acc.stream};
		check(SP_SPAWN("echo_conn", NULL, c), "SP_SPAWN(echo_conn)");
	}
	SP_ASYNC_END();
}

/* A client: connect, then tcp_round_trips x (write 64 B, read_exact 64 B). */
struct echo_client {
	sp_future base;
	int out;
	uint16_t port;
	int r;
	char msg[TCP_MSG], back[TCP_MSG];
	sp_tcp_connect conn;
	sp_io_rw wr, rd;
};

static sp_poll echo_client_poll(sp_future *f, sp_context *cx)
{
	struct echo_client *self = (struct echo_client *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_tcp_connect_init(&self->conn, "127.0.0.1", self->port, 0);
	SP_AWAIT(&self->conn);
	check(self->conn.out, "connect");
	memset(self->msg, 0x5a, TCP_MSG);
	for (self->r = 0; (uint64_t)self->r < tcp_round_trips; self->r++) {
		sp_io_write_all_init(&self->wr, self->conn.stream, self->msg, TCP_MSG);
		SP_AWAIT(&self->wr);
		sp_io_read_exact_init(&self->rd, self->conn.stream, self->back, TCP_MSG);
		SP_AWAIT(&self->rd);
		if (self->wr.out != TCP_MSG || self->rd.out != TCP_MSG)
			die("echo client: write %zd read %zd", self->wr.out, self->rd.out);
	}
	sp_tcp_close(self->conn.stream);
	SP_ASYNC_END();
}

struct echo_root {
	sp_future base;
	int out;
	int i;
	sp_async_fd *l;
	sp_join_handle server, clients[TCP_CONNS];
};

static sp_poll echo_root_poll(sp_future *f, sp_context *cx)
{
	struct echo_root *self = (struct echo_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	check(sp_tcp_listen(&self->l, "127.0.0.1", 0, 1024), "listen");
	{
		struct echo_server s = {.base = {.poll = echo_server_poll, .name = "echo_server"},
					.l = self->l};
		check(SP_SPAWN("echo_server", &self->server, s), "SP_SPAWN(echo_server)");
	}
	for (self->i = 0; self->i < TCP_CONNS; self->i++) {
		struct echo_client c = {.base = {.poll = echo_client_poll, .name = "echo_client"},
					.port = (uint16_t)sp_tcp_local_port(self->l)};
		check(SP_SPAWN("echo_client", &self->clients[self->i], c), "SP_SPAWN(echo_client)");
	}
	for (self->i = 0; self->i < TCP_CONNS; self->i++)
		SP_AWAIT(&self->clients[self->i]);
	SP_AWAIT(&self->server);
	sp_tcp_close(self->l);
	SP_ASYNC_END();
}

static void tcp_echo(struct bench *b)
{
	struct echo_root *root = calloc(1, sizeof(*root));
	if (!root)
		die("out of memory");
	root->base = (sp_future){.poll = echo_root_poll, .name = "echo_root"};
	check(sp_block_on(b->rt, &root->base), "sp_block_on(tcp_echo)");
	free(root);
}

struct workload {
	const char *name;
	uint64_t ops_per_iter;
	uint64_t def_iters;
	const char *unit;
	void (*body)(struct bench *b);	  /* NULL: not implemented yet */
	void (*prepare)(struct bench *b); /* starts background load, optional */
};

static const struct workload workloads[] = {
	{"spawn_many_local", NUM_SPAWN, 100, "tasks", spawn_many_local, NULL},
	{"spawn_many_local_task", NUM_SPAWN, 100, "tasks", spawn_many_local_task, NULL},
	{"spawn_many_remote_idle", NUM_SPAWN, 100, "tasks", spawn_many_remote, NULL},
	{"spawn_many_remote_busy1", NUM_SPAWN, 100, "tasks", spawn_many_remote, start_busy1},
	{"spawn_many_remote_busy2", NUM_SPAWN_BUSY2, 200, "tasks", spawn_many_remote_busy2,
	 start_busy2},
	{"yield_many", (YIELD_TASKS * YIELDS_PER_TASK), 20, "yields", yield_many, NULL},
	{"ping_pong", NUM_PINGS, 300, "ping-pongs", ping_pong, NULL},
	{"chained_spawn", CHAIN_LEN, 1000, "spawns", chained_spawn, NULL},
	{"timer", TIMER_TASKS, 1, "timers", NULL, NULL}, /* measure_timer */
	{"tcp_echo", TCP_CONNS * TCP_ROUND_TRIPS, 1, "round-trips", tcp_echo, NULL},
};

#define NUM_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static const struct workload *find_workload(const char *name)
{
	for (size_t i = 0; i < NUM_WORKLOADS; i++) {
		if (!strcmp(workloads[i].name, name))
			return &workloads[i];
	}
	return NULL;
}

/* ---- watchdog ------------------------------------------------------------ */

/*
 * Armed with a workload name before the warm-up and before each run; fires
 * when the same arming lasts longer than the limit (a hang or a livelock).
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const char *name;     /* armed for this workload; NULL: disarmed */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
	unsigned limit_s;
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void watchdog_fire(const char *name)
{
	printf("# %s did not finish a run within %u s\n", name, wd.limit_s);
	printf("%s DNF DNF\n", name);
	printf("median %s DNF DNF\n", name);
	fflush(stdout);
	_exit(3);
}

static void *watchdog_main(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&wd.mu);
	for (;;) {
		if (!wd.name) {
			pthread_cond_wait(&wd.cv, &wd.mu);
			continue;
		}
		if (mono_ns() >= wd.deadline_ns)
			watchdog_fire(wd.name);
		ts.tv_sec = wd.deadline_ns / 1000000000u;
		ts.tv_nsec = wd.deadline_ns % 1000000000u;
		pthread_cond_timedwait(&wd.cv, &wd.mu, &ts);
	}
	return NULL;
}

static unsigned timeout_from_env(void)
{
	const char *s = getenv("ANCHOR_RUN_TIMEOUT_S");
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return DEFAULT_TIMEOUT_S;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > UINT_MAX / 2)
		return DEFAULT_TIMEOUT_S;
	return (unsigned)v;
}

static void watchdog_start(void)
{
	pthread_condattr_t attr;
	pthread_t tid;

	wd.limit_s = timeout_from_env();
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&wd.cv, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&tid, NULL, watchdog_main, NULL))
		die("cannot start the watchdog thread");
	pthread_detach(tid);
}

/* Arm for name (restarting the clock), or disarm with NULL. */
static void watchdog_arm(const char *name)
{
	pthread_mutex_lock(&wd.mu);
	wd.name = name;
	wd.deadline_ns = mono_ns() + (uint64_t)wd.limit_s * 1000000000u;
	pthread_cond_signal(&wd.cv);
	pthread_mutex_unlock(&wd.mu);
}

/* ---- measuring ------------------------------------------------------------- */

struct cfg {
	unsigned long runs;
	uint64_t iters; /* 0: the workload's default */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v in place. */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double run_iters(const struct workload *w, struct bench *b, uint64_t iters)
{
	uint64_t t0 = mono_ns();

	for (uint64_t i = 0; i < iters; i++)
		w->body(b);
	return (double)(mono_ns() - t0) / 1e9;
}

/* Operations an iteration of w does (tcp_echo's depend on tcp_round_trips). */
static uint64_t ops_of(const struct workload *w)
{
	return w->body == tcp_echo ? TCP_CONNS * tcp_round_trips : w->ops_per_iter;
}

/* Warm up, then time cfg->runs runs of iters iterations; print the results. */
static void measure(const struct cfg *c, const struct workload *w, struct bench *b)
{
	uint64_t iters = c->iters ? c->iters : w->def_iters;
	double ops = (double)iters * (double)ops_of(w);
	double *secs = calloc(c->runs, sizeof(*secs));
	double m;

	if (!secs)
		die("out of memory");
	printf("# %s runtime=%s workers=%d runs=%lu iters_per_run=%llu ops_per_iter=%llu unit=%s\n",
	       w->name, RUNTIME_NAME, bench_workers, c->runs, (unsigned long long)iters,
	       (unsigned long long)ops_of(w), w->unit);
	watchdog_arm(w->name);
	run_iters(w, b, (iters + 9) / 10);
	for (unsigned long r = 0; r < c->runs; r++) {
		watchdog_arm(w->name);
		secs[r] = run_iters(w, b, iters);
		printf("%s %.6f %.0f\n", w->name, secs[r], ops / secs[r]);
	}
	watchdog_arm(NULL);
	m = median(secs, c->runs);
	printf("median %s %.6f %.0f\n", w->name, m, ops / m);
	free(secs);
}

/* ---- timer ------------------------------------------------------------------- */

/* splitmix64: the same generator and seeds as the Tokio and Go anchors, so
 * every runtime sleeps exactly the same durations. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* async { let t0 = now; sleep(d).await; t0.elapsed() - d } */
struct timer_task {
	sp_future base;
	int64_t out; /* lateness, ns */
	uint64_t dur_ns;
	uint64_t t0;
	uint32_t idx;
	sp_sleep s;
};

/* SPINDLE_BENCH_TIMER_DUMP=FILE writes, for each task of the last timer
 * iteration, when it started (ms after the iteration began), its sleep and
 * its lateness (ms): where in the run the late ones are. */
static uint64_t *timer_t0, *timer_dur, timer_base;

static void timer_dump(const int64_t *lates)
{
	const char *path = getenv("SPINDLE_BENCH_TIMER_DUMP");
	FILE *f = fopen(path, "w");
	if (!f)
		die("SPINDLE_BENCH_TIMER_DUMP: cannot write the file");
	fprintf(f, "# start_ms sleep_ms late_ms (iteration began at CLOCK_MONOTONIC %llu ns)\n",
		(unsigned long long)timer_base);
	for (size_t k = 0; k < TIMER_TASKS; k++)
		fprintf(f, "%.3f %.0f %.3f\n", (double)(timer_t0[k] - timer_base) / 1e6,
			(double)timer_dur[k] / 1e6, (double)lates[k] / 1e6);
	if (fclose(f) != 0)
		die("SPINDLE_BENCH_TIMER_DUMP: cannot write the file");
}

static sp_poll timer_task_poll(sp_future *f, sp_context *cx)
{
	struct timer_task *self = (struct timer_task *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->t0 = mono_ns();
	if (timer_t0)
		timer_t0[self->idx] = self->t0;
	sp_sleep_init(&self->s, self->dur_ns);
	SP_AWAIT(&self->s);
	SP_RETURN((int64_t)(mono_ns() - self->t0) - (int64_t)self->dur_ns);
	SP_ASYNC_END();
}

/* block_on: spawn every timer task, then await them in order. */
struct timer_root {
	sp_future base;
	int out;
	uint64_t seed;
	size_t i;
	sp_join_handle *hs;
	int64_t *lates;
};

static sp_poll timer_root_poll(sp_future *f, sp_context *cx)
{
	struct timer_root *self = (struct timer_root *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < TIMER_TASKS; self->i++) {
		struct timer_task t = {.base = {.poll = timer_task_poll, .name = "timer"},
				       .idx = (uint32_t)self->i};
		t.dur_ns = (TIMER_MIN_MS + splitmix64(&self->seed) %
						   (TIMER_MAX_MS - TIMER_MIN_MS + 1)) * 1000000u;
		check(SP_SPAWN_OUT("timer", &self->hs[self->i], t), "SP_SPAWN_OUT(timer)");
		self->hs[self->i].dst = &self->lates[self->i];
		if (timer_dur)
			timer_dur[self->i] = t.dur_ns;
	}
	for (self->i = 0; self->i < TIMER_TASKS; self->i++)
		SP_AWAIT(&self->hs[self->i]);
	SP_ASYNC_END();
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* One iteration with this seed: returns seconds; lates filled (unsorted). */
static double timer_once(struct bench *b, uint64_t seed, int64_t *lates)
{
	struct timer_root root = {.base = {.poll = timer_root_poll, .name = "timer_root"},
				  .seed = seed,
				  .hs = calloc(TIMER_TASKS, sizeof(sp_join_handle)),
				  .lates = lates};
	if (!root.hs)
		die("out of memory");
	uint64_t t0 = mono_ns();
	timer_base = t0;
	check(sp_block_on(b->rt, &root.base), "sp_block_on(timer)");
	double s = (double)(mono_ns() - t0) / 1e9;
	if (timer_t0)
		timer_dump(lates);
	free(root.hs);
	return s;
}

/* The timer workload reports lateness too, in the anchors' format. */
static void measure_timer(const struct cfg *c, struct bench *b)
{
	uint64_t iters = c->iters ? c->iters : 1;
	size_t n = TIMER_TASKS * iters;
	int64_t *lates = malloc(n * sizeof(*lates));
	double *secs = calloc(c->runs, sizeof(*secs));
	double *p50 = calloc(c->runs, sizeof(double)), *p99 = calloc(c->runs, sizeof(double));
	double *mx = calloc(c->runs, sizeof(double));
	if (!lates || !secs || !p50 || !p99 || !mx)
		die("out of memory");
	printf("# timer runtime=%s workers=%d runs=%lu iters_per_run=%llu ops_per_iter=%d "
	       "unit=timers sleep=%d..=%dms\n",
	       RUNTIME_NAME, bench_workers, c->runs, (unsigned long long)iters, TIMER_TASKS,
	       TIMER_MIN_MS, TIMER_MAX_MS);
	if (getenv("SPINDLE_BENCH_TIMER_DUMP")) {
		timer_t0 = calloc(TIMER_TASKS, sizeof(*timer_t0));
		timer_dur = calloc(TIMER_TASKS, sizeof(*timer_dur));
		if (!timer_t0 || !timer_dur)
			die("out of memory");
	}
	watchdog_arm("timer");
	for (uint64_t w = 0; w < (iters + 9) / 10; w++)
		timer_once(b, 1000 + w, lates);
	for (unsigned long r = 0; r < c->runs; r++) {
		watchdog_arm("timer");
		secs[r] = 0;
		for (uint64_t i = 0; i < iters; i++)
			secs[r] += timer_once(b, r * 1000 + i + 1, lates + i * TIMER_TASKS);
		qsort(lates, n, sizeof(*lates), cmp_i64);
		double sum = 0;
		for (size_t k = 0; k < n; k++)
			sum += (double)lates[k];
#define Q(q) ((double)lates[(size_t)((double)(n - 1) * (q))] / 1e6)
		printf("timer %.6f %.0f\n", secs[r], (double)n / secs[r]);
		printf("# timer lateness_ms min=%.3f p50=%.3f p90=%.3f p99=%.3f max=%.3f mean=%.3f\n",
		       Q(0.0), Q(0.5), Q(0.9), Q(0.99), Q(1.0), sum / (double)n / 1e6);
		p50[r] = Q(0.5);
		p99[r] = Q(0.99);
		mx[r] = Q(1.0);
#undef Q
	}
	watchdog_arm(NULL);
	double m = median(secs, c->runs);
	printf("median timer %.6f %.0f\n", m, (double)n / m);
	printf("# median timer lateness_ms p50=%.3f p99=%.3f max=%.3f\n", median(p50, c->runs),
	       median(p99, c->runs), median(mx, c->runs));
	free(lates);
	free(secs);
	free(p50);
	free(p99);
	free(mx);
}

/* Returns 0, or 2 when the workload is not implemented yet. */
static int run_workload(const struct cfg *c, const struct workload *w)
{
	struct bench b;

	if (!strcmp(w->name, "timer")) {
		bench_open(&b);
		measure_timer(c, &b);
		bench_close(&b);
		return 0;
	}
	if (!w->body) {
		fprintf(stderr, "# %s: not implemented yet\n", w->name);
		return 2;
	}
	bench_open(&b);
	if (w->prepare)
		w->prepare(&b);
	measure(c, w, &b);
	bench_close(&b);
	return 0;
}

/* ---- command line ------------------------------------------------------------ */

static void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("spindle-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; " USAGE "\n", stderr);
	exit(2);
}

/* A positive decimal integer no larger than max. */
static uint64_t parse_count(const char *s, const char *what, uint64_t max)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		usage_error("%s must be a positive integer, got '%s'", what, s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		usage_error("%s must be a positive integer, got '%s'", what, s);
	return v;
}

static void list_workloads(void)
{
	for (size_t i = 0; i < NUM_WORKLOADS; i++) {
		const struct workload *w = &workloads[i];

		printf("%s ops_per_iter=%llu default_iters=%llu unit=%s\n", w->name,
		       (unsigned long long)ops_of(w), (unsigned long long)w->def_iters,
		       w->unit);
	}
}

static int run_all(const struct cfg *c)
{
	int rc = 0;

	for (size_t i = 0; i < NUM_WORKLOADS; i++) {
		if (run_workload(c, &workloads[i]))
			rc = 2;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct cfg c = {.runs = DEFAULT_RUNS};
	const struct workload *w = NULL;
	const char *name;

	if (argc < 2 || argc > 4)
		usage_error("expected 1 to 3 arguments, got %d", argc - 1);
	name = argv[1];
	if (strcmp(name, "list") && strcmp(name, "all") && !(w = find_workload(name)))
		usage_error("unknown workload '%s' (try 'list')", name);
	if (argc > 2)
		c.runs = parse_count(argv[2], "runs", 1000000);
	if (argc > 3)
		c.iters = parse_count(argv[3], "iters_per_run", UINT64_MAX / 1000000);

	if (getenv("SPINDLE_BENCH_TCP_TRIPS"))
		tcp_round_trips = parse_count(getenv("SPINDLE_BENCH_TCP_TRIPS"),
					      "SPINDLE_BENCH_TCP_TRIPS", 1000000);
	if (getenv("SPINDLE_BENCH_WORKERS"))
		bench_workers = (int)parse_count(getenv("SPINDLE_BENCH_WORKERS"), "SPINDLE_BENCH_WORKERS",
					   1024);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(name, "list")) {
		list_workloads();
		return 0;
	}
	watchdog_start();
	if (w)
		return run_workload(&c, w);
	return run_all(&c);
}
