/*
 * recorder.c - events to rows (recorder.h).
 *
 * PER-TASK STATE (struct tstate, a hash map by task id). A task becomes
 * runnable at its spawn, at the first wake while it is idle, or at the end of
 * a poll during which it was woken (the runtime re-queues it then); the
 * poll that follows gets delay = its start - that time. `row` says whether
 * the tasks row is in the database; rows of tasks spawned in the open batch
 * are written at commit, so a task that lives and dies within one batch costs
 * one insert. An ended task's state lingers one more batch (late drops of its
 * wakers land on it) and then goes.
 *
 * WAKERS. Per task, a small array of holders (kind, detail) with clones,
 * drops and consumed counts (db_schema.h wakers); changed holders are
 * rewritten at commit.
 *
 * PER-RING STATE. The poll in progress on each ring (task, start); a
 * POLL_END whose start was lost is dropped (counted in meta.orphan_ends).
 * The blocking-pool job in progress on a pool thread's ring (job, start):
 * a BLOCKING_END that matches it makes a blocking row.
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "recorder.h"

#define NONE INT64_MIN

struct holder {
	uint8_t kind;
	uint8_t dirty;
	uint32_t detail;
	int64_t clones, drops, consumed;
	int64_t first, last;
};

struct tstate {
	uint64_t id;	  /* 0: free map slot */
	int64_t runnable; /* NONE: not runnable (or unknown) */
	int64_t parent, site, spawn, end, state;
	uint8_t running, woke_running, row, ended, ghost, dirty, listed_new;
	uint32_t nh, caph;
	struct holder *h;
};

struct ringstate {
	uint64_t task;
	int64_t start; /* NONE: no poll open */
	/* Between a worker's PARK and UNPARK its clock is not read again, so the
	 * wakes it makes when it comes back (timers, I/O) carry the PARK's time
	 * (trace_events.h). They are held here and recorded at the UNPARK's time,
	 * the true one to within the unpark's own cost. */
	int parked;
	spc_event *held;
	size_t nheld, capheld;
	/* The blocking-pool job running on this ring's thread (one at a time). */
	uint64_t job;
	int64_t job_start;
};

struct idvec {
	uint64_t *v;
	size_t n, cap;
};

struct sprec {
	spdb_writer *w;
	uint64_t t0;
	struct tstate *map; /* open addressing, linear probing, mask + 1 slots */
	size_t mask, used;
	struct ringstate *rings;
	size_t nrings;
	int64_t *park_start; /* per worker, NONE when not parked */
	size_t nworkers_cap;
	int64_t workers;       /* 1 + highest worker index seen */
	struct idvec fresh;    /* tasks whose row waits for the commit */
	struct idvec dirty;    /* tasks with changed holders */
	struct idvec ended[2]; /* [0]: ended this batch, [1]: the batch before */
	uint64_t orphan_ends;
	uint64_t inject_pushes, inject_pops;
	sprec_stats st;
};

/* ---- small containers ------------------------------------------------------- */

static int idvec_push(struct idvec *v, uint64_t id)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		uint64_t *p = realloc(v->v, cap * sizeof *p);
		if (!p)
			return -1;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = id;
	return 0;
}

static size_t hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (size_t)id;
}

static struct tstate *find(sprec *r, uint64_t id)
{
	for (size_t i = hash(id) & r->mask;; i = (i + 1) & r->mask) {
		if (r->map[i].id == id)
			return &r->map[i];
		if (!r->map[i].id)
			return NULL;
	}
}

static int grow(sprec *r)
{
	size_t n = (r->mask + 1) * 2;
	struct tstate *m = calloc(n, sizeof *m), *old = r->map;
	if (!m)
		return -1;
	for (size_t i = 0; i <= r->mask; i++) {
		if (!old[i].id)
			continue;
		size_t j = hash(old[i].id) & (n - 1);
		while (m[j].id)
			j = (j + 1) & (n - 1);
		m[j] = old[i];
	}
	free(old);
	r->map = m;
	r->mask = n - 1;
	return 0;
}

/* The state of task id, created (not runnable, no row) when absent. */
static struct tstate *get(sprec *r, uint64_t id)
{
	struct tstate *t = find(r, id);
	if (t)
		return t;
	if ((r->used + 1) * 4 > (r->mask + 1) * 3 && grow(r))
		return NULL;
	size_t i = hash(id) & r->mask;
	while (r->map[i].id)
		i = (i + 1) & r->mask;
	t = &r->map[i];
	memset(t, 0, sizeof *t);
	t->id = id;
	t->runnable = NONE;
	t->parent = NONE;
	t->site = NONE;
	t->spawn = NONE;
	t->end = NONE;
	t->state = NONE;
	r->used++;
	return t;
}

/* Remove id (backward-shift deletion keeps probe chains intact). */
static void forget(sprec *r, uint64_t id)
{
	size_t i = hash(id) & r->mask;
	while (r->map[i].id != id) {
		if (!r->map[i].id)
			return;
		i = (i + 1) & r->mask;
	}
	free(r->map[i].h);
	r->map[i].id = 0;
	r->used--;
	for (size_t j = (i + 1) & r->mask; r->map[j].id; j = (j + 1) & r->mask) {
		size_t home = hash(r->map[j].id) & r->mask;
		/* Move j into the hole at i when its home is not in (i, j]. */
		if (((j - home) & r->mask) >= ((j - i) & r->mask)) {
			r->map[i] = r->map[j];
			r->map[j].id = 0;
			r->map[j].h = NULL;
			i = j;
		}
	}
}

