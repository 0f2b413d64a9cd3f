/*
 * report.c - analysing a recording into spr_findings (report.h; the
 * definitions of each finding are in cmd_report.c's header comment).
 *
 * Passes: sites, tasks (into an array, indexed directly by id when the ids
 * are dense, else through a hash; each task's site resolved once), then one
 * key-ordered scan of the polls in the window (per task, per worker, per
 * site; long polls) while a second thread on its own read-only connection
 * scans the wakes (per task: count, self-wakes, first and last). The rest
 * are primary-key lookups: the result of a candidate stall's last poll, its
 * first wake after that poll began (a short forward scan, only when a wake
 * before and one after exist), its wakers, and per top long poll a window
 * of polls for its victims. Memory: O(tasks + sites + long polls).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "trace_events.h"

#define NONE INT64_MIN
#define HBUCKETS 1920 /* log-linear, 32 per power of two: <= 3% error */

struct site_rec {
	int64_t id;
	spr_site s;
	uint32_t *hist; /* delay histogram, allocated on first poll */
	uint64_t polls;
	int64_t max;
};

struct task_rec {
	int64_t id, parent, site, spawn, end, state;
	struct site_rec *sr; /* its site, NULL when unknown */
	int64_t polls, busy, last_start, last_end;
	int64_t wake_after; /* first wake at or after last_start; NONE */
};

/* The wakes pass's per-task results (an array beside the tasks: that pass may
 * run in its own thread while the polls pass writes the tasks). */
struct wake_rec {
	int64_t self_wakes, first, last; /* first and last in the window; NONE */
};

struct ctx {
	sqlite3 *db;
	const spr_opts *o;
	spr_findings *f;
	char *err;
	size_t errlen;
	struct site_rec *sites;
	size_t nsites;
	struct task_rec *tasks;
	struct wake_rec *wk; /* per task, filled by pass_wakes */
	size_t ntasks;
	uint32_t *idx; /* hash of task id -> index + 1 */
	size_t mask;
	uint32_t *dense; /* task id -> index + 1 when the ids are dense */
	int64_t ndense;
	int64_t lo, hi; /* the window, clamped to the recording */
};

static int dberr(struct ctx *c)
{
	snprintf(c->err, c->errlen, "unreadable or corrupt recording: %s", sqlite3_errmsg(c->db));
	return -1;
}

static int prep(struct ctx *c, const char *sql, sqlite3_stmt **st)
{
	return spdb_prepare(c->db, sql, st, c->err, c->errlen);
}

static char *keep(spr_findings *f, const char *s)
{
	char **p = realloc(f->strs, (f->nstrs + 1) * sizeof *p);
	if (!p)
		return NULL;
	f->strs = p;
	p[f->nstrs] = strdup(s ? s : "?");
	return p[f->nstrs] ? p[f->nstrs++] : NULL;
}

static size_t hash(int64_t id)
{
	uint64_t x = (uint64_t)id;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (size_t)x;
}

static struct task_rec *task(struct ctx *c, int64_t id)
{
	if (c->dense && id >= 0 && id < c->ndense)
		return c->dense[id] ? &c->tasks[c->dense[id] - 1] : NULL;
	if (c->dense)
		return NULL;
	for (size_t i = hash(id) & c->mask; c->idx[i]; i = (i + 1) & c->mask)
		if (c->tasks[c->idx[i] - 1].id == id)
			return &c->tasks[c->idx[i] - 1];
	return NULL;
}

static const spr_site unknown_site = {"?", "?", 0};

static struct site_rec *site(struct ctx *c, int64_t id)
{
	size_t lo = 0, hi = c->nsites;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (c->sites[m].id < id)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < c->nsites && c->sites[lo].id == id ? &c->sites[lo] : NULL;
}

static spr_site task_site(struct ctx *c, int64_t id)
{
	struct task_rec *t = task(c, id);
	return t && t->sr ? t->sr->s : unknown_site;
}

static int64_t col_opt(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NONE : sqlite3_column_int64(st, i);
}

/* ---- histogram ------------------------------------------------------------------ */

static unsigned hbucket(int64_t v)
{
	if (v < 32)
		return v < 0 ? 0 : (unsigned)v;
	unsigned e = 63 - (unsigned)__builtin_clzll((uint64_t)v);
	return (e - 4) * 32 + (unsigned)(((uint64_t)v >> (e - 5)) - 32);
}

static int64_t hvalue(unsigned b)
{
	if (b < 32)
		return b;
	unsigned e = b / 32 + 4;
	return (int64_t)(((uint64_t)(b % 32) + 32) << (e - 5));
}

static int64_t hpercentile(const uint32_t *h, uint64_t n, double p, int64_t max)
{
	uint64_t want = (uint64_t)((double)n * p), seen = 0;
	if (want >= n)
		want = n - 1;
	for (unsigned b = 0; b < HBUCKETS; b++) {
		seen += h[b];
		if (seen > want) {
			int64_t v = hvalue(b);
			return v > max ? max : v;
		}
	}
	return max;
}

