/*
 * replay.c - a recording fed back into the console's model up to a time
 * cursor (replay.h has the mapping of tables to events and the invariants).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "replay.h"

#define TICK_NS 1000000000ll /* the model ticks this often while fed (expiry) */
#define MAX_SITES SP__SEG_MAX_SITE_SLOTS

/* The cursors. */
enum src {
	S_END,
	S_UNPARK,
	S_SPAWN,
	S_START,
	S_STEAL,
	S_WAKE,
	S_CLONE,
	S_DROP,
	S_PARK,
	S_DONE,
	S_FIND,
	S__N
};

/* Ties of equal time go in this order (see replay.h). A worker stamps what
 * it does between polls (a timer or reactor wake) with its last clock
 * reading, the next poll's start: such a wake goes before that start. A
 * self-wake comes from inside the poll: after it. */
enum rank {
	R_END,
	R_UNPARK,
	R_SPAWN,
	R_WAKE,
	R_START,
	R_SELF_WAKE,
	R_STEAL,
	R_CLONE,
	R_DROP,
	R_PARK,
	R_DONE,
	R_FIND
};
static const uint8_t src_rank[S__N] = {
	[S_END] = R_END,     [S_UNPARK] = R_UNPARK, [S_SPAWN] = R_SPAWN, [S_START] = R_START,
	[S_STEAL] = R_STEAL, [S_WAKE] = R_WAKE,	    [S_CLONE] = R_CLONE, [S_DROP] = R_DROP,
	[S_PARK] = R_PARK,   [S_DONE] = R_DONE,	    [S_FIND] = R_FIND,
};

static const char *const src_sql[S__N] = {
	[S_END] = "SELECT end, task, worker, result FROM polls ORDER BY end",
	[S_UNPARK] = "SELECT end, worker FROM parks ORDER BY end",
	[S_SPAWN] = "SELECT spawn, id, parent, site FROM tasks WHERE spawn >= 0 "
		    "ORDER BY spawn, id",
	[S_START] = "SELECT end - dur, task, worker FROM polls ORDER BY end - dur, end",
	[S_STEAL] = "SELECT ts, worker, victim, count FROM steals ORDER BY ts",
	[S_WAKE] = "SELECT ts, task, flags, source, worker FROM wakes ORDER BY ts",
	[S_CLONE] = "SELECT coalesce(first, 0), task, clones FROM wakers WHERE clones > 0 "
		    "ORDER BY 1, 2",
	[S_DROP] =
		"SELECT coalesce(last, 0), task, drops FROM wakers WHERE drops > 0 ORDER BY 1, 2",
	[S_PARK] = "SELECT end - dur, worker FROM parks ORDER BY end - dur, end",
	[S_DONE] = "SELECT end, id, state FROM tasks WHERE end IS NOT NULL ORDER BY end, id",
	/* other tools' findings (spindle trace -o): known once the poll ended */
	[S_FIND] = "SELECT ts + coalesce(dur, 0), task, ts, coalesce(dur, 0), "
		   "coalesce(detail, kind) FROM warnings WHERE ts IS NOT NULL ORDER BY 1, id",
};

struct cur {
	sqlite3_stmt *st;
	int have;		   /* ev holds the next row's event */
	int64_t ts;		   /* its relative time */
	int rank;		   /* enum rank: the order among equal times */
	uint64_t n;		   /* clones / drops it stands for */
	int64_t find_at, find_dur; /* S_FIND: the finding's time and duration */
	char text[200];		   /* S_FIND: its headline */
	spc_event ev;
};

struct site {
	int64_t id;
	topm_site s;
};

struct replay {
	sqlite3 *db;
	topm_config cfg;
	topm_model *m;
	struct cur c[S__N];
	sqlite3_stmt *pre; /* tasks spawned before the recording (replay.h) */
	struct site *sites;
	size_t nsites;
	uint64_t t0;
	int64_t end, cursor, next_tick;
	int64_t last_tick;    /* relative time of the model's last tick */
	uint64_t last_events; /* events seen at that tick */
	uint64_t ev_rate;
	int fed; /* the model is built (else: rebuild at the next seek) */
	int pid;
	char command[256];
	char err[256];
};

static int site_fn(void *arg, uint32_t idx, topm_site *out)
{
	replay *r = arg;
	if (idx >= r->nsites)
		return -1;
	*out = r->sites[idx].s;
	return 0;
}

