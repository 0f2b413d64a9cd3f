/*
 * test_trace_ring.c - the event ring (runtime/trace_ring.h): overwrite and
 * exact loss counting, torn-record detection, a producer lapping two
 * concurrent readers, and an informational emit-cost benchmark.
 *
 * Every record the tests emit encodes its own sequence number n: a = (u32)n,
 * b = n * GOLD, type = TYPE. A record whose fields disagree with its seq is
 * torn (or misnumbered), which the ring must never deliver.
 *
 * Scale: 10,000,000 records for the lapping test and the benchmark;
 * SP_STRESS_SCALE (a factor) scales it, and sanitized builds run 1/20 of it.
 * Reader and producer threads only record; the main thread asserts.
 */
#include "unit/sp_test.h"

#include "trace_ring.h"

#define GOLD 0x9E3779B97F4A7C15ull
#define TYPE 7u

static sp__ring *ring_new(uint32_t capacity)
{
	size_t bytes = sp__ring_bytes(capacity);
	assert_true(bytes > 0);
	void *mem = aligned_alloc(SP__CACHELINE, (bytes + SP__CACHELINE - 1) & ~(size_t)63);
	assert_non_null(mem);
	memset(mem, 0xa5, bytes); /* init must not rely on zeroed memory */
	sp__ring *r = sp__ring_init(mem, bytes, capacity);
	assert_ptr_equal(r, mem);
	return r;
}

static void emit_n(sp__ring *r, uint64_t first, uint64_t count)
{
	for (uint64_t n = first; n < first + count; n++)
		sp__ring_emit(r, TYPE, (uint32_t)n, n * GOLD);
}

static int event_ok(const sp__ring_event *e)
{
	return e->type == TYPE && e->a == (uint32_t)e->seq && e->b == e->seq * GOLD;
}

/* ---- single thread ---------------------------------------------------------- */

static void ring__init_and_attach_check_the_header(void **state)
{
	(void)state;
	assert_int_equal(sp__ring_bytes(8), 64 + 8 * 32);
	assert_int_equal(sp__ring_bytes(0), 0);
	assert_int_equal(sp__ring_bytes(1), 0);
	assert_int_equal(sp__ring_bytes(12), 0);

	sp__ring *r = ring_new(8);
	const unsigned char *p = (const unsigned char *)r;
	assert_memory_equal(p, "SPRG", 4);
	assert_int_equal(r->header_size, 64);
	assert_int_equal(r->record_size, 32);
	assert_int_equal(r->capacity, 8);
	assert_int_equal(sp__ring_head(r), 0);
	assert_ptr_equal(sp__ring_attach(r, sp__ring_bytes(8)), r);
	assert_null(sp__ring_attach(r, sp__ring_bytes(8) - 1));
	r->version_major = SP__RING_VERSION_MAJOR + 1;
	assert_null(sp__ring_attach(r, sp__ring_bytes(8)));
	r->version_major = SP__RING_VERSION_MAJOR;
	r->version_minor = 77; /* minor bumps are accepted */
	assert_ptr_equal(sp__ring_attach(r, sp__ring_bytes(8)), r);
	assert_null(sp__ring_init((char *)r + 8, 4096, 8)); /* misaligned */

	sp__ring_event ev[4];
	uint64_t cur = 1, lost = 0;
	assert_int_equal(sp__ring_read(r, &cur, ev, 4, &lost), 0);
	assert_int_equal(cur, 1);
	assert_int_equal(lost, 0);
	free(r);
}

static void ring__wraparound_returns_the_newest_and_counts_the_rest(void **state)
{
	(void)state;
	sp__ring *r = ring_new(8);
	emit_n(r, 1, 100);
	assert_int_equal(sp__ring_head(r), 100);

	sp__ring_event ev[128];
	uint64_t cur = 1, lost = 0;
	size_t got = sp__ring_read(r, &cur, ev, 128, &lost);
	assert_int_equal(got, 8);
	assert_int_equal(lost, 92);
	assert_int_equal(cur, 101);
	for (size_t i = 0; i < got; i++) {
		assert_int_equal(ev[i].seq, 93 + i);
		assert_true(event_ok(&ev[i]));
	}

	/* a second reader, in small steps, with a lap in between */
	uint64_t c2 = 0, l2 = 0;
	emit_n(r, 101, 5); /* head 105: oldest 98 */
	assert_int_equal(sp__ring_read(r, &c2, ev, 3, &l2), 3);
	assert_int_equal(l2, 97);
	assert_int_equal(ev[0].seq, 98);
	assert_int_equal(ev[2].seq, 100);
	emit_n(r, 106, 20); /* head 125: oldest 118, c2 at 101 */
	assert_int_equal(sp__ring_read(r, &c2, ev, 128, &l2), 8);
	assert_int_equal(l2, 97 + 17);
	assert_int_equal(ev[0].seq, 118);
	assert_int_equal(ev[7].seq, 125);
	assert_int_equal(c2, 126);
	assert_int_equal(sp__ring_read(r, &c2, ev, 128, &l2), 0);
	/* accounting: delivered + lost == everything */
	assert_int_equal(3 + 8 + l2, 125);
	free(r);
}

