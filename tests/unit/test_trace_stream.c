/*
 * test_trace_stream.c - the reader library over a live traced runtime (this
 * process): events merged in time order with their ring context, spawn sites
 * resolved, wake sources and waker holders as trace_events.h specifies, and
 * the live task table that a reader attaching late reads.
 */
#include <string.h>
#include <unistd.h>

#include "unit/sp_test.h"

#include "spindle/io.h"
#include "stream.h"

/* ---- the workload --------------------------------------------------------- */

struct sleepy {
	sp_future base;
	sp_sleep s;
};

static sp_poll sleepy_poll(sp_future *f, sp_context *cx)
{
	struct sleepy *self = (struct sleepy *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_sleep_init(&self->s, 30 * 1000000ull);
	SP_AWAIT(&self->s);
	SP_ASYNC_END();
}

static sp_poll kid_poll(sp_future *f, sp_context *cx)
{
	(void)f;
	(void)cx;
	return SP_READY;
}

struct parent {
	sp_future base;
	sp_join_handle jh;
};

static sp_poll parent_poll(sp_future *f, sp_context *cx)
{
	struct parent *self = (struct parent *)f;
	SP_ASYNC_BEGIN(f, cx);
	{
		struct {
			sp_future base;
		} k = {.base = {.poll = kid_poll, .name = "kid"}};
		if (SP_SPAWN("kid", &self->jh, k) != 0)
			SP_RETURN_VOID();
	}
	SP_AWAIT(&self->jh);
	SP_ASYNC_END();
}

/* Pending for ever, and keeps no waker: the lost-waker bug. */
static sp_poll lost_poll(sp_future *f, sp_context *cx)
{
	(void)f;
	(void)cx;
	return SP_PENDING;
}

/* ---- what the stream shows ------------------------------------------------- */

struct seen {
	spc_stream *s;
	uint64_t sleepy, parent, kid, lost;
	int sleepy_site_ok, kid_parent_ok, sleepy_timer_hold, sleepy_timer_wake;
	int parent_join_wake, sleepy_done, lost_polls, polls_without_worker, lost_aborted;
	int starts, ends, order_bad, threads;
	uint64_t inject_popped, pops_bad;
	uint64_t last_ns;
};

static void on_event(const spc_event *ev, void *arg)
{
	struct seen *x = arg;
	if (!ev->late) {
		x->order_bad += ev->ns < x->last_ns;
		x->last_ns = ev->ns;
	}
	switch (ev->type) {
	case SP_EV_THREAD:
		x->threads++;
		break;
	case SP_EV_SPAWN: {
		const spc_site *site = spc_stream_site(x->s, ev->a);
		if (ev->b == x->sleepy && site && !strcmp(site->name, "sleepy") &&
		    strstr(site->file, "test_trace_stream.c") && site->line > 0)
			x->sleepy_site_ok = 1;
		if (site && !strcmp(site->name, "kid")) {
			x->kid = ev->b;
			x->kid_parent_ok = ev->task == x->parent;
		}
		break;
	}
	case SP_EV_POLL_START:
		x->starts++;
		x->polls_without_worker += ev->worker < 0;
		x->lost_polls += ev->b == x->lost;
		break;
	case SP_EV_POLL_END:
		x->ends++;
		x->sleepy_done += ev->b == x->sleepy && (ev->a & SP_POLL_READY);
		break;
	case SP_EV_WAKER_CLONE:
		if (ev->b == x->sleepy && (ev->a & 0xff) == SP_HOLD_TIMER)
			x->sleepy_timer_hold = 1;
		break;
	case SP_EV_WAKE: {
		unsigned src = (ev->a & SP_WAKE_SRC_MASK) >> SP_WAKE_SRC_SHIFT;
		if (ev->b == x->sleepy && src == SP_WAKE_SRC_TIMER)
			x->sleepy_timer_wake = 1;
		if (ev->b == x->parent && src == SP_WAKE_SRC_JOIN)
			x->parent_join_wake = 1;
		break;
	}
	case SP_EV_INJECT_POPS: /* one per batch: the count, by a worker */
		x->inject_popped += ev->b;
		x->pops_bad += ev->b == 0 || ev->worker < 0 || ev->a != (uint32_t)ev->worker;
		break;
	case SP_EV_TASK_DONE: /* aborts only */
		x->sleepy_done += ev->b == x->sleepy;
		x->lost_aborted += ev->b == x->lost && ev->a == 1;
		break;
	}
}

struct table {
	uint64_t lost;
	int found, named, idle, no_wakers;
};

static void on_task(const sp__seg_task *t, void *arg)
{
	struct table *tb = arg;
	if (t->id != tb->lost)
		return;
	tb->found = 1;
	tb->named = !strcmp(t->name, "lost") && strstr(t->file, "test_trace_stream.c") != NULL;
	tb->idle = !(t->state & (SP_TASK_RUNNING | SP_TASK_NOTIFIED | SP_TASK_COMPLETE)) &&
		   t->polls == 1;
	tb->no_wakers = t->waker_clones == t->waker_drops;
}

static void stream__events_sites_sources_and_task_table(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = 2, .trace = 1};
	sp_runtime *rt = NULL;
	assert_int_equal(sp_runtime_new(&rt, &o), 0);
	const char *err = NULL;
	spc_stream *s = NULL;
	int rc = -1;
	for (int i = 0; i < 200 && rc != 0; i++) { /* workers create the segment */
		rc = spc_stream_open(&s, (int)getpid(), SPC_FROM_OLDEST, &err);
		if (rc)
			usleep(5000);
	}
	assert_int_equal(rc, 0);
	struct seen x = {.s = s};

	/* act */
	struct sleepy sl = {.base = {.poll = sleepy_poll, .name = "sleepy"}};
	struct parent pa = {.base = {.poll = parent_poll, .name = "parent"}};
	struct {
		sp_future base;
	} lo = {.base = {.poll = lost_poll, .name = "lost"}};
	sp_join_handle jl, js, jp;
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "lost", &jl, lo), 0);
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "sleepy", &js, sl), 0);
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "parent", &jp, pa), 0);
	x.lost = sp_join_handle_id(&jl);
	x.sleepy = sp_join_handle_id(&js);
	x.parent = sp_join_handle_id(&jp);
	assert_int_equal(sp_join_handle_wait(&js), 0);
	assert_int_equal(sp_join_handle_wait(&jp), 0);
	struct table tb = {.lost = x.lost};
	size_t ntasks = spc_stream_tasks(s, on_task, &tb); /* "lost" still lives */
	spc_stream_flush(s, on_event, &x);
	uint64_t lost_records = spc_stream_lost_total(s);
	uint32_t depth = 99, inject = 99;
	int queue_rc = -1;
	for (int i = 0; i < 200 && queue_rc != 0; i++) { /* published when a worker parks */
		queue_rc = spc_stream_worker_queue(s, 0, &depth, &inject);
		if (queue_rc)
			usleep(5000);
	}
	uint32_t d77, i77;
	int queue77_rc = spc_stream_worker_queue(s, 77, &d77, &i77); /* no such worker */
	sp_join_handle_abort(&jl);
	sp_join_handle_wait(&jl);
	spc_stream_flush(s, on_event, &x); /* the abort's TASK_DONE */
	sp_runtime_free(rt);
	spc_stream_close(s);

	/* assert */
	assert_true(ntasks >= 1);
	assert_true(tb.found);
	assert_true(tb.named);
	assert_true(tb.idle);
	assert_true(tb.no_wakers);
	assert_int_equal(lost_records, 0);
	assert_int_equal(queue_rc, 0);
	assert_true(depth <= 256);
	assert_int_equal(queue77_rc, -1);
	assert_true(x.threads >= 2); /* the workers, and this thread's ring */
	assert_true(x.sleepy_site_ok);
	assert_true(x.kid_parent_ok);
	assert_true(x.sleepy_timer_hold);
	assert_true(x.sleepy_timer_wake);
	assert_true(x.parent_join_wake);
	assert_int_equal(x.sleepy_done, 1);
	assert_int_equal(x.lost_aborted, 1);
	assert_int_equal(x.lost_polls, 1);
	assert_int_equal(x.polls_without_worker, 0);
	assert_int_equal(x.starts, x.ends);
	assert_int_equal(x.order_bad, 0);
	assert_true(x.inject_popped >= 3); /* the three spawned from this thread */
	assert_int_equal(x.pops_bad, 0);
}