/* ---- passes ---------------------------------------------------------------------- */

static int load_meta(struct ctx *c)
{
	spr_findings *f = c->f;
	int64_t v;
	if (spdb_meta_text(c->db, "command", f->command, sizeof f->command))
		snprintf(f->command, sizeof f->command, "?");
	f->pid = spdb_meta_int(c->db, "pid", &v) ? 0 : v;
	f->workers = spdb_meta_int(c->db, "workers", &v) ? 0 : v;
	f->finished = !spdb_meta_int(c->db, "finished", &v) && v;
	f->synthetic = !spdb_meta_int(c->db, "synthetic", &v) && v;
	f->t_end = spdb_meta_int(c->db, "end_ns", &v) ? 0 : v;
	f->rings_off = !spdb_meta_int(c->db, "rings", &v) && !v;
	f->t_begin = 0;
	c->lo = c->o->since_ns > f->t_begin ? c->o->since_ns : f->t_begin;
	c->hi = c->o->until_ns < f->t_end ? c->o->until_ns : f->t_end;
	if (c->hi < c->lo)
		c->hi = c->lo;
	return 0;
}

static int load_sites(struct ctx *c)
{
	sqlite3_stmt *st;
	int rc;
	if (prep(c, "SELECT id, name, file, line FROM sites ORDER BY id", &st))
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct site_rec *p = realloc(c->sites, (c->nsites + 1) * sizeof *p);
		if (!p)
			break;
		c->sites = p;
		p = &c->sites[c->nsites++];
		memset(p, 0, sizeof *p);
		p->id = sqlite3_column_int64(st, 0);
		p->s.name = keep(c->f, (const char *)sqlite3_column_text(st, 1));
		p->s.file = keep(c->f, (const char *)sqlite3_column_text(st, 2));
		p->s.line = sqlite3_column_int64(st, 3);
		if (!p->s.name || !p->s.file)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : dberr(c);
}

static int add_task(struct ctx *c, const struct task_rec *t)
{
	if ((c->ntasks + 1) * 2 > c->mask + 1) {
		size_t n = (c->mask + 1) * 2;
		uint32_t *idx = calloc(n, sizeof *idx);
		if (!idx)
			return -1;
		for (size_t k = 0; k < c->ntasks; k++) {
			size_t i = hash(c->tasks[k].id) & (n - 1);
			while (idx[i])
				i = (i + 1) & (n - 1);
			idx[i] = (uint32_t)k + 1;
		}
		free(c->idx);
		c->idx = idx;
		c->mask = n - 1;
		struct task_rec *p = realloc(c->tasks, n / 2 * sizeof *p);
		if (!p)
			return -1;
		c->tasks = p;
	}
	c->tasks[c->ntasks] = *t;
	size_t i = hash(t->id) & c->mask;
	while (c->idx[i])
		i = (i + 1) & c->mask;
	c->idx[i] = (uint32_t)++c->ntasks;
	return 0;
}

static int load_tasks(struct ctx *c)
{
	sqlite3_stmt *st;
	int rc;
	if (prep(c, "SELECT id, parent, site, spawn, end, state FROM tasks", &st))
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct task_rec t = {.id = sqlite3_column_int64(st, 0),
				     .parent = col_opt(st, 1),
				     .site = col_opt(st, 2),
				     .spawn = col_opt(st, 3),
				     .end = col_opt(st, 4),
				     .state = col_opt(st, 5),
				     .last_start = NONE,
				     .last_end = NONE,
				     .wake_after = NONE};
		if (add_task(c, &t)) {
			sqlite3_finalize(st);
			snprintf(c->err, c->errlen, "out of memory");
			return -1;
		}
	}
	sqlite3_finalize(st);
	c->f->tasks = (int64_t)c->ntasks;
	if (rc != SQLITE_DONE)
		return dberr(c);
	/* Resolve each task's site once, and index the ids directly when they
	 * are dense enough (the runtime numbers tasks from 1). */
	int64_t max = -1;
	for (size_t i = 0; i < c->ntasks; i++) {
		struct task_rec *t = &c->tasks[i];
		t->sr = t->site != NONE ? site(c, t->site) : NULL;
		if (t->id < 0)
			max = INT64_MAX;
		else if (t->id > max && max != INT64_MAX)
			max = t->id;
	}
	c->wk = malloc((c->ntasks + 1) * sizeof *c->wk);
	if (!c->wk) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->ntasks; i++)
		c->wk[i] = (struct wake_rec){.first = NONE, .last = NONE};
	if (max < (int64_t)c->ntasks * 4 + 65536) {
		c->ndense = max + 1;
		c->dense = calloc((size_t)c->ndense, sizeof *c->dense);
		if (!c->dense) {
			snprintf(c->err, c->errlen, "out of memory");
			return -1;
		}
		for (size_t i = 0; i < c->ntasks; i++)
			c->dense[c->tasks[i].id] = (uint32_t)i + 1;
	}
	return 0;
}

