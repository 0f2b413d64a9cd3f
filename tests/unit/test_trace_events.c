/*
 * test_trace_events.c - with tracing on, the workers write their poll, wake,
 * spawn and park events into their rings in the process's trace segment, and
 * a reader (the segment reader the tools use) finds them, in order, with the
 * right task ids; with tracing off there is no ring.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit/sp_test.h"

#include "internal.h"
#include "trace_events.h"
#include "trace_ring.h"
#include "trace_segment.h"

/* Yields three times, spawns one child, then completes. */
struct yielder {
	sp_future base;
	int out;
	int i;
	sp_yield y;
};

static sp_poll child_poll(sp_future *f, sp_context *cx)
{
	(void)f;
	(void)cx;
	return SP_READY;
}

static sp_poll yielder_poll(sp_future *f, sp_context *cx)
{
	struct yielder *self = (struct yielder *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < 3; self->i++) {
		sp_yield_init(&self->y);
		SP_AWAIT(&self->y);
	}
	{
		struct child {
			sp_future base;
		} c = {.base = {.poll = child_poll, .name = "child"}};
		SP_SPAWN("child", NULL, c);
	}
	SP_ASYNC_END();
}

struct tally {
	uint64_t id;
	int starts, ends, ready_ends, self_wakes, folded_wakes, spawns, order_bad;
	int open_poll; /* a POLL_START of id not yet ended */
	uint64_t last_ts;
};

static void tally_events(const sp__ring_event *ev, size_t n, struct tally *t)
{
	for (size_t i = 0; i < n; i++) {
		if (ev[i].ts < t->last_ts)
			t->order_bad++; /* one ring is one thread: time never goes back */
		t->last_ts = ev[i].ts;
		if (ev[i].b != t->id && ev[i].type != SP_EV_SPAWN)
			continue;
		switch (ev[i].type) {
		case SP_EV_POLL_START:
			t->starts++;
			t->order_bad += t->open_poll;
			t->open_poll = 1;
			break;
		case SP_EV_POLL_END:
			t->ends++;
			t->ready_ends += (ev[i].a & SP_POLL_READY) != 0;
			t->folded_wakes += (ev[i].a >> SP_POLL_SELF_SHIFT) & SP_POLL_SELF_MAX;
			t->order_bad += !t->open_poll;
			t->open_poll = 0;
			break;
		case SP_EV_WAKE:
			t->self_wakes += ev[i].a & 1;
			break;
		case SP_EV_SPAWN:
			t->spawns++;
			break;
		}
	}
}

static void trace__worker_rings_record_polls_wakes_and_spawns(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime_opts o = {.flavor = SP_MULTI_THREAD, .workers = 2, .trace = 1};
	sp_runtime *rt = NULL;
	assert_int_equal(sp_runtime_new(&rt, &o), 0);
	struct yielder y = {.base = {.poll = yielder_poll, .name = "yielder"}};
	sp_join_handle jh;

	/* act */
	assert_int_equal(SP_RUNTIME_SPAWN(rt, "yielder", &jh, y), 0);
	uint64_t id = sp_join_handle_id(&jh);
	int status = sp_join_handle_wait(&jh);
	sp__seg_reader r;
	int open_rc = sp__seg_open(&r, (int)getpid());
	struct stat st;
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/spindle.%d", (int)getpid());
	int stat_rc = stat(path, &st);
	struct tally t = {.id = id};
	unsigned rings_with_events = 0;
	uint32_t ring_capacity = 0;
	if (open_rc == 0) {
		ring_capacity = r.hdr.ring_capacity;
		for (unsigned i = 0; i < r.hdr.nrings; i++) {
			uint64_t cursor = 1, lost = 0;
			sp__ring_event ev[256];
			size_t n, total = 0;
			t.last_ts = 0;
			while ((n = sp__seg_reader_ring_read(&r, i, &cursor, ev, 256, &lost)) > 0) {
				tally_events(ev, n, &t);
				total += n;
			}
			rings_with_events += total > 0;
		}
		sp__seg_close(&r);
	}
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(status, 0);
	assert_int_equal(open_rc, 0);
	assert_int_equal(stat_rc, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(rings_with_events >= 1);
	assert_int_equal(ring_capacity, 2048); /* SPINDLE_TRACE_RING, set by main */
	assert_int_equal(t.starts, 4); /* 3 yields + the final poll */
	assert_int_equal(t.ends, 4);
	assert_int_equal(t.ready_ends, 1);
	/* the yields: counted in their POLL_END records, no WAKE records */
	assert_int_equal(t.folded_wakes, 3);
	assert_int_equal(t.self_wakes, 0);
	assert_true(t.spawns >= 1); /* the child, spawned on a worker */
	assert_int_equal(t.order_bad, 0);
}

static void trace__off_means_no_ring(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime_opts o = {.flavor = SP_CURRENT_THREAD, .trace = -1};
	sp_runtime *rt = NULL;
	assert_int_equal(sp_runtime_new(&rt, &o), 0);

	/* act */
	int traced = rt->trace;
	sp_runtime_free(rt);

	/* assert */
	assert_int_equal(traced, 0);
}

static void trace__ring_size_from_the_environment_parses_strictly(void **state)
{
	(void)state;
	/* arrange, act, assert: values SPINDLE_TRACE_RING takes or refuses */
	assert_int_equal(sp__trace_ring_cap_parse("65536"), 65536);
	assert_int_equal(sp__trace_ring_cap_parse("64k"), 65536);
	assert_int_equal(sp__trace_ring_cap_parse("1M"), 1u << 20);
	assert_int_equal(sp__trace_ring_cap_parse("1024"), 1024);
	assert_int_equal(sp__trace_ring_cap_parse("512"), 0);	  /* too small */
	assert_int_equal(sp__trace_ring_cap_parse("2m"), 0);	  /* too large */
	assert_int_equal(sp__trace_ring_cap_parse("3000"), 0);	  /* not a power of two */
	assert_int_equal(sp__trace_ring_cap_parse("64kb"), 0);	  /* trailing junk */
	assert_int_equal(sp__trace_ring_cap_parse("-4096"), 0);
	assert_int_equal(sp__trace_ring_cap_parse(""), 0);
	assert_int_equal(sp__trace_ring_cap_parse("99999999999999999999"), 0);
}

int main(void)
{
	/* Before the segment exists (the first traced runtime makes it): the
	 * rings test checks that the segment took this size. */
	setenv("SPINDLE_TRACE_RING", "2k", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(trace__ring_size_from_the_environment_parses_strictly),
		cmocka_unit_test(trace__worker_rings_record_polls_wakes_and_spawns),
		cmocka_unit_test(trace__off_means_no_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