/* Site id of the recording -> the dense index the model is given. */
static uint32_t site_index(const replay *r, int64_t id)
{
	size_t lo = 0, hi = r->nsites;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->sites[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->nsites && r->sites[lo].id == id ? (uint32_t)lo : SP_SITE_NONE;
}

static int col_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static int64_t col(sqlite3_stmt *st, int i)
{
	return sqlite3_column_int64(st, i);
}

static int fail(replay *r, const char *what)
{
	snprintf(r->err, sizeof r->err, "%s: %s", what, sqlite3_errmsg(r->db));
	return -1;
}

/* Read the next row of cursor k into its event. 0, or -1 on a read error. */
static int cur_step(replay *r, enum src k)
{
	struct cur *c = &r->c[k];
	int rc = sqlite3_step(c->st);
	c->have = 0;
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return fail(r, "reading the recording");
	sqlite3_stmt *st = c->st;
	spc_event *e = &c->ev;
	memset(e, 0, sizeof *e);
	e->worker = -1;
	c->ts = col(st, 0);
	c->n = 1;
	c->rank = src_rank[k];
	switch (k) {
	case S_END:
		e->type = SP_EV_POLL_END;
		e->b = (uint64_t)col(st, 1);
		e->worker = (int32_t)col(st, 2);
		e->a = (uint32_t)col(st, 3);
		break;
	case S_START:
		e->type = SP_EV_POLL_START;
		e->b = (uint64_t)col(st, 1);
		e->worker = (int32_t)col(st, 2);
		e->a = (uint32_t)e->worker;
		break;
	case S_SPAWN:
		e->type = SP_EV_SPAWN;
		e->b = (uint64_t)col(st, 1);
		e->task = col_null(st, 2) ? 0 : (uint64_t)col(st, 2);
		e->a = col_null(st, 3) ? SP_SITE_NONE : site_index(r, col(st, 3));
		break;
	case S_DONE:
		e->type = SP_EV_TASK_DONE;
		e->b = (uint64_t)col(st, 1);
		e->a = col_null(st, 2) ? 0 : (uint32_t)col(st, 2);
		break;
	case S_WAKE: {
		e->type = SP_EV_WAKE;
		e->b = (uint64_t)col(st, 1);
		e->a = (uint32_t)col(st, 2);
		unsigned kind = (e->a & SP_WAKE_SRC_MASK) >> SP_WAKE_SRC_SHIFT;
		if ((kind == SP_WAKE_SRC_TASK || kind == SP_WAKE_SRC_JOIN) && !col_null(st, 3))
			e->task = (uint64_t)col(st, 3);
		if (!col_null(st, 4))
			e->worker = (int32_t)col(st, 4);
		if (e->a & SP_WAKE_SELF)
			c->rank = R_SELF_WAKE;
		break;
	}
	case S_STEAL:
		e->type = SP_EV_STEAL;
		e->worker = col_null(st, 1) ? -1 : (int32_t)col(st, 1);
		e->a = (uint32_t)col(st, 2);
		e->b = (uint64_t)col(st, 3);
		break;
	case S_PARK:
	case S_UNPARK:
		e->type = k == S_PARK ? SP_EV_PARK : SP_EV_UNPARK;
		e->worker = col_null(st, 1) ? -1 : (int32_t)col(st, 1);
		e->a = (uint32_t)e->worker;
		break;
	case S_CLONE:
	case S_DROP:
		e->type = k == S_CLONE ? SP_EV_WAKER_CLONE : SP_EV_WAKER_DROP;
		e->b = (uint64_t)col(st, 1);
		c->n = (uint64_t)col(st, 2);
		break;
	case S_FIND: {
		e->b = col_null(st, 1) ? 0 : (uint64_t)col(st, 1);
		c->find_at = col(st, 2);
		c->find_dur = col(st, 3);
		const unsigned char *d = sqlite3_column_text(st, 4);
		snprintf(c->text, sizeof c->text, "%s", d ? (const char *)d : "?");
		c->text[strcspn(c->text, ";")] = 0; /* the headline: its first part */
		break;
	}
	default:
		break;
	}
	c->have = 1;
	return 0;
}

static uint64_t ns_of(const replay *r, int64_t rel)
{
	return rel < 0 && (uint64_t)-rel > r->t0 ? 0 : r->t0 + (uint64_t)rel;
}

static void tick(replay *r, int64_t t)
{
	topm_tick(r->m, ns_of(r, t));
	r->last_tick = t;
}

/* Deliver every event at or before upto, ticking the model every TICK_NS of
 * recording time before tick_until (so that finished tasks expire). */
static int feed(replay *r, int64_t upto, int64_t tick_until)
{
	for (;;) {
		int k = -1;
		for (int i = 0; i < S__N; i++)
			if (r->c[i].have &&
			    (k < 0 || r->c[i].ts < r->c[k].ts ||
			     (r->c[i].ts == r->c[k].ts && r->c[i].rank < r->c[k].rank)))
				k = i;
		if (k < 0 || r->c[k].ts > upto)
			return 0;
		struct cur *c = &r->c[k];
		while (r->next_tick <= c->ts && r->next_tick < tick_until) {
			tick(r, r->next_tick);
			r->next_tick += TICK_NS;
		}
		c->ev.ns = ns_of(r, c->ts);
		if (k == S_FIND)
			topm_kernel_finding(r->m, c->ev.b, -1, ns_of(r, c->find_at),
					    c->find_dur > 0 ? (uint64_t)c->find_dur : 0, c->text);
		else
			topm_event(r->m, &c->ev);
		if (c->n > 1) {
			/* the aggregate's other clones/drops: counted, not listed */
			topm_task *t = topm_task_get(r->m, c->ev.b);
			if (t && k == S_CLONE)
				t->clones += c->n - 1;
			else if (t)
				t->drops += c->n - 1;
		}
		if (cur_step(r, (enum src)k))
			return -1;
	}
}

/* A new model at the start of the recording. */
static int rebuild(replay *r)
{
	topm_free(r->m);
	r->fed = 0;
	if (!(r->m = topm_new(&r->cfg, site_fn, r))) {
		snprintf(r->err, sizeof r->err, "out of memory");
		return -1;
	}
	for (int i = 0; i < S__N; i++) {
		sqlite3_reset(r->c[i].st);
		if (cur_step(r, (enum src)i))
			return -1;
	}
	/* Tasks spawned before the recording (at an unknown or a negative time):
	 * idle since their spawn, as the live console seeds them from the task
	 * table. What they did before is not recorded: their waker counts stay
	 * unknown (no lost-waker guess) and no scheduling delay is invented. */
	sqlite3_reset(r->pre);
	topm_snapshot_begin(r->m, r->t0);
	int rc;
	while ((rc = sqlite3_step(r->pre)) == SQLITE_ROW) {
		sp__seg_task s = {.id = (uint64_t)col(r->pre, 0), .polls = 1};
		s.parent = col_null(r->pre, 1) ? 0 : (uint64_t)col(r->pre, 1);
		s.site = col_null(r->pre, 2) ? SP_SITE_NONE : site_index(r, col(r->pre, 2));
		topm_snapshot_task(r->m, &s, col_null(r->pre, 3) ? 0 : ns_of(r, col(r->pre, 3)), 0);
		topm_task *t = topm_task_get(r->m, s.id);
		if (t) {
			t->counts_known = 0;
			t->polls = 0; /* .polls = 1 only made it idle, not scheduled */
		}
	}
	if (rc != SQLITE_DONE)
		return fail(r, "reading the tasks");
	topm_snapshot_end(r->m, r->t0, 0);
	r->cursor = INT64_MIN;
	r->last_tick = INT64_MIN;
	r->next_tick = 0;
	r->last_events = 0;
	r->fed = 1;
	return 0;
}

int replay_seek(replay *r, int64_t t, uint64_t rate_ns)
{
	if (t < 0)
		t = 0;
	if (t > r->end)
		t = r->end;
	if ((!r->fed || t < r->cursor) && rebuild(r))
		return -1;
	/* the tick before the cursor: rates over [t - rate, t] when it is ahead */
	int64_t before = t - (int64_t)rate_ns;
	if (rate_ns && before > r->last_tick && before > r->cursor) {
		if (feed(r, before, before))
			return -1;
		tick(r, before);
		r->last_events = topm_events_seen(r->m);
	}
	int64_t prev = r->last_tick;
	uint64_t prev_events = r->last_events;
	if (feed(r, t, before))
		return -1;
	tick(r, t);
	uint64_t seen = topm_events_seen(r->m);
	r->ev_rate = prev != INT64_MIN && t > prev
			     ? (seen - prev_events) * 1000000000ull / (uint64_t)(t - prev)
			     : 0;
	r->last_events = seen;
	r->cursor = t;
	if (r->next_tick <= t)
		r->next_tick = t + TICK_NS;
	return 0;
}

static int load_sites(replay *r, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (spdb_prepare(r->db, "SELECT id, name, file, line FROM sites ORDER BY id", &st, err,
			 errlen))
		return -1;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && r->nsites < MAX_SITES) {
		if (r->nsites == cap) {
			cap = cap ? cap * 2 : 64;
			struct site *n = realloc(r->sites, sizeof *n * cap);
			if (!n) {
				sqlite3_finalize(st);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			r->sites = n;
		}
		struct site *s = &r->sites[r->nsites++];
		memset(s, 0, sizeof *s);
		s->id = col(st, 0);
		const unsigned char *name = sqlite3_column_text(st, 1);
		const unsigned char *file = sqlite3_column_text(st, 2);
		snprintf(s->s.name, sizeof s->s.name, "%s", name ? (const char *)name : "?");
		snprintf(s->s.file, sizeof s->s.file, "%s", file ? (const char *)file : "?");
		s->s.line = (uint32_t)col(st, 3);
		s->s.known = 1;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(err, errlen, "reading the sites: %s", sqlite3_errmsg(r->db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

int replay_open(replay **out, const char *path, const topm_config *cfg, char *err, size_t errlen)
{
	replay *r = calloc(1, sizeof *r);
	int64_t v;
	*out = NULL;
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->cfg = *cfg;
	if (spdb_open_ro(&r->db, path, err, errlen))
		goto bad;
	if (spdb_meta_int(r->db, "t0_ns", &v) || v < 0) {
		snprintf(err, errlen, "%s: no meta t0_ns (not a complete recording)", path);
		goto bad;
	}
	r->t0 = (uint64_t)v;
	r->pid = spdb_meta_int(r->db, "pid", &v) ? 0 : (int)v;
	if (spdb_meta_text(r->db, "command", r->command, sizeof r->command))
		snprintf(r->command, sizeof r->command, "?");
	r->end = spdb_meta_int(r->db, "end_ns", &v) || v < 0 ? 0 : v;
	for (int i = 0; i < S__N; i++)
		if (spdb_prepare(r->db, src_sql[i], &r->c[i].st, err, errlen))
			goto bad;
	if (spdb_prepare(
		    r->db,
		    "SELECT id, parent, site, spawn FROM tasks WHERE spawn IS NULL OR spawn < 0",
		    &r->pre, err, errlen))
		goto bad;
	/* the end: meta end_ns, or the last poll when the recorder died early */
	sqlite3_stmt *st;
	if (spdb_prepare(r->db, "SELECT max(end) FROM polls", &st, err, errlen))
		goto bad;
	if (sqlite3_step(st) == SQLITE_ROW && !col_null(st, 0) && col(st, 0) > r->end)
		r->end = col(st, 0);
	sqlite3_finalize(st);
	if (load_sites(r, err, errlen))
		goto bad;
	if (replay_seek(r, 0, 0)) {
		snprintf(err, errlen, "%s: %s", path, r->err);
		goto bad;
	}
	*out = r;
	return 0;
bad:
	replay_close(r);
	return -1;
}

void replay_close(replay *r)
{
	if (!r)
		return;
	for (int i = 0; i < S__N; i++)
		sqlite3_finalize(r->c[i].st);
	sqlite3_finalize(r->pre);
	topm_free(r->m);
	free(r->sites);
	if (r->db)
		sqlite3_close(r->db);
	free(r);
}

int replay_worst_poll(replay *r, int64_t *start, int64_t *dur, uint64_t *task)
{
	sqlite3_stmt *st;
	char err[256];
	int ok = -1;
	if (spdb_prepare(r->db, "SELECT end, dur, task FROM polls ORDER BY dur DESC, end LIMIT 1",
			 &st, err, sizeof err))
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*dur = col(st, 1);
		*start = col(st, 0) - *dur;
		*task = (uint64_t)col(st, 2);
		ok = 0;
	}
	sqlite3_finalize(st);
	return ok;
}

const char *replay_err(const replay *r)
{
	return r->err;
}

topm_model *replay_model(replay *r)
{
	return r->m;
}

int64_t replay_cursor(const replay *r)
{
	return r->cursor;
}

int64_t replay_end(const replay *r)
{
	return r->end;
}

uint64_t replay_t0(const replay *r)
{
	return r->t0;
}

uint64_t replay_ev_rate(const replay *r)
{
	return r->ev_rate;
}

int replay_pid(const replay *r)
{
	return r->pid;
}

const char *replay_command(const replay *r)
{
	return r->command;
}