static int64_t rel(const sprec *r, uint64_t ns)
{
	return (int64_t)(ns - r->t0);
}

/* ---- tasks ------------------------------------------------------------------- */

/* A task that will have a row: queue it for the commit. */
static int want_row(sprec *r, struct tstate *t)
{
	t->ghost = 0;
	if (t->row || t->listed_new)
		return 0;
	t->listed_new = 1;
	return idvec_push(&r->fresh, t->id);
}

/* A task known only from wakes or waker events so far: it gets no row unless
 * it is polled, spawned or ends, and its state goes after two batches. */
static struct tstate *get_maybe_ghost(sprec *r, uint64_t id)
{
	struct tstate *t = get(r, id);
	if (t && !t->row && !t->listed_new && !t->ghost && !t->ended) {
		t->ghost = 1;
		if (idvec_push(&r->ended[0], t->id))
			return NULL;
	}
	return t;
}

static struct tstate *task_seen(sprec *r, uint64_t id)
{
	struct tstate *t = get(r, id);
	if (t && want_row(r, t))
		return NULL;
	return t;
}

static struct holder *holder_of(struct tstate *t, unsigned kind, uint32_t detail)
{
	for (uint32_t i = 0; i < t->nh; i++)
		if (t->h[i].kind == kind && t->h[i].detail == detail)
			return &t->h[i];
	if (t->nh == t->caph) {
		uint32_t cap = t->caph ? t->caph * 2 : 2;
		struct holder *h = realloc(t->h, cap * sizeof *h);
		if (!h)
			return NULL;
		t->h = h;
		t->caph = cap;
	}
	struct holder *h = &t->h[t->nh++];
	memset(h, 0, sizeof *h);
	h->kind = (uint8_t)kind;
	h->detail = detail;
	h->first = NONE;
	return h;
}

static int touch(sprec *r, struct tstate *t, struct holder *h, int64_t ts)
{
	if (h->first == NONE)
		h->first = ts;
	h->last = ts;
	h->dirty = 1;
	if (t->dirty)
		return 0;
	t->dirty = 1;
	return idvec_push(&r->dirty, t->id);
}

/* The holder a by-value wake from source kind src (detail: fd) consumed. */
static struct holder *consumer(struct tstate *t, unsigned src, uint32_t detail)
{
	int want = -1;
	switch (src) {
	case SP_WAKE_SRC_REACTOR:
		want = SP_HOLD_REACTOR;
		break;
	case SP_WAKE_SRC_TIMER:
		want = SP_HOLD_TIMER;
		break;
	case SP_WAKE_SRC_BLOCKING:
		want = SP_HOLD_BLOCKING;
		break;
	case SP_WAKE_SRC_JOIN:
		want = SP_HOLD_JOIN;
		break;
	}
	struct holder *any = NULL;
	for (uint32_t i = 0; i < t->nh; i++) {
		struct holder *h = &t->h[i];
		if (h->clones - h->drops - h->consumed <= 0)
			continue;
		if (want >= 0 && h->kind == want &&
		    (want != SP_HOLD_REACTOR || detail == SP_WAKE_DETAIL_NONE ||
		     h->detail == detail))
			return h;
		if (want < 0 && (h->kind == SP_HOLD_CHANNEL || h->kind == SP_HOLD_SYNC ||
				 h->kind == SP_HOLD_USER || h->kind == SP_HOLD_SELECT))
			return h;
		if (!any)
			any = h;
	}
	return any;
}

/* ---- events ------------------------------------------------------------------ */

static struct ringstate *ring_of(sprec *r, uint32_t ring)
{
	if (ring >= r->nrings) {
		size_t n = ring + 16;
		struct ringstate *p = realloc(r->rings, n * sizeof *p);
		if (!p)
			return NULL;
		for (size_t i = r->nrings; i < n; i++)
			p[i] = (struct ringstate){.start = NONE};
		r->rings = p;
		r->nrings = n;
	}
	return &r->rings[ring];
}

static int64_t *park_slot(sprec *r, int32_t worker)
{
	if (worker < 0)
		return NULL;
	if ((size_t)worker >= r->nworkers_cap) {
		size_t n = (size_t)worker + 16;
		int64_t *p = realloc(r->park_start, n * sizeof *p);
		if (!p)
			return NULL;
		for (size_t i = r->nworkers_cap; i < n; i++)
			p[i] = NONE;
		r->park_start = p;
		r->nworkers_cap = n;
	}
	if (worker >= r->workers)
		r->workers = worker + 1;
	return &r->park_start[worker];
}

