/*
 * test_trace_segment.c - the introspection segment (runtime/trace_segment.h):
 * create/open round trip, mode and exclusivity, stale segments of dead
 * processes, the documented error for each kind of damage, a deterministic
 * corruption sweep (no crash, no out-of-bounds read: run it under ASan), and
 * torn-read protection of the task slots.
 *
 * Damaged images are written to /dev/shm/spindle-test.<pid>.img, a name that
 * sp__seg_list does not enumerate. Helper threads and forked children only
 * record; the main thread asserts.
 */
#include "unit/sp_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace_segment.h"

#define GOLD 0x9E3779B97F4A7C15ull

static void own_path(char *buf, size_t n, int pid)
{
	snprintf(buf, n, "/dev/shm/spindle.%d", pid);
}

static void img_path(char *buf, size_t n)
{
	snprintf(buf, n, "/dev/shm/spindle-test.%d.img", (int)getpid());
}

static int file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* A valid segment's bytes, in 64-byte aligned memory (the caller frees). */
static unsigned char *valid_image(size_t *size)
{
	sp__segment seg;
	assert_int_equal(sp__seg_create(&seg, 2, 8, 4), 0);
	int ring = sp__seg_claim_ring(&seg, 77);
	assert_int_equal(ring, 0);
	for (uint32_t i = 1; i <= 11; i++)
		sp__ring_emit(sp__seg_ring(&seg, 0), 5, i, i * GOLD);
	int slot = sp__seg_task_alloc(&seg);
	assert_int_equal(slot, 0);
	sp__seg_task t;
	memset(&t, 0, sizeof t);
	t.id = 42;
	t.polls = 3;
	strcpy(t.name, "img-task");
	strcpy(t.file, "img.c");
	sp__seg_task_write(&seg, 0, &t);

	size_t n = (seg.size + 63) & ~(size_t)63;
	unsigned char *img = aligned_alloc(64, n);
	assert_non_null(img);
	memcpy(img, seg.base, seg.size);
	*size = seg.size;
	sp__seg_destroy(&seg);
	return img;
}

static void write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

static void count_task(unsigned slot, const sp__seg_task *t, void *arg)
{
	(void)slot;
	(void)t;
	(*(size_t *)arg)++;
}

/* Open the image at path; on success exercise every reader entry point. */
static int open_and_walk(const char *path, const char **msg)
{
	sp__seg_reader r;
	int rc = sp__seg_open_file(&r, path);
	*msg = sp__seg_strerror(&r);
	if (rc < 0)
		return rc;
	size_t n = 0, busy = 0;
	sp__seg_read_tasks(&r, count_task, &n, &busy);
	for (unsigned i = 0; i < r.hdr.nrings; i++) {
		sp__ring_event ev[16];
		uint64_t cur = 0, lost = 0;
		(void)sp__seg_reader_ring_owner(&r, i);
		while (sp__seg_reader_ring_read(&r, i, &cur, ev, 16, &lost) > 0 && cur < 1000) {
		}
	}
	(void)sp__seg_ticks_to_ns(&r, 12345);
	(void)sp__seg_is_stale(&r);
	sp__seg_close(&r);
	return 0;
}

/* ---- round trip -------------------------------------------------------------- */

struct tasks_seen {
	size_t n;
	sp__seg_task t[8];
	unsigned slot[8];
};

static void collect_task(unsigned slot, const sp__seg_task *t, void *arg)
{
	struct tasks_seen *s = arg;
	if (s->n < 8) {
		s->t[s->n] = *t;
		s->slot[s->n] = slot;
	}
	s->n++;
}

