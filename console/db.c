/*
 * db.c - the recording database: schema, writer with batched transactions,
 * read-only open with validation (db.h; format in db_schema.h).
 *
 * Writer invariants: exactly one transaction is open between open and close
 * (spdb_writer_commit ends it and begins the next), so a crash loses only the
 * open batch. last_key[] holds each time-keyed table's greatest key; a new
 * row's key is max(its time, last + 1), which keeps the B-trees append-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"

enum {
	ST_META,
	ST_SITE,
	ST_TASK,
	ST_TASK_END,
	ST_POLL,
	ST_WAKE,
	ST_WAKER,
	ST_STEAL,
	ST_PARK,
	ST_LOST,
	ST_TIMER,
	ST_IO,
	ST_BLOCKING,
	ST_POLL_N,
	ST_WAKE_N,
	ST__N
};

/* Polls and wakes are buffered and inserted BATCH rows per statement: one
 * statement keeps its cursor on the B-tree's last leaf across the rows, where
 * single-row inserts open a cursor, seek from the root and close it per row. */
#define BATCH 64
#define POLL_COLS 6
#define WAKE_COLS 5

enum { K_POLL, K_WAKE, K_STEAL, K_PARK, K_LOST, K_TIMER, K_IO, K_BLOCKING, K__N };

static const char *const stmt_sql[ST__N] = {
	[ST_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
	[ST_SITE] = "INSERT OR IGNORE INTO sites(id, name, file, line) VALUES(?1, ?2, ?3, ?4)",
	[ST_TASK] = "INSERT OR REPLACE INTO tasks(id, parent, site, spawn, end, state) "
		    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_TASK_END] = "UPDATE tasks SET end = ?2, state = ?3 WHERE id = ?1",
	[ST_POLL] = "INSERT INTO polls(end, task, worker, dur, result, delay) "
		    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_WAKE] = "INSERT INTO wakes(ts, task, flags, source, worker) VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_WAKER] = "INSERT OR REPLACE INTO wakers(task, holder, detail, clones, drops, consumed, "
		     "first, last) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_STEAL] = "INSERT INTO steals(ts, worker, victim, count) VALUES(?1, ?2, ?3, ?4)",
	[ST_PARK] = "INSERT INTO parks(end, worker, dur) VALUES(?1, ?2, ?3)",
	[ST_LOST] = "INSERT INTO lost(ts, ring, count) VALUES(?1, ?2, ?3)",
	[ST_TIMER] = "INSERT INTO timers(ts, worker, count, deadline) VALUES(?1, ?2, ?3, ?4)",
	[ST_IO] = "INSERT INTO io(ts, fd, bits, worker) VALUES(?1, ?2, ?3, ?4)",
	[ST_BLOCKING] = "INSERT INTO blocking(end, job, thread, dur) VALUES(?1, ?2, ?3, ?4)",
	[ST_POLL_N] = NULL, /* built: ST_POLL with BATCH rows */
	[ST_WAKE_N] = NULL,
};

struct rowbuf {
	int64_t v[BATCH * POLL_COLS]; /* SPDB_NULL: NULL */
	int n, cols, one, many;	      /* rows; columns; ST_ of one row, of BATCH */
};

struct spdb_writer {
	sqlite3 *db;
	sqlite3_stmt *st[ST__N];
	int64_t last_key[K__N]; /* greatest key of each time-keyed table */
	int have_key[K__N];
	struct rowbuf polls, wakes;
	char err[256];
};

static int fail(spdb_writer *w, const char *what)
{
	snprintf(w->err, sizeof w->err, "%s: %s", what, sqlite3_errmsg(w->db));
	return -1;
}