static int ev_poll_start(sprec *r, const spc_event *ev, int64_t ts)
{
	struct ringstate *rs = ring_of(r, ev->ring);
	struct tstate *t = task_seen(r, ev->b);
	if (!rs || !t)
		return -1;
	rs->task = ev->b;
	rs->start = ts;
	t->running = 1;
	t->woke_running = 0;
	park_slot(r, (int32_t)ev->a);
	return 0;
}

static int ev_done(sprec *r, const spc_event *ev, int64_t ts);

static int ev_poll_end(sprec *r, const spc_event *ev, int64_t ts)
{
	struct ringstate *rs = ring_of(r, ev->ring);
	struct tstate *t = task_seen(r, ev->b);
	if (!rs || !t)
		return -1;
	if (rs->start == NONE || rs->task != ev->b) {
		r->orphan_ends++; /* its POLL_START was lost */
		rs->start = NONE;
		return 0;
	}
	int64_t start = rs->start, delay = NONE;
	if (t->runnable != NONE && t->runnable <= start)
		delay = start - t->runnable;
	rs->start = NONE;
	rs->task = 0;
	t->running = 0;
	t->runnable = t->woke_running && !(ev->a & SP_POLL_READY) ? ts : NONE;
	t->woke_running = 0;
	int32_t worker = ev->worker >= 0 ? ev->worker : 0;
	r->st.polls++;
	int rc = spdb_put_poll(r->w, start, ts, (int64_t)ev->b, worker, ev->a, delay);
	/* A ready poll completes its task: since segment ABI 2.1 no TASK_DONE
	 * follows it (older writers sent one with a = 0: ev_done again, the
	 * same end). */
	if (rc == 0 && (ev->a & SP_POLL_READY)) {
		spc_event done = *ev;
		done.type = SP_EV_TASK_DONE;
		done.a = 0;
		rc = ev_done(r, &done, ts);
	}
	return rc;
}

static int ev_wake(sprec *r, const spc_event *ev, int64_t ts)
{
	unsigned src = (ev->a & SP_WAKE_SRC_MASK) >> SP_WAKE_SRC_SHIFT;
	uint32_t detail = ev->a >> SP_WAKE_DETAIL_SHIFT;
	int64_t source = NONE;
	if ((src == SP_WAKE_SRC_TASK || src == SP_WAKE_SRC_JOIN) && ev->task)
		source = (int64_t)ev->task;
	else if (src == SP_WAKE_SRC_REACTOR && detail != SP_WAKE_DETAIL_NONE)
		source = detail;
	else if (src == SP_WAKE_SRC_FOREIGN)
		source = ev->tid;
	struct tstate *t = get_maybe_ghost(r, ev->b);
	if (!t)
		return -1;
	if (ev->a & SP_WAKE_BY_VALUE) {
		struct holder *h = consumer(t, src, detail);
		if (!h)
			h = holder_of(t, SPDB_HOLD_UNMATCHED, src);
		if (!h || touch(r, t, h, ts))
			return -1;
		h->consumed++;
	}
	r->st.wakes++;
	if (spdb_put_wake(r->w, ts, (int64_t)ev->b, ev->a & 0x7f, source,
			  ev->worker >= 0 ? ev->worker : NONE))
		return -1;
	/* Runnable from this wake: its stored key, so that a poll's
	 * start - delay finds the wake row exactly (db_schema.h polls). */
	if (t->running)
		t->woke_running = 1;
	else if (t->runnable == NONE)
		t->runnable = spdb_last_wake_key(r->w);
	return 0;
}

static int ev_waker(sprec *r, const spc_event *ev, int64_t ts)
{
	struct tstate *t = get_maybe_ghost(r, ev->b);
	if (!t)
		return -1;
	if (t->ended)
		return 0; /* a holder letting go after the task ended */
	struct holder *h = holder_of(t, ev->a & 0xff, ev->a >> 8);
	if (!h || touch(r, t, h, ts))
		return -1;
	if (ev->type == SP_EV_WAKER_CLONE)
		h->clones++;
	else
		h->drops++;
	return 0;
}

static int ev_spawn(sprec *r, const spc_event *ev, int64_t ts)
{
	struct tstate *t = task_seen(r, ev->b);
	if (!t)
		return -1;
	t->parent = (int64_t)ev->task;
	t->site = ev->a == SP_SITE_NONE ? NONE : ev->a;
	t->spawn = ts;
	t->runnable = ts;
	if (t->row) /* known from the snapshot: rewrite it */
		return spdb_put_task(r->w, t->id, t->parent, t->site, t->spawn, t->end, t->state);
	return 0;
}

static int ev_done(sprec *r, const spc_event *ev, int64_t ts)
{
	struct tstate *t = task_seen(r, ev->b);
	if (!t)
		return -1;
	t->end = ts;
	t->state = ev->a;
	t->runnable = NONE;
	if (!t->ended) {
		t->ended = 1;
		if (idvec_push(&r->ended[0], t->id))
			return -1;
	}
	if (t->row)
		return spdb_end_task(r->w, t->id, ts, ev->a);
	return 0;
}

