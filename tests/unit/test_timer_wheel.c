/*
 * test_timer_wheel.c - the hierarchical timing wheel (runtime/timer_wheel.h),
 * driven by hand: no runtime, no clock. Random deadlines come from splitmix64
 * with fixed seeds, so every run sees the same timers and steps.
 *
 * Every fire goes through check_fire, which records (never asserts) what it
 * saw against the advance in progress: fired before its deadline, fired in a
 * later advance than the one whose `now` reached it, out of deadline order,
 * twice, after a cancel, or with w->elapsed != its deadline. The tests assert
 * on those counters afterwards.
 */
#include "unit/sp_test.h"

#include "timer_wheel.h"

#define MS_PER_DAY (86400000ull)
#define MS_PER_YEAR (365ull * MS_PER_DAY)

/* ---- helpers ----------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint64_t rnd_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo + 1;
	return span ? lo + splitmix64(s) % span : splitmix64(s);
}

/* Log-uniform in [1, max]: a random bit length, then a uniform value. */
static uint64_t rnd_log(uint64_t *s, uint64_t max)
{
	unsigned bits = 64u - (unsigned)__builtin_clzll(max);
	uint64_t len = rnd_range(s, 0, bits - 1); /* two draws, in this order */
	uint64_t v = 1 + (splitmix64(s) & (((uint64_t)1 << len) - 1));
	return v > max ? max : v;
}

struct tmr {
	sp__timer_entry e;
	uint32_t fired;
	uint8_t cancelled;
};

#define TMR_OF(entry) ((struct tmr *)((char *)(entry)-offsetof(struct tmr, e)))

static struct tmr *tmrs_new(size_t n)
{
	struct tmr *t = calloc(n, sizeof *t);
	assert_non_null(t);
	return t;
}

struct fire_log {
	sp__timer_wheel *w;
	uint64_t step_lo; /* elapsed before the advance in progress */
	uint64_t step_hi; /* its now */
	uint64_t last_deadline;
	size_t fired;
	size_t early;		 /* deadline > now of the advance */
	size_t late;		 /* deadline <= elapsed before the advance */
	size_t out_of_order;	 /* deadline < the previous fire's */
	size_t twice;		 /* fired more than once */
	size_t cancelled_fired;	 /* fired after sp__wheel_remove */
	size_t elapsed_mismatch; /* w->elapsed != deadline during fire */
	size_t still_queued;	 /* e->queued during fire */
};

static void log_init(struct fire_log *log, sp__timer_wheel *w)
{
	memset(log, 0, sizeof *log);
	log->w = w;
	log->last_deadline = w->elapsed;
}

static void check_fire(sp__timer_entry *e, void *arg)
{
	struct fire_log *log = arg;
	struct tmr *t = TMR_OF(e);

	log->fired++;
	log->early += e->deadline > log->step_hi;
	log->late += e->deadline <= log->step_lo;
	log->out_of_order += e->deadline < log->last_deadline;
	log->twice += t->fired > 0;
	log->cancelled_fired += t->cancelled;
	log->elapsed_mismatch += log->w->elapsed != e->deadline;
	log->still_queued += e->queued != 0;
	log->last_deadline = e->deadline;
	t->fired++;
}

/* One advance under check_fire; counts a mismatch between its return value
 * and the callbacks seen. */
static size_t step_to(struct fire_log *log, uint64_t now, size_t *ret_mismatch)
{
	size_t before = log->fired;
	log->step_lo = log->w->elapsed;
	log->step_hi = now;
	size_t n = sp__wheel_advance(log->w, now, check_fire, log);
	if (n != log->fired - before)
		(*ret_mismatch)++;
	return n;
}

static void assert_clean(const struct fire_log *log)
{
	assert_int_equal(log->early, 0);
	assert_int_equal(log->late, 0);
	assert_int_equal(log->out_of_order, 0);
	assert_int_equal(log->twice, 0);
	assert_int_equal(log->cancelled_fired, 0);
	assert_int_equal(log->elapsed_mismatch, 0);
	assert_int_equal(log->still_queued, 0);
}

/* The due time of slot `slot` of level `level`, as timer_wheel.h defines it
 * (worked out here again from elapsed, not taken from the wheel). */
static uint64_t slot_due(const sp__timer_wheel *w, unsigned level, unsigned slot)
{
	unsigned shift = 6 * level;
	uint64_t pos = (w->elapsed >> shift) & 63;
	uint64_t base = (w->elapsed >> shift) << shift;
	uint64_t k = level < SP__WHEEL_LEVELS - 1 ? (slot - pos) & 63 : ((slot - pos - 1) & 63) + 1;
	return base + (k << shift);
}

/* What next_expiration must return: the earliest due time of the slots that
 * hold the queued entries among t[0..n), UINT64_MAX if none. */
static uint64_t earliest_slot_due(const sp__timer_wheel *w, const struct tmr *t, size_t n)
{
	uint64_t min = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		if (!t[i].e.queued)
			continue;
		uint64_t due = slot_due(w, t[i].e.level, t[i].e.slot);
		if (due < min)
			min = due;
	}
	return min;
}

/* Breaches of I1-I4 (timer_wheel.h) over the whole wheel, whose entries are
 * all in t[0..n). due_left: a limited advance may have left entries due at
 * elapsed (I2'). */
static size_t wheel_violations(const sp__timer_wheel *w, const struct tmr *t, size_t n,
			       bool due_left)
{
	const unsigned top = SP__WHEEL_LEVELS - 1;
	uint64_t el = w->elapsed;
	size_t bad = 0, queued = 0, listed = 0;

	for (size_t i = 0; i < n; i++) {
		const sp__timer_entry *e = &t[i].e;
		if (!e->queued)
			continue;
		queued++;
		uint64_t d = e->deadline;
		unsigned l = e->level, shift = 6 * l;
		bad += l > top || e->slot != ((d >> shift) & 63);
		bad += !(w->levels[l].occupied >> e->slot & 1);
		bad += d < el || (d == el && !(due_left && l == 0));
		if (l == 0) {
			bad += d - el >= 64; /* I3: the rolling window */
		} else if (l < top) {
			/* I3: elapsed's digits above l, a digit l above pos_l */
			bad += (d >> (shift + 6)) != (el >> (shift + 6));
			bad += ((d >> shift) & 63) <= ((el >> shift) & 63);
		} else {
			/* I4: due at or before d, exactly in range */
			uint64_t due = slot_due(w, l, e->slot);
			bad += due > d || due < ((el >> 30) << 30) + ((uint64_t)1 << 30);
			if ((d >> 30) - (el >> 30) < 64)
				bad += due != (d >> 30) << 30;
		}
	}
	/* I1: bitmaps, circular lists, back links, len */
	for (unsigned l = 0; l <= top; l++) {
		for (unsigned s = 0; s < SP__WHEEL_SLOTS; s++) {
			const sp__timer_entry *head = w->levels[l].slots[s];
			bad += (w->levels[l].occupied >> s & 1) != (head != NULL);
			if (!head)
				continue;
			const sp__timer_entry *e = head;
			do {
				bad += !e->queued || e->level != l || e->slot != s;
				bad += e->next->prev != e;
				listed++;
				e = e->next;
			} while (e != head && listed <= n);
		}
	}
	bad += queued != w->len || listed != w->len;
	return bad;
}

/* The mix of test 1: half 1..50 ms, a quarter log-uniform and a quarter
 * uniform up to 30 days (every level, the top one included). */
static uint64_t rnd_deadline_mix(uint64_t *s, uint64_t now)
{
	switch (splitmix64(s) & 3) {
	case 0:
	case 1:
		return now + rnd_range(s, 1, 50);
	case 2:
		return now + rnd_log(s, 30 * MS_PER_DAY);
	default:
		return now + rnd_range(s, 1, 30 * MS_PER_DAY);
	}
}

/* A random step: mostly short, sometimes up to ~4.6 hours. */
static uint64_t rnd_step(uint64_t *s)
{
	return rnd_log(s, (uint64_t)1 << rnd_range(s, 1, 24));
}

/* 11.6 days before a top-window boundary (3 * 2^36 ms): 30-day deadlines
 * cross it. */
#define START_MS (3 * SP__WHEEL_RANGE - 1000000007ull)

