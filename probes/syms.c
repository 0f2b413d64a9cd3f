/*
 * syms.c - name addresses of a live process with libdw's dwfl.
 *
 * One Dwfl per target, built from /proc/PID/maps when the tracer finds the
 * target. The modules load in a thread of their own, started as soon as the
 * tracer is attached (sp__syms_prefetch), so the first finding is named
 * without waiting and stacks of a process that exits meanwhile still
 * resolve. System modules (the C library, the dynamic loader, the vDSO, the
 * sanitizer runtimes) are named from their symbol tables alone: their
 * frames are never the culprit, and libc's DWARF from libc6-dbg (compressed)
 * took 72 ms of the 111 ms that loading everything took for examples/blocking,
 * the vDSO's fruitless debuginfo search 29 ms more; now the whole load takes
 * about 1 ms there. A user module gets its DWARF too: file:line, and inlined
 * calls named after the innermost inlined function (the DWARF scope that
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

/* Named frames, by address: an on-CPU finding names each of its sampled
 * stacks to pick the commonest culprit, and those stacks share most return
 * addresses (16-18 ms to name one such finding of examples/blocking
 * without it, 2-3 ms for a blocked one). Direct-mapped; lookups take mu. */
#define FRAME_CACHE 256

struct frame_memo {
	uint64_t key; /* addr << 1 | is_return; 0: empty */
	struct sp_starve_frame f;
};

struct sp__syms {
	Dwfl *dwfl;
	struct frame_memo memo[FRAME_CACHE];
	pthread_t loader; /* loads every module (load_all) */
	pthread_mutex_t mu; /* guards the two below: prefetch and lookups run on
			     * different threads */
	bool started;	    /* the loader was started, or no longer will be */
	bool loading;	    /* loader started and not joined */
};

static const char *base_name(const char *p)
{
	const char *b = p ? strrchr(p, '/') : NULL;
	return b ? b + 1 : p;
}

/* A module of the C library, the loader, the vDSO or a sanitizer runtime
 * (their interceptors wrap the libc calls), by its file's base name. */
static bool system_module(const char *base)
{
	static const char *const sys[] = {"libc.so", "libc-",	   "ld-linux", "linux-vdso",
					  "[vdso",   "libpthread", "libm.so",  "libtsan",
					  "libasan", "libubsan",   "liblsan"};

	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if (strstr(base, sys[i]))
			return true;
	return false;
}

/* The standard search, except for modules with no file ("[vdso: N]"): it
 * can only fail there, and took 13-29 ms doing so. */
static int find_debuginfo(Dwfl_Module *m, void **user, const char *name, Dwarf_Addr base,
			  const char *file, const char *debuglink, GElf_Word crc, char **path)
{
	if (name && name[0] == '[')
		return -1;
	return dwfl_standard_find_debuginfo(m, user, name, base, file, debuglink, crc, path);
}

static char *debuginfo_path;
static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

/* Is m a system module (named from its symbol table only)? */
static bool module_is_system(Dwfl_Module *m)
{
	const char *name = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	return !name || system_module(base_name(name));
}

static int load_module(Dwfl_Module *m, void **user, const char *name, Dwarf_Addr start, void *arg)
{
	Dwarf_Addr bias;

	(void)user, (void)name, (void)start, (void)arg;
	dwfl_module_getelf(m, &bias);
	if (module_is_system(m))
		dwfl_module_getsymtab(m); /* libc's full table comes from its debug file */
	else
		dwfl_module_getdwarf(m, &bias);
	return DWARF_CB_OK;
}

/* Every module's ELF and symbols, and the user modules' DWARF, in a thread
 * of its own: the first lookup waits for the rest. */
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

static void name_frame(struct sp__syms *s, uint64_t addr, bool is_return,
		       struct sp_starve_frame *f)
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
	if (module_is_system(m)) {
		/* the symbol table only (see the top of this file) */
		copy(f->func, sizeof(f->func), fn);
		f->func_off = off + (addr - pc);
		return;
	}
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

void sp__syms_frame(struct sp__syms *s, uint64_t addr, bool is_return, struct sp_starve_frame *f)
{
	uint64_t key = addr << 1 | (is_return ? 1 : 0);
	struct frame_memo *m;

	if (!s || !addr) {
		name_frame(s, addr, is_return, f);
		return;
	}
	m = &s->memo[(key ^ key >> 17) % FRAME_CACHE];
	pthread_mutex_lock(&s->mu);
	bool hit = m->key == key;
	if (hit)
		*f = m->f;
	pthread_mutex_unlock(&s->mu);
	if (hit)
		return;
	name_frame(s, addr, is_return, f);
	pthread_mutex_lock(&s->mu);
	m->key = key;
	m->f = *f;
	pthread_mutex_unlock(&s->mu);
}

bool sp__syms_is_system(const struct sp_starve_frame *f)
{
	/* an unknown mapping (JIT, a vDSO without a name) is not the culprit either */
	return !f->module[0] || system_module(f->module);
}
