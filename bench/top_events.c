/*
 * top_events.c - what `spindle top` spends per event, as a fixed, repeatable
 * run for callgrind: the stream reader (console/stream.c) and the console
 * model (console/top_model.c) over a segment this program writes itself.
 *
 *   build/bin/top-events [--rounds N] [--rate EVENTS_PER_S] [--workers N]
 *                        [--tasks N] [--sum] [--check]
 *   valgrind --tool=callgrind --toggle-collect=consume build/bin/top-events
 *
 * Each round writes 20 ms of a busy runtime's records into the worker rings
 * (mostly yields: POLL_START and a POLL_END carrying one self-wake, three
 * events; then wakes of other tasks, waker clones and drops, timer wakes,
 * spawns and completions, parks, steals, injection pushes and pops), then
 * calls spc_stream_poll once, as the console does every 20 ms, with
 * topm_event as the callback. Only consume() (that poll) is measured, so the
 * cost of writing the records stays out. The segment's clock is set to
 * ticks == ns and the stream reads a fake clock that stands just after the
 * round's last record: the stream holds back the newest 2 ms and merges
 * them with the next round as it does live, and every run delivers the same
 * events in the same batches.
 *
 * It prints the events delivered and a checksum of the model's state after
 * the run (every task's cells and counters, the workers, the warnings), and
 * with --sum one of every delivered event (every field, in order; the
 * summing costs about as much as the model, so it is off when measuring):
 * a change to the reader or the model that keeps both checksums changed
 * nothing the console shows. --check prints the model's state in full.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "stream.h"
#include "top_model.h"
#include "trace_segment.h"

/* The fake clock that stream.c reads (bench/fake_clock.h). */
uint64_t bench_clock_ns;

#define ROUND_NS 20000000ull /* the console polls the stream every 20 ms */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

struct wk {
	sp__ring *ring;
	uint64_t ts; /* this worker's clock */
	uint64_t gap;
};

static uint64_t next_id;
static uint64_t *tasks;
static unsigned ntasks;

static void emit(struct wk *w, uint32_t type, uint32_t a, uint64_t b)
{
	sp__ring_emit_at(w->ring, w->ts, type, a, b);
}

static void advance(struct wk *w)
{
	w->ts += w->gap / 2 + rnd() % w->gap;
}

static uint32_t wake_bits(unsigned src, unsigned q, int self, int byval)
{
	return (self ? SP_WAKE_SELF : 0) | (byval ? SP_WAKE_BY_VALUE : 0) |
	       src << SP_WAKE_SRC_SHIFT | q << SP_WAKE_Q_SHIFT |
	       (uint32_t)SP_WAKE_DETAIL_NONE << SP_WAKE_DETAIL_SHIFT;
}

/* One poll on worker wi and what happens around it. A poll's end and the
 * next poll's start share one clock reading, as in the runtime. */
static void one_poll(struct wk *w, unsigned wi, unsigned nw)
{
	unsigned k = rnd() % ntasks;
	uint64_t task = tasks[k];
	uint32_t r = rnd() % 1000;
	emit(w, SP_EV_POLL_START, wi, task);
	advance(w);
	if (r < 800) { /* a yield */
		emit(w, SP_EV_POLL_END, 1u << SP_POLL_SELF_SHIFT, task);
	} else if (r < 930) { /* wakes a peer through a channel, then waits */
		uint64_t peer = tasks[rnd() % ntasks];
		emit(w, SP_EV_WAKE, wake_bits(SP_WAKE_SRC_TASK, SP_WAKE_Q_LOCAL, 0, 1), peer);
		emit(w, SP_EV_WAKER_CLONE, SP_HOLD_CHANNEL, task);
		advance(w);
		emit(w, SP_EV_POLL_END, 0, task);
	} else if (r < 970) { /* sleeps; its timer fires later on this worker */
		emit(w, SP_EV_WAKER_CLONE, SP_HOLD_TIMER, task);
		emit(w, SP_EV_POLL_END, 0, task);
		advance(w);
		emit(w, SP_EV_TIMER_FIRE, 0, 1);
		emit(w, SP_EV_WAKE, wake_bits(SP_WAKE_SRC_TIMER, SP_WAKE_Q_LOCAL, 0, 1), task);
	} else if (r < 985) { /* spawns a child, which is polled once, done */
		uint64_t child = ++next_id;
		emit(w, SP_EV_SPAWN, rnd() % 8, child);
		emit(w, SP_EV_POLL_END, 1u << SP_POLL_SELF_SHIFT, task);
		emit(w, SP_EV_POLL_START, wi, child);
		advance(w);
		emit(w, SP_EV_POLL_END, SP_POLL_READY, child);
		emit(w, SP_EV_TASK_DONE, 0, child);
		/* the child replaces a pool task now and then (churn) */
		if (rnd() % 4 == 0)
			tasks[k] = child;
	} else if (r < 995) { /* yields, then the worker parks and steals */
		emit(w, SP_EV_POLL_END, 1u << SP_POLL_SELF_SHIFT, task);
		emit(w, SP_EV_PARK, wi, 0);
		advance(w);
		emit(w, SP_EV_UNPARK, wi, 0);
		emit(w, SP_EV_STEAL, (wi + 1) % nw, 1 + rnd() % 4);
	} else { /* woken from outside: through the injection queue */
		emit(w, SP_EV_POLL_END, 0, task);
		emit(w, SP_EV_INJECT_PUSH, 0, task);
		emit(w, SP_EV_INJECT_POP, wi, task);
	}
}