static void seg__create_open_round_trip(void **state)
{
	(void)state;
	char path[64];
	own_path(path, sizeof path, getpid());
	unlink(path);

	sp__segment seg;
	assert_int_equal(sp__seg_create(&seg, 3, 16, 8), 0);
	assert_string_equal(seg.path, path);
	assert_true(file_exists(path));

	/* ring claim: a bounded set, released rings come back */
	assert_int_equal(sp__seg_claim_ring(&seg, 0), -EINVAL);
	assert_int_equal(sp__seg_claim_ring(&seg, 1234), 0);
	assert_int_equal(sp__seg_claim_ring(&seg, 99), 1);
	assert_int_equal(sp__seg_claim_ring(&seg, 100), 2);
	assert_int_equal(sp__seg_claim_ring(&seg, 101), -ENOSPC);
	sp__seg_release_ring(&seg, 1);
	assert_int_equal(sp__seg_claim_ring(&seg, 555), 1);

	sp__ring *ring = sp__seg_ring(&seg, 0);
	assert_non_null(ring);
	assert_null(sp__seg_ring(&seg, 3));
	for (uint32_t i = 1; i <= 5; i++)
		sp__ring_emit_at(ring, 1000 + i, 9, i, i * GOLD);

	int slot = sp__seg_task_alloc(&seg);
	assert_int_equal(slot, 0);
	sp__seg_task t;
	memset(&t, 0, sizeof t);
	t.id = 17;
	t.parent = 3;
	t.state = 2;
	t.line = 321;
	t.polls = 10;
	t.busy_ns = 20;
	t.wakes = 30;
	t.spawn_ts = 40;
	strcpy(t.name, "a-name-exactly-32-characters-lon"); /* fills the field, no NUL */
	strcpy(t.file, "runtime/some/file.c");
	sp__seg_task_write(&seg, (unsigned)slot, &t);
	int slot2 = sp__seg_task_alloc(&seg);
	assert_int_equal(slot2, 1); /* allocated, never written: id 0, not listed */

	sp__seg_reader r;
	int rc = sp__seg_open(&r, getpid());
	assert_int_equal(rc, 0);
	assert_string_equal(sp__seg_strerror(&r), "");
	assert_memory_equal(r.base, "SPNDLSEG", 8);
	assert_int_equal(r.hdr.abi_major, SP__SEG_ABI_MAJOR);
	assert_int_equal(r.hdr.abi_minor, SP__SEG_ABI_MINOR);
	assert_int_equal(r.hdr.header_size, SP__SEG_HEADER_SIZE);
	assert_int_equal(r.hdr.pid, getpid());
	uint64_t st = 0;
	assert_int_equal(sp__seg_proc_start_time(getpid(), &st), 0);
	assert_int_equal(r.hdr.start_time, st);
	assert_int_equal(r.hdr.clock_tick0, sp__clock.tick0);
	assert_int_equal(r.hdr.clock_ns0, sp__clock.ns0);
	assert_int_equal(r.hdr.clock_mult, sp__clock.mult);
	assert_int_equal(r.hdr.clock_hz, sp__clock.hz);
	assert_true(r.hdr.created_ns > 1600000000ull * 1000000000ull);
	assert_int_equal(r.hdr.nrings, 3);
	assert_int_equal(r.hdr.ring_capacity, 16);
	assert_int_equal(r.hdr.ring_stride, sp__ring_bytes(16));
	assert_int_equal(r.hdr.task_slots, 8);
	assert_int_equal(r.hdr.task_slot_size, SP__SEG_TASK_SLOT_SIZE);
	assert_int_equal(r.hdr.total_size, r.size);
	assert_int_equal(r.hdr.ring_owner_off % 64, 0);
	assert_int_equal(r.hdr.ring_off % 64, 0);
	assert_int_equal(r.hdr.task_off % 64, 0);
	assert_false(sp__seg_is_stale(&r));

	assert_int_equal(sp__seg_reader_ring_owner(&r, 0), 1234);
	assert_int_equal(sp__seg_reader_ring_owner(&r, 1), 555);
	assert_int_equal(sp__seg_reader_ring_owner(&r, 2), 100);
	assert_int_equal(sp__seg_reader_ring_owner(&r, 3), 0);
	assert_null(sp__seg_reader_ring(&r, 3));

	sp__ring_event ev[8];
	uint64_t cur = 0, lost = 0;
	size_t got = sp__seg_reader_ring_read(&r, 0, &cur, ev, 8, &lost);
	assert_int_equal(got, 5);
	assert_int_equal(lost, 0);
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(ev[i].seq, i + 1);
		assert_int_equal(ev[i].ts, 1001 + i);
		assert_int_equal(ev[i].type, 9);
		assert_int_equal(ev[i].a, i + 1);
		assert_int_equal(ev[i].b, (i + 1) * GOLD);
	}
	/* a record emitted after open is seen through the reader's mapping */
	sp__ring_emit_at(ring, 2000, 9, 6, 6 * GOLD);
	assert_int_equal(sp__seg_reader_ring_read(&r, 0, &cur, ev, 8, &lost), 1);
	assert_int_equal(ev[0].seq, 6);
	assert_int_equal(sp__seg_reader_ring_read(&r, 1, &cur, ev, 8, &lost), 0);

	/* ticks convert with the segment's calibration */
	uint64_t ns = sp__seg_ticks_to_ns(&r, sp__clock.tick0 + sp__clock.hz);
	assert_true(ns - sp__clock.ns0 > 999000000ull && ns - sp__clock.ns0 < 1001000000ull);

	struct tasks_seen seen;
	memset(&seen, 0, sizeof seen);
	size_t busy = 99;
	assert_int_equal(sp__seg_read_tasks(&r, collect_task, &seen, &busy), 1);
	assert_int_equal(busy, 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.slot[0], 0);
	assert_int_equal(seen.t[0].id, 17);
	assert_int_equal(seen.t[0].parent, 3);
	assert_int_equal(seen.t[0].state, 2);
	assert_int_equal(seen.t[0].line, 321);
	assert_int_equal(seen.t[0].polls, 10);
	assert_int_equal(seen.t[0].busy_ns, 20);
	assert_int_equal(seen.t[0].wakes, 30);
	assert_int_equal(seen.t[0].spawn_ts, 40);
	assert_string_equal(seen.t[0].name, "a-name-exactly-32-characters-lon");
	assert_string_equal(seen.t[0].file, "runtime/some/file.c");

	sp__seg_task upd = {.state = 4, .polls = 11, .busy_ns = 21, .wakes = 31, .last_ts = 41};
	sp__seg_task_counters(&seg, 0, &upd);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(sp__seg_read_tasks(&r, collect_task, &seen, NULL), 1);
	assert_int_equal(seen.t[0].state, 4);
	assert_int_equal(seen.t[0].polls, 11);
	assert_int_equal(seen.t[0].last_ts, 41);
	assert_int_equal(seen.t[0].spawn_ts, 40); /* not a counter: kept */
	assert_int_equal(seen.t[0].id, 17);

	sp__seg_task_free(&seg, 0);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(sp__seg_read_tasks(&r, collect_task, &seen, NULL), 0);
	assert_int_equal(sp__seg_task_alloc(&seg), 0); /* freed slot is reused */

	sp__seg_close(&r);
	sp__seg_destroy(&seg);
	assert_false(file_exists(path));
	assert_int_equal(sp__seg_open(&r, getpid()), -ENOENT);
	assert_string_equal(sp__seg_strerror(&r), "no such segment");
}

