/*
 * clock.c - the runtime's clock: raw ticks on the hot path, nanoseconds for
 * people.
 *
 * Workers read the clock once per poll (at its end; the end of one poll is the
 * start of the next). On x86-64 the tick is the TSC, which is constant and
 * nonstop on the machines we run on and costs ~10 ns against ~25 ns for
 * clock_gettime through the vDSO (see the project's tracing-cost notes). The
 * TSC is calibrated once against CLOCK_MONOTONIC over 5 ms; the calibration
 * is published in the tracer registry (registry.c) so that readers outside
 * the process convert ticks the same way.
 */
#include <pthread.h>
#include <time.h>

#include "internal.h"

struct sp__clock sp__clock;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

uint64_t sp__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void clock_calibrate(void)
{
#if defined(__x86_64__)
	/* 5 ms: timing jitter of a few µs gives < 0.1% error in the rate. */
	struct timespec nap = {0, 5 * 1000 * 1000};
	uint64_t n0 = sp__mono_ns(), t0 = sp__ticks();
	nanosleep(&nap, NULL);
	uint64_t n1 = sp__mono_ns(), t1 = sp__ticks();
	uint64_t dn = n1 - n0, dt = t1 - t0;
	if (dt == 0)
		dt = 1;
	sp__clock.hz = (uint64_t)((unsigned __int128)dt * 1000000000u / dn);
	sp__clock.mult = (uint64_t)(((unsigned __int128)dn << 32) / dt);
	sp__clock.tick0 = t1;
	sp__clock.ns0 = n1;
#else
	sp__clock.hz = 1000000000u;
	sp__clock.mult = (uint64_t)1 << 32;
	sp__clock.tick0 = 0;
	sp__clock.ns0 = 0;
#endif
}

void sp__clock_init(void)
{
	pthread_once(&clock_once, clock_calibrate);
}

uint64_t sp_now_ns(void)
{
	sp__clock_init();
	uint64_t t = sp__ticks();
	return sp__clock.ns0 + sp__ticks_to_ns(t - sp__clock.tick0);
}
