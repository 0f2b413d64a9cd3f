/*
 * trace_db.c - the eBPF tracer's findings as recording rows (trace_db.h).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_db.h"

struct trow {
	uint64_t start; /* CLOCK_MONOTONIC */
	int64_t dur, task, worker;
	char *detail;
	char name[33];	/* the task's name, "" unknown */
	char fn[96];	/* its poll function */
	char file[128]; /* and where that is */
	int line;
};

struct trdb {
	uint64_t t0;
	int rings;
	pthread_mutex_t mu;
	struct trow *rows; /* under mu: queued, not written */
	size_t n, cap;
	uint64_t total; /* under mu */
	int64_t workers;
	/* the database's thread only */
	int64_t *tasks; /* tasks written (rings off) */
	size_t ntasks, captasks;
	int64_t next_site;
};

trdb *trdb_new(void)
{
	trdb *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->next_site = SPDB_SITE_MADE_UP;
	pthread_mutex_init(&q->mu, NULL);
	return q;
}

void trdb_set(trdb *q, uint64_t t0_ns, int rings)
{
	q->t0 = t0_ns;
	q->rings = rings;
}

void trdb_free(trdb *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n; i++)
		free(q->rows[i].detail);
	free(q->rows);
	free(q->tasks);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* Append to buf at *k, never past n - 1 bytes. */
static void add(char *buf, size_t n, size_t *k, const char *fmt, ...)
{
	va_list ap;

	if (*k + 1 >= n)
		return;
	va_start(ap, fmt);
	int r = vsnprintf(buf + *k, n - *k, fmt, ap);
	va_end(ap);
	if (r > 0)
		*k = *k + (size_t)r < n ? *k + (size_t)r : n - 1;
}

/* "func (file:line) [inlined in g]", or the module+offset of a bare frame. */
static void frame(char *buf, size_t n, size_t *k, const struct sp_starve_frame *f)
{
	if (f->func[0])
		add(buf, n, k, "%s", f->func);
	else if (f->module[0])
		add(buf, n, k, "%s+0x%llx", f->module, (unsigned long long)f->module_off);
	else
		add(buf, n, k, "0x%llx", (unsigned long long)f->addr);
	if (f->file[0])
		add(buf, n, k, " (%s:%d)", f->file, f->line);
	if (f->inlined_in[0])
		add(buf, n, k, " [inlined in %s]", f->inlined_in);
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void trdb_detail(const struct sp_starve_finding *f, char *buf, size_t n)
{
	size_t k = 0;

	buf[0] = 0;
	/* The headline: the verdict, what it was spent in, the culprit. */
	switch (f->verdict) {
	case SP_STARVE_BLOCKED:
		add(buf, n, &k, "blocked %.1f ms", ms(f->blocked_ns));
		for (int i = 0; i < f->nsys; i++) {
			add(buf, n, &k, "%s%s", i ? ", " : " in ", f->sys[i].name);
			if (f->nsys > 1)
				add(buf, n, &k, " %.1f ms", ms(f->sys[i].ns));
		}
		break;
	case SP_STARVE_ONCPU:
		add(buf, n, &k, "on-CPU %.1f ms", ms(f->oncpu_ns));
		break;
	default:
		add(buf, n, &k, "preempted %.1f ms", ms(f->preempted_ns));
		if (f->preempt_comm[0])
			add(buf, n, &k, " by %s (pid %u)", f->preempt_comm, f->preempt_pid);
		break;
	}
	if (f->culprit >= 0 && f->culprit < f->nframes) {
		add(buf, n, &k, ", culprit ");
		frame(buf, n, &k, &f->frames[f->culprit]);
	}
	if (f->running)
		add(buf, n, &k, " (still running when reported)");
	/* The rest: the split, the poll, the thread, the fix. */
	add(buf, n, &k, "; on-CPU %.1f ms, blocked %.1f ms, preempted %.1f ms", ms(f->oncpu_ns),
	    ms(f->blocked_ns), ms(f->preempted_ns));
	if (f->preempted_ns && f->preempt_comm[0])
		add(buf, n, &k, " (by %s, pid %u)", f->preempt_comm, f->preempt_pid);
	if (f->unseen_ns)
		add(buf, n, &k, ", %.1f ms before the tracer watched", ms(f->unseen_ns));
	add(buf, n, &k, "; poll ");
	frame(buf, n, &k, &f->poll_fn);
	if (f->task_name[0])
		add(buf, n, &k, " of '%s'", f->task_name);
	add(buf, n, &k, " on worker %u (tid %u), poll %llu", f->worker_idx, f->tid,
	    (unsigned long long)f->poll_seq);
	if (f->nframes)
		add(buf, n, &k, "; stack %s %d frame%s",
		    f->stack_samples   ? "sampled,"
		    : f->stack_scanned ? "scanned from sp,"
				       : "at block,",
		    f->nframes,
		    f->nframes == 1 ? "" : "s");
	add(buf, n, &k, "; fix: %s", f->fix ? f->fix : "");
}

int trdb_add(trdb *q, const struct sp_starve_finding *f)
{
	char detail[2048];
	struct trow r = {
		.start = f->start_ns,
		.dur = (int64_t)f->total_ns,
		.task = (int64_t)f->task_id,
		.worker = f->worker_idx,
		.line = f->poll_fn.line,
	};

	trdb_detail(f, detail, sizeof(detail));
	r.detail = strdup(detail);
	if (!r.detail)
		return -1;
	snprintf(r.name, sizeof(r.name), "%s", f->task_name);
	snprintf(r.fn, sizeof(r.fn), "%s", f->poll_fn.func);
	snprintf(r.file, sizeof(r.file), "%s", f->poll_fn.file);
	pthread_mutex_lock(&q->mu);
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct trow *p = realloc(q->rows, cap * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&q->mu);
			free(r.detail);
			return -1;
		}
		q->rows = p;
		q->cap = cap;
	}
	q->rows[q->n++] = r;
	q->total++;
	if (r.worker + 1 > q->workers)
		q->workers = r.worker + 1;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