/* A pid with no segment: a clear error, no stream. */
static void stream__no_segment_is_an_error(void **state)
{
	(void)state;
	spc_stream *s = NULL;
	const char *err = NULL;
	assert_int_equal(spc_stream_open(&s, 1, 0, &err), -ENOENT);
	assert_non_null(err);
	assert_null(s);
	assert_string_equal(spc_event_name(SP_EV_WAKE), "wake");
	assert_string_equal(spc_event_name(999), "unknown");
	char buf[128];
	spc_event_detail(SP_EV_WAKE,
			 SP_WAKE_SRC_REACTOR << SP_WAKE_SRC_SHIFT | SP_WAKE_Q_LIFO << SP_WAKE_Q_SHIFT |
				 7u << SP_WAKE_DETAIL_SHIFT,
			 buf, sizeof buf);
	assert_string_equal(buf, "from the reactor (fd 7) to the LIFO slot");
	spc_event_detail(SP_EV_WAKER_CLONE, SP_HOLD_TIMER, buf, sizeof buf);
	assert_string_equal(buf, "held by a timer");
	spc_event_detail(SP_EV_POLL_END, SP_POLL_READY, buf, sizeof buf);
	assert_string_equal(buf, "ready");
}

/* ---- self-wakes (segment ABI 2.2) ------------------------------------------- */

