/*
 * trace_segment.c - the introspection segment: creation by the owning
 * process, validation and reading by consumers, discovery of live and stale
 * segments. trace_segment.h has the file format and the protocols.
 */
#include "trace_segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint32_t sp__seg_site_slots = SP__SEG_SITE_SLOTS;

/* A reader retries a slot this many times before reporting it busy. */
#define SEG_SLOT_RETRIES 256
#define SEG_ALIGN 64u

static uint64_t align64(uint64_t x)
{
	return (x + SEG_ALIGN - 1) & ~(uint64_t)(SEG_ALIGN - 1);
}

/* ---- /proc ------------------------------------------------------------------ */

int sp__seg_proc_start_time(int pid, uint64_t *out)
{
	char path[64], buf[1024];

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int e = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -e : -EIO;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses: start after the last
	 * ')'; the next field is 3 (state), so field 22 is the 20th token. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
		if (!*p)
			return -EIO;
	}
	while (*p == ' ')
		p++;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (end == p || errno)
		return -EIO;
	*out = v;
	return 0;
}

int sp__seg_pid_alive(int pid, uint64_t start_time)
{
	if (pid <= 0)
		return 0;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 0;
	if (start_time == 0)
		return 1;
	uint64_t st;
	if (sp__seg_proc_start_time(pid, &st) != 0)
		return 0; /* exited between the two checks (or no /proc) */
	return st == start_time;
}

/* ---- writer ------------------------------------------------------------------ */

static sp__seg_slot *seg_slot(sp__segment *seg, unsigned i)
{
	return (sp__seg_slot *)((char *)seg->base + seg->hdr->task_off +
				(size_t)i * seg->hdr->task_slot_size);
}

static _Atomic uint32_t *seg_owner(sp__segment *seg, unsigned i)
{
	return (_Atomic uint32_t *)((char *)seg->base + seg->hdr->ring_owner_off) + i;
}

sp__ring *sp__seg_ring(sp__segment *seg, unsigned idx)
{
	if (idx >= seg->hdr->nrings)
		return NULL;
	return (sp__ring *)((char *)seg->base + seg->hdr->ring_off +
			    (size_t)idx * seg->hdr->ring_stride);
}

/* What an existing file at our path is: 1 stale (remove it), 0 live. */
static int existing_is_stale(const char *path)
{
	sp__seg_reader r;
	int rc = sp__seg_open_file(&r, path);

	if (rc == -ENOENT)
		return 1; /* gone meanwhile: just retry */
	if (rc == -EAGAIN)
		return 0; /* another creator (a thread of ours) is filling it in */
	if (rc < 0)
		return 1; /* garbage at the path of our own pid */
	int stale = sp__seg_is_stale(&r);
	sp__seg_close(&r);
	return stale;
}

int sp__seg_create_at(sp__segment *out, const char *path, unsigned nrings, uint32_t ring_capacity,
		      uint32_t task_slots)
{
	size_t ring_bytes = 0;

	memset(out, 0, sizeof *out);
	if (nrings > SP__SEG_MAX_RINGS || task_slots > SP__SEG_MAX_TASK_SLOTS ||
	    strlen(path) >= sizeof out->path)
		return -EINVAL;
	if (nrings) {
		ring_bytes = sp__ring_bytes(ring_capacity);
		if (!ring_bytes)
			return -EINVAL;
	} else {
		ring_capacity = 0;
	}
	uint64_t start_time = 0;
	int rc = sp__seg_proc_start_time(getpid(), &start_time);
	if (rc < 0)
		return rc;
	sp__clock_init();

	/* Layout; the bounds above keep every product far below 2^63. */
	uint64_t owner_off = SP__SEG_HEADER_SIZE;
	uint64_t stride = align64(ring_bytes);
	uint64_t ring_off = align64(owner_off + (uint64_t)nrings * 4);
	uint64_t task_off = ring_off + (uint64_t)nrings * stride;
	uint64_t site_off = task_off + (uint64_t)task_slots * SP__SEG_TASK_SLOT_SIZE;
	uint32_t site_slots = sp__seg_site_slots;
	if (site_slots == 0 || site_slots > SP__SEG_MAX_SITE_SLOTS || (site_slots & (site_slots - 1)))
		return -EINVAL;
	uint64_t wstat_off = site_off + (uint64_t)site_slots * SP__SEG_SITE_SLOT_SIZE;
	uint64_t total = wstat_off + (uint64_t)nrings * SP__SEG_WSTAT_SIZE;

	/* Writer-side tables in our own memory: the task slot free list and
	 * the site hash (twice the site slots, a power of two). */
	out->task_next = calloc(task_slots ? task_slots : 1, sizeof *out->task_next);
	out->site_mask = 2 * site_slots - 1;
	out->site_keys = calloc((size_t)out->site_mask + 1, sizeof *out->site_keys);
	if (!out->task_next || !out->site_keys) {
		free(out->task_next);
		free(out->site_keys);
		memset(out, 0, sizeof *out);
		return -ENOMEM;
	}

	int fd = -1;
	for (int tries = 0; tries < 4; tries++) {
		fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
		if (!existing_is_stale(path)) {
			rc = -EEXIST;
			goto fail_tables;
		}
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = -errno;
			goto fail_tables;
		}
	}
	if (fd < 0) {
		rc = errno == EEXIST ? -EEXIST : -errno;
		goto fail_tables;
	}
	/* The umask may have taken bits off; the mode is part of the contract. */
	if (fchmod(fd, 0600) != 0 || ftruncate(fd, (off_t)total) != 0) {
		rc = -errno;
		goto fail;
	}
	void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	close(fd);

	/* The file is zero-filled by ftruncate; readers see magic == 0 until
	 * the release store at the end. */
	sp__seg_header *h = base;
	h->abi_major = SP__SEG_ABI_MAJOR;
	h->abi_minor = SP__SEG_ABI_MINOR;
	h->header_size = SP__SEG_HEADER_SIZE;
	h->pid = (uint32_t)getpid();
	h->start_time = start_time;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	h->clock_tick0 = sp__clock.tick0;
	h->clock_ns0 = sp__clock.ns0;
	h->clock_mult = sp__clock.mult;
	h->clock_hz = sp__clock.hz;
	h->nrings = nrings;
	h->ring_capacity = ring_capacity;
	h->ring_owner_off = owner_off;
	h->ring_off = ring_off;
	h->ring_stride = stride;
	h->task_off = task_off;
	h->task_slot_size = SP__SEG_TASK_SLOT_SIZE;
	h->task_slots = task_slots;
	h->total_size = total;
	h->site_off = site_off;
	h->site_slot_size = SP__SEG_SITE_SLOT_SIZE;
	h->site_slots = site_slots;
	h->wstat_size = nrings ? SP__SEG_WSTAT_SIZE : 0;
	h->wstat_off = nrings ? wstat_off : 0;

	out->base = base;
	out->size = total;
	out->hdr = h;
	strcpy(out->path, path);
	for (unsigned i = 0; i < nrings; i++) {
		/* ftruncate made the file zero: format the headers only */
		sp__ring *ring = sp__ring_init_zeroed((char *)base + ring_off + (size_t)i * stride,
						      stride, ring_capacity);
		SP__ASSERT(ring, "segment ring layout");
	}
	/* ordering: release: a reader that loads the magic (acquire) sees the
	 * header and the formatted rings above. */
	atomic_store_explicit(&h->magic, SP__SEG_MAGIC, memory_order_release);
	return 0;