static void seg__no_rings_and_bad_sizes(void **state)
{
	(void)state;
	sp__segment seg;
	assert_int_equal(sp__seg_create(&seg, 1, 12, 4), -EINVAL); /* not a power of two */
	assert_int_equal(sp__seg_create(&seg, 100000, 8, 4), -EINVAL);
	assert_int_equal(sp__seg_create(&seg, 0, 0, 2), 0);
	assert_int_equal(sp__seg_claim_ring(&seg, 5), -ENOSPC);
	sp__seg_reader r;
	assert_int_equal(sp__seg_open(&r, getpid()), 0);
	assert_int_equal(r.hdr.nrings, 0);
	assert_int_equal(sp__seg_reader_ring_read(&r, 0, &(uint64_t){0}, NULL, 0, &(uint64_t){0}),
			 0);
	sp__seg_close(&r);
	sp__seg_destroy(&seg);
}

/* ---- mode and exclusivity ---------------------------------------------------- */

static void seg__mode_is_0600(void **state)
{
	(void)state;
	mode_t old = umask(0);
	sp__segment seg;
	int rc = sp__seg_create(&seg, 1, 8, 1);
	umask(old);
	assert_int_equal(rc, 0);
	struct stat st;
	assert_int_equal(stat(seg.path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_uid, geteuid());

	/* Another user cannot open it. Only root can become another user to
	 * check: as anyone else the mode above is the whole argument. */
	if (geteuid() == 0) {
		pid_t child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(3);
			sp__seg_reader r;
			int orc = sp__seg_open(&r, getppid());
			_exit(orc == -EACCES ? 0 : 1);
		}
		int wst = 0;
		assert_int_equal(waitpid(child, &wst, 0), child);
		assert_true(WIFEXITED(wst));
		assert_int_equal(WEXITSTATUS(wst), 0);
	}
	sp__seg_destroy(&seg);
}

static void seg__exclusive_while_owner_lives(void **state)
{
	(void)state;
	sp__segment seg, seg2;
	assert_int_equal(sp__seg_create(&seg, 1, 8, 1), 0);
	assert_int_equal(sp__seg_create(&seg2, 1, 8, 1), -EEXIST);

	/* a child trying our path (alive, our start time) fails too */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		sp__segment c;
		int rc = sp__seg_create_at(&c, seg.path, 1, 8, 1);
		_exit(rc == -EEXIST ? 0 : 1);
	}
	int ws = 0;
	assert_int_equal(waitpid(child, &ws, 0), child);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);

	/* the first segment is untouched */
	sp__seg_reader r;
	assert_int_equal(sp__seg_open(&r, getpid()), 0);
	sp__seg_close(&r);
	sp__seg_destroy(&seg);
}

