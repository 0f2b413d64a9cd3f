/*
 * syms.c - name addresses of a live process with libdw's dwfl.
 *
 * One Dwfl per target, built from /proc/PID/maps when the tracer finds the
 * target. Every module's ELF (and its DWARF, through the standard debuginfo
 * search: the file itself, .gnu_debuglink, /usr/lib/debug) is loaded then, in
 * a background thread at idle priority (load_all), so stacks of a process
 * that has exited meanwhile still resolve. Inlined
 * calls are named after the innermost inlined function (the DWARF scope that
 * contains the address), since -O2 inlines the small static functions that
 * are typical culprits.
 */
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syms.h"

struct sp__syms {
	Dwfl *dwfl;
	pthread_t loader;	/* loads every module (load_all) */
	bool loading;		/* loader started and not joined */
	pthread_mutex_t mu;	/* guards wanted against the loader's demotion */
	bool wanted;		/* a lookup is waiting: load at normal priority */
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
 * The modules' ELF and DWARF (decompressing debug sections: 50-100 ms of CPU
 * for a typical target) load in a thread of their own at SCHED_IDLE, so that
 * attaching to a busy process does not take CPU from it. The first lookup
 * raises the thread back to normal priority and waits for it.
 */
static void *load_all(void *arg)
{
	struct sp__syms *s = arg;
	pthread_mutex_lock(&s->mu);
	if (!s->wanted) {
		struct sched_param p = {0};
		pthread_setschedparam(pthread_self(), SCHED_IDLE, &p);
	}
	pthread_mutex_unlock(&s->mu);
	dwfl_getmodules(s->dwfl, load_module, NULL, 0);
	return NULL;
}

static void wait_loaded(struct sp__syms *s)
{
	if (!s->loading)
		return;
	pthread_mutex_lock(&s->mu);
	s->wanted = true;
	struct sched_param p = {0};
	pthread_setschedparam(s->loader, SCHED_OTHER, &p);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->loader, NULL);
	s->loading = false;
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
	if (pthread_create(&s->loader, NULL, load_all, s) == 0)
		s->loading = true;
	else
		dwfl_getmodules(s->dwfl, load_module, NULL, 0); /* no thread: now */
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