/* ---- tests ------------------------------------------------------------------- */

static void timer_wheel__empty_wheel_has_no_expiration(void **state)
{
	(void)state;
	/* arrange */
	sp__timer_wheel w;
	sp__wheel_init(&w, 12345);
	struct tmr t;
	memset(&t, 0, sizeof t);
	struct fire_log log;
	log_init(&log, &w);

	/* act */
	uint64_t ne = sp__wheel_next_expiration(&w);
	sp__wheel_remove(&w, &t.e); /* not queued: no-op */
	size_t n = sp__wheel_advance(&w, 99999, check_fire, &log);

	/* assert */
	assert_true(ne == UINT64_MAX);
	assert_int_equal(n, 0);
	assert_int_equal(sp__wheel_len(&w), 0);
	assert_true(w.elapsed == 99999);
	assert_false(sp__timer_entry_queued(&t.e));
}

static void timer_wheel__deadline_in_past_is_etimedout(void **state)
{
	(void)state;
	/* arrange */
	sp__timer_wheel w;
	sp__wheel_init(&w, 1000);
	struct tmr t[4];
	memset(t, 0, sizeof t);
	struct fire_log log;
	log_init(&log, &w);

	/* act */
	int now_rc = sp__wheel_insert(&w, &t[0].e, 1000);
	int past_rc = sp__wheel_insert(&w, &t[1].e, 999);
	int zero_rc = sp__wheel_insert(&w, &t[2].e, 0);
	int next_rc = sp__wheel_insert(&w, &t[3].e, 1001);
	size_t len_before = sp__wheel_len(&w);
	sp__wheel_advance(&w, 5000, check_fire, &log);
	int later_rc = sp__wheel_insert(&w, &t[0].e, 4000);
	int rearm_rc = sp__wheel_insert(&w, &t[1].e, 6000);
	int rearm_past_rc = sp__wheel_insert(&w, &t[1].e, 5000); /* removes it */

	/* assert */
	assert_int_equal(now_rc, SP_ETIMEDOUT);
	assert_int_equal(past_rc, SP_ETIMEDOUT);
	assert_int_equal(zero_rc, SP_ETIMEDOUT);
	assert_int_equal(next_rc, 0);
	assert_int_equal(len_before, 1);
	assert_int_equal(log.fired, 1);
	assert_int_equal(t[3].fired, 1);
	assert_int_equal(t[0].fired + t[1].fired + t[2].fired, 0);
	assert_int_equal(later_rc, SP_ETIMEDOUT);
	assert_int_equal(rearm_rc, 0);
	assert_int_equal(rearm_past_rc, SP_ETIMEDOUT);
	assert_false(sp__timer_entry_queued(&t[1].e));
	assert_int_equal(sp__wheel_len(&w), 0);
	assert_true(sp__wheel_next_expiration(&w) == UINT64_MAX);
}

static void timer_wheel__insert_twice_rearms(void **state)
{
	(void)state;
	/* arrange */
	sp__timer_wheel w;
	sp__wheel_init(&w, 0);
	struct tmr t;
	memset(&t, 0, sizeof t);
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0;

	/* act */
	int rc1 = sp__wheel_insert(&w, &t.e, 10 * MS_PER_DAY);
	int rc2 = sp__wheel_insert(&w, &t.e, 20);
	size_t len = sp__wheel_len(&w);
	uint64_t ne = sp__wheel_next_expiration(&w);
	step_to(&log, 19, &mismatch);
	size_t at19 = log.fired;
	step_to(&log, 20 * MS_PER_DAY, &mismatch);

	/* assert */
	assert_int_equal(rc1, 0);
	assert_int_equal(rc2, 0);
	assert_int_equal(len, 1);
	assert_true(ne == 20);
	assert_int_equal(at19, 0);
	assert_int_equal(log.fired, 1);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
}

/* Deadlines on and around every level boundary fire in the advance that
 * reaches them, not the one before. */
static void timer_wheel__slot_boundary_deadlines_fire_exactly(void **state)
{
	(void)state;
	/* arrange */
	enum { N = 3 * (SP__WHEEL_LEVELS + 1) };
	sp__timer_wheel w;
	sp__wheel_init(&w, 62); /* so that 63 is in the future, 64 one level up */
	struct tmr t[N];
	memset(t, 0, sizeof t);
	uint64_t dl[N];
	size_t n = 0;
	for (unsigned l = 1; l <= SP__WHEEL_LEVELS; l++) {
		uint64_t b = (uint64_t)1 << (6 * l);
		dl[n++] = b - 1;
		dl[n++] = b;
		dl[n++] = b + 1;
	}
	dl[n++] = 64 + 63; /* the last ms of the next level-0 block */
	int rcs = 0;
	for (size_t i = 0; i < n; i++)
		rcs |= sp__wheel_insert(&w, &t[i].e, dl[i]);
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0, fired_before = 0, missing_at = 0;

	/* act: for each deadline in order, advance to just before it, then to it */
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			if (dl[j] < dl[i]) {
				uint64_t x = dl[i];
				dl[i] = dl[j];
				dl[j] = x;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t before = log.fired;
		if (dl[i] - 1 > w.elapsed)
			step_to(&log, dl[i] - 1, &mismatch);
		fired_before += log.fired != before;
		step_to(&log, dl[i], &mismatch);
		missing_at += log.fired != before + 1;
	}

	/* assert */
	assert_int_equal(rcs, 0);
	assert_int_equal(fired_before, 0);
	assert_int_equal(missing_at, 0);
	assert_int_equal(log.fired, n);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	assert_int_equal(sp__wheel_len(&w), 0);
}

/* One timer alone at the top level, where the rotation matters: its slot's
 * due time (next_expiration) is exact, behind pos_5 (next 2^36 window) or a
 * full turn ahead (or, less than 64 ms ahead across the window boundary, it
 * is at level 0); then it fires at its deadline and not 1 ms before. */
static void timer_wheel__top_level_due_times_wrap_around(void **state)
{
	(void)state;
	/* arrange */
	const uint64_t S = (uint64_t)1 << 30; /* top-level slot width */
	const uint64_t R = SP__WHEEL_RANGE;
	const struct {
		uint64_t start, deadline, due;
	} cases[] = {
		/* across the window boundary: pos_5 63, slot 0 */
		{R - 5, R + 100, R},
		/* across it but less than 64 ms ahead: level 0, due at once */
		{R - 5, R + 3, R + 3},
		/* in range, slot 10 behind pos_5 40 */
		{2 * R + 40 * S + 17, 3 * R + 10 * S + 5, 3 * R + 10 * S},
		/* in range, ahead of pos_5 */
		{2 * R + 40 * S + 17, 2 * R + 41 * S + 5, 2 * R + 41 * S},
		/* beyond range, slot pos_5 itself: a full turn ahead */
		{7 * S + 3, R + 7 * S + 4, R + 7 * S},
		/* beyond range by turns: the first slot with its digit */
		{5 * R + 7 * S + 3, 8 * R + 9 * S + 1, 5 * R + 9 * S},
		/* beyond range, digit behind pos_5 */
		{5 * R + 7 * S + 3, 8 * R + 2 * S + 1, 6 * R + 2 * S},
	};
	const size_t n = sizeof cases / sizeof cases[0];
	size_t wrong_due = 0, early = 0, missed = 0, wrong_final = 0, mismatch = 0;

	/* act */
	for (size_t i = 0; i < n; i++) {
		sp__timer_wheel w;
		sp__wheel_init(&w, cases[i].start);
		struct tmr t;
		memset(&t, 0, sizeof t);
		sp__wheel_insert(&w, &t.e, cases[i].deadline);
		struct fire_log log;
		log_init(&log, &w);
		wrong_due += sp__wheel_next_expiration(&w) != cases[i].due;
		step_to(&log, cases[i].deadline - 1, &mismatch);
		early += log.fired;
		wrong_final += sp__wheel_next_expiration(&w) != cases[i].deadline;
		step_to(&log, cases[i].deadline, &mismatch);
		missed += log.fired != 1;
		assert_clean(&log);
	}

	/* assert */
	assert_int_equal(wrong_due, 0);
	assert_int_equal(early, 0);
	assert_int_equal(wrong_final, 0);
	assert_int_equal(missed, 0);
	assert_int_equal(mismatch, 0);
}