/* ---- stale segments ------------------------------------------------------------ */

struct list_seen {
	int want_live, want_stale;
	int live_state, stale_state;
	int live_found, stale_found;
};

static void list_cb(const sp__seg_info *info, void *arg)
{
	struct list_seen *s = arg;
	if (info->pid == s->want_live) {
		s->live_found++;
		s->live_state = (int)info->state;
	}
	if (info->pid == s->want_stale) {
		s->stale_found++;
		s->stale_state = (int)info->state;
	}
}

static void seg__dead_owner_is_stale_and_cleaned(void **state)
{
	(void)state;
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		sp__segment c;
		int rc = sp__seg_create(&c, 2, 8, 2);
		if (rc == 0)
			sp__ring_emit(sp__seg_ring(&c, 0), 1, 2, 3);
		_exit(rc == 0 ? 0 : 1); /* no destroy: the segment stays behind */
	}
	int ws = 0;
	assert_int_equal(waitpid(child, &ws, 0), child);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);

	char cpath[64];
	own_path(cpath, sizeof cpath, child);
	assert_true(file_exists(cpath));

	sp__seg_reader r;
	assert_int_equal(sp__seg_open(&r, child), 0);
	assert_int_equal(r.hdr.pid, child);
	assert_true(sp__seg_is_stale(&r));
	sp__seg_close(&r);

	sp__segment mine;
	assert_int_equal(sp__seg_create(&mine, 1, 8, 1), 0);
	struct list_seen ls;
	memset(&ls, 0, sizeof ls);
	ls.want_live = getpid();
	ls.want_stale = child;
	assert_true(sp__seg_list(list_cb, &ls) >= 2);
	assert_int_equal(ls.live_found, 1);
	assert_int_equal(ls.live_state, SP__SEG_LIVE);
	assert_int_equal(ls.stale_found, 1);
	assert_int_equal(ls.stale_state, SP__SEG_STALE);

	assert_int_equal(sp__seg_remove_stale(getpid()), -EBUSY);
	/* the sweep leaves a fresh stale file (a reader may still look at it),
	 * and takes it once it has been left alone for 30 s */
	sp__seg_sweep_stale();
	assert_true(file_exists(cpath));
	struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
	assert_int_equal(utimensat(AT_FDCWD, cpath, old, 0), 0);
	assert_true(sp__seg_sweep_stale() >= 1);
	assert_false(file_exists(cpath));
	assert_true(file_exists(mine.path));
	assert_int_equal(sp__seg_remove_stale(child), -ENOENT);
	assert_false(file_exists(cpath));
	assert_int_equal(sp__seg_remove_stale(child), -ENOENT);
	sp__seg_destroy(&mine);
}

static void seg__pid_reuse_is_stale_and_replaced(void **state)
{
	(void)state;
	uint64_t st = 0;
	assert_int_equal(sp__seg_proc_start_time(getpid(), &st), 0);
	assert_true(sp__seg_pid_alive(getpid(), st));
	assert_false(sp__seg_pid_alive(getpid(), st + 1));

	/* a leftover at our path from an earlier process with our pid: the
	 * creator recognises it (start time differs) and replaces it */
	size_t n;
	unsigned char *img = valid_image(&n);
	sp__seg_header *h = (sp__seg_header *)img;
	h->start_time = st + 1;
	char path[64];
	own_path(path, sizeof path, getpid());
	write_file(path, img, n);
	sp__seg_reader r;
	assert_int_equal(sp__seg_open(&r, getpid()), 0);
	assert_true(sp__seg_is_stale(&r));
	sp__seg_close(&r);

	sp__segment seg;
	assert_int_equal(sp__seg_create(&seg, 1, 8, 1), 0);
	assert_int_equal(seg.hdr->start_time, st);
	sp__seg_destroy(&seg);

	/* garbage at our own path is replaced too */
	memset(img, 0x5a, n);
	write_file(path, img, n);
	assert_int_equal(sp__seg_create(&seg, 1, 8, 1), 0);
	sp__seg_destroy(&seg);
	free(img);
}

/* ---- damage: each kind gives its documented error -------------------------------- */

