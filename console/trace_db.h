/*
 * trace_db.h - the eBPF tracer's findings (probes/tracer.h) as rows of a
 * recording (db_schema.h warnings, kind "long_poll", source "spindle trace").
 *
 * The tracer reports on its own thread and the database belongs to another
 * (the recorder's writer thread, or the command's main thread when the
 * target's event rings are off), so findings go through a queue: trdb_add
 * turns one into a row (headline, detail text, times in the recording's
 * time base) and queues it; trdb_flush, on the database's thread, writes the
 * queued rows into the open transaction. With rings off the recording has
 * no task rows of its own: trdb_flush then also writes a task row and a
 * made-up site (the task's name, its poll function's file:line) for each
 * task it has not written yet.
 */
#ifndef SPINDLE_CONSOLE_TRACE_DB_H
#define SPINDLE_CONSOLE_TRACE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "tracer.h"

#define TRDB_SOURCE "spindle trace"

typedef struct trdb trdb;

/* NULL: out of memory. Findings may be queued before trdb_set. */
trdb *trdb_new(void);
/* Before the first trdb_flush: t0_ns, the CLOCK_MONOTONIC ns that is the
 * recording's time 0; rings: the recorder writes the tasks rows (else
 * trdb_flush does). */
void trdb_set(trdb *q, uint64_t t0_ns, int rings);
void trdb_free(trdb *q);
/* Any thread: queue a finding. 0, or -1 (out of memory: the finding is lost). */
int trdb_add(trdb *q, const struct sp_starve_finding *f);
/* The database's thread: write the queued rows. 0, or -1 (printed). */
int trdb_flush(trdb *q, spdb_writer *w);
/* Findings queued so far, and 1 + the highest worker index among them. */
uint64_t trdb_count(trdb *q, int64_t *workers);
/* The detail text of a finding (db_schema.h warnings): into buf, n bytes. */
void trdb_detail(const struct sp_starve_finding *f, char *buf, size_t n);

#endif