uint64_t trdb_count(trdb *q, int64_t *workers)
{
	pthread_mutex_lock(&q->mu);
	uint64_t n = q->total;
	if (workers)
		*workers = q->workers;
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* Rings off: the task's row and a made-up site naming it, once. */
static int put_task(trdb *q, spdb_writer *w, const struct trow *r)
{
	for (size_t i = 0; i < q->ntasks; i++)
		if (q->tasks[i] == r->task)
			return 0;
	if (q->ntasks == q->captasks) {
		size_t cap = q->captasks ? q->captasks * 2 : 16;
		int64_t *p = realloc(q->tasks, cap * sizeof(*p));
		if (!p)
			return 0; /* only the name is missed */
		q->tasks = p;
		q->captasks = cap;
	}
	q->tasks[q->ntasks++] = r->task;
	int64_t site = q->next_site++;
	const char *name = r->name[0] ? r->name : r->fn[0] ? r->fn : "?";
	return spdb_put_site(w, site, name, r->file[0] ? r->file : "?", r->line) ||
	       spdb_put_task(w, r->task, SPDB_NULL, site, SPDB_NULL, SPDB_NULL, SPDB_NULL);
}

int trdb_flush(trdb *q, spdb_writer *w)
{
	struct trow *rows;
	size_t n;
	sqlite3_stmt *st = NULL;
	int rc = 0;

	pthread_mutex_lock(&q->mu);
	rows = q->rows;
	n = q->n;
	q->rows = NULL;
	q->n = q->cap = 0;
	pthread_mutex_unlock(&q->mu);
	if (!n)
		return 0;
	if (sqlite3_prepare_v2(spdb_writer_db(w),
			       "INSERT INTO warnings(ts, kind, task, dur, detail, source, worker) "
			       "VALUES(?1, 'long_poll', ?2, ?3, ?4, '" TRDB_SOURCE "', ?5)",
			       -1, &st, NULL) != SQLITE_OK)
		rc = -1;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!q->rings && put_task(q, w, &rows[i])) {
			rc = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, (int64_t)(rows[i].start - q->t0));
		sqlite3_bind_int64(st, 2, rows[i].task);
		sqlite3_bind_int64(st, 3, rows[i].dur);
		sqlite3_bind_text(st, 4, rows[i].detail, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, rows[i].worker);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = -1;
		sqlite3_reset(st);
	}
	if (rc)
		fprintf(stderr, "spindle trace: database: %s\n", sqlite3_errmsg(spdb_writer_db(w)));
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++)
		free(rows[i].detail);
	free(rows);
	return rc;
}
