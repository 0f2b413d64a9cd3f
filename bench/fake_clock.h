/*
 * fake_clock.h - forced into the console sources that bench/top_events.c
 * builds (-include), in place of console/clock.h: the stream's "now" is a
 * variable the benchmark sets, so that which events a poll delivers and
 * which it holds back does not depend on how fast the run goes (callgrind
 * runs it 50 times slower).
 */
#ifndef SPINDLE_CONSOLE_CLOCK_H
#define SPINDLE_CONSOLE_CLOCK_H

#include <stdint.h>

extern uint64_t bench_clock_ns;

static inline uint64_t spc_mono_ns(void)
{
	return bench_clock_ns;
}

static inline uint64_t spc_real_ns(void)
{
	return bench_clock_ns;
}

#endif
