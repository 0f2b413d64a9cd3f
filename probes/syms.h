/*
 * syms.h - user-space symbolisation of a live process with libdw (dwfl):
 * function + offset, file:line, module. Frame pointers are on in every
 * spindle build, so stacks come from the kernel's frame-pointer walk and only
 * need naming here.
 */
#ifndef SPINDLE_PROBES_SYMS_H
#define SPINDLE_PROBES_SYMS_H

#include <stdbool.h>
#include <stdint.h>

#include "tracer.h"

struct sp__syms;

/* Report the modules mapped in pid (their symbols load later: at
 * sp__syms_prefetch, or module by module at the first lookups). NULL on
 * failure. */
struct sp__syms *sp__syms_new(int pid);
/* Start loading every module's symbols (and the user modules' DWARF) in a
 * thread of its own, once, so that names resolve even if the process exits
 * before its first finding is named. Any thread; the first lookup waits
 * for it. */
void sp__syms_prefetch(struct sp__syms *s);
void sp__syms_free(struct sp__syms *s);
/*
 * Name addr. A return address (every frame but the innermost) is looked up
 * at addr - 1, inside the call instruction, so that the line is the call's.
 */
void sp__syms_frame(struct sp__syms *s, uint64_t addr, bool is_return, struct sp_starve_frame *f);
/* True for frames of the C library, the dynamic loader, the vDSO and the
 * sanitizer runtimes (their interceptors wrap the libc calls). */
bool sp__syms_is_system(const struct sp_starve_frame *f);

#endif
