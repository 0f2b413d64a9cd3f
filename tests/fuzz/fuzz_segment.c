/*
 * fuzz_segment.c - libFuzzer entry point for the segment validator
 * (runtime/trace_segment.h): arbitrary bytes as a segment image, validated
 * with sp__seg_attach_mem and, when accepted, read through every reader entry
 * point. Any crash or sanitizer report is a bug in the validator.
 *
 * Not part of the CMake build or CTest (libFuzzer needs clang). Build and run
 * by hand, from the repository root:
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Iruntime -Iruntime/include tests/fuzz/fuzz_segment.c \
 *     runtime/trace_segment.c runtime/trace_ring.c runtime/clock.c \
 *     -o /tmp/fuzz_segment -lpthread
 *   /tmp/fuzz_segment -max_total_time=60 -max_len=8192
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace_segment.h"

/* The runtime's panic, for the inline asserts in the linked files. */
void sp__panic(const char *what)
{
	(void)what;
	abort();
}

static void count_task(unsigned slot, const sp__seg_task *t, void *arg)
{
	(void)slot;
	(*(size_t *)arg) += strlen(t->name) + strlen(t->file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The validator wants 64-byte aligned memory, as a mapping gives. */
	size_t cap = (size + 63) & ~(size_t)63;
	void *mem = aligned_alloc(64, cap ? cap : 64);
	if (!mem)
		return 0;
	memcpy(mem, data, size);

	sp__seg_reader r;
	if (sp__seg_attach_mem(&r, mem, size) == 0) {
		size_t n = 0, busy = 0;
		sp__seg_read_tasks(&r, count_task, &n, &busy);
		for (unsigned i = 0; i < r.hdr.nrings; i++) {
			sp__ring_event ev[8];
			uint64_t cur = 0, lost = 0;
			(void)sp__seg_reader_ring_owner(&r, i);
			sp__seg_wstat_info wi;
			(void)sp__seg_read_wstat(&r, i, &wi);
			for (int k = 0; k < 4; k++)
				if (sp__seg_reader_ring_read(&r, i, &cur, ev, 8, &lost) == 0)
					break;
		}
		for (uint32_t i = 0; i < r.hdr.site_slots && i < 64; i++) {
			sp__seg_site_info si;
			if (sp__seg_read_site(&r, i, &si) == 0 && strlen(si.name) > SP__SEG_NAME_LEN)
				abort(); /* always terminated */
		}
		(void)sp__seg_ticks_to_ns(&r, 1);
	} else if (!*sp__seg_strerror(&r)) {
		abort(); /* every failure has a message */
	}
	sp__seg_close(&r);
	free(mem);
	return 0;
}
