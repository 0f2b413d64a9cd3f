/*
 * target.h - find and read the worker-slot registry of a spindle process
 * from outside (runtime/registry.c is the other side of this contract).
 */
#ifndef SPINDLE_PROBES_TARGET_H
#define SPINDLE_PROBES_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP__REGISTRY_MAGIC 0x5350494e444c4552ull /* "SPINDLER" */
#define SP__REGISTRY_VERSION 1
#define SP__REGISTRY_SYMBOL "sp_trace_registry"

/* struct sp_trace_registry, version 1, as it lies in the target's memory. */
struct sp__registry {
	uint64_t magic;
	uint32_t version;
	uint32_t slot_size;
	uint32_t max_slots;
	uint32_t clock_kind; /* 1: x86 TSC, 2: CLOCK_MONOTONIC ns */
	uint64_t tick0, ns0, mult, hz;
	uint64_t slots; /* address of the slot array */
};

/*
 * Find `sp_trace_registry` in the executable of pid or in a mapped
 * libspindle*.so: its address in the target. A stripped executable is
 * searched for the registry's magic instead (*stripped_exe is then true:
 * the tracer has no function names). Returns 0, -ENOENT (not a spindle
 * process: why says so), or another negative errno.
 */
int sp__target_find_registry(int pid, uint64_t *addr, bool *stripped_exe, char *why, size_t whylen);

/* Read len bytes at addr of pid: 0 or a negative errno (-ESRCH: gone). */
int sp__target_read(int pid, uint64_t addr, void *buf, size_t len);

/* Validate a registry image: 0, or -EPROTO with why filled. */
int sp__registry_check(const struct sp__registry *r, char *why, size_t whylen);

#endif