/* 100,000 timers, 1 ms to 30 days, advanced in random steps. */
static void timer_wheel__random_deadlines_fire_once_in_order(void **state)
{
	(void)state;
	/* arrange */
	enum { N = 100000 };
	uint64_t seed = 0x7133e1;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct tmr *t = tmrs_new(N);
	uint64_t max_deadline = 0;
	int rcs = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t d = rnd_deadline_mix(&seed, START_MS);
		rcs |= sp__wheel_insert(&w, &t[i].e, d);
		if (d > max_deadline)
			max_deadline = d;
	}
	size_t len0 = sp__wheel_len(&w);
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0, steps = 0;

	/* act */
	while (w.elapsed < START_MS + 100) {
		step_to(&log, w.elapsed + rnd_range(&seed, 1, 5), &mismatch);
		steps++;
	}
	while (w.elapsed < max_deadline) {
		step_to(&log, w.elapsed + rnd_step(&seed), &mismatch);
		steps++;
	}

	/* assert */
	size_t never = 0;
	for (size_t i = 0; i < N; i++)
		never += t[i].fired != 1;
	assert_int_equal(rcs, 0);
	assert_int_equal(len0, N);
	assert_int_equal(log.fired, N);
	assert_int_equal(never, 0);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	assert_int_equal(sp__wheel_len(&w), 0);
	assert_true(sp__wheel_next_expiration(&w) == UINT64_MAX);
	print_message("timer_wheel: %d timers fired over %zu advances\n", N, steps);
	free(t);
}

/* Cancel a random half (some after they were cascaded down): they never
 * fire, the other half fires once each. */
static void timer_wheel__cancel_random_half_never_fires(void **state)
{
	(void)state;
	/* arrange */
	enum { N = 100000 };
	uint64_t seed = 0xca9ce1;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct tmr *t = tmrs_new(N);
	uint64_t max_deadline = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t d = rnd_deadline_mix(&seed, START_MS);
		sp__wheel_insert(&w, &t[i].e, d);
		if (d > max_deadline)
			max_deadline = d;
	}
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0;
	/* Let the first 10 ms expire and some slots cascade. */
	step_to(&log, START_MS + 10, &mismatch);
	size_t early_fired = log.fired;

	/* act */
	size_t cancelled = 0, len_before = sp__wheel_len(&w);
	for (size_t i = 0; i < N; i++) {
		if (t[i].fired || (splitmix64(&seed) & 1))
			continue;
		sp__wheel_remove(&w, &t[i].e);
		sp__wheel_remove(&w, &t[i].e); /* a second cancel is a no-op */
		t[i].cancelled = 1;
		cancelled++;
	}
	size_t len_after = sp__wheel_len(&w);
	while (w.elapsed < max_deadline)
		step_to(&log, w.elapsed + rnd_step(&seed), &mismatch);

	/* assert */
	size_t wrong = 0;
	for (size_t i = 0; i < N; i++)
		wrong += t[i].cancelled ? t[i].fired != 0 : t[i].fired != 1;
	assert_true(cancelled > len_before / 2 - len_before / 20);
	assert_true(cancelled < len_before / 2 + len_before / 20);
	assert_int_equal(len_before, N - early_fired);
	assert_int_equal(len_after, len_before - cancelled);
	assert_int_equal(log.fired, N - cancelled);
	assert_int_equal(wrong, 0);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	assert_int_equal(sp__wheel_len(&w), 0);
	free(t);
}

/* Beyond the 2^36 ms range: clamped, re-cascaded, fired at the deadline;
 * time advanced in jumps of up to 60 days over 25 years. */
static void timer_wheel__deadline_beyond_range_fires_at_deadline(void **state)
{
	(void)state;
	/* arrange: start 5 ms before a top-window boundary */
	enum { N = 2000 };
	const uint64_t start = SP__WHEEL_RANGE - 5;
	uint64_t seed = 0xbe70d;
	sp__timer_wheel w;
	sp__wheel_init(&w, start);
	struct tmr *t = tmrs_new(N + 1);
	uint64_t fixed[] = {
		SP__WHEEL_RANGE + 3, /* crosses the window boundary 8 ms ahead */
		start + SP__WHEEL_RANGE - 1, start + SP__WHEEL_RANGE,  start + SP__WHEEL_RANGE + 1,
		2 * SP__WHEEL_RANGE + 12345, start + 10 * MS_PER_YEAR, start + 20 * MS_PER_YEAR,
	};
	size_t nf = sizeof fixed / sizeof fixed[0];
	uint64_t max_deadline = 0;
	int rcs = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t d = i < nf ? fixed[i] : start + rnd_range(&seed, 1, 20 * MS_PER_YEAR);
		rcs |= sp__wheel_insert(&w, &t[i].e, d);
		if (d > max_deadline)
			max_deadline = d;
	}
	rcs |= sp__wheel_insert(&w, &t[N].e, UINT64_MAX); /* never */
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0, ne_late = 0;

	/* act: first the boundary-crossing timer, ms by ms; then big jumps */
	uint64_t ne0 = sp__wheel_next_expiration(&w);
	step_to(&log, SP__WHEEL_RANGE + 2, &mismatch);
	size_t before_crossing = t[0].fired;
	step_to(&log, SP__WHEEL_RANGE + 3, &mismatch);
	size_t at_crossing = t[0].fired;
	while (w.elapsed < start + 25 * MS_PER_YEAR) {
		uint64_t min = UINT64_MAX;
		for (size_t i = 0; i <= N; i++)
			if (t[i].e.queued && t[i].e.deadline < min)
				min = t[i].e.deadline;
		ne_late += sp__wheel_next_expiration(&w) > min;
		step_to(&log, w.elapsed + rnd_range(&seed, 1, 60 * MS_PER_DAY), &mismatch);
	}

	/* assert */
	size_t wrong = 0;
	for (size_t i = 0; i < N; i++)
		wrong += t[i].fired != 1;
	assert_int_equal(rcs, 0);
	assert_true(ne0 <= SP__WHEEL_RANGE + 3);
	assert_int_equal(before_crossing, 0);
	assert_int_equal(at_crossing, 1);
	assert_true(max_deadline < start + 25 * MS_PER_YEAR);
	assert_int_equal(wrong, 0);
	assert_int_equal(log.fired, N);
	assert_int_equal(t[N].fired, 0);
	assert_true(sp__timer_entry_queued(&t[N].e));
	assert_int_equal(ne_late, 0);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	sp__wheel_remove(&w, &t[N].e);
	assert_int_equal(sp__wheel_len(&w), 0);
	free(t);
}

/* next_expiration is never later than the earliest deadline, exact when
 * that deadline is in the current 64 ms block, > elapsed, always the earliest
 * due time of an occupied slot (so the earliest deadline when that one is at
 * level 0 and no slot above is due before it), and nothing fires before it.
 * Two drivers: jump exactly to it, or to random times. */
static void timer_wheel__next_expiration_bounds_earliest_deadline(void **state)
{
	(void)state;
	/* arrange */
	enum { N = 3000 };
	uint64_t seed = 0x4e47;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct tmr *t = tmrs_new(N);
	for (size_t i = 0; i < N; i++)
		sp__wheel_insert(&w, &t[i].e, rnd_deadline_mix(&seed, START_MS));
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0, later = 0, inexact = 0, inexact_block = 0, not_future = 0;
	size_t fired_before = 0, level0_min = 0, higher_first = 0, broken = 0, rounds = 0;

	/* act */
	while (sp__wheel_len(&w)) {
		struct tmr *min = NULL;
		for (size_t i = 0; i < N; i++)
			if (t[i].e.queued && (!min || t[i].e.deadline < min->e.deadline))
				min = &t[i];
		uint64_t ne = sp__wheel_next_expiration(&w);
		later += ne > min->e.deadline;
		not_future += ne <= w.elapsed;
		inexact += ne != earliest_slot_due(&w, t, N);
		if (min->e.level == 0) {
			level0_min++;
			higher_first += ne < min->e.deadline;
		}
		if ((min->e.deadline ^ w.elapsed) < 64)
			inexact_block += ne != min->e.deadline;
		if ((rounds & 63) == 0)
			broken += wheel_violations(&w, t, N, false);
		if (ne - 1 > w.elapsed) {
			size_t before = log.fired;
			step_to(&log, ne - 1, &mismatch);
			fired_before += log.fired != before;
		}
		/* odd rounds: the driver wakes at ne; even: somewhat later */
		uint64_t to = (rounds & 1) ? ne : ne + rnd_log(&seed, 1 << 20);
		step_to(&log, to, &mismatch);
		rounds++;
	}

	/* assert */
	assert_int_equal(log.fired, N);
	assert_int_equal(later, 0);
	assert_int_equal(not_future, 0);
	assert_true(level0_min > 0);
	assert_int_equal(inexact, 0);
	assert_int_equal(inexact_block, 0);
	assert_int_equal(broken, 0);
	assert_int_equal(fired_before, 0);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	assert_true(sp__wheel_next_expiration(&w) == UINT64_MAX);
	print_message("timer_wheel: %zu rounds, earliest at level 0 in %zu, a higher slot "
		      "due before it in %zu\n",
		      rounds, level0_min, higher_first);
	free(t);
}