fail:
	close(fd);
	unlink(path);
fail_tables:
	free(out->task_next);
	free(out->site_keys);
	memset(out, 0, sizeof *out);
	return rc;
}

int sp__seg_create(sp__segment *out, unsigned nrings, uint32_t ring_capacity, uint32_t task_slots)
{
	char path[64];

	snprintf(path, sizeof path, SP__SEG_DIR "/" SP__SEG_PREFIX "%d", (int)getpid());
	return sp__seg_create_at(out, path, nrings, ring_capacity, task_slots);
}

void sp__seg_destroy(sp__segment *seg)
{
	if (!seg->base)
		return;
	munmap(seg->base, seg->size);
	unlink(seg->path);
	free(seg->task_next);
	free(seg->site_keys);
	memset(seg, 0, sizeof *seg);
}

int sp__seg_claim_ring(sp__segment *seg, uint32_t tid)
{
	if (tid == 0)
		return -EINVAL;
	for (unsigned i = 0; i < seg->hdr->nrings; i++) {
		uint32_t expect = 0;
		/* ordering: acq_rel: acquire pairs with the previous owner's
		 * release, so its records precede ours; relaxed on failure. */
		if (atomic_compare_exchange_strong_explicit(seg_owner(seg, i), &expect, tid,
							    memory_order_acq_rel,
							    memory_order_relaxed))
			return (int)i;
	}
	return -ENOSPC;
}

void sp__seg_release_ring(sp__segment *seg, unsigned idx)
{
	if (idx >= seg->hdr->nrings)
		return;
	/* ordering: release: our last records happen before the next owner's
	 * claim (acquire). */
	atomic_store_explicit(seg_owner(seg, idx), 0, memory_order_release);
}

/*
 * Task slot allocation: a Treiber stack of free slot indices in this
 * process's memory. The head packs a tag that every pop and push increments
 * with the index + 1 (0: empty), so a pop whose head was popped and pushed
 * back meanwhile (ABA) fails its CAS. Links are atomics because a stale
 * popper may read a link while its slot's new holder rewrites it.
 * Invariant: a slot index is on the list, or held by exactly one writer, or
 * at or above task_hwm.
 */