static spr_worker *worker_of(struct ctx *c, int64_t w)
{
	spr_findings *f = c->f;
	if (w < 0 || w > 4096)
		return NULL;
	if ((size_t)w >= f->nworkers) {
		spr_worker *p = realloc(f->workers_v, (size_t)(w + 1) * sizeof *p);
		if (!p)
			return NULL;
		for (size_t i = f->nworkers; i <= (size_t)w; i++)
			p[i] = (spr_worker){.worker = (int64_t)i};
		f->workers_v = p;
		f->nworkers = (size_t)w + 1;
	}
	return &f->workers_v[w];
}

/* Keep long polls (all, then the top N are chosen). */
static int add_long(struct ctx *c, int64_t task_id, int64_t worker, int64_t start, int64_t dur,
		    size_t *cap)
{
	spr_findings *f = c->f;
	if (f->nlong == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		spr_long_poll *p = realloc(f->long_polls, *cap * sizeof *p);
		if (!p)
			return -1;
		f->long_polls = p;
	}
	f->long_polls[f->nlong++] =
		(spr_long_poll){.task = task_id, .worker = worker, .start = start, .dur = dur};
	return 0;
}

/* One poll row of the window (pass_polls). 0, or -1 out of memory. */
static int poll_row(struct ctx *c, int64_t end, int64_t id, int64_t wk, int64_t dur, int64_t delay,
		    size_t *cap)
{
	c->f->polls++;
	struct task_rec *t = task(c, id);
	if (t) {
		t->polls++;
		t->busy += dur;
		t->last_start = end - dur;
		t->last_end = end;
	}
	spr_worker *w = worker_of(c, wk);
	if (w) {
		w->polls++;
		w->busy_ns += dur;
	}
	if (dur >= c->o->long_poll_ns && add_long(c, id, wk, end - dur, dur, cap))
		return -1;
	struct site_rec *s = t ? t->sr : NULL;
	if (s && delay != NONE) {
		if (!s->hist && !(s->hist = calloc(HBUCKETS, sizeof *s->hist)))
			return -1;
		s->hist[hbucket(delay)]++;
		s->polls++;
		if (delay > s->max)
			s->max = delay;
	}
	return 0;
}

struct poll_pass {
	struct ctx *c;
	size_t cap;
};

/* sp__poll(end, task, worker, dur, delay): poll_row inside the scan, so that
 * the ten million rows of a big recording are not each handed out as a
 * result row and read back column by column (a third of the pass). */
static void poll_fn(sqlite3_context *cx, int argc, sqlite3_value **v)
{
	struct poll_pass *p = sqlite3_user_data(cx);
	(void)argc;
	int64_t delay = sqlite3_value_type(v[4]) == SQLITE_NULL ? NONE : sqlite3_value_int64(v[4]);
	if (poll_row(p->c, sqlite3_value_int64(v[0]), sqlite3_value_int64(v[1]),
		     sqlite3_value_int64(v[2]), sqlite3_value_int64(v[3]), delay, &p->cap)) {
		sqlite3_result_error_nomem(cx);
		return;
	}
	sqlite3_result_int(cx, 0);
}