/* fire re-inserts its own entry (periodic timers), cancels another pending
 * entry, inserts one at elapsed (refused) and a fresh one 1 ms ahead (fires
 * at its deadline). */
struct periodic {
	struct tmr t;
	uint64_t period;
	uint64_t next; /* expected deadline of the next fire */
	size_t fires;
	size_t wrong_deadline;
	size_t rearm_failed;
};

struct reentry_ctx {
	sp__timer_wheel *w;
	struct fire_log log;
	struct periodic per[4];
	struct tmr killer, victim, spawner, spawned;
	uint64_t spawned_expected;
	int at_elapsed_rc;
	uint64_t end;
};

static void reentry_fire(sp__timer_entry *e, void *arg)
{
	struct reentry_ctx *c = arg;

	check_fire(e, &c->log);
	for (int i = 0; i < 4; i++) {
		struct periodic *p = &c->per[i];
		if (e != &p->t.e)
			continue;
		p->fires++;
		p->wrong_deadline += e->deadline != p->next;
		p->next = e->deadline + p->period;
		p->t.fired = 0; /* the same entry fires again: reset the twice check */
		p->rearm_failed += sp__wheel_insert(c->w, e, p->next) != 0;
		return;
	}
	if (e == &c->killer.e) {
		sp__wheel_remove(c->w, &c->victim.e);
		c->victim.cancelled = 1;
	} else if (e == &c->spawner.e) {
		c->at_elapsed_rc = sp__wheel_insert(c->w, &c->spawned.e, c->w->elapsed);
		c->spawned_expected = c->w->elapsed + 1;
		sp__wheel_insert(c->w, &c->spawned.e, c->spawned_expected);
	}
}

static void timer_wheel__reinsert_from_fire(void **state)
{
	(void)state;
	/* arrange */
	uint64_t seed = 0x4e1;
	sp__timer_wheel w;
	sp__wheel_init(&w, 1000);
	struct reentry_ctx *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->w = &w;
	log_init(&c->log, &w);
	const uint64_t periods[4] = {1, 7, 64, 4096 + 3};
	const uint64_t horizon = 1000 + 300000;
	for (int i = 0; i < 4; i++) {
		c->per[i].period = periods[i];
		c->per[i].next = 1000 + periods[i];
		sp__wheel_insert(&w, &c->per[i].t.e, c->per[i].next);
	}
	sp__wheel_insert(&w, &c->killer.e, 1000 + 5000);
	sp__wheel_insert(&w, &c->victim.e, 1000 + 5001);
	sp__wheel_insert(&w, &c->spawner.e, 1000 + 70000);
	size_t mismatch = 0;

	/* act: the log's step bounds are set by hand, check_fire reads them */
	size_t returned = 0;
	while (w.elapsed < horizon) {
		uint64_t to = w.elapsed + rnd_log(&seed, 10000);
		if (to > horizon)
			to = horizon;
		c->log.step_lo = w.elapsed;
		c->log.step_hi = to;
		size_t before = c->log.fired;
		returned = sp__wheel_advance(&w, to, reentry_fire, c);
		mismatch += returned != c->log.fired - before;
	}

	/* assert */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(c->per[i].fires, (horizon - 1000) / periods[i]);
		assert_int_equal(c->per[i].wrong_deadline, 0);
		assert_int_equal(c->per[i].rearm_failed, 0);
		assert_true(sp__timer_entry_queued(&c->per[i].t.e));
	}
	assert_int_equal(c->killer.fired, 1);
	assert_int_equal(c->victim.fired, 0);
	assert_false(sp__timer_entry_queued(&c->victim.e));
	assert_int_equal(c->spawner.fired, 1);
	assert_int_equal(c->at_elapsed_rc, SP_ETIMEDOUT);
	assert_int_equal(c->spawned.fired, 1);
	assert_true(c->spawned.e.deadline == c->spawned_expected);
	assert_int_equal(mismatch, 0);
	assert_clean(&c->log);
	assert_int_equal(sp__wheel_len(&w), 4);
	free(c);
}

/* Entries with equal deadlines, inserted at different times (so first at
 * different levels, or clamped), fire in insertion order. */
struct fifo_tmr {
	struct tmr t;
	uint64_t seq;
};

struct fifo_log {
	struct fire_log log;
	uint64_t last_seq;
	size_t fifo_violations;
};

static void fifo_fire(sp__timer_entry *e, void *arg)
{
	struct fifo_log *f = arg;
	struct fifo_tmr *ft = (struct fifo_tmr *)TMR_OF(e);
	if (f->log.fired && e->deadline == f->log.last_deadline)
		f->fifo_violations += ft->seq <= f->last_seq;
	f->last_seq = ft->seq;
	check_fire(e, &f->log);
}

static void timer_wheel__equal_deadlines_fire_in_insertion_order(void **state)
{
	(void)state;
	/* arrange */
	enum { N = 20000, PER_PHASE = 100 };
	const uint64_t dls[] = {
		START_MS + 37,
		START_MS + 64 * 5,
		START_MS + 4096 * 3 + 1,
		START_MS + MS_PER_DAY,
		START_MS + 20 * MS_PER_DAY,	  /* crosses the top-window boundary */
		START_MS + SP__WHEEL_RANGE + 999, /* beyond range at first */
		START_MS + 3 * SP__WHEEL_RANGE,
	};
	const size_t ndl = sizeof dls / sizeof dls[0];
	uint64_t seed = 0xf1f0;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct fifo_tmr *t = calloc(N, sizeof *t);
	assert_non_null(t);
	struct fifo_log f;
	memset(&f, 0, sizeof f);
	log_init(&f.log, &w);
	size_t used = 0, phases = 0, mismatch = 0;
	int rcs = 0;

	/* act: insert a batch, advance a log-uniform step, repeat */
	while (w.elapsed < dls[ndl - 1]) {
		size_t first = 0;
		while (dls[first] <= w.elapsed)
			first++;
		for (size_t k = 0; k < PER_PHASE && used < N; k++, used++) {
			t[used].seq = used;
			rcs |= sp__wheel_insert(&w, &t[used].t.e,
						dls[rnd_range(&seed, first, ndl - 1)]);
		}
		uint64_t to = w.elapsed + rnd_log(&seed, dls[ndl - 1] - w.elapsed);
		f.log.step_lo = w.elapsed;
		f.log.step_hi = to;
		size_t before = f.log.fired;
		mismatch += sp__wheel_advance(&w, to, fifo_fire, &f) != f.log.fired - before;
		phases++;
	}

	/* assert */
	size_t never = 0;
	for (size_t i = 0; i < used; i++)
		never += t[i].t.fired != 1;
	assert_int_equal(rcs, 0);
	assert_true(phases > 10);
	assert_int_equal(f.log.fired, used);
	assert_int_equal(never, 0);
	assert_int_equal(f.fifo_violations, 0);
	assert_int_equal(mismatch, 0);
	assert_clean(&f.log);
	assert_int_equal(sp__wheel_len(&w), 0);
	print_message("timer_wheel: %zu timers on %zu deadlines over %zu phases\n", used, ndl,
		      phases);
	free(t);
}