static int exec(spdb_writer *w, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(w->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(w->err, sizeof w->err, "%s", msg ? msg : sqlite3_errmsg(w->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* The unique key for a row of table k at time t (db_schema.h TIME KEYS). */
static int64_t next_key(spdb_writer *w, int k, int64_t t)
{
	if (w->have_key[k] && t <= w->last_key[k])
		t = w->last_key[k] + 1;
	w->have_key[k] = 1;
	w->last_key[k] = t;
	return t;
}

static void bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
	if (v == SPDB_NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* Step a fully bound insert and reset it. */
static int run(spdb_writer *w, int s)
{
	int rc = sqlite3_step(w->st[s]);
	sqlite3_reset(w->st[s]);
	if (rc != SQLITE_DONE)
		return fail(w, "insert");
	return 0;
}

/* Insert the buffered rows: whole batches through the BATCH-row statement,
 * the rest one by one. */
static int flush_rows(spdb_writer *w, struct rowbuf *b)
{
	int done = 0;
	if (b->n == BATCH) {
		sqlite3_stmt *st = w->st[b->many];
		for (int i = 0; i < BATCH * b->cols; i++)
			bind_opt(st, i + 1, b->v[i]);
		if (run(w, b->many))
			return -1;
		done = BATCH;
	}
	for (; done < b->n; done++) {
		sqlite3_stmt *st = w->st[b->one];
		for (int i = 0; i < b->cols; i++)
			bind_opt(st, i + 1, b->v[done * b->cols + i]);
		if (run(w, b->one))
			return -1;
	}
	b->n = 0;
	return 0;
}

static int flush_all(spdb_writer *w)
{
	return flush_rows(w, &w->polls) || flush_rows(w, &w->wakes) ? -1 : 0;
}

/* The row slot to fill (flushing a full buffer first), NULL on error. */
static int64_t *row_slot(spdb_writer *w, struct rowbuf *b)
{
	if (b->n == BATCH && flush_rows(w, b))
		return NULL;
	return &b->v[b->n++ * b->cols];
}

/* "INSERT INTO t(cols) VALUES(?,..),(?,..)..." with BATCH rows. */
static char *batch_sql(const char *one)
{
	const char *values = strstr(one, "VALUES");
	size_t head = (size_t)(values - one) + 6;
	int cols = 1;
	for (const char *p = values; *p; p++)
		cols += *p == ',';
	size_t len = head + (size_t)BATCH * ((size_t)cols * 2 + 3) + 1;
	char *sql = malloc(len), *q;
	if (!sql)
		return NULL;
	memcpy(sql, one, head);
	q = sql + head;
	for (int r = 0; r < BATCH; r++) {
		*q++ = r ? ',' : ' ';
		*q++ = '(';
		for (int c = 0; c < cols; c++) {
			if (c)
				*q++ = ',';
			*q++ = '?';
		}
		*q++ = ')';
	}
	*q = 0;
	return sql;
}

static void unlink_db(const char *path)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[4096];
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffix[i]);
		unlink(p);
	}
}

int spdb_writer_open(spdb_writer **out, const char *path, char *err, size_t errlen)
{
	spdb_writer *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	unlink_db(path);
	int rc = sqlite3_open_v2(path, &w->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 w->db ? sqlite3_errmsg(w->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* Pages of 8 KiB (set before the first table): half the B-tree
	 * interior pages and splits of 4 KiB ones for rows that are appended.
	 * WAL + synchronous=NORMAL: a commit is a write to the -wal without an
	 * fsync, durable against a crash of either process (not of the OS). The
	 * auto-checkpoint runs in this (the writer's) thread every 4000 pages. */
	if (exec(w, "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		    "PRAGMA wal_autocheckpoint=4000; PRAGMA cache_size=-32768;"
		    "PRAGMA temp_store=MEMORY;") ||
	    exec(w, "BEGIN;" SPDB_SCHEMA_SQL "COMMIT;")) {
		snprintf(err, errlen, "%s: %s", path, w->err);
		goto fail;
	}
	w->polls = (struct rowbuf){.cols = POLL_COLS, .one = ST_POLL, .many = ST_POLL_N};
	w->wakes = (struct rowbuf){.cols = WAKE_COLS, .one = ST_WAKE, .many = ST_WAKE_N};
	for (int i = 0; i < ST__N; i++) {
		char *built = NULL;
		if (i == ST_POLL_N || i == ST_WAKE_N) {
			built = batch_sql(stmt_sql[i == ST_POLL_N ? ST_POLL : ST_WAKE]);
			if (!built) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
		rc = sqlite3_prepare_v3(w->db, built ? built : stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT, &w->st[i], NULL);
		free(built);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(w->db));
			goto fail;
		}
	}
	if (exec(w, "BEGIN")) {
		snprintf(err, errlen, "%s: %s", path, w->err);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	for (int i = 0; i < ST__N; i++)
		sqlite3_finalize(w->st[i]);
	sqlite3_close(w->db);
	free(w);
	return -1;
}

int spdb_writer_commit(spdb_writer *w)
{
	return flush_all(w) || exec(w, "COMMIT; BEGIN") ? -1 : 0;
}

int spdb_writer_close(spdb_writer *w, int finished)
{
	int ret = flush_all(w) || exec(w, "COMMIT") ? -1 : 0;
	for (int i = 0; i < ST__N; i++)
		sqlite3_finalize(w->st[i]);
	/* Folding the WAL in leaves one self-contained file that read-only
	 * openers can use without creating a -shm beside it. */
	if (!ret && finished)
		ret = exec(w, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;");
	if (sqlite3_close(w->db) != SQLITE_OK && !ret)
		ret = fail(w, "close");
	if (ret)
		fprintf(stderr, "spindle record: database: %s\n", w->err);
	free(w);
	return ret;
}

const char *spdb_writer_err(const spdb_writer *w)
{
	return w->err;
}

sqlite3 *spdb_writer_db(spdb_writer *w)
{
	return w->db;
}

uint64_t spdb_writer_bytes(spdb_writer *w)
{
	sqlite3_stmt *st;
	uint64_t pages = 0, size = 0;
	if (sqlite3_prepare_v2(w->db, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			pages = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(w->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			size = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return pages * size;
}

int spdb_put_meta_int(spdb_writer *w, const char *key, int64_t v)
{
	sqlite3_stmt *st = w->st[ST_META];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	return run(w, ST_META);
}

int spdb_put_meta_text(spdb_writer *w, const char *key, const char *v)
{
	sqlite3_stmt *st = w->st[ST_META];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, -1, SQLITE_TRANSIENT);
	return run(w, ST_META);
}

int spdb_put_site(spdb_writer *w, int64_t id, const char *name, const char *file, int64_t line)
{
	sqlite3_stmt *st = w->st[ST_SITE];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, file, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, line);
	return run(w, ST_SITE);
}

int spdb_put_task(spdb_writer *w, int64_t id, int64_t parent, int64_t site, int64_t spawn,
		  int64_t end, int64_t state)
{
	sqlite3_stmt *st = w->st[ST_TASK];
	sqlite3_bind_int64(st, 1, id);
	bind_opt(st, 2, parent);
	bind_opt(st, 3, site);
	bind_opt(st, 4, spawn);
	bind_opt(st, 5, end);
	bind_opt(st, 6, state);
	return run(w, ST_TASK);
}

int spdb_end_task(spdb_writer *w, int64_t id, int64_t end, int64_t state)
{
	sqlite3_stmt *st = w->st[ST_TASK_END];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, end);
	sqlite3_bind_int64(st, 3, state);
	return run(w, ST_TASK_END);
}

int spdb_put_poll(spdb_writer *w, int64_t start, int64_t end, int64_t task, int64_t worker,
		  int64_t result, int64_t delay)
{
	int64_t *v = row_slot(w, &w->polls);
	if (!v)
		return -1;
	int64_t key = next_key(w, K_POLL, end);
	v[0] = key;
	v[1] = task;
	v[2] = worker;
	v[3] = key - start; /* start = key - dur exactly */
	v[4] = result;
	v[5] = delay;
	return 0;
}

int spdb_put_wake(spdb_writer *w, int64_t ts, int64_t task, int64_t flags, int64_t source,
		  int64_t worker)
{
	int64_t *v = row_slot(w, &w->wakes);
	if (!v)
		return -1;
	v[0] = next_key(w, K_WAKE, ts);
	v[1] = task;
	v[2] = flags;
	v[3] = source;
	v[4] = worker;
	return 0;
}

int64_t spdb_last_wake_key(const spdb_writer *w)
{
	return w->last_key[K_WAKE];
}

int spdb_put_waker(spdb_writer *w, int64_t task, int64_t holder, int64_t detail, int64_t clones,
		   int64_t drops, int64_t consumed, int64_t first, int64_t last)
{
	sqlite3_stmt *st = w->st[ST_WAKER];
	sqlite3_bind_int64(st, 1, task);
	sqlite3_bind_int64(st, 2, holder);
	sqlite3_bind_int64(st, 3, detail);
	sqlite3_bind_int64(st, 4, clones);
	sqlite3_bind_int64(st, 5, drops);
	sqlite3_bind_int64(st, 6, consumed);
	bind_opt(st, 7, first);
	bind_opt(st, 8, last);
	return run(w, ST_WAKER);
}

int spdb_put_steal(spdb_writer *w, int64_t ts, int64_t worker, int64_t victim, int64_t count)
{
	sqlite3_stmt *st = w->st[ST_STEAL];
	sqlite3_bind_int64(st, 1, next_key(w, K_STEAL, ts));
	sqlite3_bind_int64(st, 2, worker);
	sqlite3_bind_int64(st, 3, victim);
	sqlite3_bind_int64(st, 4, count);
	return run(w, ST_STEAL);
}

int spdb_put_park(spdb_writer *w, int64_t start, int64_t end, int64_t worker)
{
	sqlite3_stmt *st = w->st[ST_PARK];
	int64_t key = next_key(w, K_PARK, end);
	sqlite3_bind_int64(st, 1, key);
	sqlite3_bind_int64(st, 2, worker);
	sqlite3_bind_int64(st, 3, key - start);
	return run(w, ST_PARK);
}

int spdb_put_lost(spdb_writer *w, int64_t ts, int64_t ring, int64_t count)
{
	sqlite3_stmt *st = w->st[ST_LOST];
	sqlite3_bind_int64(st, 1, next_key(w, K_LOST, ts));
	sqlite3_bind_int64(st, 2, ring);
	sqlite3_bind_int64(st, 3, count);
	return run(w, ST_LOST);
}

int spdb_put_timer(spdb_writer *w, int64_t ts, int64_t worker, int64_t count, int64_t deadline)
{
	sqlite3_stmt *st = w->st[ST_TIMER];
	sqlite3_bind_int64(st, 1, next_key(w, K_TIMER, ts));
	bind_opt(st, 2, worker);
	sqlite3_bind_int64(st, 3, count);
	sqlite3_bind_int64(st, 4, deadline);
	return run(w, ST_TIMER);
}

int spdb_put_io(spdb_writer *w, int64_t ts, int64_t fd, int64_t bits, int64_t worker)
{
	sqlite3_stmt *st = w->st[ST_IO];
	sqlite3_bind_int64(st, 1, next_key(w, K_IO, ts));
	sqlite3_bind_int64(st, 2, fd);
	sqlite3_bind_int64(st, 3, bits);
	bind_opt(st, 4, worker);
	return run(w, ST_IO);
}

int spdb_put_blocking(spdb_writer *w, int64_t start, int64_t end, int64_t job, int64_t thread)
{
	sqlite3_stmt *st = w->st[ST_BLOCKING];
	int64_t key = next_key(w, K_BLOCKING, end);
	sqlite3_bind_int64(st, 1, key);
	sqlite3_bind_int64(st, 2, job);
	bind_opt(st, 3, thread);
	sqlite3_bind_int64(st, 4, key - start);
	return run(w, ST_BLOCKING);
}

/* ---- reading ---------------------------------------------------------------- */

int spdb_has_table(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	int has = 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
			       -1, &st, NULL))
		return 0;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	has = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return has;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The SQLite header: magic, and the page count against the file's size. */
static int check_header(const char *path, char *err, size_t errlen)
{
	unsigned char h[100];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat sb;
	ssize_t n = fstat(fd, &sb) ? -1 : read(fd, h, sizeof h);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (n < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16)) {
		snprintf(err, errlen, "%s: not a spindle recording (not an SQLite database)", path);
		return -1;
	}
	uint32_t psize = (uint32_t)h[16] << 8 | h[17];
	if (psize == 1)
		psize = 65536;
	/* The in-header page count is valid when the change counter (24) equals
	 * version-valid-for (92). */
	if (be32(h + 24) == be32(h + 92)) {
		uint64_t want = (uint64_t)be32(h + 28) * psize;
		if ((uint64_t)sb.st_size < want) {
			snprintf(err, errlen,
				 "%s: truncated or corrupt recording (%lld of %llu bytes)", path,
				 (long long)sb.st_size, (unsigned long long)want);
			return -1;
		}
	}
	return 0;
}

int spdb_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "unreadable recording: %s", sqlite3_errmsg(db));
		*st = NULL;
		return -1;
	}
	return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (spdb_prepare(db, sql, &st, err, errlen))
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		snprintf(err, errlen, "unreadable recording: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int spdb_open_ro(sqlite3 **out, const char *path, char *err, size_t errlen)
{
	char msg[256];
	sqlite3 *db = NULL;
	int64_t appid = 0, abi = 0;
	if (check_header(path, err, errlen))
		return -1;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (pragma_int(db, "PRAGMA application_id", &appid, msg, sizeof msg)) {
		snprintf(err, errlen, "%s: %s", path, msg);
		goto fail;
	}
	if (appid != SPDB_APPLICATION_ID) {
		snprintf(err, errlen,
			 "%s: not a spindle recording (an SQLite database of another "
			 "application)",
			 path);
		goto fail;
	}
	if (spdb_meta_int(db, "abi", &abi) || abi < 1) {
		snprintf(err, errlen, "%s: corrupt spindle recording (no database ABI in meta)",
			 path);
		goto fail;
	}
	if (abi > SPDB_ABI) {
		snprintf(err, errlen,
			 "%s: recorded by a newer spindle (database ABI %lld; this one reads up to "
			 "%d)",
			 path, (long long)abi, SPDB_ABI);
		goto fail;
	}
	/* Readers scan the event tables in key order: map the file instead of
	 * copying every page through read(), and keep the B-tree interior pages
	 * of the primary-key lookups cached. */
	sqlite3_exec(db, "PRAGMA mmap_size=2147418112; PRAGMA cache_size=-16384;", NULL, NULL,
		     NULL);
	*out = db;
	return 0;
fail:
	sqlite3_close(db);
	return -1;
}

int spdb_meta_int(sqlite3 *db, const char *key, int64_t *out)
{
	sqlite3_stmt *st;
	int ret = -1;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL))
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
		*out = sqlite3_column_int64(st, 0);
		ret = 0;
	}
	sqlite3_finalize(st);
	return ret;
}

int spdb_meta_text(sqlite3 *db, const char *key, char *buf, size_t n)
{
	sqlite3_stmt *st;
	int ret = -1;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL))
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT) {
		snprintf(buf, n, "%s", (const char *)sqlite3_column_text(st, 0));
		ret = 0;
	}
	sqlite3_finalize(st);
	return ret;
}
