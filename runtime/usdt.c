/*
 * usdt.c - the semaphores of the USDT probes (usdt.h). sys/sdt.h wants one
 * unsigned short per probe named <provider>_<name>_semaphore in the .probes
 * section; a tracer attached to the probe increments it (in the process's
 * memory, or the kernel through the uprobe's ref_ctr_offset).
 */
#include "usdt.h"

#if defined(SP_HAVE_SDT)
#define SP__USDT_DEFINE(name)                                                  \
	unsigned short spindle_##name##_semaphore                              \
		__attribute__((unused, section(".probes")));
SP__USDT_PROBES(SP__USDT_DEFINE)
#else
typedef int sp__usdt_empty_unit; /* an empty translation unit is not ISO C */
#endif