/* Jumps of a year at a time: everything due fires in order, nothing else. */
static void timer_wheel__huge_jump_fires_everything_due_in_order(void **state)
{
	(void)state;
	/* arrange: deadlines up to 2 years, log-uniform or uniform, 1% beyond
	 * the range (up to 10 years) */
	enum { N = 100000 };
	uint64_t seed = 0x1ea9;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct tmr *t = tmrs_new(N);
	for (size_t i = 0; i < N; i++) {
		uint64_t r = splitmix64(&seed) % 100, d;
		if (r == 0)
			d = START_MS + rnd_range(&seed, SP__WHEEL_RANGE, 10 * MS_PER_YEAR);
		else if (r & 1)
			d = START_MS + rnd_log(&seed, 2 * MS_PER_YEAR);
		else
			d = START_MS + rnd_range(&seed, 1, 2 * MS_PER_YEAR);
		sp__wheel_insert(&w, &t[i].e, d);
	}
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0, wrong_count = 0, jumps = 0;

	/* act */
	uint64_t targets[] = {START_MS + MS_PER_YEAR, START_MS + 2 * MS_PER_YEAR,
			      START_MS + 2 * MS_PER_YEAR + 1, START_MS + 12 * MS_PER_YEAR};
	for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
		size_t due = 0;
		for (size_t i = 0; i < N; i++)
			due += !t[i].fired && t[i].e.deadline <= targets[k];
		size_t n = step_to(&log, targets[k], &mismatch);
		wrong_count += n != due;
		jumps++;
	}

	/* assert */
	size_t never = 0;
	for (size_t i = 0; i < N; i++)
		never += t[i].fired != 1;
	assert_int_equal(jumps, 4);
	assert_int_equal(wrong_count, 0);
	assert_int_equal(never, 0);
	assert_int_equal(log.fired, N);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	assert_int_equal(sp__wheel_len(&w), 0);
	free(t);
}

/* The placement rule around the level-0 window: less than 64 ms ahead is
 * level 0 at the deadline's digit 0, also across a multiple of 64; 64 ms or
 * more is a higher level. Stepping 1 ms at a time, next_expiration is exact
 * before every step (a level-1 slot due on the same ms as a level-0 entry
 * included) and each timer fires in the step that reaches its deadline. */
static void timer_wheel__near_deadlines_go_to_level_0(void **state)
{
	(void)state;
	/* arrange: elapsed 1000 = 15 * 64 + 40, the next multiple of 64 is 1024 */
	const uint64_t start = 1000;
	const struct {
		uint64_t deadline;
		unsigned level, slot;
	} cases[] = {
		{1001, 0, 1001 & 63}, /* +1 */
		{1023, 0, 1023 & 63}, /* the last ms of elapsed's block */
		{1024, 0, 1024 & 63}, /* on the multiple of 64 */
		{1030, 0, 1030 & 63}, /* across it */
		{1062, 0, 1062 & 63}, /* +62 */
		{1063, 0, 1063 & 63}, /* +63: the window's last slot, pos_0 - 1 */
		{1064, 1, 16},	      /* +64: digit 0 is pos_0, so level 1 */
		{1065, 1, 16},	      /* +65 */
		{1088, 1, 17},	      /* +88, on a multiple of 64 */
		{1000 + 4096, 2, 1},  /* digit 2 differs */
	};
	enum { N = sizeof cases / sizeof cases[0] };
	/* the due times next_expiration must give, in order: 1024 once (the
	 * level-1 slot 16 ties with the level-0 entry 1024); 5096 waits in
	 * level 2 (due 4096), then in level 1 (due 4096 + 15 * 64) */
	const uint64_t due_seq[] = {1001, 1023, 1024, 1030, 1062, 1063,
				    1064, 1065, 1088, 4096, 5056, 5096};
	sp__timer_wheel w;
	sp__wheel_init(&w, start);
	struct tmr t[N];
	memset(t, 0, sizeof t);
	int rcs = 0;
	for (size_t i = 0; i < N; i++)
		rcs |= sp__wheel_insert(&w, &t[i].e, cases[i].deadline);
	size_t misplaced = 0;
	for (size_t i = 0; i < N; i++)
		misplaced += t[i].e.level != cases[i].level || t[i].e.slot != cases[i].slot;
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0, wrong_due = 0, wrong_count = 0, broken = 0, k = 0;

	/* act: 1 ms at a time, next_expiration checked before each step */
	for (uint64_t now = start + 1; now <= start + 4096; now++) {
		uint64_t ne = sp__wheel_next_expiration(&w);
		while (k + 1 < sizeof due_seq / sizeof due_seq[0] && due_seq[k] < now)
			k++;
		wrong_due += ne != due_seq[k];
		size_t due = 0;
		for (size_t i = 0; i < N; i++)
			due += cases[i].deadline == now;
		wrong_count += step_to(&log, now, &mismatch) != due;
		broken += wheel_violations(&w, t, N, false);
	}

	/* assert */
	assert_int_equal(rcs, 0);
	assert_int_equal(misplaced, 0);
	assert_int_equal(wrong_due, 0);
	assert_int_equal(wrong_count, 0);
	assert_int_equal(broken, 0);
	assert_int_equal(log.fired, N);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	assert_int_equal(sp__wheel_len(&w), 0);
	assert_true(sp__wheel_next_expiration(&w) == UINT64_MAX);
}

/* A slot of a higher level comes due before a level-0 entry: elapsed 10,
 * deadlines 70 (level 0), 80 (level 1, due 64) and 130 (level 1, due 128).
 * next_expiration is 64 first, the slot is cascaded there, and the timers
 * fire in order at their deadlines, stepping from due time to due time or in
 * one advance. The same with a level-2 slot (elapsed 4090: 4100 at level 0,
 * 4160 at level 2, due 4096). */
static void timer_wheel__higher_slot_due_before_level_0_entry(void **state)
{
	(void)state;
	/* arrange */
	const struct {
		uint64_t start;
		uint64_t dl[3];
		unsigned level[3];
		uint64_t due0; /* next_expiration at first */
		/* (now, fired by then, next_expiration after) */
		uint64_t steps[8][3];
	} cases[] = {
		{10,
		 {70, 80, 130},
		 {0, 1, 1},
		 64,
		 {{63, 0, 64},
		  {64, 0, 70},
		  {69, 0, 70},
		  {70, 1, 80},
		  {79, 1, 80},
		  {80, 2, 128},
		  {128, 2, 130},
		  {130, 3, UINT64_MAX}}},
		{4090,
		 {4100, 4160, 4160 + 4096},
		 {0, 2, 2},
		 4096,
		 {{4095, 0, 4096},
		  {4096, 0, 4100},
		  {4100, 1, 4160},
		  {4159, 1, 4160},
		  {4160, 2, 8192},
		  {8192, 2, 8192 + 64},
		  {8255, 2, 8256},
		  {8256, 3, UINT64_MAX}}},
	};
	size_t mismatch = 0, misplaced = 0, wrong_ne0 = 0, wrong_fired = 0, wrong_ne = 0;
	size_t wrong_order = 0, broken = 0;

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		/* act: step by step */
		sp__timer_wheel w;
		sp__wheel_init(&w, cases[c].start);
		struct tmr t[3];
		memset(t, 0, sizeof t);
		for (int i = 0; i < 3; i++) {
			sp__wheel_insert(&w, &t[i].e, cases[c].dl[i]);
			misplaced += t[i].e.level != cases[c].level[i];
		}
		wrong_ne0 += sp__wheel_next_expiration(&w) != cases[c].due0;
		struct fire_log log;
		log_init(&log, &w);
		for (int k = 0; k < 8; k++) {
			step_to(&log, cases[c].steps[k][0], &mismatch);
			wrong_fired += log.fired != cases[c].steps[k][1];
			wrong_ne += sp__wheel_next_expiration(&w) != cases[c].steps[k][2];
			broken += wheel_violations(&w, t, 3, false);
		}
		assert_clean(&log);

		/* act: one advance over all three */
		sp__wheel_init(&w, cases[c].start);
		memset(t, 0, sizeof t);
		for (int i = 0; i < 3; i++)
			sp__wheel_insert(&w, &t[i].e, cases[c].dl[i]);
		log_init(&log, &w);
		step_to(&log, cases[c].dl[2] + 1000, &mismatch);
		wrong_order += log.fired != 3 || log.last_deadline != cases[c].dl[2];
		assert_clean(&log); /* in deadline order, each at its deadline */
	}

	/* assert */
	assert_int_equal(misplaced, 0);
	assert_int_equal(wrong_ne0, 0);
	assert_int_equal(wrong_fired, 0);
	assert_int_equal(wrong_ne, 0);
	assert_int_equal(wrong_order, 0);
	assert_int_equal(broken, 0);
	assert_int_equal(mismatch, 0);
}

