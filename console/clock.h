/*
 * clock.h - the console tools' clocks, in nanoseconds: CLOCK_MONOTONIC (the
 * trace segment's clock; event times are converted into it) and
 * CLOCK_REALTIME (wall time, for recordings' metadata).
 */
#ifndef SPINDLE_CONSOLE_CLOCK_H
#define SPINDLE_CONSOLE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t spc_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t spc_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
