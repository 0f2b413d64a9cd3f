/*
 * target.c - locate the slot registry in a running process.
 *
 * The registry is an exported data symbol, so it is looked up by name in the
 * ELF symbol tables (.symtab, then .dynsym) of the files the process maps:
 * the executable first, then any libspindle*.so. Its run-time address is the
 * symbol's value plus the module's load bias, which is the start of the
 * module's mapping at file offset 0 minus the first PT_LOAD's (vaddr -
 * offset). Memory is read with process_vm_readv, which needs the same ptrace
 * access as /proc/PID/mem (same uid, or CAP_SYS_PTRACE).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "target.h"

int sp__target_read(int pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

int sp__registry_check(const struct sp__registry *r, char *why, size_t whylen)
{
	if (r->magic != SP__REGISTRY_MAGIC) {
		snprintf(why, whylen, "the registry's magic is wrong (memory corrupted?)");
		return -EPROTO;
	}
	if (r->version != SP__REGISTRY_VERSION || r->slot_size < 40 || r->max_slots == 0 ||
	    r->max_slots > 4096) {
		snprintf(why, whylen,
			 "unsupported registry layout (version %u, slot size %u, %u slots); this "
			 "tracer reads version %d",
			 r->version, r->slot_size, r->max_slots, SP__REGISTRY_VERSION);
		return -EPROTO;
	}
	if (r->clock_kind != 1 && r->clock_kind != 2) {
		snprintf(why, whylen, "unknown registry clock kind %u", r->clock_kind);
		return -EPROTO;
	}
	return 0;
}

/* Symbol value of name in elf, searching .symtab then .dynsym. *stripped is
 * set when the file has no .symtab. */
static bool elf_lookup(Elf *elf, const char *name, uint64_t *value, bool *stripped)
{
	Elf_Scn *scn = NULL;
	bool found = false;

	*stripped = true;
	for (int pass = 0; pass < 2 && !found; pass++) {
		Elf64_Word want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
		while ((scn = elf_nextscn(elf, scn)) != NULL && !found) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != want || !sh.sh_entsize)
				continue;
			if (want == SHT_SYMTAB)
				*stripped = false;
			Elf_Data *d = elf_getdata(scn, NULL);
			size_t n = sh.sh_size / sh.sh_entsize;
			for (size_t i = 0; d && i < n; i++) {
				GElf_Sym sym;
				if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
					continue;
				const char *s = elf_strptr(elf, sh.sh_link, sym.st_name);
				if (s && !strcmp(s, name)) {
					*value = sym.st_value;
					found = true;
					break;
				}
			}
		}
		scn = NULL;
	}
	return found;
}

/*
 * Without a symbol table (a stripped binary) the registry is still in the
 * initialised data: scan the writable PROGBITS sections for its magic and
 * version-1 header. Eight aligned magic bytes followed by the expected
 * version and slot size do not occur by chance.
 */
static bool elf_scan_magic(Elf *elf, uint64_t *value)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    (sh.sh_flags & (SHF_ALLOC | SHF_WRITE)) != (SHF_ALLOC | SHF_WRITE))
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		const uint8_t *b = d->d_buf;
		for (size_t off = 0; off + sizeof(struct sp__registry) <= d->d_size; off += 8) {
			struct sp__registry r;
			memcpy(&r, b + off, sizeof(r));
			if (r.magic == SP__REGISTRY_MAGIC && r.version == SP__REGISTRY_VERSION &&
			    r.slot_size == 64) {
				*value = sh.sh_addr + off;
				return true;
			}
		}
	}
	return false;
}

/* vaddr - offset of the first PT_LOAD: what the offset-0 mapping maps. */
static bool first_load(Elf *elf, uint64_t *base)
{
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
			*base = (ph.p_vaddr - ph.p_offset) & ~(uint64_t)0xfff;
			return true;
		}
	}
	return false;
}

/* Look for the symbol in one mapped file; 1 found, 0 not there. */
static int try_module(int pid, const char *path, uint64_t map_start, uint64_t *addr, bool *stripped)
{
	char proc_path[4096 + 64];
	uint64_t value = 0, base = 0;
	int found = 0;

	/* Through /proc/PID/root so that a target in another mount namespace works. */
	snprintf(proc_path, sizeof(proc_path), "/proc/%d/root%s", pid, path);
	int fd = open(proc_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	bool have = elf && elf_lookup(elf, SP__REGISTRY_SYMBOL, &value, stripped);
	if (elf && !have && *stripped)
		have = elf_scan_magic(elf, &value);
	if (have && first_load(elf, &base)) {
		*addr = map_start - base + value;
		found = 1;
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return found;
}

int sp__target_find_registry(int pid, uint64_t *addr, bool *stripped_exe, char *why, size_t whylen)
{
	char path[64], line[4096 + 256], exe[4096];
	bool exe_stripped = false, seen_exe = false;
	int found = 0;

	elf_version(EV_CURRENT);
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0) {
		int e = errno;
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	exe[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		int pos = 0;
		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &start, &end, &off, &pos) < 3 ||
		    !pos || off != 0 || line[pos] != '/')
			continue;
		char *file = line + pos;
		file[strcspn(file, "\n")] = '\0';
		bool is_exe = !strcmp(file, exe);
		const char *b = strrchr(file, '/');
		if (is_exe && seen_exe)
			continue;
		if (!is_exe && strncmp(b + 1, "libspindle", 10))
			continue;
		bool stripped = false;
		found = try_module(pid, file, start, addr, &stripped);
		if (is_exe) {
			seen_exe = true;
			exe_stripped = stripped;
		}
	}
	fclose(f);
	*stripped_exe = exe_stripped;
	if (found)
		return 0;
	snprintf(why, whylen,
		 "process %d (%s) is not a spindle process: no %s in it or in a libspindle "
		 "library%s",
		 pid, exe, SP__REGISTRY_SYMBOL,
		 exe_stripped ? " (it is stripped; its data has no registry either)" : "");
	return -ENOENT;
}