static int open_image(const unsigned char *img, size_t n, const char **msg)
{
	char path[64];
	img_path(path, sizeof path);
	write_file(path, img, n);
	int rc = open_and_walk(path, msg);
	unlink(path);
	return rc;
}

static void expect_error(const unsigned char *img, size_t n, int rc, const char *part)
{
	const char *msg = NULL;
	int got = open_image(img, n, &msg);
	if (got != rc || !strstr(msg, part))
		fail_msg("expected %d (\"%s\"), got %d (\"%s\")", rc, part, got, msg);
}

static void seg__damage_gives_the_documented_error(void **state)
{
	(void)state;
	size_t n;
	unsigned char *img = valid_image(&n);
	unsigned char *c = aligned_alloc(64, (n + 63) & ~(size_t)63);
	assert_non_null(c);
	const char *msg;
	sp__seg_reader r0;
#define FRESH() memcpy(c, img, n)
#define H ((sp__seg_header *)c)

	FRESH();
	assert_int_equal(open_image(c, n, &msg), 0);

	FRESH();
	memcpy(c, "NOTSPNDL", 8);
	expect_error(c, n, -EBADMSG, "not a spindle segment");

	FRESH();
	memset(c, 0, 8);
	expect_error(c, n, -EAGAIN, "not initialised");

	FRESH();
	H->abi_major = 3;
	expect_error(c, n, -EPROTONOSUPPORT, "reads 2.x");
	FRESH();
	H->abi_major = 0;
	expect_error(c, n, -EPROTONOSUPPORT, "ABI major");

	FRESH();
	H->abi_minor = 7; /* minor bumps are accepted */
	assert_int_equal(open_image(c, n, &msg), 0);

	/* truncated files */
	FRESH();
	expect_error(c, n - 64, -EMSGSIZE, "truncated");
	expect_error(c, 100, -EMSGSIZE, "truncated");
	expect_error(c, 1, -EMSGSIZE, "truncated");
	expect_error(c, 0, -EAGAIN, "empty");

	/* absurd offsets, sizes and counts */
	FRESH();
	H->task_off = (uint64_t)1 << 63;
	expect_error(c, n, -EINVAL, "task table out of bounds");
	FRESH();
	H->task_off = UINT64_MAX & ~(uint64_t)63; /* off + len overflows */
	expect_error(c, n, -EINVAL, "task table out of bounds");
	FRESH();
	H->task_slots = 0xffffffffu;
	expect_error(c, n, -EINVAL, "bad task slot count");
	FRESH();
	H->task_slots = SP__SEG_MAX_TASK_SLOTS;
	expect_error(c, n, -EINVAL, "task table out of bounds");
	FRESH();
	H->task_slot_size = 8;
	expect_error(c, n, -EINVAL, "bad task slot size");
	FRESH();
	H->task_off += 8;
	expect_error(c, n, -EINVAL, "not 64-byte aligned");
	FRESH();
	H->site_slots = 0xffffffffu;
	expect_error(c, n, -EINVAL, "bad site slot count");
	FRESH();
	H->site_off = (uint64_t)1 << 62;
	expect_error(c, n, -EINVAL, "site table out of bounds");
	FRESH();
	H->site_off = H->task_off;
	expect_error(c, n, -EINVAL, "overlap");
	FRESH();
	H->site_slot_size = 72;
	expect_error(c, n, -EINVAL, "bad site slot size");
	FRESH();
	H->wstat_size = 8;
	expect_error(c, n, -EINVAL, "bad worker-stats slot size");
	FRESH();
	H->wstat_off = H->task_off;
	expect_error(c, n, -EINVAL, "overlap");
	FRESH();
	H->wstat_off = (uint64_t)1 << 62;
	expect_error(c, n, -EINVAL, "worker stats out of bounds");
	FRESH();
	H->wstat_off = 0; /* a 2.0 writer: no worker stats, still valid */
	H->wstat_size = 0;
	assert_int_equal(open_image(c, n, &msg), 0);
	FRESH();
	H->nrings = 0x7fffffffu;
	expect_error(c, n, -EINVAL, "bad ring count");
	FRESH();
	H->nrings = SP__SEG_MAX_RINGS;
	expect_error(c, n, -EINVAL, "out of bounds");
	FRESH();
	H->ring_capacity = 0xffffffffu;
	expect_error(c, n, -EINVAL, "bad ring capacity");
	FRESH();
	H->ring_stride = UINT64_MAX & ~(uint64_t)63;
	expect_error(c, n, -EINVAL, "bad ring stride");
	FRESH();
	H->ring_stride = (uint64_t)1 << 40;
	expect_error(c, n, -EINVAL, "rings out of bounds");
	FRESH();
	H->ring_off = UINT64_MAX & ~(uint64_t)63;
	expect_error(c, n, -EINVAL, "rings out of bounds");
	FRESH();
	H->ring_owner_off = 0; /* inside the header */
	expect_error(c, n, -EINVAL, "ring owner table out of bounds");
	FRESH();
	H->ring_off = H->task_off;
	expect_error(c, n, -EINVAL, "overlap");
	FRESH();
	H->header_size = 0xffffffffu;
	expect_error(c, n, -EINVAL, "bad header_size");
	FRESH();
	H->header_size = 64;
	expect_error(c, n, -EINVAL, "bad header_size");
	FRESH();
	H->total_size = UINT64_MAX;
	expect_error(c, n, -EMSGSIZE, "truncated");
	FRESH();
	H->clock_mult = 0;
	expect_error(c, n, -EINVAL, "clock");
	FRESH();
	H->pid = 0;
	expect_error(c, n, -EINVAL, "pid");

	/* a corrupt ring */
	FRESH();
	c[H->ring_off + H->ring_stride] ^= 0xff; /* ring 1's magic */
	expect_error(c, n, -EINVAL, "corrupt ring");
	FRESH();
	((sp__ring *)(c + H->ring_off))->capacity = 1u << 20; /* larger than its stride */
	expect_error(c, n, -EINVAL, "corrupt ring");

	/* a head of 2^64 - 1 would make sp__ring_read's cursor wrap and spin:
	 * the segment reader refuses it and returns at once */
	FRESH();
	atomic_store(&((sp__ring *)(c + H->ring_off))->head, UINT64_MAX);
	{
		assert_int_equal(sp__seg_attach_mem(&r0, c, n), 0);
		sp__ring_event ev[4];
		uint64_t cur = 0, lost = 0;
		assert_int_equal(sp__seg_reader_ring_read(&r0, 0, &cur, ev, 4, &lost), 0);
		sp__seg_close(&r0);
	}

	/* a pid that does not match the file name */
	FRESH();
	char path[64];
	own_path(path, sizeof path, getpid());
	H->pid = (uint32_t)getpid() + 1;
	write_file(path, c, n);
	sp__seg_reader r;
	assert_int_equal(sp__seg_open(&r, getpid()), -ESRCH);
	assert_non_null(strstr(sp__seg_strerror(&r), "another pid"));
	unlink(path);

	/* not a regular file, and a missing one */
	assert_int_equal(sp__seg_open_file(&r, "/dev/shm"), -EINVAL);
	assert_int_equal(sp__seg_open_file(&r, "/dev/shm/spindle-test.none"), -ENOENT);
	/* unaligned memory */
	assert_int_equal(sp__seg_attach_mem(&r, img + 8, n - 8), -EINVAL);
	/* hostile slot: seq stuck odd is reported busy, not spun on */
	FRESH();
	{
		sp__seg_slot *s = (sp__seg_slot *)(c + H->task_off);
		atomic_store(&s->seq, 1);
		assert_int_equal(sp__seg_attach_mem(&r, c, n), 0);
		size_t cnt = 0, busy = 0;
		assert_int_equal(sp__seg_read_tasks(&r, count_task, &cnt, &busy), 0);
		assert_int_equal(busy, 1);
		sp__seg_close(&r);
	}
#undef H
#undef FRESH
	free(c);
	free(img);
}