/* Write rounds' records into every worker ring up to time `until`. */
static void produce(struct wk *w, unsigned nw, uint64_t until)
{
	for (unsigned i = 0; i < nw; i++)
		while (w[i].ts < until)
			one_poll(&w[i], i, nw);
}

/* ---- what was delivered, and what the model shows ----------------------------- */

struct sink {
	topm_model *m;
	uint64_t n, sum;
};

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static void on_event(const spc_event *ev, void *arg)
{
	struct sink *s = arg;
	uint64_t h = s->sum;
	h = mix(h, ev->ns);
	h = mix(h, ev->ticks);
	h = mix(h, (uint64_t)ev->type << 32 | ev->a);
	h = mix(h, ev->b);
	h = mix(h, ev->seq);
	h = mix(h, (uint64_t)ev->ring << 32 | ev->tid);
	h = mix(h, (uint64_t)(uint32_t)ev->worker << 32 | ev->thread_kind);
	h = mix(h, ev->task);
	h = mix(h, (uint64_t)ev->late << 1 | (uint64_t)ev->expanded);
	s->sum = h;
	s->n++;
	topm_event(s->m, ev);
}

/* The measured part: one poll of the stream into the model. Not inlined, so
 * that callgrind's --toggle-collect=consume finds it. */
__attribute__((noinline)) size_t consume(spc_stream *s, struct sink *k, int sum)
{
	if (sum)
		return spc_stream_poll(s, on_event, k);
	size_t n = spc_stream_poll(s, topm_event_cb, k->m); /* as the console does */
	k->n += n;
	return n;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = mix(h, (unsigned char)*s);
	return mix(h, 0);
}

static uint64_t model_sum(topm_model *m, int print)
{
	uint64_t h = 1;
	topm_task **rows = NULL;
	size_t cap = 0;
	topm_view_opts o = {.sort_col = TOPM_COL_ID, .show_done = 1};
	size_t n = topm_view(m, &o, &rows, &cap);
	char cell[128];
	for (size_t i = 0; i < n; i++) {
		const topm_task *t = rows[i];
		for (int c = 0; c < TOPM_COL__COUNT; c++) {
			topm_cell(m, t, c, cell, sizeof cell);
			h = hash_str(h, cell);
			if (print)
				printf("%s ", cell);
		}
		uint64_t f[] = {t->parent, t->site, t->state, t->aborted, t->notified,
				t->counts_known, (uint64_t)t->worker, t->polls, t->wakes,
				t->self_wakes, t->clones, t->drops, t->busy_ns, t->sched_ns,
				t->idle_ns, t->spawn_ns, t->since_ns, t->done_ns, t->max_poll_ns,
				t->max_sched_ns, t->long_poll_ns, t->long_poll_at, t->delay_ns,
				t->delay_at, t->ev_head, t->ev_count};
		for (size_t j = 0; j < sizeof f / sizeof f[0]; j++)
			h = mix(h, f[j]);
		for (unsigned b = 0; b < TOPM_HIST_BUCKETS; b++)
			h = mix(h, (uint64_t)t->hist_poll[b] << 16 | t->hist_sched[b]);
		for (unsigned e = 0; e < t->ev_count; e++) {
			const topm_ev *x = &t->ev[(t->ev_head + e) % TOPM_TASK_EVENTS];
			h = mix(h, x->ns);
			h = mix(h, (uint64_t)x->a << 16 | (uint64_t)x->type << 8 | (uint8_t)x->worker);
		}
		if (print)
			printf("| %llu %llu %llu %llu %llu\n", (unsigned long long)t->polls,
			       (unsigned long long)t->wakes, (unsigned long long)t->clones,
			       (unsigned long long)t->drops, (unsigned long long)t->busy_ns);
	}
	free(rows);
	for (unsigned i = 0; i < topm_worker_count(m); i++) {
		const topm_worker *w = topm_worker_get(m, i);
		uint64_t f[] = {w->present, w->tid,   w->polls,	 w->busy_ns, w->steals_in,
				w->steals_out, w->parks, w->parked, w->current, w->poll_start};
		for (size_t j = 0; j < sizeof f / sizeof f[0]; j++)
			h = mix(h, f[j]);
		if (print)
			printf("worker %u: polls %llu busy %llu steals %llu/%llu parks %llu\n", i,
			       (unsigned long long)w->polls, (unsigned long long)w->busy_ns,
			       (unsigned long long)w->steals_in, (unsigned long long)w->steals_out,
			       (unsigned long long)w->parks);
	}
	size_t nw, total;
	const topm_warning *w = topm_warnings(m, &nw, &total);
	h = mix(h, total);
	for (size_t i = 0; i < nw; i++) {
		char text[200];
		topm_warning_text(m, &w[i], text, sizeof text);
		h = hash_str(h, text);
		h = mix(h, w[i].task);
		if (print)
			printf("warning %s task %llu: %s\n", topm_warn_name(w[i].kind),
			       (unsigned long long)w[i].task, text);
	}
	size_t live, done;
	h = mix(h, topm_task_count(m, &live, &done));
	h = mix(h, live);
	h = mix(h, done);
	h = mix(h, topm_events_seen(m));
	return h;
}