/* Cancel entries at level 0 and at level 1, before and after a cascade:
 * next_expiration follows, the cancelled never fire, the rest do. */
static void timer_wheel__cancel_level_0_and_level_1_entries(void **state)
{
	(void)state;
	/* arrange: elapsed 10; a 70 (level 0), b 80 and c 90 (level 1 slot 1,
	 * due 64), d 130 (level 1 slot 2, due 128), e 100 (level 1 slot 1) */
	sp__timer_wheel w;
	sp__wheel_init(&w, 10);
	struct tmr t[5];
	memset(t, 0, sizeof t);
	const uint64_t dl[5] = {70, 80, 90, 130, 100};
	for (int i = 0; i < 5; i++)
		sp__wheel_insert(&w, &t[i].e, dl[i]);
	struct fire_log log;
	log_init(&log, &w);
	size_t mismatch = 0;
	int levels = t[0].e.level * 1000 + t[1].e.level * 100 + t[2].e.level * 10 + t[3].e.level;

	/* act */
	uint64_t ne0 = sp__wheel_next_expiration(&w);
	sp__wheel_remove(&w, &t[0].e); /* level 0: slot 1 of level 1 still due 64 */
	t[0].cancelled = 1;
	uint64_t ne1 = sp__wheel_next_expiration(&w);
	sp__wheel_remove(&w, &t[1].e); /* level 1, its slot keeps c and e */
	t[1].cancelled = 1;
	uint64_t ne2 = sp__wheel_next_expiration(&w);
	sp__wheel_remove(&w, &t[2].e);
	t[2].cancelled = 1;
	sp__wheel_remove(&w, &t[4].e); /* the slot is empty now */
	uint64_t ne3 = sp__wheel_next_expiration(&w);
	int rc = sp__wheel_insert(&w, &t[4].e, 100); /* back, level 1 slot 1 */
	uint64_t ne4 = sp__wheel_next_expiration(&w);
	step_to(&log, 64, &mismatch); /* cascades e to level 0 */
	unsigned e_level = t[4].e.level;
	uint64_t ne5 = sp__wheel_next_expiration(&w);
	sp__wheel_remove(&w, &t[4].e); /* cancelled after its cascade */
	t[4].cancelled = 1;
	uint64_t ne6 = sp__wheel_next_expiration(&w);
	size_t len = sp__wheel_len(&w);
	size_t broken = wheel_violations(&w, t, 5, false);
	step_to(&log, 1000, &mismatch);

	/* assert */
	assert_int_equal(levels, 111);
	assert_int_equal(t[4].e.level, 0);
	assert_true(ne0 == 64);
	assert_true(ne1 == 64);
	assert_true(ne2 == 64);
	assert_true(ne3 == 128);
	assert_int_equal(rc, 0);
	assert_true(ne4 == 64);
	assert_int_equal(e_level, 0);
	assert_true(ne5 == 100);
	assert_true(ne6 == 128);
	assert_int_equal(len, 1);
	assert_int_equal(broken, 0);
	assert_int_equal(log.fired, 1);
	assert_int_equal(t[3].fired, 1);
	assert_int_equal(mismatch, 0);
	assert_clean(&log);
	assert_int_equal(sp__wheel_len(&w), 0);
}

/* Entries of one deadline inserted while it was 64 ms or more ahead (level
 * 1) and then less (level 0 directly) fire in insertion order: the cascade
 * puts the earlier ones first. On a tie between a level-1 slot and a level-0
 * slot (both due 128) the cascade comes first. Limited advances stop inside
 * the mixed slot and resume in order (I2'). */
static void timer_wheel__cascaded_entries_fire_before_later_inserts(void **state)
{
	(void)state;
	/* arrange */
	enum { K = 5 };
	struct fifo_tmr t[4 * K];
	memset(t, 0, sizeof t);
	for (size_t i = 0; i < 4 * K; i++)
		t[i].seq = i;
	struct fifo_log f;
	size_t mismatch = 0, stops = 0, bad_stop = 0, over = 0;
	unsigned levels_before = 0;

	/* act 1: 80, first K at elapsed 10 (level 1), then K at 20 (level 0) */
	sp__timer_wheel w;
	sp__wheel_init(&w, 10);
	memset(&f, 0, sizeof f);
	log_init(&f.log, &w);
	for (size_t i = 0; i < K; i++)
		sp__wheel_insert(&w, &t[i].t.e, 80);
	sp__wheel_advance(&w, 20, fifo_fire, &f);
	for (size_t i = K; i < 2 * K; i++)
		sp__wheel_insert(&w, &t[i].t.e, 80);
	levels_before = t[0].t.e.level * 10 + t[K].t.e.level;
	f.log.step_lo = w.elapsed;
	f.log.step_hi = 100;
	mismatch += sp__wheel_advance(&w, 100, fifo_fire, &f) != 2 * K;
	size_t fired1 = f.log.fired;
	size_t fifo1 = f.fifo_violations;
	uint64_t last_seq1 = f.last_seq;

	/* act 2: the tie at 128, then the mixed slot, by limited advances */
	sp__wheel_init(&w, 10);
	memset(&f, 0, sizeof f);
	log_init(&f.log, &w);
	for (size_t i = 2 * K; i < 3 * K; i++)
		sp__wheel_insert(&w, &t[i].t.e, 128); /* level 1 slot 2 */
	sp__wheel_advance(&w, 70, fifo_fire, &f);
	for (size_t i = 3 * K; i < 4 * K; i++)
		sp__wheel_insert(&w, &t[i].t.e, 128); /* level 0 slot 0 */
	unsigned levels_tie = t[2 * K].t.e.level * 10 + t[3 * K].t.e.level;
	uint64_t ne_tie = sp__wheel_next_expiration(&w);
	while (sp__wheel_len(&w)) {
		size_t before = f.log.fired;
		f.log.step_lo = w.elapsed - 1; /* leftovers are due at elapsed */
		f.log.step_hi = 200;
		size_t n = sp__wheel_advance_max(&w, 200, fifo_fire, &f, 3);
		over += n > 3 || n != f.log.fired - before;
		if (sp__wheel_len(&w)) {
			stops++;
			bad_stop += w.elapsed != 128 || sp__wheel_next_expiration(&w) != 128;
			bad_stop += w.levels[0].slots[0] == NULL || w.levels[1].occupied != 0;
		}
	}

	/* assert */
	assert_int_equal(levels_before, 10);
	assert_int_equal(fired1, 2 * K);
	assert_int_equal(fifo1, 0);
	assert_true(last_seq1 == 2 * K - 1);
	assert_int_equal(levels_tie, 10);
	assert_true(ne_tie == 128);
	assert_int_equal(f.log.fired, 2 * K);
	assert_int_equal(f.fifo_violations, 0);
	assert_true(f.last_seq == 4 * K - 1);
	assert_int_equal(stops, (2 * K - 1) / 3);
	assert_int_equal(bad_stop, 0);
	assert_int_equal(over, 0);
	assert_int_equal(mismatch, 0);
	assert_clean(&f.log);
}

/* ---- against a reference ----------------------------------------------------- */

/* The reference: the queued timers sorted by (deadline, insertion number),
 * which is the order the wheel must fire them in. */
struct ref_model {
	struct tmr *t; /* the pool */
	uint64_t *seq; /* insertion number of t[i] */
	uint32_t *q;   /* queued indices, sorted */
	size_t len;
	/* the advance in progress */
	sp__timer_wheel *w;
	uint64_t now;
	size_t next; /* index in q of the next fire expected */
	size_t wrong_fire, early, elapsed_mismatch, still_queued;
};