/* ---- corruption sweep ------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void seg__corruption_sweep_never_crashes(void **state)
{
	(void)state;
	size_t n;
	unsigned char *img = valid_image(&n);
	unsigned char *c = aligned_alloc(64, (n + 63) & ~(size_t)63);
	assert_non_null(c);
	static const unsigned char vals[] = {0x00, 0xff, 0x80, 0x7f, 0x01, 0x40};
	const sp__seg_header *vh = (const sp__seg_header *)img;
	/* every byte of the header, the owner table and ring 0's header */
	size_t span = vh->ring_off + SP__RING_HEADER_SIZE;
	unsigned ok = 0, errs = 0, bad = 0;

	for (size_t off = 0; off < span; off++) {
		for (size_t v = 0; v < sizeof vals + 1; v++) {
			memcpy(c, img, n);
			c[off] = v < sizeof vals ? vals[v] : (unsigned char)(img[off] ^ 0xff);
			const char *msg;
			int rc = open_image(c, n, &msg);
			if (rc == 0)
				ok++;
			else if (rc < 0 && msg && *msg)
				errs++;
			else
				bad++;
		}
	}
	/* random multi-byte damage anywhere, and random truncation, fixed seed */
	uint64_t seed = 0x5eed5eed12345678ull;
	for (int i = 0; i < 400; i++) {
		memcpy(c, img, n);
		int k = 1 + (int)(xorshift(&seed) % 8);
		for (int j = 0; j < k; j++)
			c[xorshift(&seed) % n] = (unsigned char)xorshift(&seed);
		size_t len = (i % 4 == 0) ? (size_t)(xorshift(&seed) % (n + 1)) : n;
		const char *msg;
		int rc = open_image(c, len, &msg);
		if (rc == 0)
			ok++;
		else if (rc < 0 && msg && *msg)
			errs++;
		else
			bad++;
	}
	/* and the validator over memory directly, header words set to extremes */
	static const uint64_t extremes[] = {
		0, 1, 63, 64, 0x7fffffff, 0xffffffff, (uint64_t)1 << 63, UINT64_MAX};
	for (size_t w = 1; w < SP__SEG_HEADER_SIZE / 8; w++) {
		for (size_t e = 0; e < sizeof extremes / sizeof extremes[0]; e++) {
			memcpy(c, img, n);
			memcpy(c + w * 8, &extremes[e], 8);
			sp__seg_reader r;
			int rc = sp__seg_attach_mem(&r, c, n);
			if (rc == 0) {
				size_t cnt = 0;
				sp__seg_read_tasks(&r, count_task, &cnt, NULL);
				ok++;
			} else if (*sp__seg_strerror(&r)) {
				errs++;
			} else {
				bad++;
			}
			sp__seg_close(&r);
		}
	}
	printf("[ info ] sweep: %u opened, %u clean errors, %u bad\n", ok, errs, bad);
	assert_int_equal(bad, 0);
	assert_true(errs > 0);
	assert_true(ok > 0);
	free(c);
	free(img);
}