static int ev_park(sprec *r, const spc_event *ev, int64_t ts)
{
	int64_t *p = park_slot(r, ev->worker >= 0 ? ev->worker : (int32_t)ev->a);
	if (!p)
		return 0;
	if (ev->type == SP_EV_PARK) {
		*p = ts;
		return 0;
	}
	if (*p == NONE)
		return 0; /* parked before we attached, or PARK lost */
	int64_t start = *p;
	*p = NONE;
	return spdb_put_park(r->w, start, ts,
			     ev->worker >= 0 ? (int64_t)ev->worker : (int64_t)ev->a);
}

static int ev_blocking(sprec *r, const spc_event *ev, int64_t ts)
{
	struct ringstate *rs = ring_of(r, ev->ring);
	if (!rs)
		return -1;
	if (ev->type == SP_EV_BLOCKING_START) {
		rs->job = ev->b;
		rs->job_start = ts;
		return 0;
	}
	if (rs->job != ev->b || !ev->b)
		return 0; /* started before we attached, or its START was lost */
	rs->job = 0;
	return spdb_put_blocking(r->w, rs->job_start, ts, (int64_t)ev->b, ev->tid);
}

static int hold_wake(struct ringstate *rs, const spc_event *ev)
{
	if (rs->nheld == rs->capheld) {
		size_t cap = rs->capheld ? rs->capheld * 2 : 16;
		spc_event *p = realloc(rs->held, cap * sizeof *p);
		if (!p)
			return -1;
		rs->held = p;
		rs->capheld = cap;
	}
	rs->held[rs->nheld++] = *ev;
	return 0;
}

static int record(sprec *r, const spc_event *ev);

int sprec_event(sprec *r, const spc_event *ev)
{
	struct ringstate *rs = ev->worker >= 0 ? ring_of(r, ev->ring) : NULL;
	if (!rs)
		return record(r, ev);
	if (ev->type == SP_EV_PARK) {
		rs->parked = 1;
	} else if (ev->type == SP_EV_WAKE && rs->parked) {
		return hold_wake(rs, ev);
	} else if (rs->parked && ev->type != SP_EV_TIMER_FIRE && ev->type != SP_EV_IO_READY &&
		   ev->type != SP_EV_WAKER_DROP && ev->type != SP_EV_WAKER_CLONE) {
		rs->parked = 0;
		for (size_t i = 0; i < rs->nheld; i++) {
			rs->held[i].ns = ev->ns;
			if (record(r, &rs->held[i]))
				return -1;
		}
		rs->nheld = 0;
	}
	return record(r, ev);
}

static int record(sprec *r, const spc_event *ev)
{
	int64_t ts = rel(r, ev->ns);
	r->st.events++;
	r->st.late += ev->late != 0;
	if (ts > r->st.end_ns)
		r->st.end_ns = ts;
	switch (ev->type) {
	case SP_EV_POLL_START:
		return ev_poll_start(r, ev, ts);
	case SP_EV_POLL_END:
		return ev_poll_end(r, ev, ts);
	case SP_EV_WAKE:
		return ev_wake(r, ev, ts);
	case SP_EV_WAKER_CLONE:
	case SP_EV_WAKER_DROP:
		return ev_waker(r, ev, ts);
	case SP_EV_SPAWN:
		return ev_spawn(r, ev, ts);
	case SP_EV_TASK_DONE:
		return ev_done(r, ev, ts);
	case SP_EV_PARK:
	case SP_EV_UNPARK:
		return ev_park(r, ev, ts);
	case SP_EV_STEAL:
		return spdb_put_steal(r->w, ts, ev->worker, ev->a, (int64_t)ev->b);
	case SP_EV_THREAD:
		if (ev->b == SP_THREAD_WORKER)
			park_slot(r, (int32_t)ev->a);
		return 0;
	case SP_EV_TIMER_FIRE:
		return spdb_put_timer(r->w, ts, ev->worker >= 0 ? ev->worker : NONE, ev->a,
				      rel(r, ev->b));
	case SP_EV_IO_READY:
		return spdb_put_io(r->w, ts, ev->a, (int64_t)ev->b,
				   ev->worker >= 0 ? ev->worker : NONE);
	case SP_EV_BLOCKING_START:
	case SP_EV_BLOCKING_END:
		return ev_blocking(r, ev, ts);
	case SP_EV_INJECT_PUSH:
		r->inject_pushes++;
		return 0;
	case SP_EV_INJECT_POP: /* segment 2.1: one per task */
		r->inject_pops++;
		return 0;
	case SP_EV_INJECT_POPS: /* 2.2: one per batch */
		r->inject_pops += ev->b;
		return 0;
	default: /* unknown types: counted in meta.events only */
		return 0;
	}
}

int sprec_site(sprec *r, uint32_t idx, const char *name, const char *file, uint32_t line)
{
	return spdb_put_site(r->w, idx, name, file, line);
}

int sprec_snapshot_task(sprec *r, const sp__seg_task *t, uint64_t spawn_ns)
{
	struct tstate *s = task_seen(r, t->id);
	if (!s)
		return -1;
	s->parent = (int64_t)t->parent;
	s->spawn = spawn_ns ? rel(r, spawn_ns) : NONE;
	if (t->site != SP_SITE_NONE) {
		s->site = t->site;
	} else {
		/* A made-up site per snapshot task without one. */
		s->site = SPDB_SITE_MADE_UP + (int64_t)(t->id & 0xffffff);
		if (spdb_put_site(r->w, s->site, t->name, t->file, t->line))
			return -1;
	}
	return 0;
}

