/*
 * synth.c - a synthetic event source for `spindle record --synthetic N`
 * (recorder.h): measures the recorder and SQLite without a target, and makes
 * large recordings for `spindle report` benchmarks.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "recorder.h"

#define SYN_TASKS 200
#define SYN_WORKERS 2
#define SYN_LONG_EVERY 100000

static const char *const syn_names[] = {"conn", "ticker", "worker", "spinner", "orphan"};

struct syn {
	sprec *rec;
	uint64_t rng;
	uint64_t now; /* ns since t0 (t0 = 1 s so nothing is negative) */
	uint64_t seq;
	int err;
};

static uint32_t rnd(struct syn *s)
{
	s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(s->rng >> 33);
}

static void emit(struct syn *s, uint32_t type, uint32_t a, uint64_t b, int worker, uint64_t cur)
{
	spc_event ev = {.ns = 1000000000ull + s->now,
			.type = type,
			.a = a,
			.b = b,
			.seq = s->seq++,
			.ring = (uint32_t)worker,
			.tid = 100 + (uint32_t)worker,
			.worker = worker,
			.thread_kind = SP_THREAD_WORKER,
			.task = cur};
	ev.ticks = ev.ns;
	if (!s->err && sprec_event(s->rec, &ev))
		s->err = 1;
}

static uint32_t wake_bits(unsigned src, unsigned q, int self, int byval, uint32_t detail)
{
	return (self ? SP_WAKE_SELF : 0) | (byval ? SP_WAKE_BY_VALUE : 0) |
	       src << SP_WAKE_SRC_SHIFT | q << SP_WAKE_Q_SHIFT | detail << SP_WAKE_DETAIL_SHIFT;
}

/* One poll of task on worker w, with its wake before and its waker after. */
static void one_poll(struct syn *s, uint64_t task, int w, uint64_t dur, int self_yield)
{
	emit(s, SP_EV_POLL_START, (uint32_t)w, task, w, 0);
	s->now += dur;
	if (self_yield)
		emit(s, SP_EV_WAKE, wake_bits(SP_WAKE_SRC_TASK, SP_WAKE_Q_LOCAL, 1, 0, 0), task, w,
		     task);
	else
		emit(s, SP_EV_WAKER_CLONE, SP_HOLD_TIMER, task, w, task);
	emit(s, SP_EV_POLL_END, 0, task, w, 0);
}

int sprec_synthetic(spdb_writer *w, uint64_t polls, unsigned seed, sprec_stats *st)
{
	struct syn s = {.rng = seed * 2654435761ull + 1};
	if (sprec_new(&s.rec, w, 1000000000ull))
		return -1;
	for (unsigned i = 0; i < sizeof syn_names / sizeof syn_names[0]; i++)
		if (sprec_site(s.rec, i, syn_names[i], "synthetic.c", 10 + i))
			s.err = 1;
	for (int k = 0; k < SYN_WORKERS; k++)
		emit(&s, SP_EV_THREAD, (uint32_t)k, SP_THREAD_WORKER, k, 0);
	for (uint64_t t = 1; t <= SYN_TASKS; t++)
		emit(&s, SP_EV_SPAWN, (uint32_t)(t % 4), t, 0, 0);
	/* The orphan: polled once, never clones its waker. */
	emit(&s, SP_EV_SPAWN, 4, SYN_TASKS + 1, 0, 0);
	emit(&s, SP_EV_POLL_START, 0, SYN_TASKS + 1, 0, 0);
	s.now += 1000;
	emit(&s, SP_EV_POLL_END, 0, SYN_TASKS + 1, 0, 0);
	uint64_t last_commit = spc_mono_ns();
	for (uint64_t i = 0; i < polls && !s.err; i++) {
		int wk = (int)(i % SYN_WORKERS);
		uint64_t task = 1 + rnd(&s) % SYN_TASKS;
		int self_yield = task % 4 == 3 && rnd(&s) % 4 != 0; /* "spinner" yields */
		if (!self_yield)
			emit(&s, SP_EV_WAKE, wake_bits(SP_WAKE_SRC_TIMER, SP_WAKE_Q_LOCAL, 0, 1, 0),
			     task, wk, 0);
		s.now += 200 + rnd(&s) % 2000; /* scheduling delay */
		if (i % SYN_LONG_EVERY == SYN_LONG_EVERY / 2) {
			/* A victim queued behind a 20 ms poll on the same worker. */
			uint64_t victim = 1 + (task % SYN_TASKS);
			emit(&s, SP_EV_WAKE, wake_bits(SP_WAKE_SRC_TIMER, SP_WAKE_Q_LOCAL, 0, 1, 0),
			     victim, wk, 0);
			one_poll(&s, task, wk, 20000000, 0);
			one_poll(&s, victim, wk, 3000, 0);
			continue;
		}
		one_poll(&s, task, wk, 1000 + rnd(&s) % 8000, self_yield);
		if (rnd(&s) % 64 == 0) {
			emit(&s, SP_EV_PARK, (uint32_t)wk, 0, wk, 0);
			s.now += 5000;
			emit(&s, SP_EV_UNPARK, (uint32_t)wk, 0, wk, 0);
			emit(&s, SP_EV_STEAL, (uint32_t)!wk, 1 + rnd(&s) % 4, wk, 0);
		}
		/* Commit as the live recorder does: every 100 ms of real time. */
		if ((i & 1023) == 0 && spc_mono_ns() - last_commit >= (uint64_t)SPREC_COMMIT_NS) {
			if (sprec_commit(s.rec))
				s.err = 1;
			last_commit = spc_mono_ns();
		}
	}
	if (!s.err && sprec_commit(s.rec))
		s.err = 1;
	if (st)
		sprec_get_stats(s.rec, st);
	sprec_free(s.rec);
	return s.err ? -1 : 0;
}
