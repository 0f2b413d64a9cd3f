/*
 * report.h - the diagnosis of a recording as data (`spindle report` prints
 * it; tests and other tools may call it). Definitions: cmd_report.c.
 */
#ifndef SPINDLE_CONSOLE_REPORT_H
#define SPINDLE_CONSOLE_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "db.h"

typedef struct spr_opts {
	int64_t since_ns, until_ns; /* window, recording ns */
	int64_t long_poll_ns, sched_delay_ns, stall_ns;
	double self_wake_pct;
	unsigned top;
} spr_opts;

typedef struct spr_site {
	const char *name, *file; /* "?" when unknown */
	int64_t line;
} spr_site;

enum spr_stall_reason {
	SPR_LOST_WAKER,	     /* flagged */
	SPR_WAITING,	     /* an outstanding waker: holder, detail */
	SPR_WOKEN_NOT_POLLED /* flagged when >= sched_delay */
};

typedef struct spr_stall {
	int64_t task;
	spr_site site;
	enum spr_stall_reason reason;
	int holder;	  /* SP_HOLD_* of the outstanding waker (WAITING) */
	int64_t detail;	  /* its detail (the fd) */
	int64_t since;	  /* last poll end (or spawn, or wake) */
	int64_t quiet_ns; /* how long */
	int64_t polls;
	int64_t clones, drops, consumed;
	int aborted; /* ended by abort (else live at the end) */
	int flagged;
} spr_stall;

typedef struct spr_victim {
	int64_t task;
	spr_site site;
	int64_t delay_ns; /* the part of its wait that overlapped the long poll */
	int timer;	  /* woken by a timer due during the poll, fired after it */
} spr_victim;

typedef struct spr_long_poll {
	int64_t task, worker, start, dur;
	spr_site site;
	const char *tracer; /* the eBPF tracer's finding on this poll (its detail), or NULL */
	spr_victim victims[8];
	unsigned nvictims;
} spr_long_poll;

typedef struct spr_delay {
	spr_site site;
	uint64_t polls;
	int64_t p50, p90, p99, max;
	int flagged;
} spr_delay;

typedef struct spr_worker {
	int64_t worker, polls, busy_ns, steals, stolen, parks, park_ns;
	double util;
} spr_worker;

typedef struct spr_selfwake {
	int64_t task, polls, self_wakes;
	spr_site site;
} spr_selfwake;

#define SPR_NONE INT64_MIN /* a warning's task or dur that the row leaves NULL */

typedef struct spr_warning {
	int64_t ts, task, dur; /* task, dur: SPR_NONE when absent */
	char *kind, *detail, *source;
	spr_site site; /* the task's */
	int tracer;    /* a finding of the eBPF tracer (kind long_poll, source "spindle trace") */
} spr_warning;

#define SPR_TRACER_SOURCE "spindle trace"

typedef struct spr_findings {
	char command[512];
	int64_t pid, workers, t_begin, t_end, polls, wakes, tasks, lost;
	int finished, synthetic;
	int rings_off; /* written by `spindle trace -o` without the event rings */
	spr_stall *stalls;
	size_t nstalls;
	spr_long_poll *long_polls; /* the top N, longest first */
	size_t nlong, nlong_total;
	spr_delay *delays;
	size_t ndelays;
	spr_worker *workers_v;
	size_t nworkers;
	spr_selfwake *selfwakes;
	size_t nselfwakes;
	spr_warning *warnings;
	size_t nwarnings;
	int flagged;
	/* owned strings (site names) */
	char **strs;
	size_t nstrs;
} spr_findings;

/* 0 and *out, or -1 with a one-line message (a database error: corrupt). */
int spr_analyse(sqlite3 *db, const spr_opts *o, spr_findings **out, char *err, size_t errlen);
void spr_print_text(FILE *f, const spr_findings *fi, const char *path);
void spr_print_json(FILE *f, const spr_findings *fi, const char *path);
void spr_free(spr_findings *fi);
/* "reactor", "timer", ... for SP_HOLD_* */
const char *spr_holder_name(int holder);

#endif