/* ---- torn reads ------------------------------------------------------------------- */

struct torn {
	sp__segment *seg;
	unsigned slot;
	atomic_int stop;
	_Atomic uint64_t writes;
};

static void *torn_writer(void *arg)
{
	struct torn *t = arg;
	sp__seg_task task;
	memset(&task, 0, sizeof task);
	for (uint64_t k = 1; !atomic_load_explicit(&t->stop, memory_order_relaxed); k++) {
		if (k % 16 == 0) {
			task.id = k;
			task.parent = k * GOLD;
			task.state = (uint32_t)k;
			task.line = (uint32_t)k;
			task.polls = task.busy_ns = task.wakes = task.spawn_ts = task.last_ts = k;
			snprintf(task.name, sizeof task.name, "t%030llu", (unsigned long long)k);
			snprintf(task.file, sizeof task.file, "f%046llu", (unsigned long long)k);
			sp__seg_task_write(t->seg, t->slot, &task);
		} else {
			task.state = (uint32_t)k;
			task.polls = task.busy_ns = task.wakes = task.last_ts = k;
			sp__seg_task_counters(t->seg, t->slot, &task);
		}
		atomic_store_explicit(&t->writes, k, memory_order_relaxed);
	}
	return NULL;
}

struct torn_check {
	uint64_t copies, torn, last_id;
};

static void torn_cb(unsigned slot, const sp__seg_task *t, void *arg)
{
	struct torn_check *c = arg;
	(void)slot;
	c->copies++;
	char name[40], file[56];
	snprintf(name, sizeof name, "t%030llu", (unsigned long long)t->id);
	snprintf(file, sizeof file, "f%046llu", (unsigned long long)t->id);
	int ok = t->polls == t->busy_ns && t->polls == t->wakes && t->state == (uint32_t)t->polls &&
		 t->polls >= t->id && t->parent == t->id * GOLD && t->line == (uint32_t)t->id &&
		 t->spawn_ts == t->id && t->last_ts == t->polls && strcmp(t->name, name) == 0 &&
		 strcmp(t->file, file) == 0;
	if (!ok)
		c->torn++;
	c->last_id = t->id;
}