int sp__seg_task_alloc(sp__segment *seg)
{
	/* ordering: acquire pairs with the release CAS in task_free, so the
	 * link we read (and the freed slot's last writes) are visible. */
	uint64_t h = atomic_load_explicit(&seg->task_free, memory_order_acquire);
	while ((uint32_t)h) {
		uint32_t idx = (uint32_t)h - 1;
		/* ordering: relaxed; a stale link only makes the CAS fail. */
		uint32_t next = atomic_load_explicit(&seg->task_next[idx], memory_order_relaxed);
		uint64_t nh = ((h >> 32) + 1) << 32 | next;
		if (atomic_compare_exchange_weak_explicit(&seg->task_free, &h, nh,
							  memory_order_acquire,
							  memory_order_acquire)) {
			atomic_store_explicit(&seg_slot(seg, idx)->claim, 1, memory_order_relaxed);
			return (int)idx;
		}
	}
	/* ordering: relaxed: the counter hands out each index once; readers
	 * load it to bound their scan and validate every slot anyway. */
	uint32_t i = atomic_load_explicit(&seg->hdr->task_hwm, memory_order_relaxed);
	while (i < seg->hdr->task_slots) {
		if (atomic_compare_exchange_weak_explicit(&seg->hdr->task_hwm, &i, i + 1,
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			atomic_store_explicit(&seg_slot(seg, i)->claim, 1, memory_order_relaxed);
			return (int)i;
		}
	}
	return -ENOSPC;
}

uint32_t sp__seg_site(sp__segment *seg, const void *key, const char *name, const char *file,
		      uint32_t line)
{
	uintptr_t k = (uintptr_t)key;
	uint32_t pos = (uint32_t)((k >> 4) * 0x9e3779b97f4a7c15ull >> 40) & seg->site_mask;

	for (uint32_t probe = 0; probe <= seg->site_mask; probe++) {
		sp__seg_site_key *e = &seg->site_keys[(pos + probe) & seg->site_mask];
		/* ordering: relaxed; idx1 (acquire) carries the publication. */
		const void *cur = atomic_load_explicit(&e->key, memory_order_relaxed);
		if (cur == NULL) {
			if (!atomic_compare_exchange_strong_explicit(&e->key, &cur, key,
								     memory_order_relaxed,
								     memory_order_relaxed) &&
			    cur != key)
				continue; /* another site took this entry */
			if (cur == NULL) {
				/* We registered it: take a slot, fill it, publish. */
				uint32_t idx = atomic_fetch_add_explicit(&seg->site_next, 1,
									 memory_order_relaxed);
				if (idx >= seg->hdr->site_slots) {
					atomic_store_explicit(&e->idx1, SP__SEG_SITE_NONE,
							      memory_order_release);
					return SP__SEG_SITE_NONE;
				}
				sp__seg_site_slot *ss =
					(sp__seg_site_slot *)((char *)seg->base + seg->hdr->site_off +
							      (size_t)idx * seg->hdr->site_slot_size);
				ss->line = line;
				if (name)
					memcpy(ss->name, name, strnlen(name, sizeof ss->name));
				if (file) {
					/* keep the tail of a long path: it names the file */
					size_t n = strlen(file);
					const char *f = n > sizeof ss->file ? file + n - sizeof ss->file
									   : file;
					memcpy(ss->file, f, strnlen(f, sizeof ss->file));
				}
				/* ordering: release: readers (acquire) see the fields. */
				atomic_store_explicit(&ss->ready, 1, memory_order_release);
				atomic_store_explicit(&e->idx1, idx + 1, memory_order_release);
				return idx;
			}
		}
		if (cur != key)
			continue;
		/* Found: wait (boundedly) for the registering thread to publish. */
		for (int spin = 0; spin < 1000; spin++) {
			/* ordering: acquire pairs with the registrar's release. */
			uint32_t v = atomic_load_explicit(&e->idx1, memory_order_acquire);
			if (v == SP__SEG_SITE_NONE)
				return SP__SEG_SITE_NONE;
			if (v)
				return v - 1;
			sp__cpu_relax();
		}
		return SP__SEG_SITE_NONE;
	}
	return SP__SEG_SITE_NONE;
}

/* Slot protocol step 1; returns s + 2 for step 3. */
static uint64_t slot_begin(sp__seg_slot *s)
{
	/* ordering: relaxed: only the holder writes seq. */
	uint64_t v = atomic_load_explicit(&s->seq, memory_order_relaxed);
	/* ordering: relaxed: the odd mark; the release payload stores that
	 * follow order it before themselves (see SLOT PROTOCOL). */
	atomic_store_explicit(&s->seq, v + 1, memory_order_relaxed);
	return v + 2;
}

static void slot_end(sp__seg_slot *s, uint64_t v)
{
	/* ordering: release: a reader that loads seq == v (acquire) sees the
	 * payload. */
	atomic_store_explicit(&s->seq, v, memory_order_release);
}

static void store_text(_Atomic uint64_t *dst, size_t words, const char *src)
{
	char buf[SP__SEG_FILE_LEN];
	size_t n = src ? strnlen(src, words * 8) : 0;

	memset(buf, 0, sizeof buf);
	memcpy(buf, src, n);
	for (size_t i = 0; i < words; i++) {
		uint64_t w;
		memcpy(&w, buf + i * 8, 8);
		/* ordering: release, as every payload store (SLOT PROTOCOL). */
		atomic_store_explicit(&dst[i], w, memory_order_release);
	}
}

/* Every field but the text and the id (SLOT PROTOCOL step 2). */
static void store_fields(sp__seg_slot *s, const sp__seg_task *t)
{
	/* ordering: release on every payload store (SLOT PROTOCOL step 2). */
	atomic_store_explicit(&s->parent, t->parent, memory_order_release);
	atomic_store_explicit(&s->state, t->state, memory_order_release);
	atomic_store_explicit(&s->line, t->line, memory_order_release);
	atomic_store_explicit(&s->polls, t->polls, memory_order_release);
	atomic_store_explicit(&s->busy_ns, t->busy_ns, memory_order_release);
	atomic_store_explicit(&s->wakes, t->wakes, memory_order_release);
	atomic_store_explicit(&s->spawn_ts, t->spawn_ts, memory_order_release);
	atomic_store_explicit(&s->site, t->site, memory_order_release);
	atomic_store_explicit(&s->self_wakes, t->self_wakes, memory_order_release);
	atomic_store_explicit(&s->waker_clones, t->waker_clones, memory_order_release);
	atomic_store_explicit(&s->waker_drops, t->waker_drops, memory_order_release);
	atomic_store_explicit(&s->last_ts, t->last_ts, memory_order_release);
}

void sp__seg_task_write(sp__segment *seg, unsigned slot, const sp__seg_task *t)
{
	if (slot >= seg->hdr->task_slots)
		return;
	sp__seg_slot *s = seg_slot(seg, slot);
	uint64_t v = slot_begin(s);
	store_fields(s, t);
	store_text(s->name, SP__SEG_NAME_LEN / 8, t->name);
	store_text(s->file, SP__SEG_FILE_LEN / 8, t->file);
	/* ordering: release, id last (SLOT PROTOCOL step 2). */
	atomic_store_explicit(&s->id, t->id, memory_order_release);
	slot_end(s, v);
}

void sp__seg_task_spawn(sp__segment *seg, unsigned slot, const sp__seg_task *t)
{
	if (slot >= seg->hdr->task_slots)
		return;
	sp__seg_slot *s = seg_slot(seg, slot);
	uint64_t v = slot_begin(s);
	store_fields(s, t);
	/* ordering: release (SLOT PROTOCOL step 2); the text is the site's. */
	atomic_store_explicit(&s->name[0], 0, memory_order_release);
	atomic_store_explicit(&s->file[0], 0, memory_order_release);
	atomic_store_explicit(&s->id, t->id, memory_order_release);
	slot_end(s, v);
}

void sp__seg_task_counters(sp__segment *seg, unsigned slot, const sp__seg_task *t)
{
	if (slot >= seg->hdr->task_slots)
		return;
	sp__seg_slot *s = seg_slot(seg, slot);
	uint64_t v = slot_begin(s);
	/* ordering: release on every payload store (SLOT PROTOCOL step 2). */
	atomic_store_explicit(&s->state, t->state, memory_order_release);
	atomic_store_explicit(&s->polls, t->polls, memory_order_release);
	atomic_store_explicit(&s->busy_ns, t->busy_ns, memory_order_release);
	atomic_store_explicit(&s->wakes, t->wakes, memory_order_release);
	atomic_store_explicit(&s->self_wakes, t->self_wakes, memory_order_release);
	atomic_store_explicit(&s->waker_clones, t->waker_clones, memory_order_release);
	atomic_store_explicit(&s->waker_drops, t->waker_drops, memory_order_release);
	atomic_store_explicit(&s->last_ts, t->last_ts, memory_order_release);
	slot_end(s, v);
}

void sp__seg_task_clear(sp__segment *seg, unsigned slot)
{
	if (slot >= seg->hdr->task_slots)
		return;
	sp__seg_slot *s = seg_slot(seg, slot);
	uint64_t v = slot_begin(s);
	/* ordering: release (SLOT PROTOCOL step 2). */
	atomic_store_explicit(&s->id, 0, memory_order_release);
	slot_end(s, v);
}

void sp__seg_task_release(sp__segment *seg, unsigned slot)
{
	if (slot >= seg->hdr->task_slots)
		return;
	atomic_store_explicit(&seg_slot(seg, slot)->claim, 0, memory_order_relaxed);
	/* Push on the free list. ordering: release: the slot's writes (and
	 * the link) happen before a popper's acquire. */
	uint64_t h = atomic_load_explicit(&seg->task_free, memory_order_relaxed);
	do {
		atomic_store_explicit(&seg->task_next[slot], (uint32_t)h, memory_order_relaxed);
	} while (!atomic_compare_exchange_weak_explicit(&seg->task_free, &h,
							((h >> 32) + 1) << 32 | (slot + 1),
							memory_order_release,
							memory_order_relaxed));
}

void sp__seg_task_free(sp__segment *seg, unsigned slot)
{
	sp__seg_task_clear(seg, slot);
	sp__seg_task_release(seg, slot);
}

/* ---- reader: validation ------------------------------------------------------ */

static const char ERR_NONE[] = "";

static int fail(sp__seg_reader *r, int rc, const char *msg)
{
	r->err = msg;
	return rc;
}

/* [off, off + count * stride) inside [lo, total): 0 and *end set, else -1. */
static int region(uint64_t off, uint64_t count, uint64_t stride, uint64_t lo, uint64_t total,
		  uint64_t *end)
{
	uint64_t len, e;

	if (__builtin_mul_overflow(count, stride, &len) || __builtin_add_overflow(off, len, &e))
		return -1;
	if (off < lo || e > total)
		return -1;
	*end = e;
	return 0;
}

static int overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1;
}