/* A slot the producer is overwriting (seq 0), or has overwritten before
 * publishing head (seq newer than head), is counted lost, never returned. */
static void ring__slot_being_overwritten_is_lost_not_torn(void **state)
{
	(void)state;
	sp__ring *r = ring_new(8);
	sp__ring_slot *slots = sp__ring_slots(r);
	sp__ring_event ev[16];

	emit_n(r, 1, 8);
	/* the producer has begun record 9 in record 1's slot: seq = 0 */
	atomic_store(&slots[9 & 7].seq, 0);
	atomic_store(&slots[9 & 7].a, 12345);
	uint64_t cur = 1, lost = 0;
	assert_int_equal(sp__ring_read(r, &cur, ev, 16, &lost), 7);
	assert_int_equal(lost, 1);
	assert_int_equal(ev[0].seq, 2);
	for (int i = 0; i < 7; i++)
		assert_true(event_ok(&ev[i]));

	/* record 9 complete (seq stored) but head not yet published */
	sp__ring *r2 = ring_new(8);
	emit_n(r2, 1, 9);
	atomic_store(&r2->head, 8);
	cur = 1;
	lost = 0;
	assert_int_equal(sp__ring_read(r2, &cur, ev, 16, &lost), 7);
	assert_int_equal(lost, 1);
	assert_int_equal(ev[0].seq, 2);
	assert_int_equal(cur, 9);
	free(r);
	free(r2);
}

/* ---- a producer lapping two concurrent readers ------------------------------ */

struct lap {
	sp__ring *ring;
	uint64_t total;
	_Atomic int done;
};

struct reader {
	struct lap *lap;
	/* results, read by the main thread after pthread_join */
	uint64_t received, lost, bad, out_of_order, bad_accounting, calls;
	uint64_t final_cursor;
};

static void *producer_main(void *arg)
{
	struct lap *l = arg;
	emit_n(l->ring, 1, l->total);
	atomic_store(&l->done, 1);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct lap *l = rd->lap;
	sp__ring_event ev[64];
	uint64_t cur = 1, last = 0;

	for (;;) {
		/* done is read before the read call: a read after it sees all */
		int done = atomic_load(&l->done);
		uint64_t before = cur, lost_before = rd->lost;
		size_t got = sp__ring_read(l->ring, &cur, ev, 64, &rd->lost);
		rd->calls++;
		if (cur - before != got + (rd->lost - lost_before))
			rd->bad_accounting++;
		for (size_t i = 0; i < got; i++) {
			if (!event_ok(&ev[i]))
				rd->bad++;
			if (ev[i].seq <= last)
				rd->out_of_order++;
			last = ev[i].seq;
		}
		rd->received += got;
		if (got == 0) {
			if (done && cur > l->total)
				break;
			sched_yield();
		}
	}
	rd->final_cursor = cur;
	return NULL;
}

static void ring__producer_laps_two_readers_nothing_torn_every_record_counted(void **state)
{
	(void)state;
	struct lap l;
	memset(&l, 0, sizeof l);
	l.ring = ring_new(64);
	l.total = spt_scaled(10000000, 100000);
	struct reader rd[2];
	memset(rd, 0, sizeof rd);
	rd[0].lap = rd[1].lap = &l;

	pthread_t tr0 = spt_thread(reader_main, &rd[0]);
	pthread_t tr1 = spt_thread(reader_main, &rd[1]);
	uint64_t t0 = spt_now_ns();
	pthread_t tp = spt_thread(producer_main, &l);
	pthread_join(tp, NULL);
	uint64_t t1 = spt_now_ns();
	pthread_join(tr0, NULL);
	pthread_join(tr1, NULL);

	for (int i = 0; i < 2; i++)
		printf("[ info ] reader %d: received %llu lost %llu (%.1f%%) in %llu calls; "
		       "producer %.1f ns/record with readers\n",
		       i, (unsigned long long)rd[i].received, (unsigned long long)rd[i].lost,
		       100.0 * (double)rd[i].lost / (double)l.total,
		       (unsigned long long)rd[i].calls, (double)(t1 - t0) / (double)l.total);
	assert_int_equal(sp__ring_head(l.ring), l.total);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rd[i].bad, 0);
		assert_int_equal(rd[i].out_of_order, 0);
		assert_int_equal(rd[i].bad_accounting, 0);
		assert_int_equal(rd[i].received + rd[i].lost, l.total);
		assert_int_equal(rd[i].final_cursor, l.total + 1);
		assert_true(rd[i].received >= 64); /* at least the last lap */
	}
	free(l.ring);
}