static bool ref_before(const struct ref_model *m, uint32_t a, uint32_t b)
{
	uint64_t da = m->t[a].e.deadline, db = m->t[b].e.deadline;
	return da < db || (da == db && m->seq[a] < m->seq[b]);
}

static size_t ref_find(const struct ref_model *m, uint32_t i)
{
	size_t lo = 0, hi = m->len;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ref_before(m, m->q[mid], i))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ref_add(struct ref_model *m, uint32_t i)
{
	size_t at = ref_find(m, i);
	memmove(&m->q[at + 1], &m->q[at], (m->len - at) * sizeof m->q[0]);
	m->q[at] = i;
	m->len++;
}

/* Call before the wheel forgets t[i] (its deadline is the key). */
static void ref_del(struct ref_model *m, uint32_t i)
{
	size_t at = ref_find(m, i);
	assert_true(at < m->len && m->q[at] == i);
	memmove(&m->q[at], &m->q[at + 1], (m->len - at - 1) * sizeof m->q[0]);
	m->len--;
}

static void ref_fire(sp__timer_entry *e, void *arg)
{
	struct ref_model *m = arg;
	uint32_t i = (uint32_t)(TMR_OF(e) - m->t);

	m->wrong_fire += m->next >= m->len || m->q[m->next] != i;
	m->early += e->deadline > m->now;
	m->elapsed_mismatch += m->w->elapsed != e->deadline;
	m->still_queued += e->queued != 0;
	m->t[i].fired++;
	m->next++;
}

/* A deadline for the reference test: near (refused at 0), around the 64 ms
 * edge, on or beside a slot boundary of a random level, mid range, up to
 * 2^40 ms (beyond the top level's 2^36), around 2^36 ahead, or never. */
static uint64_t rnd_deadline_wide(uint64_t *s, uint64_t now)
{
	switch (splitmix64(s) % 16) {
	case 0:
	case 1:
	case 2:
	case 3:
	case 4:
		return now + rnd_range(s, 0, 63);
	case 5:
	case 6:
		return now + rnd_range(s, 60, 68);
	case 7:
	case 8: {
		unsigned shift = 6 * (unsigned)rnd_range(s, 1, SP__WHEEL_LEVELS - 1);
		uint64_t b = ((now >> shift) + rnd_range(s, 1, 2)) << shift;
		return b + rnd_range(s, 0, 2) - 1;
	}
	case 9:
	case 10:
	case 11:
		return now + rnd_range(s, 64, 5000);
	case 12:
	case 13:
		return now + rnd_log(s, (uint64_t)1 << 40);
	case 14:
		return now + SP__WHEEL_RANGE + rnd_range(s, 0, 200) - 100;
	default:
		return (splitmix64(s) & 7) == 0 ? UINT64_MAX : now + rnd_range(s, 1, 200);
	}
}

/* Random inserts, re-arms, cancels, advances and limited advances against the
 * reference: every advance fires exactly the reference's due prefix, in its
 * order (deadline, then insertion), each at its deadline; after every
 * operation len matches, next_expiration is the earliest due time of an
 * occupied slot, never later than the earliest deadline and > elapsed unless
 * due entries were left; the invariants hold. In the end everything but the
 * never-timers has fired exactly once. */
static void timer_wheel__random_ops_match_reference(void **state)
{
	(void)state;
	/* arrange */
	enum { POOL = 1000, OPS = 300000 };
	uint64_t seed = 0x5eed0f;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct ref_model m;
	memset(&m, 0, sizeof m);
	m.t = tmrs_new(POOL);
	m.seq = calloc(POOL, sizeof *m.seq);
	m.q = calloc(POOL, sizeof *m.q);
	assert_non_null(m.seq);
	assert_non_null(m.q);
	m.w = &w;
	uint64_t next_seq = 0;
	size_t wrong_rc = 0, wrong_len = 0, wrong_count = 0, wrong_elapsed = 0;
	size_t wrong_ne = 0, ne_late = 0, ne_past = 0, broken = 0;
	size_t fired = 0, refused = 0, cancels = 0, limited_stops = 0, far_jumps = 0;
	size_t higher_first = 0, queued_sum = 0;

	/* act */
	for (size_t op = 0; op < OPS; op++) {
		uint64_t r = splitmix64(&seed) % 100;
		uint32_t i = (uint32_t)rnd_range(&seed, 0, POOL - 1);
		if (r < 50) {
			uint64_t d = rnd_deadline_wide(&seed, w.elapsed);
			if (m.t[i].e.queued)
				ref_del(&m, i);
			int rc = sp__wheel_insert(&w, &m.t[i].e, d);
			if (d > w.elapsed) {
				wrong_rc += rc != 0;
				m.seq[i] = next_seq++;
				ref_add(&m, i);
			} else {
				wrong_rc += rc != SP_ETIMEDOUT || m.t[i].e.queued;
				refused++;
			}
		} else if (r < 65) {
			if (m.t[i].e.queued) {
				ref_del(&m, i);
				cancels++;
			}
			sp__wheel_remove(&w, &m.t[i].e);
		} else {
			uint64_t k = splitmix64(&seed) % 1000, step;
			if (k < 800)
				step = rnd_range(&seed, 0, 3);
			else if (k < 970)
				step = rnd_range(&seed, 1, 100);
			else if (k < 999)
				step = rnd_log(&seed, (uint64_t)1 << 14);
			else
				step = rnd_log(&seed, (uint64_t)1 << 40);
			far_jumps += step > SP__WHEEL_RANGE;
			m.now = w.elapsed + step;
			m.next = 0;
			size_t due = 0;
			while (due < m.len && m.t[m.q[due]].e.deadline <= m.now)
				due++;
			size_t max = (splitmix64(&seed) & 3) == 0 ? (size_t)rnd_range(&seed, 1, 8)
								  : SIZE_MAX;
			size_t n = sp__wheel_advance_max(&w, m.now, ref_fire, &m, max);
			size_t want = due < max ? due : max;
			wrong_count += n != want || m.next != want;
			memmove(&m.q[0], &m.q[want], (m.len - want) * sizeof m.q[0]);
			m.len -= want;
			fired += n;
			/* stopped with due entries left: elapsed is the deadline of
			 * the first of them (I2'), else now */
			limited_stops += want < due;
			uint64_t at = want < due ? m.t[m.q[0]].e.deadline : m.now;
			wrong_elapsed += w.elapsed != at;
		}
		/* left by a limited advance, and not cancelled since */
		bool due_left = m.len && m.t[m.q[0]].e.deadline <= w.elapsed;
		uint64_t ne = sp__wheel_next_expiration(&w);
		wrong_len += sp__wheel_len(&w) != m.len;
		uint64_t want_ne = UINT64_MAX;
		for (size_t k = 0; k < m.len; k++) {
			const sp__timer_entry *e = &m.t[m.q[k]].e;
			uint64_t due = slot_due(&w, e->level, e->slot);
			want_ne = due < want_ne ? due : want_ne;
		}
		wrong_ne += ne != want_ne;
		ne_late += m.len && ne > m.t[m.q[0]].e.deadline;
		ne_past += due_left ? ne != w.elapsed : ne <= w.elapsed;
		if (m.len && m.t[m.q[0]].e.level == 0)
			higher_first += ne < m.t[m.q[0]].e.deadline;
		if ((op & 15) == 0)
			broken += wheel_violations(&w, m.t, POOL, due_left);
		queued_sum += m.len;
	}
	/* the end: everything left fires but the never-timers (an advance to
	 * SP__WHEEL_TIME_MAX would cascade those once a turn, 2^28 times) */
	size_t never = 0;
	while (never < m.len && m.t[m.q[m.len - 1 - never]].e.deadline == UINT64_MAX)
		never++;
	m.now = never < m.len ? m.t[m.q[m.len - 1 - never]].e.deadline : w.elapsed;
	m.next = 0;
	size_t n = sp__wheel_advance(&w, m.now, ref_fire, &m);
	wrong_count += n != m.len - never;

	/* assert */
	size_t fires_seen = 0;
	for (size_t k = 0; k < POOL; k++)
		fires_seen += m.t[k].fired;
	assert_int_equal(wrong_rc, 0);
	assert_int_equal(wrong_len, 0);
	assert_int_equal(wrong_count, 0);
	assert_int_equal(wrong_elapsed, 0);
	assert_int_equal(wrong_ne, 0);
	assert_int_equal(ne_late, 0);
	assert_int_equal(ne_past, 0);
	assert_int_equal(broken, 0);
	assert_int_equal(m.wrong_fire, 0);
	assert_int_equal(m.early, 0);
	assert_int_equal(m.elapsed_mismatch, 0);
	assert_int_equal(m.still_queued, 0);
	assert_int_equal(fires_seen, fired + n);
	assert_int_equal(sp__wheel_len(&w), never);
	assert_true(fired > OPS / 10);
	assert_true(refused > 0 && cancels > 0 && limited_stops > 0 && far_jumps > 0);
	assert_true(higher_first > 0);
	print_message("timer_wheel: reference: %zu fired, %zu refused, %zu cancelled, %zu "
		      "limited stops, %zu jumps beyond the range, %zu never, %zu queued on "
		      "average, a higher slot due before a level-0 earliest %zu times\n",
		      fired + n, refused, cancels, limited_stops, far_jumps, never,
		      queued_sum / OPS, higher_first);
	free(m.q);
	free(m.seq);
	free(m.t);
}