int sp__seg_attach_mem(sp__seg_reader *r, const void *mem, size_t size)
{
	memset(r, 0, sizeof *r);
	r->err = ERR_NONE;
	if (!mem || ((uintptr_t)mem & (SEG_ALIGN - 1)))
		return fail(r, -EINVAL, "segment memory is not 64-byte aligned");
	if (size < SP__SEG_HEADER_SIZE)
		return fail(r, -EMSGSIZE, "truncated segment: smaller than its header");

	const sp__seg_header *h = mem;
	/* ordering: acquire pairs with the creator's release store of magic:
	 * the header and rings it wrote before are visible below. */
	uint64_t magic = atomic_load_explicit(&((sp__seg_header *)h)->magic, memory_order_acquire);
	if (magic == 0)
		return fail(r, -EAGAIN, "segment not initialised yet (magic is 0)");
	if (magic != SP__SEG_MAGIC)
		return fail(r, -EBADMSG, "not a spindle segment (bad magic)");
	/* From here on only our copy is used: the file can change under us. */
	memcpy((char *)&r->hdr + sizeof r->hdr.magic, (const char *)h + sizeof h->magic,
	       sizeof r->hdr - sizeof r->hdr.magic);
	atomic_init(&r->hdr.magic, SP__SEG_MAGIC);
	sp__seg_header *c = &r->hdr;
	r->found_major = c->abi_major;
	r->found_minor = c->abi_minor;
	if (c->abi_major != SP__SEG_ABI_MAJOR)
		return fail(r, -EPROTONOSUPPORT,
			    "unsupported segment ABI major version (this reader reads 2.x)");
	if (c->total_size > size)
		return fail(r, -EMSGSIZE, "truncated segment: file smaller than its total_size");
	uint64_t total = c->total_size;
	if (c->header_size < SP__SEG_HEADER_SIZE || c->header_size > total)
		return fail(r, -EINVAL, "bad header_size");
	if (c->pid == 0 || c->pid > INT32_MAX)
		return fail(r, -EINVAL, "bad pid in segment header");
	if (c->clock_mult == 0 || c->clock_hz == 0)
		return fail(r, -EINVAL, "bad clock calibration (mult or hz is 0)");
	if (c->nrings > SP__SEG_MAX_RINGS)
		return fail(r, -EINVAL, "bad ring count");
	if (c->task_slots > SP__SEG_MAX_TASK_SLOTS)
		return fail(r, -EINVAL, "bad task slot count");
	if (c->task_slot_size < SP__SEG_TASK_SLOT_SIZE || c->task_slot_size % SEG_ALIGN)
		return fail(r, -EINVAL, "bad task slot size");
	if (c->task_off % SEG_ALIGN)
		return fail(r, -EINVAL, "task table not 64-byte aligned");
	uint64_t task_end;
	if (region(c->task_off, c->task_slots, c->task_slot_size, c->header_size, total, &task_end))
		return fail(r, -EINVAL, "task table out of bounds");

	if (c->site_slots > SP__SEG_MAX_SITE_SLOTS)
		return fail(r, -EINVAL, "bad site slot count");
	if (c->site_slot_size < SP__SEG_SITE_SLOT_SIZE || c->site_slot_size % SEG_ALIGN ||
	    c->site_off % SEG_ALIGN)
		return fail(r, -EINVAL, "bad site slot size or alignment");
	uint64_t site_end;
	if (region(c->site_off, c->site_slots, c->site_slot_size, c->header_size, total,
		   &site_end))
		return fail(r, -EINVAL, "site table out of bounds");
	if (overlap(c->site_off, site_end, c->task_off, task_end))
		return fail(r, -EINVAL, "segment regions overlap");

	uint64_t wstat_end = 0;
	if (c->wstat_off || c->wstat_size) {
		if (c->wstat_size < SP__SEG_WSTAT_SIZE || c->wstat_size % SEG_ALIGN ||
		    c->wstat_off % SEG_ALIGN)
			return fail(r, -EINVAL, "bad worker-stats slot size or alignment");
		if (region(c->wstat_off, c->nrings, c->wstat_size, c->header_size, total,
			   &wstat_end))
			return fail(r, -EINVAL, "worker stats out of bounds");
		if (overlap(c->wstat_off, wstat_end, c->task_off, task_end) ||
		    overlap(c->wstat_off, wstat_end, c->site_off, site_end))
			return fail(r, -EINVAL, "segment regions overlap");
	}

	uint64_t own_end = 0, ring_end = 0;
	if (c->nrings) {
		size_t rb = sp__ring_bytes(c->ring_capacity);
		if (rb == 0)
			return fail(r, -EINVAL, "bad ring capacity");
		if (c->ring_stride < rb || c->ring_stride % SEG_ALIGN ||
		    c->ring_stride > ((uint64_t)1 << 40))
			return fail(r, -EINVAL, "bad ring stride");
		if (c->ring_off % SEG_ALIGN || c->ring_owner_off % 4)
			return fail(r, -EINVAL, "rings or owner table misaligned");
		if (region(c->ring_owner_off, c->nrings, 4, c->header_size, total, &own_end))
			return fail(r, -EINVAL, "ring owner table out of bounds");
		if (region(c->ring_off, c->nrings, c->ring_stride, c->header_size, total,
			   &ring_end))
			return fail(r, -EINVAL, "rings out of bounds");
		if (overlap(c->ring_owner_off, own_end, c->ring_off, ring_end) ||
		    overlap(c->ring_owner_off, own_end, c->task_off, task_end) ||
		    overlap(c->ring_off, ring_end, c->task_off, task_end) ||
		    overlap(c->ring_owner_off, own_end, c->site_off, site_end) ||
		    overlap(c->ring_off, ring_end, c->site_off, site_end) ||
		    (wstat_end && (overlap(c->ring_owner_off, own_end, c->wstat_off, wstat_end) ||
				   overlap(c->ring_off, ring_end, c->wstat_off, wstat_end))))
			return fail(r, -EINVAL, "segment regions overlap");
		r->rings = calloc(c->nrings, sizeof *r->rings);
		if (!r->rings)
			return fail(r, -ENOMEM, "out of memory");
		for (unsigned i = 0; i < c->nrings; i++) {
			void *m = (char *)mem + c->ring_off + (size_t)i * c->ring_stride;
			sp__ring *ring = sp__ring_attach(m, c->ring_stride);
			if (!ring || ring->capacity != c->ring_capacity) {
				free(r->rings);
				r->rings = NULL;
				return fail(r, -EINVAL, "corrupt ring header");
			}
			r->rings[i] = ring;
		}
	}
	r->base = mem;
	r->size = size;
	return 0;
}