int sprec_lost(sprec *r, uint64_t ns, unsigned ring, uint64_t count)
{
	r->st.lost += count;
	return spdb_put_lost(r->w, rel(r, ns), ring, (int64_t)count);
}

/* ---- commit ------------------------------------------------------------------ */

static int write_fresh(sprec *r)
{
	for (size_t i = 0; i < r->fresh.n; i++) {
		struct tstate *t = find(r, r->fresh.v[i]);
		if (!t || t->row)
			continue;
		t->listed_new = 0;
		t->row = 1;
		r->st.tasks++;
		if (spdb_put_task(r->w, t->id, t->parent == NONE ? 0 : t->parent, t->site, t->spawn,
				  t->end, t->state))
			return -1;
	}
	r->fresh.n = 0;
	return 0;
}

static int write_dirty(sprec *r)
{
	for (size_t i = 0; i < r->dirty.n; i++) {
		struct tstate *t = find(r, r->dirty.v[i]);
		if (!t)
			continue;
		t->dirty = 0;
		if (!t->row && t->ghost)
			continue; /* never became a task we record */
		for (uint32_t k = 0; k < t->nh; k++) {
			struct holder *h = &t->h[k];
			if (!h->dirty)
				continue;
			h->dirty = 0;
			if (spdb_put_waker(r->w, t->id, h->kind, h->detail, h->clones, h->drops,
					   h->consumed, h->first, h->last))
				return -1;
		}
	}
	r->dirty.n = 0;
	return 0;
}

/* Ended tasks go one batch after they ended; ghosts that stayed ghosts too. */
static void retire(sprec *r)
{
	for (size_t i = 0; i < r->ended[1].n; i++) {
		struct tstate *t = find(r, r->ended[1].v[i]);
		if (t && (t->ended || (t->ghost && !t->row && !t->listed_new)))
			forget(r, t->id);
	}
	struct idvec tmp = r->ended[1];
	r->ended[1] = r->ended[0];
	r->ended[0] = tmp;
	r->ended[0].n = 0;
}

int sprec_commit(sprec *r)
{
	if (write_fresh(r) || write_dirty(r))
		return -1;
	retire(r);
	if (spdb_put_meta_int(r->w, "end_ns", r->st.end_ns) ||
	    spdb_put_meta_int(r->w, "events", (int64_t)r->st.events) ||
	    spdb_put_meta_int(r->w, "lost", (int64_t)r->st.lost) ||
	    spdb_put_meta_int(r->w, "late", (int64_t)r->st.late) ||
	    spdb_put_meta_int(r->w, "orphan_ends", (int64_t)r->orphan_ends) ||
	    spdb_put_meta_int(r->w, "inject_pushes", (int64_t)r->inject_pushes) ||
	    spdb_put_meta_int(r->w, "inject_pops", (int64_t)r->inject_pops) ||
	    spdb_put_meta_int(r->w, "workers", r->workers))
		return -1;
	r->st.commits++;
	return spdb_writer_commit(r->w);
}

void sprec_get_stats(const sprec *r, sprec_stats *out)
{
	*out = r->st;
}

int sprec_new(sprec **out, spdb_writer *w, uint64_t t0_ns)
{
	sprec *r = calloc(1, sizeof *r);
	if (!r)
		return -1;
	r->w = w;
	r->t0 = t0_ns;
	r->mask = 1023;
	r->map = calloc(r->mask + 1, sizeof *r->map);
	if (!r->map) {
		free(r);
		return -1;
	}
	*out = r;
	return 0;
}

void sprec_free(sprec *r)
{
	if (!r)
		return;
	for (size_t i = 0; i <= r->mask; i++)
		if (r->map[i].id)
			free(r->map[i].h);
	free(r->map);
	for (size_t i = 0; i < r->nrings; i++)
		free(r->rings[i].held);
	free(r->rings);
	free(r->park_start);
	free(r->fresh.v);
	free(r->dirty.v);
	free(r->ended[0].v);
	free(r->ended[1].v);
	free(r);
}

/* ---- live recording ------------------------------------------------------------
 *
 * The calling thread (the reader) polls the stream and appends what it gets
 * to the open chunk; after each poll the chunk goes on the queue. The writer
 * thread takes whole chunks, feeds them to the sprec and commits every
 * SPREC_COMMIT_NS. Only the reader touches the stream, only the writer the
 * database; they share the queue (under mu) and the progress counters.
 */

#define CHUNK_EVENTS 16384
#define SPARE_CHUNKS 8	       /* emptied chunks kept for the reader */
#define READER_NICE (-10)      /* the reader's, when SCHED_RR is refused */
#define BACKLOG_MAX (8u << 20) /* events queued before the reader drops chunks */

struct extra_site {
	uint32_t idx;
	spc_site s;
};

struct extra_task {
	sp__seg_task t;
	uint64_t spawn_ns;
};

struct extra_lost {
	uint64_t ns;
	unsigned ring;
	uint64_t count;
};