/* First poll: wakes itself by reference three times (one WAKE each, however
 * they are written), then once by value (a waker consumed: its own record);
 * second poll: ready. */
struct selfwaker {
	sp_future base;
	int out;
	int polls;
};

static sp_poll selfwaker_poll(sp_future *f, sp_context *cx)
{
	struct selfwaker *self = (struct selfwaker *)f;
	if (self->polls++)
		return SP_READY;
	for (int i = 0; i < 3; i++)
		sp_waker_wake_by_ref(cx->waker);
	sp_waker w = sp_waker_clone(cx->waker);
	sp_waker_wake(&w);
	return SP_PENDING;
}

struct selfseen {
	uint64_t id;
	int wakes, expanded, by_value, bad_context, ends, raw_folded;
	int last_was_expanded;      /* the previous event was an expanded wake */
	uint64_t expanded_ns;       /* their time */
	int end_after_expanded;     /* a POLL_END right after them, same time */
};

static void on_self(const spc_event *ev, void *arg)
{
	struct selfseen *x = arg;
	if (ev->b != x->id)
		return;
	if (ev->type == SP_EV_WAKE) {
		x->wakes += (ev->a & SP_WAKE_SELF) != 0;
		x->expanded += ev->expanded;
		x->by_value += (ev->a & SP_WAKE_BY_VALUE) != 0;
		x->bad_context += ev->task != x->id || ev->worker < 0;
		if (ev->expanded)
			x->expanded_ns = ev->ns;
		x->last_was_expanded = ev->expanded;
		return;
	}
	if (ev->type == SP_EV_POLL_END) {
		x->ends++;
		x->raw_folded += (ev->a >> SP_POLL_SELF_SHIFT) & SP_POLL_SELF_MAX;
		x->end_after_expanded += x->last_was_expanded && ev->ns == x->expanded_ns;
	}
	x->last_was_expanded = 0;
}