int sp__seg_open_file(sp__seg_reader *r, const char *path)
{
	struct stat st;

	memset(r, 0, sizeof *r);
	r->err = ERR_NONE;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;
		return fail(r, -e, e == ENOENT ? "no such segment" : "cannot open segment");
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(r, -EINVAL, "segment is not a regular file");
	}
	if ((uint64_t)st.st_size < SP__SEG_HEADER_SIZE) {
		close(fd);
		if (st.st_size == 0)
			return fail(r, -EAGAIN, "segment not initialised yet (empty file)");
		return fail(r, -EMSGSIZE, "truncated segment: smaller than its header");
	}
	size_t size = (size_t)st.st_size;
	void *base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (base == MAP_FAILED)
		return fail(r, -e, "cannot map segment");
	int rc = sp__seg_attach_mem(r, base, size);
	if (rc < 0) {
		munmap(base, size);
		r->base = NULL;
		return rc;
	}
	r->mapped = 1;
	snprintf(r->path, sizeof r->path, "%s", path);
	return 0;
}

int sp__seg_table_request(sp__seg_reader *r, int timeout_ms)
{
	if (r->found_minor < 3)
		return 0;
	if (!r->path[0])
		return -ENOTSUP;
	if (!r->ctl) {
		/* The header alone, writable: the rest stays read-only. */
		int fd = open(r->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -errno;
		void *p = mmap(NULL, SP__SEG_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		int e = errno;
		close(fd);
		if (p == MAP_FAILED)
			return -e;
		r->ctl = p;
	}
	/* ordering: relaxed: the writer's futex wait and its acquire load of
	 * table_req see the increment; what we need ordered is its table
	 * writes before its ack (release), read below with acquire. */
	uint32_t want = atomic_fetch_add_explicit(&r->ctl->table_req, 1, memory_order_relaxed) + 1;
	syscall(SYS_futex, &r->ctl->table_req, FUTEX_WAKE, 1, NULL, NULL, 0);
	for (long waited_us = 0;; waited_us += 250) {
		/* ordering: acquire pairs with the writer's release of the ack:
		 * the slots it wrote for this request are visible after. */
		uint32_t ack = atomic_load_explicit(&r->ctl->table_ack, memory_order_acquire);
		if ((int32_t)(ack - want) >= 0)
			return 0;
		if (waited_us >= (long)timeout_ms * 1000)
			return -ETIMEDOUT;
		usleep(250);
	}
}

int sp__seg_open(sp__seg_reader *r, int pid)
{
	char path[64];

	snprintf(path, sizeof path, SP__SEG_DIR "/" SP__SEG_PREFIX "%d", pid);
	int rc = sp__seg_open_file(r, path);
	if (rc == 0 && r->hdr.pid != (uint32_t)pid) {
		sp__seg_close(r);
		return fail(r, -ESRCH, "segment header names another pid than its file name");
	}
	return rc;
}

void sp__seg_close(sp__seg_reader *r)
{
	if (r->mapped && r->base)
		munmap((void *)r->base, r->size);
	if (r->ctl)
		munmap(r->ctl, SP__SEG_HEADER_SIZE);
	free(r->rings);
	const char *err = r->err;
	memset(r, 0, sizeof *r);
	r->err = err ? err : ERR_NONE;
}

const char *sp__seg_strerror(const sp__seg_reader *r)
{
	return r->err ? r->err : ERR_NONE;
}

int sp__seg_is_stale(const sp__seg_reader *r)
{
	return !sp__seg_pid_alive((int)r->hdr.pid, r->hdr.start_time);
}

/* ---- reader: contents ---------------------------------------------------------- */

sp__ring *sp__seg_reader_ring(const sp__seg_reader *r, unsigned i)
{
	if (!r->base || i >= r->hdr.nrings)
		return NULL;
	return r->rings[i];
}

uint32_t sp__seg_reader_ring_owner(const sp__seg_reader *r, unsigned i)
{
	if (!r->base || i >= r->hdr.nrings)
		return 0;
	const _Atomic uint32_t *o =
		(const _Atomic uint32_t *)((const char *)r->base + r->hdr.ring_owner_off) + i;
	/* ordering: acquire pairs with the claim; informational only. */
	return atomic_load_explicit((_Atomic uint32_t *)o, memory_order_acquire);
}

size_t sp__seg_reader_ring_read(const sp__seg_reader *r, unsigned i, uint64_t *cursor,
				sp__ring_event *out, size_t max, uint64_t *lost)
{
	sp__ring *ring = sp__seg_reader_ring(r, i);

	/* The writer never rewrites a ring header; this only narrows what a
	 * hostile one could do between attach and read. */
	if (!ring || ring->capacity != r->hdr.ring_capacity)
		return 0;
	/* sp__ring_read steps its cursor up to head + 1, which wraps to 0 when
	 * head is 2^64 - 1 and then loops for ever: no producer gets there
	 * (5,800 years at 1e8 events/s), so such a head is corruption. */
	if (sp__ring_head(ring) == UINT64_MAX || (*cursor && *cursor == UINT64_MAX))
		return 0;
	return sp__ring_read(ring, cursor, out, max, lost);
}

static void load_text(char *dst, const _Atomic uint64_t *src, size_t words)
{
	for (size_t i = 0; i < words; i++) {
		/* ordering: acquire, as every payload load (SLOT PROTOCOL). */
		uint64_t w =
			atomic_load_explicit((_Atomic uint64_t *)&src[i], memory_order_acquire);
		memcpy(dst + i * 8, &w, 8);
	}
	dst[words * 8] = '\0';
}

/* One consistent copy of slot s into t: 1, or 0 if none within the bound. */
static int slot_copy(const sp__seg_slot *cs, sp__seg_task *t)
{
	sp__seg_slot *s = (sp__seg_slot *)cs; /* atomics want non-const; never stored to */

	for (int tries = 0; tries < SEG_SLOT_RETRIES; tries++) {
		/* ordering: acquire pairs with the writer's release of seq. */
		uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (s1 & 1) {
			sp__cpu_relax();
			continue;
		}
		/* ordering: acquire on every payload load: one that sees a
		 * later write's store makes that write's odd mark visible to
		 * the s2 load (SLOT PROTOCOL). */
		t->id = atomic_load_explicit(&s->id, memory_order_acquire);
		t->parent = atomic_load_explicit(&s->parent, memory_order_acquire);
		t->state = atomic_load_explicit(&s->state, memory_order_acquire);
		t->line = atomic_load_explicit(&s->line, memory_order_acquire);
		t->polls = atomic_load_explicit(&s->polls, memory_order_acquire);
		t->busy_ns = atomic_load_explicit(&s->busy_ns, memory_order_acquire);
		t->wakes = atomic_load_explicit(&s->wakes, memory_order_acquire);
		t->spawn_ts = atomic_load_explicit(&s->spawn_ts, memory_order_acquire);
		t->site = atomic_load_explicit(&s->site, memory_order_acquire);
		t->self_wakes = atomic_load_explicit(&s->self_wakes, memory_order_acquire);
		t->waker_clones = atomic_load_explicit(&s->waker_clones, memory_order_acquire);
		t->waker_drops = atomic_load_explicit(&s->waker_drops, memory_order_acquire);
		t->last_ts = atomic_load_explicit(&s->last_ts, memory_order_acquire);
		load_text(t->name, s->name, SP__SEG_NAME_LEN / 8);
		load_text(t->file, s->file, SP__SEG_FILE_LEN / 8);
		/* ordering: relaxed: the acquire loads above order it. */
		uint64_t s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
		if (s1 == s2)
			return 1;
		sp__cpu_relax();
	}
	return 0;
}

size_t sp__seg_read_tasks(const sp__seg_reader *r,
			  void (*cb)(unsigned slot, const sp__seg_task *t, void *arg), void *arg,
			  size_t *busy)
{
	size_t got = 0, skipped = 0;

	if (busy)
		*busy = 0;
	if (!r->base)
		return 0;
	/* ordering: relaxed; the scan bound only (each slot is validated by
	 * its own protocol). */
	uint32_t hwm = atomic_load_explicit(&((sp__seg_header *)r->base)->task_hwm,
					    memory_order_relaxed);
	if (hwm > r->hdr.task_slots)
		hwm = r->hdr.task_slots;
	for (unsigned i = 0; i < hwm; i++) {
		const sp__seg_slot *s =
			(const sp__seg_slot *)((const char *)r->base + r->hdr.task_off +
					       (size_t)i * r->hdr.task_slot_size);
		sp__seg_task t;
		if (!slot_copy(s, &t)) {
			skipped++;
			continue;
		}
		if (t.id == 0)
			continue;
		sp__seg_site_info si;
		if (t.name[0] == 0 && t.file[0] == 0 && t.site != SP__SEG_SITE_NONE &&
		    sp__seg_read_site(r, t.site, &si) == 0) {
			memcpy(t.name, si.name, sizeof t.name);
			/* the slot's file field is narrower: keep the tail */
			size_t n = strlen(si.file);
			const char *f = n > SP__SEG_FILE_LEN ? si.file + n - SP__SEG_FILE_LEN : si.file;
			memcpy(t.file, f, strlen(f) + 1);
			t.line = si.line;
		}
		got++;
		cb(i, &t, arg);
	}
	if (busy)
		*busy = skipped;
	/* A scan touches the whole used table (24 MiB at 131072 slots): give
	 * our mapping's pages back, so a reader's RSS does not carry the
	 * table between scans (the file's pages stay, they are the writer's). */
	if (r->mapped && hwm) {
		uintptr_t lo = (uintptr_t)r->base + r->hdr.task_off;
		uintptr_t hi = lo + (uintptr_t)hwm * r->hdr.task_slot_size;
		long pg = sysconf(_SC_PAGESIZE);
		lo = (lo + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
		hi &= ~((uintptr_t)pg - 1);
		if (hi > lo)
			madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	return got;
}

uint64_t sp__seg_ticks_to_ns(const sp__seg_reader *r, uint64_t ticks)
{
	uint64_t dt = ticks - r->hdr.clock_tick0;
	return r->hdr.clock_ns0 + (uint64_t)(((unsigned __int128)dt * r->hdr.clock_mult) >> 32);
}

/* ---- discovery ------------------------------------------------------------------ */

/* The pid of a name "spindle.<digits>", or -1. */
static int name_pid(const char *name)
{
	size_t plen = sizeof SP__SEG_PREFIX - 1;
	if (strncmp(name, SP__SEG_PREFIX, plen) != 0)
		return -1;
	const char *p = name + plen;
	if (!*p || *p == '0')
		return -1;
	long v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
		if (v > INT32_MAX)
			return -1;
	}
	return (int)v;
}

int sp__seg_list(void (*cb)(const sp__seg_info *info, void *arg), void *arg)
{
	DIR *d = opendir(SP__SEG_DIR);
	int n = 0;

	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int pid = name_pid(de->d_name);
		if (pid < 0)
			continue;
		char path[sizeof SP__SEG_DIR + sizeof de->d_name];
		snprintf(path, sizeof path, SP__SEG_DIR "/%s", de->d_name);
		sp__seg_reader r;
		sp__seg_info info;
		memset(&info, 0, sizeof info);
		info.pid = pid;
		info.path = path;
		info.err = sp__seg_open(&r, pid);
		info.errstr = sp__seg_strerror(&r);
		if (info.err == 0) {
			info.hdr = &r.hdr;
			info.state = sp__seg_is_stale(&r) ? SP__SEG_STALE : SP__SEG_LIVE;
		} else {
			info.state = sp__seg_pid_alive(pid, 0) ? SP__SEG_INVALID : SP__SEG_STALE;
		}
		cb(&info, arg);
		if (info.err == 0)
			sp__seg_close(&r);
		n++;
	}
	closedir(d);
	return n;
}

int sp__seg_remove_stale(int pid)
{
	char path[64];
	sp__seg_reader r;
	int stale;

	snprintf(path, sizeof path, SP__SEG_DIR "/" SP__SEG_PREFIX "%d", pid);
	int rc = sp__seg_open(&r, pid);
	if (rc == -ENOENT)
		return -ENOENT;
	if (rc == 0) {
		stale = sp__seg_is_stale(&r);
		sp__seg_close(&r);
	} else {
		stale = !sp__seg_pid_alive(pid, 0);
	}
	if (!stale)
		return -EBUSY;
	if (unlink(path) != 0)
		return -errno;
	return 0;
}

int sp__seg_sweep_stale(void)
{
	DIR *d = opendir(SP__SEG_DIR);
	if (!d)
		return 0;
	int removed = 0;
	size_t plen = strlen(SP__SEG_PREFIX);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, SP__SEG_PREFIX, plen) != 0)
			continue;
		char *end;
		long pid = strtol(e->d_name + plen, &end, 10);
		if (*end || pid <= 0 || pid > INT32_MAX || pid == (long)getpid())
			continue;
		/* only the cheap case: the process is gone (kill(pid, 0)); and
		 * not a file changed in the last 30 s, which a reader may still
		 * be looking at (a recorder finishing, a test checking it) */
		if (sp__seg_pid_alive((int)pid, 0))
			continue;
		char path[64];
		struct stat st;
		snprintf(path, sizeof path, SP__SEG_DIR "/" SP__SEG_PREFIX "%ld", pid);
		if (stat(path, &st) != 0 || time(NULL) - st.st_mtime < 30)
			continue;
		removed += sp__seg_remove_stale((int)pid) == 0;
	}
	closedir(d);
	return removed;
}