struct chunk {
	struct chunk *next;
	size_t n;
	spc_event ev[CHUNK_EVENTS];
	size_t nsites, ntasks, nlost;
	struct extra_site *sites;
	struct extra_task *tasks;
	struct extra_lost *lost;
};

struct live {
	const sprec_live_opts *o;
	sprec *rec;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct chunk *head, *tail; /* under mu */
	struct chunk *spare;	   /* under mu: emptied chunks for the reader */
	size_t nspare;
	size_t backlog; /* events queued, under mu */
	int done;	/* under mu: no more chunks */
	int failed;	/* writer: a database error (under mu) */
	/* reader side */
	struct chunk *cur;
	uint8_t *site_known; /* SP__SEG_MAX_SITE_SLOTS flags */
	uint32_t *site_pending;
	size_t npending;
	uint64_t *lost_seen; /* per ring */
	uint64_t dropped;    /* events the reader dropped (backlog full) */
	/* progress, written by the writer under mu */
	sprec_stats st;
	uint64_t bytes;
};

static struct chunk *chunk_new(void)
{
	/* Only the header is cleared: ev[] is written before it is read. */
	struct chunk *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	c->next = NULL;
	c->n = c->nsites = c->ntasks = c->nlost = 0;
	c->sites = NULL;
	c->tasks = NULL;
	c->lost = NULL;
	return c;
}

static void chunk_free(struct chunk *c)
{
	free(c->sites);
	free(c->tasks);
	free(c->lost);
	free(c);
}

/* A fed chunk, emptied for another round. */
static void chunk_reset(struct chunk *c)
{
	free(c->sites);
	free(c->tasks);
	free(c->lost);
	c->next = NULL;
	c->n = c->nsites = c->ntasks = c->nlost = 0;
	c->sites = NULL;
	c->tasks = NULL;
	c->lost = NULL;
}

static void *grow_arr(void *p, size_t n, size_t size)
{
	/* Capacity doubles at powers of two: n is the current count. */
	if (n & (n - 1))
		return p;
	return realloc(p, (n ? n * 2 : 4) * size);
}

static int push_chunk(struct live *L)
{
	struct chunk *c = L->cur;
	if (!c->n && !c->nsites && !c->ntasks && !c->nlost)
		return 0;
	/* A chunk the writer has emptied, or a new one: chunks are 1 MiB, and a
	 * fresh one costs the reader page faults on every poll. */
	pthread_mutex_lock(&L->mu);
	struct chunk *next = L->spare;
	if (next) {
		L->spare = next->next;
		L->nspare--;
		next->next = NULL;
	}
	pthread_mutex_unlock(&L->mu);
	if (!next && !(next = chunk_new()))
		return -1;
	pthread_mutex_lock(&L->mu);
	if (L->backlog + c->n > BACKLOG_MAX) {
		/* The writer is far behind: keep the side records, lose the
		 * events (counted, and written as lost on ring 0xffffffff). */
		L->dropped += c->n;
		c->n = 0;
	}
	c->next = NULL;
	if (L->tail)
		L->tail->next = c;
	else
		L->head = c;
	L->tail = c;
	L->backlog += c->n;
	pthread_cond_signal(&L->cv);
	pthread_mutex_unlock(&L->mu);
	L->cur = next;
	return 0;
}

static void add_site(struct live *L, uint32_t idx, const spc_site *s)
{
	struct chunk *c = L->cur;
	struct extra_site *p = grow_arr(c->sites, c->nsites, sizeof *p);
	if (!p)
		return;
	c->sites = p;
	p[c->nsites].idx = idx;
	p[c->nsites].s = *s;
	c->nsites++;
	L->site_known[idx] = 1;
}

/* A spawn site is readable a moment after its first SPAWN at worst: ask
 * again on the next round. */
static void want_site(struct live *L, uint32_t idx)
{
	if (idx >= SP__SEG_MAX_SITE_SLOTS || L->site_known[idx])
		return;
	const spc_site *s = spc_stream_site(L->o->stream, idx);
	if (s) {
		add_site(L, idx, s);
		return;
	}
	for (size_t i = 0; i < L->npending; i++)
		if (L->site_pending[i] == idx)
			return;
	uint32_t *p = grow_arr(L->site_pending, L->npending, sizeof *p);
	if (!p)
		return;
	L->site_pending = p;
	p[L->npending++] = idx;
}

static void retry_sites(struct live *L)
{
	size_t k = 0;
	for (size_t i = 0; i < L->npending; i++) {
		uint32_t idx = L->site_pending[i];
		const spc_site *s = spc_stream_site(L->o->stream, idx);
		if (s)
			add_site(L, idx, s);
		else if (!L->site_known[idx])
			L->site_pending[k++] = idx;
	}
	L->npending = k;
}

static void on_event(const spc_event *ev, void *arg)
{
	struct live *L = arg;
	if (L->cur->n == CHUNK_EVENTS && push_chunk(L))
		return;
	L->cur->ev[L->cur->n++] = *ev;
	if (ev->type == SP_EV_SPAWN && ev->a != SP_SITE_NONE)
		want_site(L, ev->a);
}