static void stream__self_wakes_counted_in_poll_end_come_out_as_wakes(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = 1, .trace = 1};
	sp_runtime *rt = NULL;
	assert_int_equal(sp_runtime_new(&rt, &o), 0);
	spc_stream *s = NULL;
	int rc = -1;
	for (int i = 0; i < 200 && rc != 0; i++) {
		rc = spc_stream_open(&s, (int)getpid(), SPC_FROM_OLDEST, NULL);
		if (rc)
			usleep(5000);
	}
	assert_int_equal(rc, 0);

	/* act */
	struct selfwaker sw = {.base = {.poll = selfwaker_poll, .name = "selfwaker"}};
	sp_join_handle jh;
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "selfwaker", &jh, sw), 0);
	struct selfseen x = {.id = sp_join_handle_id(&jh)};
	assert_int_equal(sp_join_handle_wait(&jh), 0);
	spc_stream_flush(s, on_self, &x);
	sp_runtime_free(rt);
	spc_stream_close(s);

	/* assert */
	assert_int_equal(x.ends, 2);
	assert_int_equal(x.raw_folded, 3);  /* the POLL_END counted the three */
	assert_int_equal(x.wakes, 4);	    /* ... and the stream shows four */
	assert_int_equal(x.expanded, 3);
	assert_int_equal(x.by_value, 1);    /* the one by value kept its record */
	assert_int_equal(x.bad_context, 0); /* source: the task, on its worker */
	assert_int_equal(x.end_after_expanded, 1);
}

/* ---- order across rings ------------------------------------------------------ */

/* A segment written by hand: rings whose times tie with each other, records
 * stamped earlier than the one before them in their ring, events held back
 * (newer than the slack) that later reads must sort before, and self-wakes
 * expanded from POLL_ENDs. What the stream delivers must be what sorting
 * everything read so far by (time, ring, sequence, expanded first) and
 * taking the part older than the slack gives, poll after poll, with `late`
 * set on each event older than one delivered before it. */
#define ORD_RINGS 5
#define ORD_MAX 20000

struct ord_ev {
	uint64_t ticks, seq, b;
	uint32_t ring, type, a;
	int expanded, late;
};

static int ord_cmp(const void *pa, const void *pb)
{
	const struct ord_ev *a = pa, *b = pb;
	if (a->ticks != b->ticks)
		return a->ticks < b->ticks ? -1 : 1;
	if (a->ring != b->ring)
		return a->ring < b->ring ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return b->expanded - a->expanded;
}

struct ord_got {
	struct ord_ev ev[ORD_MAX];
	size_t n;
};

static void on_ord(const spc_event *ev, void *arg)
{
	struct ord_got *g = arg;
	assert_true(g->n < ORD_MAX);
	assert_int_equal(ev->ns, ev->ticks); /* the segment's clock: ticks are ns */
	g->ev[g->n++] = (struct ord_ev){ev->ticks, ev->seq,	 ev->b,	       ev->ring,
					ev->type,  ev->a,	 ev->expanded, ev->late};
}

static uint64_t ord_rng = 88172645463325252ull;
static uint32_t ord_rnd(void)
{
	ord_rng ^= ord_rng << 13;
	ord_rng ^= ord_rng >> 7;
	ord_rng ^= ord_rng << 17;
	return (uint32_t)(ord_rng >> 20);
}

