/*
 * wheel_bench.c - the timer wheel alone (runtime/timer_wheel.c), on timers
 * embedded in cache-cold objects the way the runtime's are in its tasks:
 * N separately malloc'd 384-byte objects, linked in a random order, with
 * 64 MiB written between the phases so that every entry starts out of the
 * cache.
 *
 *   burst:  insert N timers 1-50 ms ahead of elapsed (ns per insert), then
 *           advance 1 ms at a time until all have fired (ns per fired timer)
 *   steady: N timers re-armed 1-50 ms ahead from their own fire, advanced
 *           1 ms at a time for 1000 ms (ns per fired + re-armed timer)
 *
 * Each run draws the same deadlines (a fixed seed per run), with elapsed
 * starting at a different offset in its 64 ms block, so two builds of the
 * wheel see the same workload. Prints the median (and min, max) over runs.
 *
 *   build/bin/wheel-bench [N=100000] [RUNS=9] [TOUCH=1]
 *
 * TOUCH=1: fire also writes a field on another cache line of the object (a
 * task's state, as waking it would); 0: fire only counts.
 * To compare two versions of the wheel, build this file against each:
 *   cc -O2 -g -DNDEBUG -D_GNU_SOURCE -Iruntime -Iruntime/include \
 *      bench/wheel_bench.c runtime/timer_wheel.c build/lib/libspindle.a \
 *      -lpthread -lm
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timer_wheel.h"

#define OBJ_SIZE 384
#define EVICT_BYTES (64u << 20)
#define STEADY_MS 1000

struct obj {
	uint64_t state; /* what fire touches (TOUCH=1), line 0 */
	char pad[120];
	sp__timer_entry e; /* line 2 */
	uint64_t seed;
	char rest[OBJ_SIZE - 128 - sizeof(sp__timer_entry) - sizeof(uint64_t)];
};

_Static_assert(sizeof(struct obj) == OBJ_SIZE, "object size");

#define OBJ_OF(entry) ((struct obj *)((char *)(entry)-offsetof(struct obj, e)))

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned char *evict_buf;

/* Push the objects out of every cache level. */
static void evict(void)
{
	for (size_t i = 0; i < EVICT_BYTES; i += 64)
		evict_buf[i]++;
}

struct fire_ctx {
	sp__timer_wheel *w;
	size_t fired;
	int touch, rearm;
};

static void on_fire(sp__timer_entry *e, void *arg)
{
	struct fire_ctx *c = arg;
	struct obj *o = OBJ_OF(e);

	c->fired++;
	if (c->touch)
		o->state++;
	if (c->rearm)
		sp__wheel_insert(c->w, e, c->w->elapsed + 1 + splitmix64(&o->seed) % 50);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(const char *what, double *v, int runs)
{
	qsort(v, (size_t)runs, sizeof *v, cmp_double);
	printf("  %-28s median %7.1f ns  (min %7.1f, max %7.1f)\n", what, v[runs / 2], v[0],
	       v[runs - 1]);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 100000;
	int runs = argc > 2 ? atoi(argv[2]) : 9;
	int touch = argc > 3 ? atoi(argv[3]) : 1;
	if (n == 0 || runs <= 0) {
		fprintf(stderr, "usage: wheel-bench [N] [RUNS] [TOUCH]\n");
		return 2;
	}
	struct obj **objs = malloc(n * sizeof *objs);
	double *ins = malloc((size_t)runs * sizeof *ins);
	double *adv = malloc((size_t)runs * sizeof *adv);
	double *steady = malloc((size_t)runs * sizeof *steady);
	evict_buf = calloc(EVICT_BYTES, 1);
	if (!objs || !ins || !adv || !steady || !evict_buf)
		return 1;
	/* One malloc per object, then a shuffled order: neighbours in a slot
	 * list are far apart in memory. */
	for (size_t i = 0; i < n; i++) {
		objs[i] = malloc(sizeof(struct obj));
		if (!objs[i])
			return 1;
		memset(objs[i], 0, sizeof(struct obj));
	}
	uint64_t shuf = 0x5b0f;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = splitmix64(&shuf) % (i + 1);
		struct obj *t = objs[i];
		objs[i] = objs[j];
		objs[j] = t;
	}
	uint64_t checksum = 0;

	for (int r = 0; r < runs; r++) {
		sp__timer_wheel w;
		uint64_t start = 1000000 + (uint64_t)r * 23; /* offset 23r mod 64 */
		uint64_t seed = 0xbe11 + (uint64_t)r;
		struct fire_ctx c = {&w, 0, touch, 0};

		/* burst */
		sp__wheel_init(&w, start);
		for (size_t i = 0; i < n; i++)
			objs[i]->seed = splitmix64(&seed);
		evict();
		uint64_t t0 = now_ns();
		for (size_t i = 0; i < n; i++)
			sp__wheel_insert(&w, &objs[i]->e, start + 1 + objs[i]->seed % 50);
		uint64_t t1 = now_ns();
		evict();
		uint64_t t2 = now_ns();
		for (uint64_t now = start + 1; sp__wheel_len(&w); now++)
			sp__wheel_advance(&w, now, on_fire, &c);
		uint64_t t3 = now_ns();
		if (c.fired != n) {
			fprintf(stderr, "burst: fired %zu of %zu\n", c.fired, n);
			return 1;
		}
		ins[r] = (double)(t1 - t0) / (double)n;
		adv[r] = (double)(t3 - t2) / (double)n;

		/* steady: fire re-arms */
		sp__wheel_init(&w, start);
		for (size_t i = 0; i < n; i++)
			sp__wheel_insert(&w, &objs[i]->e,
					 start + 1 + splitmix64(&objs[i]->seed) % 50);
		c.fired = 0;
		c.rearm = 1;
		evict();
		uint64_t t4 = now_ns();
		for (uint64_t now = start + 1; now <= start + STEADY_MS; now++)
			sp__wheel_advance(&w, now, on_fire, &c);
		uint64_t t5 = now_ns();
		steady[r] = (double)(t5 - t4) / (double)c.fired;
		checksum += c.fired;
		for (size_t i = 0; i < n; i++)
			sp__wheel_remove(&w, &objs[i]->e);
	}

	printf("wheel-bench: %zu timers, 1-50 ms, %d runs, fire %s (steady: %llu fired)\n", n, runs,
	       touch ? "touches the object" : "only counts", (unsigned long long)checksum);
	report("insert, per timer", ins, runs);
	report("advance, per fired timer", adv, runs);
	report("steady, per fire + re-arm", steady, runs);
	for (size_t i = 0; i < n; i++)
		free(objs[i]);
	free(objs);
	free(ins);
	free(adv);
	free(steady);
	free(evict_buf);
	return 0;
}
