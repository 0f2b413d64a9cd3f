/*
 * db.h - spindle recordings in SQLite (format: db_schema.h).
 *
 * Two halves. The WRITER (the recorder, the synthetic generator) creates a
 * database, appends rows through prepared statements inside one open
 * transaction (polls and wakes are buffered and inserted 64 rows per
 * statement; the buffers are flushed by commit and close) and commits when
 * told; it keeps each event table's time keys
 * unique and increasing (db_schema.h TIME KEYS). The READER helpers (report,
 * export, top --replay) open a recording read-only and validate it: a file
 * that is not a spindle recording, a truncated or corrupt one, or one of a
 * newer ABI gives one line of error.
 *
 * Not thread-safe: one thread uses one writer.
 */
#ifndef SPINDLE_CONSOLE_DB_H
#define SPINDLE_CONSOLE_DB_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "db_schema.h"

#define SPDB_NULL INT64_MIN /* a NULL column in the put functions */

typedef struct spdb_writer spdb_writer;

/* Create path (an existing file and its -wal/-shm are replaced), write the
 * schema, switch to WAL and open the first transaction. 0, or -1 with a
 * message in err. */
int spdb_writer_open(spdb_writer **out, const char *path, char *err, size_t errlen);
/* Commit the open transaction and open the next. 0 or -1 (err as above). */
int spdb_writer_commit(spdb_writer *w);
/* Commit, then (finished) checkpoint and leave WAL mode; close. 0 or -1. */
int spdb_writer_close(spdb_writer *w, int finished);
const char *spdb_writer_err(const spdb_writer *w);
sqlite3 *spdb_writer_db(spdb_writer *w);
/* Pages of the database and its WAL, in bytes (what the file will be). */
uint64_t spdb_writer_bytes(spdb_writer *w);

/* Row appends; times in recording ns. Each returns 0 or -1 (err set). The
 * time-keyed tables adjust a duplicate or late key (db_schema.h). */
int spdb_put_meta_int(spdb_writer *w, const char *key, int64_t v);
int spdb_put_meta_text(spdb_writer *w, const char *key, const char *v);
int spdb_put_site(spdb_writer *w, int64_t id, const char *name, const char *file, int64_t line);
int spdb_put_task(spdb_writer *w, int64_t id, int64_t parent, int64_t site, int64_t spawn,
		  int64_t end, int64_t state);
int spdb_end_task(spdb_writer *w, int64_t id, int64_t end, int64_t state);
int spdb_put_poll(spdb_writer *w, int64_t start, int64_t end, int64_t task, int64_t worker,
		  int64_t result, int64_t delay);
int spdb_put_wake(spdb_writer *w, int64_t ts, int64_t task, int64_t flags, int64_t source,
		  int64_t worker);
int spdb_put_waker(spdb_writer *w, int64_t task, int64_t holder, int64_t detail, int64_t clones,
		   int64_t drops, int64_t consumed, int64_t first, int64_t last);
int spdb_put_steal(spdb_writer *w, int64_t ts, int64_t worker, int64_t victim, int64_t count);
int spdb_put_park(spdb_writer *w, int64_t start, int64_t end, int64_t worker);
int spdb_put_lost(spdb_writer *w, int64_t ts, int64_t ring, int64_t count);
int spdb_put_timer(spdb_writer *w, int64_t ts, int64_t worker, int64_t count, int64_t deadline);
int spdb_put_io(spdb_writer *w, int64_t ts, int64_t fd, int64_t bits, int64_t worker);
int spdb_put_blocking(spdb_writer *w, int64_t start, int64_t end, int64_t job, int64_t thread);
/* 1 when the recording has table name (tables added within an ABI). */
int spdb_has_table(sqlite3 *db, const char *name);
/* The key the last spdb_put_wake got (its stored ts). */
int64_t spdb_last_wake_key(const spdb_writer *w);

/* ---- reading ---------------------------------------------------------------- */

/*
 * Open a recording read-only (SQLITE_OPEN_READONLY) and validate it: an
 * SQLite file, not truncated, application_id SPDL, a meta table with an
 * abi this reader knows. 0 and *out, or -1 with a one-line message in err.
 */
int spdb_open_ro(sqlite3 **out, const char *path, char *err, size_t errlen);
/* meta values: 0, or -1 when the key is absent or not of that type. */
int spdb_meta_int(sqlite3 *db, const char *key, int64_t *out);
int spdb_meta_text(sqlite3 *db, const char *key, char *buf, size_t n);
/* Prepare sql or fail with one line in err: 0 or -1. */
int spdb_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen);

#endif