static int pass_polls(struct ctx *c)
{
	sqlite3_stmt *st;
	struct poll_pass p = {.c = c};
	if (sqlite3_create_function_v2(c->db, "sp__poll", 5, SQLITE_UTF8 | SQLITE_DIRECTONLY, &p,
				       poll_fn, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(c);
	int rc = prep(c,
		      "SELECT count(*) FROM polls WHERE end >= ?1 AND end <= ?2 AND "
		      "sp__poll(end, task, worker, dur, delay)",
		      &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, c->lo);
		sqlite3_bind_int64(st, 2, c->hi);
		rc = sqlite3_step(st);
		if (rc == SQLITE_NOMEM)
			snprintf(c->err, c->errlen, "out of memory");
		else if (rc != SQLITE_ROW)
			dberr(c);
		rc = rc == SQLITE_ROW ? 0 : -1;
		sqlite3_finalize(st);
	}
	sqlite3_create_function_v2(c->db, "sp__poll", 5, SQLITE_UTF8, NULL, NULL, NULL, NULL, NULL);
	return rc;
}

/* Wakes per task in the window: the count, self-wakes, the first and the
 * last; independent of the polls (wake_after is resolved in find_stalls), so
 * it runs on its own connection in a thread beside pass_polls. */
struct wake_pass {
	struct ctx *c;
	sqlite3 *db;
	int64_t wakes;
	int rc; /* 0, or -1 with err */
	char err[256];
};

static void *pass_wakes(void *arg)
{
	struct wake_pass *p = arg;
	struct ctx *c = p->c;
	sqlite3_stmt *st;
	int rc;
	p->rc = -1;
	if (spdb_prepare(p->db, "SELECT ts, task, flags FROM wakes WHERE ts >= ?1 AND ts <= ?2",
			 &st, p->err, sizeof p->err))
		return NULL;
	sqlite3_bind_int64(st, 1, c->lo);
	sqlite3_bind_int64(st, 2, c->hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t ts = sqlite3_column_int64(st, 0);
		struct task_rec *t = task(c, sqlite3_column_int64(st, 1));
		p->wakes++;
		if (!t)
			continue;
		struct wake_rec *w = &c->wk[t - c->tasks];
		if (sqlite3_column_int64(st, 2) & SP_WAKE_SELF)
			w->self_wakes++;
		if (w->first == NONE)
			w->first = ts;
		w->last = ts;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		snprintf(p->err, sizeof p->err, "unreadable or corrupt recording: %s",
			 sqlite3_errmsg(p->db));
	else
		p->rc = 0;
	return NULL;
}

/* The polls pass here and the wakes pass in a thread with a connection of its
 * own (in this thread when either cannot be had). */
static int passes(struct ctx *c)
{
	struct wake_pass wp = {.c = c, .db = c->db};
	const char *path = sqlite3_db_filename(c->db, "main");
	sqlite3 *db2 = NULL;
	pthread_t th;
	int threaded = 0;
	if (sqlite3_threadsafe() && path && path[0] &&
	    sqlite3_open_v2(path, &db2, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) ==
		    SQLITE_OK) {
		sqlite3_exec(db2, "PRAGMA mmap_size=2147418112;", NULL, NULL, NULL);
		wp.db = db2;
		threaded = !pthread_create(&th, NULL, pass_wakes, &wp);
		if (!threaded)
			wp.db = c->db;
	}
	int ret = pass_polls(c);
	if (threaded)
		pthread_join(th, NULL);
	else
		pass_wakes(&wp);
	sqlite3_close(db2);
	c->f->wakes = wp.wakes;
	if (!ret && wp.rc) {
		snprintf(c->err, c->errlen, "%s", wp.err);
		ret = -1;
	}
	return ret;
}

/* The first wake in the window at or after the last poll's start, for the
 * tasks marked 2 in cand (they have one: last_wake >= last_start): one
 * forward scan from the earliest of those starts. */
static int resolve_wake_after(struct ctx *c, uint8_t *cand, size_t pending, int64_t from)
{
	sqlite3_stmt *st;
	int rc;
	if (prep(c, "SELECT ts, task FROM wakes WHERE ts >= ?1 AND ts <= ?2", &st))
		return -1;
	sqlite3_bind_int64(st, 1, from > c->lo ? from : c->lo);
	sqlite3_bind_int64(st, 2, c->hi);
	while (pending && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t ts = sqlite3_column_int64(st, 0);
		struct task_rec *t = task(c, sqlite3_column_int64(st, 1));
		if (!t || cand[t - c->tasks] != 2 || ts < t->last_start)
			continue;
		t->wake_after = ts;
		cand[t - c->tasks] = 1;
		pending--;
	}
	sqlite3_finalize(st);
	return !pending || rc == SQLITE_DONE ? 0 : dberr(c);
}

/* Tasks that may be stalled: not completed in the window, last poll not
 * ready (its result looked up by key). 1 in cand; wake_after set. */
static int stall_candidates(struct ctx *c, uint8_t *cand)
{
	sqlite3_stmt *rq;
	size_t pending = 0;
	int64_t from = INT64_MAX;
	if (prep(c, "SELECT result FROM polls WHERE end = ?1", &rq))
		return -1;
	for (size_t i = 0; i < c->ntasks; i++) {
		struct task_rec *t = &c->tasks[i];
		if (t->state == 0 && t->end != NONE && t->end <= c->hi)
			continue; /* completed */
		if (t->polls) {
			sqlite3_reset(rq);
			sqlite3_bind_int64(rq, 1, t->last_end);
			int rc = sqlite3_step(rq);
			if (rc != SQLITE_ROW) {
				sqlite3_finalize(rq);
				return dberr(c);
			}
			if (sqlite3_column_int64(rq, 0) & SP_POLL_READY)
				continue;
		}
		cand[i] = 1;
		const struct wake_rec *w = &c->wk[i];
		if (w->first == NONE || (t->last_start != NONE && w->last < t->last_start))
			t->wake_after = NONE;
		else if (t->last_start == NONE || w->first >= t->last_start)
			t->wake_after = w->first;
		else {
			cand[i] = 2;
			pending++;
			if (t->last_start < from)
				from = t->last_start;
		}
	}
	sqlite3_finalize(rq);
	return pending ? resolve_wake_after(c, cand, pending, from) : 0;
}

/* The wakers of a candidate stall: totals and the holder that has one. */
static int wakers_of(struct ctx *c, spr_stall *s, int64_t aborted_at)
{
	sqlite3_stmt *st;
	int rc;
	int64_t best = 0;
	if (prep(c,
		 "SELECT holder, detail, clones, drops, consumed, last FROM wakers "
		 "WHERE task = ?1",
		 &st))
		return -1;
	sqlite3_bind_int64(st, 1, s->task);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t cl = sqlite3_column_int64(st, 2), dr = sqlite3_column_int64(st, 3);
		int64_t co = sqlite3_column_int64(st, 4), last = col_opt(st, 5);
		int64_t out = cl - dr - co;
		s->clones += cl;
		s->drops += dr;
		s->consumed += co;
		/* The abort dropped what was held until it. */
		if (out <= 0 && aborted_at != NONE && last != NONE &&
		    last >= aborted_at - 1000000 && dr > 0)
			out = 1;
		if (out > best) {
			best = out;
			s->holder = sqlite3_column_int(st, 0);
			s->detail = sqlite3_column_int64(st, 1);
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return dberr(c);
	s->reason = best > 0 ? SPR_WAITING : SPR_LOST_WAKER;
	return 0;
}

static int push_stall(spr_findings *f, const spr_stall *s)
{
	spr_stall *p = realloc(f->stalls, (f->nstalls + 1) * sizeof *p);
	if (!p)
		return -1;
	f->stalls = p;
	p[f->nstalls++] = *s;
	return 0;
}

static int find_stalls(struct ctx *c)
{
	uint8_t *cand = calloc(c->ntasks + 1, 1);
	int ret = -1;
	if (!cand || stall_candidates(c, cand))
		goto out;
	for (size_t i = 0; i < c->ntasks; i++) {
		struct task_rec *t = &c->tasks[i];
		if (!cand[i])
			continue;
		int aborted = t->end != NONE && t->end <= c->hi;
		int64_t stop = aborted ? t->end : c->hi;
		int64_t since = t->polls ? t->last_end : t->spawn;
		if (since == NONE || since < c->lo)
			since = c->lo;
		spr_stall s = {.task = t->id,
			       .site = task_site(c, t->id),
			       .since = since,
			       .polls = t->polls,
			       .aborted = aborted,
			       .holder = -1};
		int64_t quiet_end = t->wake_after != NONE ? t->wake_after : stop;
		if (quiet_end < since)
			quiet_end = since;
		if (!t->polls && t->spawn != NONE && t->spawn >= c->lo) {
			/* spawned, never polled: runnable since the spawn */
			s.reason = SPR_WOKEN_NOT_POLLED;
			s.quiet_ns = stop - t->spawn;
		} else if (quiet_end - since >= c->o->stall_ns && t->polls) {
			s.quiet_ns = quiet_end - since;
			if (wakers_of(c, &s, aborted ? t->end : NONE))
				goto out;
		} else if (t->wake_after != NONE && !aborted) {
			s.reason = SPR_WOKEN_NOT_POLLED;
			s.since = t->wake_after > since ? t->wake_after : since;
			s.quiet_ns = stop - s.since;
		} else {
			continue;
		}
		if (s.reason == SPR_WOKEN_NOT_POLLED && s.quiet_ns < c->o->sched_delay_ns)
			continue;
		s.flagged = s.reason != SPR_WAITING;
		if (push_stall(c->f, &s))
			goto out;
		c->f->flagged |= s.flagged;
	}
	ret = 0;
out:
	free(cand);
	return ret;
}

static int cmp_long(const void *a, const void *b)
{
	const spr_long_poll *x = a, *y = b;
	return x->dur < y->dur	 ? 1
	       : x->dur > y->dur ? -1
				 : (x->start > y->start) - (x->start < y->start);
}

/* Keep the 8 largest victims of lp; a timer victim already listed keeps the
 * larger of its two delays. */
static void add_victim(struct ctx *c, spr_long_poll *lp, int64_t id, int64_t acc, int timer)
{
	unsigned k = lp->nvictims;
	if (timer)
		for (unsigned i = 0; i < lp->nvictims; i++)
			if (lp->victims[i].task == id) {
				if (lp->victims[i].delay_ns < acc) {
					lp->victims[i].delay_ns = acc;
					lp->victims[i].timer = 1;
				}
				return;
			}
	if (k == 8) {
		unsigned m = 0;
		for (unsigned i = 1; i < 8; i++)
			if (lp->victims[i].delay_ns < lp->victims[m].delay_ns)
				m = i;
		if (lp->victims[m].delay_ns >= acc)
			return;
		k = m;
	} else {
		lp->nvictims++;
	}
	lp->victims[k] =
		(spr_victim){.task = id, .site = task_site(c, id), .delay_ns = acc, .timer = timer};
}

/* Timer victims of one long poll: the timers its worker fired in the second
 * after it whose deadline came before its end (due during it, or already
 * late when it began, and fired only when it ended), and the tasks the
 * batch woke (its TIMER wakes on that worker that follow the fire). */
static int timer_victims(struct ctx *c, spr_long_poll *lp, sqlite3_stmt *tq, sqlite3_stmt *bq)
{
	int64_t ls = lp->start, le = lp->start + lp->dur;
	int rc;
	sqlite3_reset(tq);
	sqlite3_bind_int64(tq, 1, le);
	sqlite3_bind_int64(tq, 2, le + 1000000000);
	sqlite3_bind_int64(tq, 3, lp->worker);
	while ((rc = sqlite3_step(tq)) == SQLITE_ROW) {
		int64_t fired = sqlite3_column_int64(tq, 0), n = sqlite3_column_int64(tq, 1);
		int64_t deadline = sqlite3_column_int64(tq, 2);
		if (deadline >= le)
			continue;
		int64_t acc = le - (deadline > ls ? deadline : ls);
		/* The batch's wakes: same clock reading as the fire, spread
		 * over a few ns by the unique keys. */
		sqlite3_reset(bq);
		sqlite3_bind_int64(bq, 1, fired - 1000);
		sqlite3_bind_int64(bq, 2, fired + 1000000);
		int64_t got = 0;
		while (got < n && (rc = sqlite3_step(bq)) == SQLITE_ROW) {
			int64_t fl = sqlite3_column_int64(bq, 1);
			unsigned src = (unsigned)(fl & SP_WAKE_SRC_MASK) >> SP_WAKE_SRC_SHIFT;
			if (src != SP_WAKE_SRC_TIMER || sqlite3_column_type(bq, 2) == SQLITE_NULL ||
			    sqlite3_column_int64(bq, 2) != lp->worker)
				continue;
			got++;
			int64_t id = sqlite3_column_int64(bq, 0);
			if (id != lp->task)
				add_victim(c, lp, id, acc, 1);
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return dberr(c);
	}
	return rc == SQLITE_DONE ? 0 : dberr(c);
}

/* Victims of one long poll: polls that ended in (start, end + 1 s], were
 * runnable during it, and were queued on its worker. */
static int victims_of(struct ctx *c, spr_long_poll *lp, sqlite3_stmt *pq, sqlite3_stmt *wq)
{
	int64_t ls = lp->start, le = lp->start + lp->dur;
	int rc;
	sqlite3_reset(pq);
	sqlite3_bind_int64(pq, 1, ls);
	sqlite3_bind_int64(pq, 2, le + 1000000000);
	while ((rc = sqlite3_step(pq)) == SQLITE_ROW) {
		int64_t end = sqlite3_column_int64(pq, 0), id = sqlite3_column_int64(pq, 1);
		int64_t wk = sqlite3_column_int64(pq, 2), start = end - sqlite3_column_int64(pq, 3);
		int64_t delay = col_opt(pq, 4);
		if (id == lp->task || delay == NONE)
			continue;
		int64_t woke = start - delay;
		if (woke >= le || start <= ls)
			continue;
		/* Queued on the long poll's worker? The waking wake says. */
		int on_worker = wk == lp->worker;
		sqlite3_reset(wq);
		sqlite3_bind_int64(wq, 1, woke);
		if (sqlite3_step(wq) == SQLITE_ROW && sqlite3_column_int64(wq, 1) == id) {
			int64_t fl = sqlite3_column_int64(wq, 0);
			unsigned q = (unsigned)(fl & SP_WAKE_Q_MASK) >> SP_WAKE_Q_SHIFT;
			on_worker = sqlite3_column_type(wq, 2) != SQLITE_NULL &&
				    sqlite3_column_int64(wq, 2) == lp->worker &&
				    (q == SP_WAKE_Q_LIFO || q == SP_WAKE_Q_LOCAL);
		}
		if (!on_worker)
			continue;
		int64_t acc = (start < le ? start : le) - (woke > ls ? woke : ls);
		add_victim(c, lp, id, acc, 0);
	}
	return rc != SQLITE_DONE ? dberr(c) : 0;
}

static void sort_victims(spr_long_poll *lp)
{
	for (unsigned i = 0; i < lp->nvictims; i++)
		for (unsigned j = i + 1; j < lp->nvictims; j++)
			if (lp->victims[j].delay_ns > lp->victims[i].delay_ns) {
				spr_victim t = lp->victims[i];
				lp->victims[i] = lp->victims[j];
				lp->victims[j] = t;
			}
}

static int long_polls(struct ctx *c)
{
	spr_findings *f = c->f;
	sqlite3_stmt *pq, *wq;
	f->nlong_total = f->nlong;
	if (!f->nlong)
		return 0;
	f->flagged = 1;
	qsort(f->long_polls, f->nlong, sizeof *f->long_polls, cmp_long);
	if (f->nlong > c->o->top)
		f->nlong = c->o->top;
	if (prep(c, "SELECT end, task, worker, dur, delay FROM polls WHERE end > ?1 AND end <= ?2",
		 &pq))
		return -1;
	if (prep(c, "SELECT flags, task, worker FROM wakes WHERE ts = ?1", &wq)) {
		sqlite3_finalize(pq);
		return -1;
	}
	sqlite3_stmt *tq = NULL, *bq = NULL;
	int ret = 0;
	if (spdb_has_table(c->db, "timers") &&
	    (prep(c,
		  "SELECT ts, count, deadline FROM timers WHERE ts >= ?1 AND ts <= ?2 AND "
		  "worker = ?3",
		  &tq) ||
	     prep(c, "SELECT task, flags, worker FROM wakes WHERE ts >= ?1 AND ts <= ?2", &bq)))
		ret = -1;
	for (size_t i = 0; i < f->nlong && !ret; i++) {
		f->long_polls[i].site = task_site(c, f->long_polls[i].task);
		ret = victims_of(c, &f->long_polls[i], pq, wq);
		if (!ret && tq)
			ret = timer_victims(c, &f->long_polls[i], tq, bq);
		sort_victims(&f->long_polls[i]);
	}
	sqlite3_finalize(pq);
	sqlite3_finalize(wq);
	sqlite3_finalize(tq);
	sqlite3_finalize(bq);
	return ret;
}

static int delays(struct ctx *c)
{
	spr_findings *f = c->f;
	/* One row per task name: sites of one name are merged. */
	for (size_t i = 0; i < c->nsites; i++) {
		struct site_rec *s = &c->sites[i];
		if (!s->polls)
			continue;
		struct site_rec *into = s;
		for (size_t j = 0; j < i; j++)
			if (c->sites[j].polls && !strcmp(c->sites[j].s.name, s->s.name)) {
				into = &c->sites[j];
				break;
			}
		if (into == s)
			continue;
		for (unsigned b = 0; b < HBUCKETS; b++)
			into->hist[b] += s->hist[b];
		into->polls += s->polls;
		if (s->max > into->max)
			into->max = s->max;
		s->polls = 0;
	}
	for (size_t i = 0; i < c->nsites; i++) {
		struct site_rec *s = &c->sites[i];
		if (!s->polls)
			continue;
		spr_delay *p = realloc(f->delays, (f->ndelays + 1) * sizeof *p);
		if (!p)
			return -1;
		f->delays = p;
		spr_delay *d = &p[f->ndelays++];
		d->site = s->s;
		d->polls = s->polls;
		d->p50 = hpercentile(s->hist, s->polls, 0.50, s->max);
		d->p90 = hpercentile(s->hist, s->polls, 0.90, s->max);
		d->p99 = hpercentile(s->hist, s->polls, 0.99, s->max);
		d->max = s->max;
		d->flagged = d->p99 >= c->o->sched_delay_ns;
		f->flagged |= d->flagged;
	}
	return 0;
}

/* Run `sql` (SELECT worker, x, y ... WHERE key in [?1, ?2] GROUP BY worker)
 * over the report's window and store x and y into each worker's int64
 * fields at offsets off_x and off_y. */
static int per_worker(struct ctx *c, const char *sql, size_t off_x, size_t off_y)
{
	sqlite3_stmt *st;
	int rc;
	if (prep(c, sql, &st))
		return -1;
	sqlite3_bind_int64(st, 1, c->lo);
	sqlite3_bind_int64(st, 2, c->hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		spr_worker *w = worker_of(c, sqlite3_column_int64(st, 0));
		if (w) {
			*(int64_t *)((char *)w + off_x) = sqlite3_column_int64(st, 1);
			*(int64_t *)((char *)w + off_y) = sqlite3_column_int64(st, 2);
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : dberr(c);
}

static int workers(struct ctx *c)
{
	sqlite3_stmt *st;
	int rc;
	if (per_worker(c,
		       "SELECT worker, count(*), sum(count) FROM steals WHERE ts >= ?1 AND ts <= ?2 "
		       "GROUP BY worker",
		       offsetof(spr_worker, steals), offsetof(spr_worker, stolen)) ||
	    per_worker(c,
		       "SELECT worker, count(*), sum(dur) FROM parks WHERE end >= ?1 AND end <= ?2 "
		       "GROUP BY worker",
		       offsetof(spr_worker, parks), offsetof(spr_worker, park_ns)))
		return -1;
	int64_t span = c->hi - c->lo;
	for (size_t i = 0; i < c->f->nworkers; i++)
		c->f->workers_v[i].util =
			span > 0 ? (double)c->f->workers_v[i].busy_ns / (double)span : 0;
	if (prep(c, "SELECT coalesce(sum(count), 0) FROM lost", &st))
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		c->f->lost = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : dberr(c);
}

static int selfwakes(struct ctx *c)
{
	spr_findings *f = c->f;
	for (size_t i = 0; i < c->ntasks; i++) {
		struct task_rec *t = &c->tasks[i];
		int64_t self = c->wk[i].self_wakes;
		if (t->polls < 100 || (double)self * 100.0 < c->o->self_wake_pct * (double)t->polls)
			continue;
		spr_selfwake *p = realloc(f->selfwakes, (f->nselfwakes + 1) * sizeof *p);
		if (!p)
			return -1;
		f->selfwakes = p;
		p[f->nselfwakes++] = (spr_selfwake){.task = t->id,
						    .polls = t->polls,
						    .self_wakes = self,
						    .site = task_site(c, t->id)};
		f->flagged = 1;
	}
	return 0;
}

static int warnings(struct ctx *c)
{
	spr_findings *f = c->f;
	sqlite3_stmt *st;
	int rc;
	if (prep(c,
		 "SELECT ts, kind, task, dur, detail, source FROM warnings "
		 "WHERE ts + ifnull(dur, 0) >= ?1 AND ts <= ?2 ORDER BY ts LIMIT 1000",
		 &st))
		return -1;
	sqlite3_bind_int64(st, 1, c->lo);
	sqlite3_bind_int64(st, 2, c->hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		spr_warning *p = realloc(f->warnings, (f->nwarnings + 1) * sizeof *p);
		if (!p)
			break;
		f->warnings = p;
		p[f->nwarnings++] =
			(spr_warning){.ts = sqlite3_column_int64(st, 0),
				      .kind = keep(f, (const char *)sqlite3_column_text(st, 1)),
				      .task = col_opt(st, 2),
				      .dur = col_opt(st, 3),
				      .detail = keep(f, (const char *)sqlite3_column_text(st, 4)),
				      .source = keep(f, (const char *)sqlite3_column_text(st, 5))};
		spr_warning *w = &p[f->nwarnings - 1];
		if (!w->kind || !w->detail || !w->source)
			break;
		w->site = task_site(c, w->task);
		w->tracer = !strcmp(w->kind, "long_poll") && !strcmp(w->source, SPR_TRACER_SOURCE);
		f->flagged = 1;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW) {
		snprintf(c->err, c->errlen, "out of memory");
		return -1;
	}
	return rc == SQLITE_DONE ? 0 : dberr(c);
}

/* The tracer's finding on each listed long poll: the same task, overlapping. */
static int annotate(struct ctx *c)
{
	spr_findings *f = c->f;
	for (size_t i = 0; i < f->nlong; i++) {
		spr_long_poll *l = &f->long_polls[i];
		for (size_t k = 0; k < f->nwarnings && !l->tracer; k++) {
			const spr_warning *w = &f->warnings[k];
			if (w->tracer && w->task == l->task && w->ts <= l->start + l->dur &&
			    w->ts + (w->dur > 0 ? w->dur : 0) >= l->start)
				l->tracer = w->detail;
		}
	}
	return 0;
}

int spr_analyse(sqlite3 *db, const spr_opts *o, spr_findings **out, char *err, size_t errlen)
{
	struct ctx c = {.db = db, .o = o, .err = err, .errlen = errlen, .mask = 1023};
	err[0] = 0;
	c.f = calloc(1, sizeof *c.f);
	c.idx = calloc(c.mask + 1, sizeof *c.idx);
	c.tasks = malloc((c.mask + 1) / 2 * sizeof *c.tasks);
	int ret = -1;
	if (!c.f || !c.idx || !c.tasks) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = load_meta(&c) || load_sites(&c) || load_tasks(&c) || passes(&c) || find_stalls(&c) ||
			      long_polls(&c) || delays(&c) || workers(&c) || selfwakes(&c) ||
			      warnings(&c) || annotate(&c)
		      ? -1
		      : 0;
	if (ret && !err[0])
		snprintf(err, errlen, "out of memory");
out:
	for (size_t i = 0; i < c.nsites; i++)
		free(c.sites[i].hist);
	free(c.sites);
	free(c.tasks);
	free(c.idx);
	free(c.dense);
	free(c.wk);
	if (ret) {
		spr_free(c.f);
		return -1;
	}
	*out = c.f;
	return 0;
}

void spr_free(spr_findings *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nstrs; i++)
		free(f->strs[i]);
	free(f->strs);
	free(f->stalls);
	free(f->long_polls);
	free(f->delays);
	free(f->workers_v);
	free(f->selfwakes);
	free(f->warnings);
	free(f);
}

const char *spr_holder_name(int h)
{
	static const char *const names[] = {"user code",     "reactor",	       "timer",
					    "channel",	     "sync primitive", "join handle",
					    "blocking pool", "select"};
	return h >= 0 && h < 8 ? names[h] : "unknown holder";
}