int sp__seg_read_site(const sp__seg_reader *r, uint32_t idx, sp__seg_site_info *out)
{
	if (!r->base || idx >= r->hdr.site_slots)
		return -1;
	sp__seg_site_slot *ss = (sp__seg_site_slot *)((const char *)r->base + r->hdr.site_off +
						      (size_t)idx * r->hdr.site_slot_size);
	/* ordering: acquire pairs with the writer's release of ready. */
	if (atomic_load_explicit(&ss->ready, memory_order_acquire) != 1)
		return -1;
	out->line = ss->line;
	memcpy(out->name, ss->name, SP__SEG_NAME_LEN);
	out->name[SP__SEG_NAME_LEN] = 0;
	memcpy(out->file, ss->file, SP__SEG_SITE_FILE_LEN);
	out->file[SP__SEG_SITE_FILE_LEN] = 0;
	return 0;
}

void sp__seg_wstat_write(sp__segment *seg, unsigned idx, uint64_t ts, uint32_t worker,
			 uint32_t depth, uint32_t inject)
{
	if (!seg->hdr->wstat_off || idx >= seg->hdr->nrings)
		return;
	sp__seg_wstat *w = (sp__seg_wstat *)((char *)seg->base + seg->hdr->wstat_off +
					     (size_t)idx * seg->hdr->wstat_size);
	/* ordering: relaxed; independent values for display, each whole. */
	atomic_store_explicit(&w->worker, worker, memory_order_relaxed);
	atomic_store_explicit(&w->depth, depth, memory_order_relaxed);
	atomic_store_explicit(&w->inject, inject, memory_order_relaxed);
	atomic_store_explicit(&w->ts, ts, memory_order_relaxed);
}

int sp__seg_read_wstat(const sp__seg_reader *r, unsigned i, sp__seg_wstat_info *out)
{
	if (!r->base || !r->hdr.wstat_off || i >= r->hdr.nrings)
		return -1;
	sp__seg_wstat *w = (sp__seg_wstat *)((const char *)r->base + r->hdr.wstat_off +
					     (size_t)i * r->hdr.wstat_size);
	/* ordering: relaxed, as written. */
	out->ts = atomic_load_explicit(&w->ts, memory_order_relaxed);
	if (!out->ts)
		return -1;
	out->worker = atomic_load_explicit(&w->worker, memory_order_relaxed);
	out->depth = atomic_load_explicit(&w->depth, memory_order_relaxed);
	out->inject = atomic_load_explicit(&w->inject, memory_order_relaxed);
	return 0;
}
