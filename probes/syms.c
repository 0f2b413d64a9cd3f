/*
 * syms.c - name addresses of a live process with libdw's dwfl.
 *
 * One Dwfl per target, built from /proc/PID/maps when the tracer finds the
 * target. Every module's ELF (and its DWARF, through the standard debuginfo
 * search: the file itself, .gnu_debuglink, /usr/lib/debug) is loaded when
 * the first finding is on its way (sp__syms_prefetch, at a poll's crossing
 * of the threshold), in a thread of its own (load_all): 45-75 ms of CPU that
 * a target with nothing to report never pays, and done while the target
 * still runs, so stacks of a process that exits meanwhile still resolve.
 * Inlined
 * calls are named after the innermost inlined function (the DWARF scope that
 * contains the address), since -O2 inlines the small static functions that
 * are typical culprits.
 */
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syms.h"

struct sp__syms {
	Dwfl *dwfl;
	pthread_t loader; /* loads every module (load_all) */
	pthread_mutex_t mu; /* guards the two below: prefetch and lookups run on
			     * different threads */
	bool started;	    /* the loader was started, or no longer will be */
	bool loading;	    /* loader started and not joined */
};

static char *debuginfo_path;
static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static int load_module(Dwfl_Module *m, void **user, const char *name, Dwarf_Addr start, void *arg)
{
	Dwarf_Addr bias;

	(void)user, (void)name, (void)start, (void)arg;
	dwfl_module_getelf(m, &bias);
	dwfl_module_getdwarf(m, &bias);
	return DWARF_CB_OK;
}

/*
 * The modules' ELF and DWARF (decompressing debug sections: 45-75 ms of CPU
 * for spindle-bench) load in a thread of their own, started when a poll
 * crosses the threshold: the finding it will become is named a grace time
 * later, and the first lookup waits for the rest. (Loaded at attach, even at
 * SCHED_IDLE, that CPU came out of a busy target's run: in one sitting of 9
 * pairs, traced ping_pong and spawn_many_remote_idle ran 4-12% slower with it
 * than without.)
 */
static void *load_all(void *arg)
{
	struct sp__syms *s = arg;
	dwfl_getmodules(s->dwfl, load_module, NULL, 0);
	return NULL;
}

void sp__syms_prefetch(struct sp__syms *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (!s->started) {
		s->started = true;
		s->loading = pthread_create(&s->loader, NULL, load_all, s) == 0;
	}
	pthread_mutex_unlock(&s->mu);
}

/* Before a lookup: the loader, if it runs, has finished; none starts later
 * (without one, dwfl loads each module at its first lookup). */
static void wait_loaded(struct sp__syms *s)
{
	pthread_mutex_lock(&s->mu);
	s->started = true;
	bool join = s->loading;
	s->loading = false;
	pthread_mutex_unlock(&s->mu);
	if (join)
		pthread_join(s->loader, NULL);
}

struct sp__syms *sp__syms_new(int pid)
{
	struct sp__syms *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	s->dwfl = dwfl_begin(&proc_callbacks);
	if (!s->dwfl || dwfl_linux_proc_report(s->dwfl, pid) != 0 ||
	    dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
		sp__syms_free(s);
		return NULL;
	}
	return s;
}

void sp__syms_free(struct sp__syms *s)
{
	if (!s)
		return;
	wait_loaded(s);
	if (s->dwfl)
		dwfl_end(s->dwfl);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static const char *base_name(const char *p)
{
	const char *b = p ? strrchr(p, '/') : NULL;
	return b ? b + 1 : p;
}

/* The innermost inlined function around pc, if any. */
static const char *inlined_name(Dwfl_Module *m, Dwarf_Addr pc)
{
	Dwarf_Addr bias;
	Dwarf_Die *cu = dwfl_module_addrdie(m, pc, &bias);
	Dwarf_Die *scopes = NULL;
	const char *name = NULL;

	if (!cu)
		return NULL;
	int n = dwarf_getscopes(cu, pc - bias, &scopes);
	for (int i = 0; i < n && !name; i++) {
		if (dwarf_tag(&scopes[i]) == DW_TAG_inlined_subroutine)
			name = dwarf_diename(&scopes[i]);
		else if (dwarf_tag(&scopes[i]) == DW_TAG_subprogram)
			break;
	}
	free(scopes);
	return name;
}

void sp__syms_frame(struct sp__syms *s, uint64_t addr, bool is_return, struct sp_starve_frame *f)
{
	Dwarf_Addr pc = is_return && addr ? addr - 1 : addr;
	GElf_Off off = 0;
	GElf_Sym sym;

	memset(f, 0, sizeof(*f));
	f->addr = addr;
	if (!s)
		return;
	wait_loaded(s);
	Dwfl_Module *m = dwfl_addrmodule(s->dwfl, pc);
	if (!m)
		return;
	const char *mod = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	copy(f->module, sizeof(f->module), base_name(mod));
	Dwarf_Addr bias = 0;
	if (dwfl_module_getelf(m, &bias))
		f->module_off = addr - bias;
	const char *fn = dwfl_module_addrinfo(m, pc, &off, &sym, NULL, NULL, NULL);
	const char *in = inlined_name(m, pc);
	copy(f->func, sizeof(f->func), in ? in : fn);
	if (in)
		copy(f->inlined_in, sizeof(f->inlined_in), fn);
	f->func_off = in ? 0 : off + (addr - pc);
	Dwfl_Line *l = dwfl_module_getsrc(m, pc);
	int line = 0;
	const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
	if (file) {
		copy(f->file, sizeof(f->file), base_name(file));
		f->line = line;
	}
}

bool sp__syms_is_system(const struct sp_starve_frame *f)
{
	static const char *const sys[] = {"libc.so", "libc-",	   "ld-linux", "linux-vdso",
					  "[vdso]",  "libpthread", "libm.so",  "libtsan",
					  "libasan", "libubsan",   "liblsan"};

	if (!f->module[0])
		return true; /* unknown mapping: JIT, vDSO without a name */
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if (strstr(f->module, sys[i]))
			return true;
	return false;
}