static void ring__unlapped_reader_gets_everything(void **state)
{
	(void)state;
	struct lap l;
	memset(&l, 0, sizeof l);
	l.total = spt_scaled(1000000, 50000);
	uint32_t cap = 2;
	while (cap < l.total)
		cap <<= 1;
	l.ring = ring_new(cap);
	pthread_t tp = spt_thread(producer_main, &l);
	pthread_join(tp, NULL);

	struct reader rd;
	memset(&rd, 0, sizeof rd);
	rd.lap = &l;
	reader_main(&rd);
	assert_int_equal(rd.lost, 0);
	assert_int_equal(rd.received, l.total);
	assert_int_equal(rd.bad, 0);
	assert_int_equal(rd.out_of_order, 0);
	assert_int_equal(rd.bad_accounting, 0);
	free(l.ring);
}

/* ---- informational benchmark (printed, not asserted) ------------------------ */

struct bench {
	sp__ring *ring;
	uint64_t n;
	double ns_per_event;
	double ns_store_only;
	double ns_rdtsc; /* the floor: sp__ticks() alone */
	uint64_t sink;
};

static void *bench_main(void *arg)
{
	struct bench *b = arg;
	sp__ring *r = b->ring;
	const uint64_t n = b->n;
	/* warm-up: touch the whole ring */
	for (uint64_t i = 0; i < n / 100 + 2 * r->capacity; i++)
		sp__ring_emit(r, TYPE, (uint32_t)i, i);
	uint64_t t0 = spt_now_ns();
	for (uint64_t i = 0; i < n; i++)
		sp__ring_emit(r, TYPE, (uint32_t)i, i);
	uint64_t t1 = spt_now_ns();
	for (uint64_t i = 0; i < n; i++)
		sp__ring_emit_at(r, i, TYPE, (uint32_t)i, i);
	uint64_t t2 = spt_now_ns();
	uint64_t sink = 0;
	for (uint64_t i = 0; i < n; i++)
		sink += sp__ticks();
	uint64_t t3 = spt_now_ns();
	b->sink = sink;
	b->ns_per_event = (double)(t1 - t0) / (double)n;
	b->ns_store_only = (double)(t2 - t1) / (double)n;
	b->ns_rdtsc = (double)(t3 - t2) / (double)n;
	return NULL;
}

static void ring__bench_emit(void **state)
{
	(void)state;
	uint64_t n = spt_scaled(10000000, 100000);
	struct bench b[2];
	memset(b, 0, sizeof b);
	for (int i = 0; i < 2; i++) {
		b[i].ring = ring_new(65536);
		b[i].n = n;
	}

	bench_main(&b[0]);
	printf("[ info ] emit 1T: %.2f ns/event (rdtsc + store), %.2f store only, %.2f bare "
	       "rdtsc; %llu events, 64K x 32 B ring%s\n",
	       b[0].ns_per_event, b[0].ns_store_only, b[0].ns_rdtsc, (unsigned long long)n,
	       SPT_SANITIZED ? " (sanitized build)" : "");

	pthread_t t0 = spt_thread(bench_main, &b[0]);
	pthread_t t1 = spt_thread(bench_main, &b[1]);
	pthread_join(t0, NULL);
	pthread_join(t1, NULL);
	printf("[ info ] emit 2T (own ring each): %.2f / %.2f ns/event (rdtsc + store), "
	       "%.2f / %.2f store only, %.2f / %.2f bare rdtsc\n",
	       b[0].ns_per_event, b[1].ns_per_event, b[0].ns_store_only, b[1].ns_store_only,
	       b[0].ns_rdtsc, b[1].ns_rdtsc);
	assert_int_equal(sp__ring_head(b[1].ring), 2 * n + n / 100 + 2 * 65536);
	free(b[0].ring);
	free(b[1].ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ring__init_and_attach_check_the_header),
		cmocka_unit_test(ring__wraparound_returns_the_newest_and_counts_the_rest),
		cmocka_unit_test(ring__slot_being_overwritten_is_lost_not_torn),
		cmocka_unit_test(ring__producer_laps_two_readers_nothing_torn_every_record_counted),
		cmocka_unit_test(ring__unlapped_reader_gets_everything),
		cmocka_unit_test(ring__bench_emit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
