/*
 * registry.c - the worker-slot registry the eBPF tracer reads.
 *
 * CONTRACT (version 1). The exported symbol `sp_trace_registry` is found by
 * name in the ELF symbol table of the process. It holds a magic, a layout
 * version, the clock calibration and a pointer to SP_REGISTRY_SLOTS slots of
 * 64 bytes (sp_worker_slot in internal.h). A worker claims one slot for its
 * lifetime and writes it with plain stores only, from its own thread:
 *
 *   poll start: poll_start, poll_fn, name, poll_seq, then (compiler barrier)
 *               task_id
 *   poll end:   task_id = 0
 *
 * A reader running in the worker's own context (sched_switch of that thread,
 * a perf sample interrupting it) therefore never sees a torn slot and needs no
 * atomics. poll_start is in raw ticks: ns = ns0 + (ticks - tick0) * mult >>
 * 32, where the calibration fields below are written once before any worker
 * starts. Readers must check magic and version and ignore slots with tid 0.
 * Slot fields (offsets): task_id 0, poll_start 8, poll_fn 16, tid 24,
 * worker_idx 28, poll_seq 32, runtime_id 40, name 48 (address of the task's
 * NUL-terminated name in the process, a static string; 0 when unknown;
 * added within version 1: older writers left it 0).
 */
#include <string.h>

#include "internal.h"

#define SP_REGISTRY_SLOTS 256
#define SP_REGISTRY_MAGIC 0x5350494e444c4552ull /* "SPINDLER" */

struct sp_trace_registry {
	uint64_t magic;
	uint32_t version;
	uint32_t slot_size;
	uint32_t max_slots;
	uint32_t clock_kind; /* 1: x86 TSC, 2: CLOCK_MONOTONIC ns */
	uint64_t tick0, ns0, mult, hz;
	sp_worker_slot *slots;
};

static sp_worker_slot slots[SP_REGISTRY_SLOTS] __attribute__((aligned(SP__CACHELINE)));
static _Atomic uint64_t slot_used[SP_REGISTRY_SLOTS / 64];

__attribute__((visibility("default"), used)) struct sp_trace_registry sp_trace_registry = {
	.magic = SP_REGISTRY_MAGIC,
	.version = 1,
	.slot_size = sizeof(sp_worker_slot),
	.max_slots = SP_REGISTRY_SLOTS,
#if defined(__x86_64__)
	.clock_kind = 1,
#else
	.clock_kind = 2,
#endif
	.slots = slots,
};

static pthread_once_t calib_once = PTHREAD_ONCE_INIT;
static void publish_calibration(void)
{
	sp__clock_init();
	sp_trace_registry.tick0 = sp__clock.tick0;
	sp_trace_registry.ns0 = sp__clock.ns0;
	sp_trace_registry.mult = sp__clock.mult;
	sp_trace_registry.hz = sp__clock.hz;
}

/* Claim a free slot; NULL when all are taken (that worker is then invisible
 * to the tracer but runs normally). */
sp_worker_slot *sp__slot_claim(void)
{
	pthread_once(&calib_once, publish_calibration);
	for (unsigned w = 0; w < SP_REGISTRY_SLOTS / 64; w++) {
		uint64_t used = atomic_load_explicit(&slot_used[w], memory_order_relaxed);
		while (~used) {
			unsigned bit = (unsigned)__builtin_ctzll(~used);
			if (atomic_compare_exchange_weak_explicit(&slot_used[w], &used,
								  used | ((uint64_t)1 << bit),
								  memory_order_acq_rel,
								  memory_order_relaxed)) {
				sp_worker_slot *s = &slots[w * 64 + bit];
				memset(s, 0, sizeof(*s));
				return s;
			}
		}
	}
	return NULL;
}

void sp__slot_release(sp_worker_slot *s)
{
	if (!s)
		return;
	size_t i = (size_t)(s - slots);
	s->task_id = 0;
	s->tid = 0;
	atomic_fetch_and_explicit(&slot_used[i / 64], ~((uint64_t)1 << (i % 64)),
				  memory_order_release);
}