static void on_task(const sp__seg_task *t, void *arg)
{
	struct live *L = arg;
	struct chunk *c = L->cur;
	struct extra_task *p = grow_arr(c->tasks, c->ntasks, sizeof *p);
	if (!p)
		return;
	c->tasks = p;
	p[c->ntasks].t = *t;
	p[c->ntasks].spawn_ns = t->spawn_ts ? spc_stream_ticks_to_ns(L->o->stream, t->spawn_ts) : 0;
	c->ntasks++;
	if (t->site != SP_SITE_NONE)
		want_site(L, t->site);
}

static void note_lost(struct live *L, uint64_t now)
{
	const sp__seg_reader *sr = spc_stream_reader(L->o->stream);
	struct chunk *c = L->cur;
	for (unsigned i = 0; i < sr->hdr.nrings; i++) {
		uint64_t n = spc_stream_lost(L->o->stream, i);
		if (n == L->lost_seen[i])
			continue;
		struct extra_lost *p = grow_arr(c->lost, c->nlost, sizeof *p);
		if (!p)
			return;
		c->lost = p;
		p[c->nlost++] = (struct extra_lost){now, i, n - L->lost_seen[i]};
		L->lost_seen[i] = n;
	}
}

/*
 * The reader must run within ~10 ms whenever a ring fills (16384 records:
 * 16 ms at 1M events/s), however busy the machine: under load (other
 * sessions' autogroups on a small machine) a sleeping reader was seen woken
 * 50-180 ms late, and a nice value does not help across autogroups. So the
 * reader asks for SCHED_RR priority 1 when it may (root, CAP_SYS_NICE; it
 * sleeps most of the time: ~20% of a CPU at 1M events/s), else nice -10,
 * else stays as it is. SPINDLE_RECORD_RT=0 keeps it an ordinary thread. The
 * writer thread (created after this) drops back to SCHED_OTHER.
 */
static void reader_priority(void)
{
	const char *e = getenv("SPINDLE_RECORD_RT");
	if (e && *e == '0')
		return;
	struct sched_param sp = {.sched_priority = 1};
	if (pthread_setschedparam(pthread_self(), SCHED_RR, &sp))
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), READER_NICE);
}

/* SPINDLE_RECORD_DUMP=1: every event on stderr as it is recorded (debugging). */
static int dump;

static int feed_chunk(sprec *rec, struct chunk *c)
{
	for (size_t i = 0; i < c->nsites; i++)
		if (sprec_site(rec, c->sites[i].idx, c->sites[i].s.name, c->sites[i].s.file,
			       c->sites[i].s.line))
			return -1;
	for (size_t i = 0; i < c->ntasks; i++)
		if (sprec_snapshot_task(rec, &c->tasks[i].t, c->tasks[i].spawn_ns))
			return -1;
	for (size_t i = 0; i < c->nlost; i++)
		if (sprec_lost(rec, c->lost[i].ns, c->lost[i].ring, c->lost[i].count))
			return -1;
	for (size_t i = 0; i < c->n; i++) {
		if (dump)
			fprintf(stderr, "%llu r%u w%d t%llu %s a=%#x b=%llu\n",
				(unsigned long long)c->ev[i].ns, c->ev[i].ring, c->ev[i].worker,
				(unsigned long long)c->ev[i].task, spc_event_name(c->ev[i].type),
				c->ev[i].a, (unsigned long long)c->ev[i].b);
		if (sprec_event(rec, &c->ev[i]))
			return -1;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct live *L = arg;
	uint64_t last_commit = spc_mono_ns();
	int err = 0;
	struct sched_param sp = {.sched_priority = 0};
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	/* Ctrl-C and friends go to the reader (its loop notices them); none
	 * interrupts this thread inside SQLite's file I/O. */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 0);
	for (;;) {
		pthread_mutex_lock(&L->mu);
		while (!L->head && !L->done) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_nsec += 20 * 1000000;
			if (dl.tv_nsec >= 1000000000) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000;
			}
			if (pthread_cond_timedwait(&L->cv, &L->mu, &dl) == ETIMEDOUT)
				break;
		}
		struct chunk *list = L->head;
		int done = L->done && !list;
		L->head = L->tail = NULL;
		pthread_mutex_unlock(&L->mu);
		size_t n = 0;
		struct chunk *spent = NULL;
		while (list) {
			struct chunk *c = list;
			list = c->next;
			n += c->n;
			if (!err && feed_chunk(L->rec, c))
				err = 1;
			chunk_reset(c);
			c->next = spent;
			spent = c;
		}
		uint64_t now = spc_mono_ns(), bytes = 0;
		if (!err && (done || now - last_commit >= (uint64_t)SPREC_COMMIT_NS)) {
			if (L->o->before_commit)
				err = L->o->before_commit(L->o->db, L->o->commit_arg) != 0;
			if (!err)
				err = sprec_commit(L->rec) != 0;
			last_commit = now;
			if (!err)
				bytes = spdb_writer_bytes(L->o->db);
		}
		/* Nothing slow under mu: the reader takes it between two ring
		 * reads (the page count above is read outside). */
		pthread_mutex_lock(&L->mu);
		L->backlog -= n;
		sprec_get_stats(L->rec, &L->st);
		if (bytes)
			L->bytes = bytes;
		if (err)
			L->failed = 1;
		while (spent && L->nspare < SPARE_CHUNKS) {
			struct chunk *c = spent;
			spent = c->next;
			c->next = L->spare;
			L->spare = c;
			L->nspare++;
		}
		pthread_mutex_unlock(&L->mu);
		while (spent) {
			struct chunk *c = spent;
			spent = c->next;
			chunk_free(c);
		}
		if (done || err)
			break;
	}
	if (err)
		fprintf(stderr, "spindle record: database: %s\n", spdb_writer_err(L->o->db));
	return NULL;
}