static void count_fire(sp__timer_entry *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
}

/* Informational, not asserted: ns per insert+cancel pair over 1M pairs with
 * 4096 timers resident (deadlines 1 ms to 30 days), and ns per fired timer
 * when advancing over 1M timers. */
static void timer_wheel__insert_cancel_benchmark(void **state)
{
	(void)state;
	/* arrange */
	enum { OPS = 1000000, RESIDENT = 4096 };
	uint64_t seed = 0xbe9c4;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct tmr *t = tmrs_new(OPS > RESIDENT ? OPS : RESIDENT);
	uint64_t *dl = malloc(OPS * sizeof *dl);
	assert_non_null(dl);
	for (size_t i = 0; i < OPS; i++)
		dl[i] = rnd_deadline_mix(&seed, START_MS);
	for (size_t i = 0; i < RESIDENT; i++)
		sp__wheel_insert(&w, &t[i].e, dl[i]);

	/* act */
	uint64_t t0 = spt_now_ns();
	for (size_t i = 0; i < OPS; i++) {
		sp__timer_entry *e = &t[i & (RESIDENT - 1)].e;
		sp__wheel_remove(&w, e);
		sp__wheel_insert(&w, e, dl[i]);
	}
	uint64_t t1 = spt_now_ns();
	for (size_t i = 0; i < RESIDENT; i++)
		sp__wheel_remove(&w, &t[i].e);
	for (size_t i = 0; i < OPS; i++)
		sp__wheel_insert(&w, &t[i].e, dl[i]);
	size_t fired = 0;
	uint64_t t2 = spt_now_ns();
	for (uint64_t now = START_MS; sp__wheel_len(&w); now += 1 + (now - START_MS) / 64)
		sp__wheel_advance(&w, now, count_fire, &fired);
	uint64_t t3 = spt_now_ns();

	/* assert (sanity only) */
	assert_int_equal(fired, OPS);
	print_message("timer_wheel bench: insert+cancel %.1f ns/pair over %d pairs (%d resident); "
		      "advance %.1f ns/fired timer over %d timers%s\n",
		      (double)(t1 - t0) / OPS, OPS, RESIDENT, (double)(t3 - t2) / OPS, OPS,
		      SPT_SANITIZED ? " [sanitized build]" : "");
	free(dl);
	free(t);
}

/* sp__wheel_advance_max: a limited advance fires at most max entries, in
 * order; when it stops inside a slot, what is left is due at elapsed (I2'):
 * next_expiration says so, an insert at elapsed is refused, a removal of a
 * left entry works, and the next advance fires the rest first. In the end
 * every entry not removed fired exactly once, never early. */
static void timer_wheel__limited_advance_resumes_in_order(void **state)
{
	(void)state;
	/* arrange: 20,000 timers, a third of them on 8 crowded deadlines */
	enum { N = 20000 };
	uint64_t seed = 0x11a17;
	sp__timer_wheel w;
	sp__wheel_init(&w, START_MS);
	struct tmr *t = tmrs_new(N);
	uint64_t max_deadline = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t d = i % 3 == 0 ? START_MS + 1 + 10 * rnd_range(&seed, 0, 7)
					: rnd_deadline_mix(&seed, START_MS);
		assert_int_equal(sp__wheel_insert(&w, &t[i].e, d), 0);
		if (d > max_deadline)
			max_deadline = d;
	}
	struct fire_log log;
	log_init(&log, &w);
	size_t stops_inside = 0, refused = 0, removed = 0, over = 0, due_now = 0;
	struct tmr extra = {0};

	/* act: advance in limited steps; after each stop with entries left
	 * due, probe the wheel and cancel one of them */
	while (sp__wheel_len(&w) > 0) {
		uint64_t now = w.elapsed + (w.elapsed < START_MS + 100 ? rnd_range(&seed, 0, 3)
								       : rnd_step(&seed));
		if (now > max_deadline)
			now = max_deadline;
		log.step_lo = w.elapsed - 1; /* leftovers are due at elapsed */
		log.step_hi = now;
		size_t before = log.fired;
		size_t max = (size_t)rnd_range(&seed, 1, 9);
		size_t n = sp__wheel_advance_max(&w, now, check_fire, &log, max);
		over += n > max || n != log.fired - before;
		if (n == max && sp__wheel_next_expiration(&w) == w.elapsed) {
			stops_inside++;
			refused += sp__wheel_insert(&w, &extra.e, w.elapsed) == SP_ETIMEDOUT;
			sp__timer_entry *left = w.levels[0].slots[w.elapsed & 63];
			due_now += left && left->deadline == w.elapsed;
			if (left && (removed & 1) == 0) {
				TMR_OF(left)->cancelled = 1;
				sp__wheel_remove(&w, left);
			}
			removed += left != NULL;
		}
	}

	/* assert */
	size_t wrong = 0;
	for (size_t i = 0; i < N; i++)
		wrong += t[i].fired != (t[i].cancelled ? 0u : 1u);
	assert_true(stops_inside > 100);
	assert_int_equal(refused, stops_inside);
	assert_int_equal(due_now, removed);
	assert_int_equal(over, 0);
	assert_int_equal(wrong, 0);
	assert_int_equal(extra.fired, 0);
	assert_clean(&log); /* late: relative to elapsed - 1 (I2') */
	assert_true(sp__wheel_next_expiration(&w) == UINT64_MAX);
	print_message("timer_wheel: %zu limited advances stopped inside a slot\n", stops_inside);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(timer_wheel__empty_wheel_has_no_expiration),
		cmocka_unit_test(timer_wheel__deadline_in_past_is_etimedout),
		cmocka_unit_test(timer_wheel__insert_twice_rearms),
		cmocka_unit_test(timer_wheel__slot_boundary_deadlines_fire_exactly),
		cmocka_unit_test(timer_wheel__top_level_due_times_wrap_around),
		cmocka_unit_test(timer_wheel__random_deadlines_fire_once_in_order),
		cmocka_unit_test(timer_wheel__cancel_random_half_never_fires),
		cmocka_unit_test(timer_wheel__deadline_beyond_range_fires_at_deadline),
		cmocka_unit_test(timer_wheel__next_expiration_bounds_earliest_deadline),
		cmocka_unit_test(timer_wheel__reinsert_from_fire),
		cmocka_unit_test(timer_wheel__equal_deadlines_fire_in_insertion_order),
		cmocka_unit_test(timer_wheel__huge_jump_fires_everything_due_in_order),
		cmocka_unit_test(timer_wheel__limited_advance_resumes_in_order),
		cmocka_unit_test(timer_wheel__near_deadlines_go_to_level_0),
		cmocka_unit_test(timer_wheel__higher_slot_due_before_level_0_entry),
		cmocka_unit_test(timer_wheel__cancel_level_0_and_level_1_entries),
		cmocka_unit_test(timer_wheel__cascaded_entries_fire_before_later_inserts),
		cmocka_unit_test(timer_wheel__random_ops_match_reference),
		cmocka_unit_test(timer_wheel__insert_cancel_benchmark),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