static unsigned long num(const char *s, unsigned long max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || !v || v > max) {
		fprintf(stderr, "top-events: bad value '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long rounds = 10, rate = 25000000, nw = 2, nt = 1000;
	int check = 0, sum = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = num(argv[++i], 100000);
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = num(argv[++i], 1000000000);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			nw = num(argv[++i], 64);
		else if (!strcmp(argv[i], "--tasks") && i + 1 < argc)
			nt = num(argv[++i], 1000000);
		else if (!strcmp(argv[i], "--check"))
			check = 1;
		else if (!strcmp(argv[i], "--sum"))
			sum = 1;
		else {
			fprintf(stderr, "usage: top-events [--rounds N] [--rate EVENTS_PER_S] "
					"[--workers N] [--tasks N] [--sum] [--check]\n");
			return 2;
		}
	}
	/* A poll is about 3 events and 1.1 advances of a gap on average
	 * (advance() draws from [gap / 2, 1.5 gap)): 2.75 events a gap on
	 * each worker (measured: 25.0M events/s with the defaults). */
	uint64_t gap = (uint64_t)(2.75e9 * (double)nw / (double)rate);
	if (gap < 2)
		gap = 2;
	uint32_t cap = 1u << 16;
	while ((uint64_t)cap * gap < 3 * ROUND_NS && cap < (1u << 24))
		cap <<= 1;

	char path[64];
	snprintf(path, sizeof path, "/dev/shm/spindle-top-events.%d", (int)getpid());
	sp__segment seg;
	int rc = sp__seg_create_at(&seg, path, (unsigned)nw, cap, 64);
	if (rc < 0) {
		fprintf(stderr, "top-events: cannot create %s: %s\n", path, strerror(-rc));
		return 1;
	}
	/* ticks are nanoseconds from 1 s: the fake clock is the segment's */
	seg.hdr->clock_tick0 = 0;
	seg.hdr->clock_ns0 = 0;
	seg.hdr->clock_mult = 1ull << 32;
	struct wk *w = calloc(nw, sizeof *w);
	for (unsigned i = 0; i < nw; i++) {
		int idx = sp__seg_claim_ring(&seg, 1000 + i);
		w[i].ring = sp__seg_ring(&seg, (unsigned)idx);
		w[i].ts = 1000000000ull + i * 7;
		w[i].gap = gap;
		emit(&w[i], SP_EV_THREAD, i, SP_THREAD_WORKER);
	}
	tasks = malloc(nt * sizeof *tasks);
	ntasks = (unsigned)nt;
	for (unsigned i = 0; i < nt; i++) {
		tasks[i] = ++next_id;
		emit(&w[i % nw], SP_EV_SPAWN, i % 8, tasks[i]);
	}

	sp__seg_reader r;
	rc = sp__seg_open_file(&r, path);
	spc_stream *s = NULL;
	if (rc == 0)
		rc = spc_stream_open_reader(&s, &r, SPC_FROM_OLDEST);
	unlink(path);
	if (rc < 0) {
		fprintf(stderr, "top-events: cannot open the stream: %s\n", strerror(-rc));
		return 1;
	}
	struct sink k = {.m = topm_new(NULL, NULL, NULL)};
	uint64_t t = 1000000000ull;
	for (unsigned long i = 0; i < rounds; i++) {
		t += ROUND_NS;
		produce(w, (unsigned)nw, t);
		bench_clock_ns = t + 100000; /* read 0.1 ms after the last record */
		consume(s, &k, sum);
		if (i % 50 == 49)
			topm_tick(k.m, bench_clock_ns - SPC_SLACK_NS);
	}
	topm_tick(k.m, bench_clock_ns - SPC_SLACK_NS);
	uint64_t ms = model_sum(k.m, check);
	printf("events %llu lost %llu model %016llx", (unsigned long long)k.n,
	       (unsigned long long)spc_stream_lost_total(s), (unsigned long long)ms);
	if (sum)
		printf(" stream %016llx", (unsigned long long)k.sum);
	printf("\n");
	topm_free(k.m);
	spc_stream_close(s);
	sp__seg_destroy(&seg);
	free(w);
	free(tasks);
	return 0;
}