static void seg__task_slot_reads_are_never_torn(void **state)
{
	(void)state;
	sp__segment seg;
	assert_int_equal(sp__seg_create(&seg, 0, 0, 2), 0);
	int slot = sp__seg_task_alloc(&seg);
	assert_int_equal(slot, 0);
	sp__seg_task first;
	memset(&first, 0, sizeof first);
	first.id = 16;
	first.parent = 16 * GOLD;
	first.state = first.line = 16;
	first.polls = first.busy_ns = first.wakes = first.spawn_ts = first.last_ts = 16;
	snprintf(first.name, sizeof first.name, "t%030llu", 16ull);
	snprintf(first.file, sizeof first.file, "f%046llu", 16ull);
	sp__seg_task_write(&seg, 0, &first);

	sp__seg_reader r;
	assert_int_equal(sp__seg_open(&r, getpid()), 0);

	struct torn t;
	memset(&t, 0, sizeof t);
	t.seg = &seg;
	t.slot = (unsigned)slot;
	pthread_t th = spt_thread(torn_writer, &t);
	assert_true(SPT_WAIT_UNTIL(atomic_load(&t.writes) > 100, SPT_SOON_MS));

	uint64_t rounds = spt_scaled(200000, 2000);
	struct torn_check chk;
	memset(&chk, 0, sizeof chk);
	uint64_t busy_total = 0;
	for (uint64_t i = 0; i < rounds; i++) {
		size_t busy = 0;
		sp__seg_read_tasks(&r, torn_cb, &chk, &busy);
		busy_total += busy;
	}
	atomic_store(&t.stop, 1);
	pthread_join(th, NULL);
	printf("[ info ] torn-read: %llu copies, %llu busy, %llu writes\n",
	       (unsigned long long)chk.copies, (unsigned long long)busy_total,
	       (unsigned long long)atomic_load(&t.writes));
	assert_int_equal(chk.torn, 0);
	assert_true(chk.copies > 0);
	assert_int_equal(chk.copies + busy_total, rounds);
	sp__seg_close(&r);
	sp__seg_destroy(&seg);
}


/* Sites: one index per key, readable by a reader; task slots: freed ones are
 * reused before the high-water mark grows, and the reader scans below it. */
static void seg__sites_and_slot_reuse(void **state)
{
	(void)state;
	sp__segment seg;
	assert_int_equal(sp__seg_create(&seg, 1, 8, 3), 0);
	static const int k1, k2;
	uint32_t a = sp__seg_site(&seg, &k1, "alpha", "dir/a.c", 11);
	uint32_t b = sp__seg_site(&seg, &k2, "beta-with-a-name-longer-than-32-bytes", "b.c", 22);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(sp__seg_site(&seg, &k1, "ignored", "x", 1), a);
	sp__seg_reader r;
	assert_int_equal(sp__seg_open(&r, getpid()), 0);
	sp__seg_site_info si;
	assert_int_equal(sp__seg_read_site(&r, a, &si), 0);
	assert_string_equal(si.name, "alpha");
	assert_string_equal(si.file, "dir/a.c");
	assert_int_equal(si.line, 11);
	assert_int_equal(sp__seg_read_site(&r, b, &si), 0);
	assert_int_equal(strlen(si.name), SP__SEG_NAME_LEN); /* cut, terminated */
	assert_int_equal(sp__seg_read_site(&r, 2, &si), -1); /* not published */
	assert_int_equal(sp__seg_read_site(&r, 1u << 20, &si), -1);

	int s0 = sp__seg_task_alloc(&seg), s1 = sp__seg_task_alloc(&seg);
	assert_int_equal(s0, 0);
	assert_int_equal(s1, 1);
	assert_int_equal(atomic_load(&seg.hdr->task_hwm), 2);
	sp__seg_task_free(&seg, 0);
	assert_int_equal(sp__seg_task_alloc(&seg), 0); /* reused, hwm unchanged */
	assert_int_equal(atomic_load(&seg.hdr->task_hwm), 2);
	assert_int_equal(sp__seg_task_alloc(&seg), 2);
	assert_int_equal(sp__seg_task_alloc(&seg), -ENOSPC);
	sp__seg_close(&r);
	sp__seg_destroy(&seg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seg__create_open_round_trip),
		cmocka_unit_test(seg__no_rings_and_bad_sizes),
		cmocka_unit_test(seg__mode_is_0600),
		cmocka_unit_test(seg__exclusive_while_owner_lives),
		cmocka_unit_test(seg__dead_owner_is_stale_and_cleaned),
		cmocka_unit_test(seg__pid_reuse_is_stale_and_replaced),
		cmocka_unit_test(seg__damage_gives_the_documented_error),
		cmocka_unit_test(seg__sites_and_slot_reuse),
		cmocka_unit_test(seg__corruption_sweep_never_crashes),
		cmocka_unit_test(seg__task_slot_reads_are_never_torn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