static void stream__rings_merge_in_time_order_across_polls(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof path, "/dev/shm/spindle-test-order.%d", (int)getpid());
	sp__segment seg;
	assert_int_equal(sp__seg_create_at(&seg, path, ORD_RINGS, 1u << 14, 8), 0);
	seg.hdr->clock_tick0 = 0; /* ticks are CLOCK_MONOTONIC ns */
	seg.hdr->clock_ns0 = 0;
	seg.hdr->clock_mult = 1ull << 32;
	sp__ring *ring[ORD_RINGS];
	uint64_t seq[ORD_RINGS] = {0};
	for (unsigned i = 0; i < ORD_RINGS; i++) {
		assert_int_equal(sp__seg_claim_ring(&seg, 100 + i), (int)i);
		ring[i] = sp__seg_ring(&seg, i);
	}
	sp__seg_reader r;
	assert_int_equal(sp__seg_open_file(&r, path), 0);
	spc_stream *s = NULL;
	assert_int_equal(spc_stream_open_reader(&s, &r, 0), 0);

	static struct ord_ev want[ORD_MAX], held[ORD_MAX];
	static struct ord_got got;
	size_t nwant = 0, nheld = 0;
	got.n = 0;
	uint64_t now = sp_now_ns(), last = 0;
	for (unsigned round = 0; round < 8; round++) {
		/* past: 10 s ago and on, delivered by this poll; future: held */
		uint64_t base = now - 10000000000ull + round * 100000000ull;
		for (unsigned i = 0; i < ORD_RINGS; i++) {
			uint64_t t = base + (ord_rnd() % 4) * 1000;
			unsigned n = 50 + ord_rnd() % 200;
			for (unsigned k = 0; k < n; k++) {
				uint32_t x = ord_rnd() % 100, type, a = 0;
				t += ord_rnd() % 3 * 500; /* ties within and across rings */
				uint64_t ts = t;
				if (x < 4)
					ts = t - 1 - ord_rnd() % 300000; /* back in time */
				else if (x < 5)
					ts = t - 150000000; /* behind the last poll's: late */
				else if (x < 8)
					ts = now + 1000000000000ull + ord_rnd(); /* held */
				if (round == 7 && ts > now)
					ts = t; /* the last round's all delivered */
				x = ord_rnd() % 4;
				type = x == 0 ? SP_EV_POLL_START : x == 1 ? SP_EV_POLL_END : SP_EV_WAKE;
				if (type == SP_EV_POLL_END)
					a = (ord_rnd() % 4) << SP_POLL_SELF_SHIFT;
				uint64_t b = 1 + ord_rnd() % 50;
				sp__ring_emit_at(ring[i], ts, type, a, b);
				seq[i]++;
				uint32_t selfs = type == SP_EV_POLL_END ? a >> SP_POLL_SELF_SHIFT : 0;
				for (uint32_t j = 0; j < selfs; j++)
					held[nheld++] = (struct ord_ev){ts, seq[i], b, i, SP_EV_WAKE,
									SP_WAKE_SELF, 1, 0};
				held[nheld++] = (struct ord_ev){ts, seq[i], b, i, type, a, 0, 0};
			}
		}
		spc_stream_poll(s, on_ord, &got);
		/* the reference: everything held, sorted; the past part goes */
		qsort(held, nheld, sizeof *held, ord_cmp);
		size_t k = 0;
		while (k < nheld && held[k].ticks < now) {
			want[nwant] = held[k++];
			want[nwant].late = want[nwant].ticks < last;
			if (!want[nwant].late)
				last = want[nwant].ticks;
			nwant++;
		}
		memmove(held, held + k, (nheld - k) * sizeof *held);
		nheld -= k;
		assert_int_equal(got.n, nwant);
	}
	spc_stream_flush(s, on_ord, &got);
	for (size_t k = 0; k < nheld; k++) {
		want[nwant] = held[k];
		want[nwant].late = held[k].ticks < last;
		if (!want[nwant].late)
			last = held[k].ticks;
		nwant++;
	}
	assert_int_equal(got.n, nwant);
	size_t late = 0;
	for (size_t k = 0; k < nwant; k++) {
		const struct ord_ev *g = &got.ev[k], *w = &want[k];
		assert_int_equal(g->ticks, w->ticks);
		assert_int_equal(g->ring, w->ring);
		assert_int_equal(g->seq, w->seq);
		assert_int_equal(g->type, w->type);
		assert_int_equal(g->a, w->a);
		assert_int_equal(g->b, w->b);
		assert_int_equal(g->expanded, w->expanded);
		assert_int_equal(g->late, w->late);
		late += g->late;
	}
	assert_true(late > 0); /* the test made some */
	assert_int_equal(spc_stream_delivered(s), nwant);
	spc_stream_close(s);
	sp__seg_destroy(&seg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stream__events_sites_sources_and_task_table),
		cmocka_unit_test(stream__self_wakes_counted_in_poll_end_come_out_as_wakes),
		cmocka_unit_test(stream__no_segment_is_an_error),
		cmocka_unit_test(stream__rings_merge_in_time_order_across_polls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