static void progress(struct live *L, uint64_t *prev_events, double dt)
{
	pthread_mutex_lock(&L->mu);
	sprec_stats st = L->st;
	uint64_t bytes = L->bytes, backlog = L->backlog;
	pthread_mutex_unlock(&L->mu);
	uint64_t lost = spc_stream_lost_total(L->o->stream) + L->dropped;
	fprintf(stderr,
		"\rspindle record: %8.0f events/s  %10llu events  %llu lost  %6.1f MB  backlog %llu"
		"\033[K",
		(double)(st.events - *prev_events) / dt, (unsigned long long)st.events,
		(unsigned long long)lost, (double)bytes / 1e6, (unsigned long long)backlog);
	*prev_events = st.events;
}

/* The target has ended: its wait status is collected here. */
static int child_gone(const sprec_live_opts *o)
{
	if (o->child_pid <= 0)
		return !spc_stream_alive(o->stream);
	int status;
	pid_t p = waitpid(o->child_pid, &status, WNOHANG);
	if (p == o->child_pid) {
		if (o->child_status)
			*o->child_status = status;
		return 1;
	}
	return p < 0 && errno == ECHILD;
}

int sprec_live_run(const sprec_live_opts *o, sprec_stats *st)
{
	struct live L = {.o = o};
	const char *d = getenv("SPINDLE_RECORD_DUMP");
	dump = d && *d == '1';
	const sp__seg_reader *sr = spc_stream_reader(o->stream);
	pthread_t thr;
	int ret = -1;
	/* Priority inheritance: a writer preempted inside mu (an ordinary thread
	 * on a busy machine) runs at the reader's priority until it lets go. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&L.mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&L.cv, NULL);
	L.cur = chunk_new();
	L.site_known = calloc(SP__SEG_MAX_SITE_SLOTS, 1);
	L.lost_seen = calloc(sr->hdr.nrings + 1, sizeof *L.lost_seen);
	if (!L.cur || !L.site_known || !L.lost_seen || sprec_new(&L.rec, o->db, o->t0_ns)) {
		fprintf(stderr, "spindle record: out of memory\n");
		goto out;
	}
	/* Tasks alive at attach first, then their events. */
	spc_stream_tasks(o->stream, on_task, &L);
	reader_priority();
	if (pthread_create(&thr, NULL, writer_main, &L)) {
		fprintf(stderr, "spindle record: cannot start the writer thread\n");
		goto out;
	}
	uint64_t start = spc_mono_ns(), last_progress = start, prev_events = 0;
	int ending = 0;
	for (;;) {
		size_t n = spc_stream_poll(o->stream, on_event, &L);
		uint64_t now = spc_mono_ns();
		if (ending) {
			spc_stream_flush(o->stream, on_event, &L);
		}
		retry_sites(&L);
		note_lost(&L, now);
		push_chunk(&L);
		if (ending)
			break;
		if (o->progress && now - last_progress >= 1000000000ull) {
			progress(&L, &prev_events, (double)(now - last_progress) / 1e9);
			last_progress = now;
		}
		pthread_mutex_lock(&L.mu);
		int failed = L.failed;
		pthread_mutex_unlock(&L.mu);
		if (failed)
			break;
		/* Stop conditions: one more poll and the flush follow. */
		if ((o->stop && *o->stop) || child_gone(o) ||
		    (o->duration_s > 0 && (double)(now - start) / 1e9 >= o->duration_s))
			ending = 1;
		else if (n < 4096) /* 16384-record rings: ~1 ms keeps far ahead */
			usleep(1000);
	}
	if (o->progress)
		fputc('\n', stderr);
	pthread_mutex_lock(&L.mu);
	L.done = 1;
	pthread_cond_signal(&L.cv);
	pthread_mutex_unlock(&L.mu);
	pthread_join(thr, NULL);
	if (L.dropped && sprec_lost(L.rec, spc_mono_ns(), 0xffffffffu, L.dropped) == 0)
		sprec_commit(L.rec);
	sprec_get_stats(L.rec, st);
	ret = L.failed ? -1 : 0;
out:
	sprec_free(L.rec);
	if (L.cur)
		chunk_free(L.cur);
	while (L.spare) {
		struct chunk *c = L.spare;
		L.spare = c->next;
		chunk_free(c);
	}
	free(L.site_known);
	free(L.site_pending);
	free(L.lost_seen);
	pthread_mutex_destroy(&L.mu);
	pthread_cond_destroy(&L.cv);
	return ret;
}
