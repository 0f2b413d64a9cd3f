/*
 * top_model.c - the model of `spindle top` (top_model.h has the contract).
 *
 * STORAGE. Tasks live in a chunked pool (TASK_CHUNK records per chunk, never
 * moved, so a topm_task pointer stays valid until topm_tick removes the task)
 * with a free list of removed records, and an open-addressing hash (linear
 * probing, backward-shift deletion, load <= 1/2) from id to pool index + 1.
 * In front of the hash, a direct-mapped cache of the last TCACHE ids looked
 * up by events (slot: id's low bits), holding the record's address: a poll
 * is three or four events of one task in a row on its ring, so most lookups
 * are hits at a compare instead of a hash, a probe and the chunk
 * indirection. An entry is valid exactly while the hash maps its id to that
 * record: task_remove clears it (records never move).
 *
 * STATE MACHINE per task, driven by events (trace_events.h):
 *   SPAWN -> scheduled; POLL_START -> running (a scheduled -> running step
 *   is one scheduling-delay sample); POLL_END -> done (ready bit), scheduled
 *   (woken during the poll: `notified`) or idle; WAKE of an idle task ->
 *   scheduled, of a running one -> notified; TASK_DONE -> done.
 * Time in a state is added to busy / sched / idle when the state is left;
 * topm_task_times adds the open interval.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spindle.h"
#include "top_model.h"

#define TASK_CHUNK_SHIFT 12
#define TASK_CHUNK (1u << TASK_CHUNK_SHIFT)
#define MAX_CHUNKS 4096 /* 16M tasks */
#define SEEN_MARK 0xffffu
#define TCACHE 256 /* a power of two */
#define NOINLINE __attribute__((noinline))

struct hent {
	uint64_t id;
	uint32_t v;
};

struct topm_model {
	topm_config cfg;
	topm_site_fn site_fn;
	void *site_arg;
	/* tasks */
	topm_task *chunks[MAX_CHUNKS];
	uint32_t nchunks;
	uint32_t used;	    /* records handed out from the chunks */
	uint32_t free_head; /* index + 1 of a removed record, 0 none */
	struct hent *hash;  /* v: index + 1, 0 empty; the id kept beside it so that
			     * probes do not touch the task records */
	uint32_t hmask;
	struct tcache {
		uint64_t id; /* 0: empty */
		topm_task *t;
	} tcache[TCACHE];
	size_t ntasks, ndone;
	/* sites: segment sites by index, then table-only ones */
	topm_site *sites;
	uint32_t nsites;
	topm_site *extra;
	uint32_t nextra, extra_cap;
	topm_site unknown;
	/* workers */
	topm_worker workers[TOPM_MAX_WORKERS];
	unsigned nworkers; /* 1 + highest present index */
	/* warnings */
	topm_warning warns[TOPM_MAX_WARNINGS];
	size_t nwarns, warns_total;
	struct kfind {
		uint64_t task, at_ns, dur_ns;
		int worker;
		char text[200];
	} kern[TOPM_MAX_KERNEL]; /* a ring: nkern total, the last MAX kept */
	size_t nkern;
	/* focus */
	uint64_t focus_id;
	topm_ev focus[TOPM_FOCUS_EVENTS];
	size_t focus_head, focus_count;
	/* clock */
	uint64_t now, last_tick, snap_begin;
	uint64_t events;
};

void topm_config_default(topm_config *c)
{
	*c = (topm_config){
		.long_poll_ns = 10000000ull,
		.lost_waker_ns = 100000000ull,
		.self_wake_pct = 50,
		.self_wake_min = 20,
		.sched_delay_ns = 10000000ull,
		.blocked_ns = 100000000ull,
		.warn_hold_ns = 10000000000ull,
		.keep_done_ns = 30000000000ull,
		.max_done = 10000,
	};
}

topm_model *topm_new(const topm_config *cfg, topm_site_fn site_fn, void *site_arg)
{
	topm_model *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	if (cfg)
		m->cfg = *cfg;
	else
		topm_config_default(&m->cfg);
	m->site_fn = site_fn;
	m->site_arg = site_arg;
	m->hmask = 1023;
	m->hash = calloc(m->hmask + 1, sizeof *m->hash);
	if (!m->hash) {
		free(m);
		return NULL;
	}
	snprintf(m->unknown.name, sizeof m->unknown.name, "?");
	snprintf(m->unknown.file, sizeof m->unknown.file, "?");
	return m;
}

void topm_free(topm_model *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nchunks; i++)
		free(m->chunks[i]);
	free(m->hash);
	free(m->sites);
	free(m->extra);
	free(m);
}

const topm_config *topm_cfg(const topm_model *m)
{
	return &m->cfg;
}

/* ---- the task pool and hash ------------------------------------------------------ */

static inline topm_task *rec(const topm_model *m, uint32_t idx)
{
	return &m->chunks[idx >> TASK_CHUNK_SHIFT][idx & (TASK_CHUNK - 1)];
}

static inline uint32_t hslot(uint64_t id, uint32_t mask)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (uint32_t)id & mask;
}

static uint32_t find_idx(const topm_model *m, uint64_t id)
{
	for (uint32_t h = hslot(id, m->hmask);; h = (h + 1) & m->hmask) {
		const struct hent *e = &m->hash[h];
		if (!e->v)
			return 0;
		if (e->id == id)
			return e->v;
	}
}

topm_task *topm_task_get(const topm_model *m, uint64_t id)
{
	uint32_t v = id ? find_idx(m, id) : 0;
	return v ? rec(m, v - 1) : NULL;
}

static void hash_put(struct hent *hash, uint32_t mask, uint64_t id, uint32_t v)
{
	uint32_t h = hslot(id, mask);
	while (hash[h].v)
		h = (h + 1) & mask;
	hash[h] = (struct hent){id, v};
}

static int hash_grow(topm_model *m)
{
	uint32_t nmask = m->hmask * 2 + 1;
	struct hent *nh = calloc((size_t)nmask + 1, sizeof *nh);
	if (!nh)
		return -1;
	for (uint32_t i = 0; i <= m->hmask; i++)
		if (m->hash[i].v)
			hash_put(nh, nmask, m->hash[i].id, m->hash[i].v);
	free(m->hash);
	m->hash = nh;
	m->hmask = nmask;
	return 0;
}

/* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
static void hash_del(topm_model *m, uint64_t id)
{
	uint32_t mask = m->hmask, i = hslot(id, mask);
	while (m->hash[i].v && m->hash[i].id != id)
		i = (i + 1) & mask;
	if (!m->hash[i].v)
		return;
	for (uint32_t j = (i + 1) & mask; m->hash[j].v; j = (j + 1) & mask) {
		uint32_t home = hslot(m->hash[j].id, mask);
		/* j's entry may move to i when its home is not in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->hash[i] = m->hash[j];
			i = j;
		}
	}
	m->hash[i] = (struct hent){0, 0};
}

/* A cache miss: the hash, then the cache slot takes the id. */
static topm_task *task_find_slow(topm_model *m, uint64_t id)
{
	uint32_t v = id ? find_idx(m, id) : 0;
	if (!v)
		return NULL;
	struct tcache *c = &m->tcache[id & (TCACHE - 1)];
	c->id = id;
	c->t = rec(m, v - 1);
	return c->t;
}

/* The record of id, or NULL (always for id 0: an empty cache slot is
 * {0, NULL} and id 0 is never cached). */
static inline topm_task *task_get(topm_model *m, uint64_t id)
{
	const struct tcache *c = &m->tcache[id & (TCACHE - 1)];
	if (c->id == id)
		return c->t;
	return task_find_slow(m, id);
}

static topm_task *task_new(topm_model *m, uint64_t id, uint64_t ns)
{
	if ((m->ntasks + 1) * 2 > (size_t)m->hmask + 1 && hash_grow(m))
		return NULL;
	uint32_t idx;
	if (m->free_head) {
		idx = m->free_head - 1;
		m->free_head = rec(m, idx)->hnext;
	} else {
		if (m->used == m->nchunks * TASK_CHUNK) {
			if (m->nchunks == MAX_CHUNKS)
				return NULL;
			m->chunks[m->nchunks] = malloc(sizeof(topm_task) * TASK_CHUNK);
			if (!m->chunks[m->nchunks])
				return NULL;
			m->nchunks++;
		}
		idx = m->used++;
	}
	topm_task *t = rec(m, idx);
	memset(t, 0, sizeof *t);
	t->id = id;
	t->site = SP_SITE_NONE;
	t->worker = -1;
	t->state = TOPM_IDLE;
	t->spawn_ns = t->since_ns = ns;
	hash_put(m->hash, m->hmask, id, idx + 1);
	m->ntasks++;
	if (id) {
		struct tcache *c = &m->tcache[id & (TCACHE - 1)];
		c->id = id;
		c->t = t;
	}
	return t;
}

static void task_remove(topm_model *m, topm_task *t)
{
	uint32_t v = find_idx(m, t->id);
	if (!v)
		return;
	if (t->state == TOPM_DONE)
		m->ndone--;
	hash_del(m, t->id);
	struct tcache *c = &m->tcache[t->id & (TCACHE - 1)];
	if (c->id == t->id)
		*c = (struct tcache){0, NULL};
	t->id = 0;
	t->hnext = m->free_head;
	m->free_head = v;
	m->ntasks--;
}

static inline topm_task *task_get_or_new(topm_model *m, uint64_t id, uint64_t ns)
{
	topm_task *t = task_get(m, id);
	return t ? t : task_new(m, id, ns);
}

/* ---- sites -------------------------------------------------------------------------- */

const topm_site *topm_site_get(topm_model *m, uint32_t idx)
{
	if (idx >= TOPM_SITE_EXTRA && idx != SP_SITE_NONE) {
		idx -= TOPM_SITE_EXTRA;
		return idx < m->nextra ? &m->extra[idx] : &m->unknown;
	}
	if (idx >= SP__SEG_MAX_SITE_SLOTS)
		return &m->unknown;
	if (idx >= m->nsites) {
		uint32_t n = m->nsites ? m->nsites : 64;
		while (n <= idx)
			n *= 2;
		topm_site *s = realloc(m->sites, sizeof *s * n);
		if (!s)
			return &m->unknown;
		memset(s + m->nsites, 0, sizeof *s * (n - m->nsites));
		m->sites = s;
		m->nsites = n;
	}
	topm_site *s = &m->sites[idx];
	if (!s->known && m->site_fn && m->site_fn(m->site_arg, idx, s) == 0)
		s->known = 1;
	return s->known ? s : &m->unknown;
}

/* A site known only from a task slot (no site index): interned by content. */
static uint32_t site_intern(topm_model *m, const char *name, const char *file, uint32_t line)
{
	for (uint32_t i = 0; i < m->nextra; i++)
		if (m->extra[i].line == line && !strcmp(m->extra[i].name, name) &&
		    !strcmp(m->extra[i].file, file))
			return TOPM_SITE_EXTRA + i;
	if (m->nextra == m->extra_cap) {
		if (m->extra_cap >= 4096)
			return SP_SITE_NONE; /* bound: a hostile table cannot grow this */
		uint32_t n = m->extra_cap ? m->extra_cap * 2 : 16;
		topm_site *s = realloc(m->extra, sizeof *s * n);
		if (!s)
			return SP_SITE_NONE;
		m->extra = s;
		m->extra_cap = n;
	}
	topm_site *s = &m->extra[m->nextra];
	memset(s, 0, sizeof *s);
	s->line = line;
	s->known = 1;
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->file, sizeof s->file, "%s", file);
	return TOPM_SITE_EXTRA + m->nextra++;
}

/* ---- histograms ----------------------------------------------------------------------- */

unsigned topm_hist_bucket(uint64_t ns)
{
	/* the bit length of us, at most the last bucket (a loop over the bits
	 * was a tenth of the model's time per event) */
	uint64_t us = ns / 1000;
	unsigned b = us ? 64u - (unsigned)__builtin_clzll(us) : 0;
	return b < TOPM_HIST_BUCKETS - 1 ? b : TOPM_HIST_BUCKETS - 1;
}

uint64_t topm_hist_bucket_end(unsigned b)
{
	return (1ull << b) * 1000ull; /* bucket b holds [2^(b-1), 2^b) us */
}

/* Counters are 16 bits; on saturation the whole histogram halves, keeping
 * its shape (and favouring recent samples). */
static inline void hist_add(uint16_t *h, uint64_t ns)
{
	unsigned b = topm_hist_bucket(ns);
	if (h[b] == UINT16_MAX)
		for (unsigned i = 0; i < TOPM_HIST_BUCKETS; i++)
			h[i] = (uint16_t)((h[i] + 1) / 2);
	h[b]++;
}

uint64_t topm_hist_pct(const uint16_t *h, unsigned pct)
{
	uint64_t total = 0, acc = 0;
	for (unsigned i = 0; i < TOPM_HIST_BUCKETS; i++)
		total += h[i];
	if (!total)
		return 0;
	uint64_t want = (total * pct + 99) / 100;
	if (!want)
		want = 1;
	for (unsigned i = 0; i < TOPM_HIST_BUCKETS; i++) {
		acc += h[i];
		if (acc >= want)
			return topm_hist_bucket_end(i);
	}
	return topm_hist_bucket_end(TOPM_HIST_BUCKETS - 1);
}

void topm_sparkline(const uint16_t *h, char *out)
{
	static const char lv[] = " .:-=+*#@";
	unsigned max = 0;
	for (unsigned i = 0; i < TOPM_HIST_BUCKETS; i++)
		if (h[i] > max)
			max = h[i];
	for (unsigned i = 0; i < TOPM_HIST_BUCKETS; i++)
		out[i] = !h[i] ? ' ' : lv[1 + (h[i] * 7u + max - 1) / max];
	out[TOPM_HIST_BUCKETS] = 0;
}

/* ---- events ------------------------------------------------------------------------------ */

static void focus_push(topm_model *m, const topm_ev *e)
{
	m->focus[(m->focus_head + m->focus_count) % TOPM_FOCUS_EVENTS] = *e;
	if (m->focus_count < TOPM_FOCUS_EVENTS)
		m->focus_count++;
	else
		m->focus_head = (m->focus_head + 1) % TOPM_FOCUS_EVENTS;
}

static inline void task_ev(topm_model *m, topm_task *t, const spc_event *ev)
{
	unsigned slot, n = t->ev_count;
	if (n < TOPM_TASK_EVENTS) {
		slot = (t->ev_head + n) % TOPM_TASK_EVENTS;
		t->ev_count = (uint8_t)(n + 1);
	} else { /* full: the oldest goes */
		slot = t->ev_head;
		t->ev_head = (uint8_t)((slot + 1) % TOPM_TASK_EVENTS);
	}
	topm_ev *e = &t->ev[slot];
	*e = (topm_ev){.ns = ev->ns,
		       .a = ev->a,
		       .type = (uint8_t)ev->type,
		       .worker = (int8_t)((uint32_t)ev->worker < 127 ? ev->worker : -1)};
	if (t->id == m->focus_id)
		focus_push(m, e);
}

static inline uint64_t since(uint64_t from, uint64_t to)
{
	return to > from ? to - from : 0;
}

/* Leave the current state at ns (its time goes to its bucket), enter st. */
static inline void enter(topm_model *m, topm_task *t, unsigned st, uint64_t ns)
{
	uint64_t d = since(t->since_ns, ns);
	switch (t->state) {
	case TOPM_RUNNING:
		t->busy_ns += d;
		break;
	case TOPM_SCHEDULED:
		t->sched_ns += d;
		break;
	case TOPM_IDLE:
		t->idle_ns += d;
		break;
	default:
		break;
	}
	if (st == TOPM_DONE && t->state != TOPM_DONE) {
		m->ndone++;
		t->done_ns = ns;
	}
	t->state = (uint8_t)st;
	if (ns > t->since_ns || st == TOPM_DONE)
		t->since_ns = ns;
}

static topm_worker *worker_at(topm_model *m, int w)
{
	if (w < 0 || w >= TOPM_MAX_WORKERS)
		return NULL;
	topm_worker *wk = &m->workers[w];
	if (!wk->present) {
		wk->present = 1;
		if ((unsigned)w + 1 > m->nworkers)
			m->nworkers = (unsigned)w + 1;
	}
	return wk;
}

static NOINLINE void ev_poll_start(topm_model *m, const spc_event *ev)
{
	topm_task *t = task_get_or_new(m, ev->b, ev->ns);
	topm_worker *w = worker_at(m, (int)ev->a);
	if (!t)
		return;
	if (t->state == TOPM_SCHEDULED) {
		uint64_t d = since(t->since_ns, ev->ns);
		hist_add(t->hist_sched, d);
		if (d > t->max_sched_ns)
			t->max_sched_ns = d;
		if (d >= m->cfg.sched_delay_ns) {
			t->delay_ns = d;
			t->delay_at = ev->ns;
		}
	}
	if (t->state == TOPM_DONE) /* an id the runtime reused, or a stale done */
		m->ndone--;
	enter(m, t, TOPM_RUNNING, ev->ns);
	t->notified = 0;
	t->worker = (int16_t)(ev->a < TOPM_MAX_WORKERS ? (int)ev->a : -1);
	task_ev(m, t, ev);
	if (w) {
		w->current = t->id;
		w->poll_start = ev->ns;
		w->parked = 0;
	}
}

static NOINLINE void ev_poll_end(topm_model *m, const spc_event *ev)
{
	topm_task *t = task_get_or_new(m, ev->b, ev->ns);
	topm_worker *w = worker_at(m, ev->worker);
	if (!t)
		return;
	uint64_t d = 0;
	if (t->state == TOPM_RUNNING) {
		d = since(t->since_ns, ev->ns);
		hist_add(t->hist_poll, d);
		if (d > t->max_poll_ns)
			t->max_poll_ns = d;
		if (d >= m->cfg.long_poll_ns) {
			t->long_poll_ns = d;
			t->long_poll_at = ev->ns;
		}
	}
	t->polls++;
	if (t->state != TOPM_DONE) {
		unsigned st = (ev->a & SP_POLL_READY) ? TOPM_DONE
			      : t->notified	      ? TOPM_SCHEDULED
						      : TOPM_IDLE;
		enter(m, t, st, ev->ns);
	}
	t->notified = 0;
	task_ev(m, t, ev);
	if (w) {
		if (w->current == t->id)
			w->current = 0;
		w->polls++;
		w->busy_ns += d;
	}
}

static NOINLINE void ev_wake(topm_model *m, const spc_event *ev)
{
	topm_task *t = task_get_or_new(m, ev->b, ev->ns);
	if (!t)
		return;
	t->wakes++;
	if (ev->a & SP_WAKE_SELF)
		t->self_wakes++;
	if (ev->a & SP_WAKE_BY_VALUE)
		t->drops++;
	if (t->state == TOPM_RUNNING)
		t->notified = 1;
	else if (t->state == TOPM_IDLE)
		enter(m, t, TOPM_SCHEDULED, ev->ns);
	task_ev(m, t, ev);
}

static NOINLINE void ev_spawn(topm_model *m, const spc_event *ev)
{
	topm_task *t = task_get(m, ev->b);
	if (!t) {
		t = task_new(m, ev->b, ev->ns);
		if (!t)
			return;
		t->state = TOPM_SCHEDULED;
	}
	/* Its birth: no waker of it existed before, so the counts are
	 * complete even if an event of its first poll came first (a worker's
	 * POLL_START carries that worker's last clock reading). */
	t->counts_known = 1;
	t->parent = ev->task;
	t->site = ev->a;
	t->spawn_ns = ev->ns;
	task_ev(m, t, ev);
	topm_task *p = task_get(m, ev->task);
	if (p)
		task_ev(m, p, ev);
}

/* The events that are not the bulk of a busy stream. */
static NOINLINE void ev_other(topm_model *m, const spc_event *ev)
{
	topm_task *t;
	topm_worker *w;
	switch (ev->type) {
	case SP_EV_STEAL:
		if ((w = worker_at(m, ev->worker)))
			w->steals_in += ev->b;
		if ((w = worker_at(m, (int)ev->a)))
			w->steals_out += ev->b;
		break;
	case SP_EV_PARK:
		if ((w = worker_at(m, (int)ev->a))) {
			w->parks++;
			w->parked = 1;
		}
		break;
	case SP_EV_UNPARK:
		if ((w = worker_at(m, (int)ev->a)))
			w->parked = 0;
		break;
	case SP_EV_WAKER_CLONE:
	case SP_EV_WAKER_DROP:
		if ((t = task_get_or_new(m, ev->b, ev->ns))) {
			if (ev->type == SP_EV_WAKER_CLONE)
				t->clones++;
			else
				t->drops++;
			task_ev(m, t, ev);
		}
		break;
	case SP_EV_INJECT_PUSH:
	case SP_EV_INJECT_POP:
		if ((t = task_get(m, ev->b)))
			task_ev(m, t, ev);
		break;
	case SP_EV_TASK_DONE:
		if ((t = task_get_or_new(m, ev->b, ev->ns))) {
			if (t->state != TOPM_DONE)
				enter(m, t, TOPM_DONE, ev->ns);
			t->aborted = ev->a == 1;
			task_ev(m, t, ev);
		}
		break;
	case SP_EV_THREAD:
		if (ev->b == SP_THREAD_WORKER && (w = worker_at(m, (int)ev->a)))
			w->tid = ev->tid;
		break;
	default:
		break; /* blocking, timers, I/O: not per task */
	}
}

/* Every case is a tail call of a function of its own: the dispatcher
 * itself then saves no registers (with the handlers inlined, saving and
 * restoring six of them was a tenth of the model's cost per event). */
static inline void event(topm_model *m, const spc_event *ev)
{
	topm_worker *w;
	m->events++;
	if (ev->worker >= 0 && (w = worker_at(m, ev->worker)) && ev->tid)
		w->tid = ev->tid;
	switch (ev->type) {
	case SP_EV_SPAWN:
		ev_spawn(m, ev);
		break;
	case SP_EV_POLL_START:
		ev_poll_start(m, ev);
		break;
	case SP_EV_POLL_END:
		ev_poll_end(m, ev);
		break;
	case SP_EV_WAKE:
		ev_wake(m, ev);
		break;
	default:
		ev_other(m, ev);
		break;
	}
}

void topm_event(topm_model *m, const spc_event *ev)
{
	event(m, ev);
}

void topm_event_cb(const spc_event *ev, void *m)
{
	event(m, ev);
}

/* ---- the task table ----------------------------------------------------------------------- */

void topm_snapshot_begin(topm_model *m, uint64_t now)
{
	m->snap_begin = now;
}

static inline void raise64(uint64_t *v, uint64_t to)
{
	if (to > *v)
		*v = to;
}

static void seed_task(topm_model *m, topm_task *t, const sp__seg_task *s, uint64_t spawn_ns,
		      uint64_t last_ns)
{
	uint64_t now = m->snap_begin;
	t->spawn_ns = spawn_ns && spawn_ns <= now ? spawn_ns : now;
	t->parent = s->parent;
	t->site = s->site != SP_SITE_NONE ? s->site : site_intern(m, s->name, s->file, s->line);
	t->counts_known = 1;
	t->clones = s->waker_clones;
	t->drops = s->waker_drops;
	uint64_t at = s->polls && last_ns && last_ns <= now ? last_ns : t->spawn_ns;
	if (s->state & SP_TASK_COMPLETE) {
		t->state = TOPM_DONE;
		t->done_ns = at;
		m->ndone++;
	} else if (s->state & SP_TASK_RUNNING) {
		t->state = TOPM_RUNNING; /* poll start unknown: its age counts from now */
		at = now;
	} else if (s->state & SP_TASK_NOTIFIED || !s->polls) {
		t->state = TOPM_SCHEDULED;
	} else {
		t->state = TOPM_IDLE;
	}
	t->since_ns = at;
	/* before we watched: busy from the table, the rest counted as idle */
	t->busy_ns = s->busy_ns;
	t->idle_ns = since(t->spawn_ns + s->busy_ns, at);
}

void topm_snapshot_task(topm_model *m, const sp__seg_task *s, uint64_t spawn_ns, uint64_t last_ns)
{
	if (!s->id)
		return;
	topm_task *t = topm_task_get(m, s->id);
	if (!t) {
		if (!(t = task_new(m, s->id, m->snap_begin)))
			return;
		seed_task(m, t, s, spawn_ns, last_ns);
	} else if (!t->counts_known) {
		t->counts_known = 1;
		raise64(&t->clones, s->waker_clones);
		raise64(&t->drops, s->waker_drops);
	} else {
		raise64(&t->clones, s->waker_clones);
		raise64(&t->drops, s->waker_drops);
	}
	if (t->site == SP_SITE_NONE)
		t->site = s->site != SP_SITE_NONE ? s->site
						  : site_intern(m, s->name, s->file, s->line);
	if (!t->parent)
		t->parent = s->parent;
	raise64(&t->polls, s->polls);
	raise64(&t->wakes, s->wakes);
	raise64(&t->self_wakes, s->self_wakes);
	raise64(&t->busy_ns, s->busy_ns);
	t->missing = SEEN_MARK;
}

static void each_task(topm_model *m, void (*fn)(topm_model *, topm_task *, void *), void *arg)
{
	for (uint32_t i = 0; i < m->used; i++) {
		topm_task *t = rec(m, i);
		if (t->id)
			fn(m, t, arg);
	}
}

struct snap_end {
	uint64_t now;
	int complete;
};

static void snap_end_one(topm_model *m, topm_task *t, void *arg)
{
	struct snap_end *se = arg;
	if (t->missing == SEEN_MARK) {
		t->missing = 0;
		return;
	}
	if (t->state == TOPM_DONE || !se->complete || t->spawn_ns >= m->snap_begin)
		return;
	/* Gone from the table twice in a row: it ended and we missed TASK_DONE. */
	if (++t->missing >= 2)
		enter(m, t, TOPM_DONE, se->now);
}

void topm_snapshot_end(topm_model *m, uint64_t now, int complete)
{
	struct snap_end se = {now, complete};
	each_task(m, snap_end_one, &se);
}

/* ---- tick: expiry, rates, warnings ---------------------------------------------------------- */

static int cmp_done(const void *a, const void *b)
{
	const topm_task *x = *(topm_task *const *)a, *y = *(topm_task *const *)b;
	return x->done_ns < y->done_ns ? -1 : x->done_ns > y->done_ns;
}

static void expire(topm_model *m, uint64_t now)
{
	for (uint32_t i = 0; i < m->used; i++) {
		topm_task *t = rec(m, i);
		if (t->id && t->state == TOPM_DONE && since(t->done_ns, now) > m->cfg.keep_done_ns)
			task_remove(m, t);
	}
	if (m->ndone <= m->cfg.max_done)
		return;
	topm_task **d = malloc(sizeof *d * m->ndone);
	if (!d)
		return;
	size_t n = 0;
	for (uint32_t i = 0; i < m->used && n < m->ndone; i++) {
		topm_task *t = rec(m, i);
		if (t->id && t->state == TOPM_DONE)
			d[n++] = t;
	}
	qsort(d, n, sizeof *d, cmp_done);
	for (size_t i = 0; i + m->cfg.max_done < n; i++)
		task_remove(m, d[i]);
	free(d);
}

static void warn_add(topm_model *m, unsigned kind, int live, int worker, uint64_t task,
		     uint64_t value, uint64_t at)
{
	m->warns_total++;
	if (m->nwarns == TOPM_MAX_WARNINGS)
		return;
	m->warns[m->nwarns++] = (topm_warning){.kind = (uint8_t)kind,
					       .live = (uint8_t)live,
					       .worker = (int16_t)worker,
					       .task = task,
					       .value_ns = value,
					       .at_ns = at};
}

static void warn_task(topm_model *m, topm_task *t, void *arg)
{
	const topm_config *c = &m->cfg;
	uint64_t now = m->now;
	(void)arg;
	t->warn = 0;
	if (t->state == TOPM_DONE)
		return;
	uint64_t age = since(t->since_ns, now);
	if (t->state == TOPM_RUNNING && age >= c->long_poll_ns) {
		t->warn |= 1u << TOPM_W_LONG_POLL;
		warn_add(m, TOPM_W_LONG_POLL, 1, t->worker, t->id, age, now);
	} else if (t->long_poll_at && since(t->long_poll_at, now) <= c->warn_hold_ns) {
		t->warn |= 1u << TOPM_W_LONG_POLL;
		warn_add(m, TOPM_W_LONG_POLL, 0, t->worker, t->id, t->long_poll_ns,
			 t->long_poll_at);
	}
	if (t->state == TOPM_SCHEDULED && age >= c->sched_delay_ns) {
		t->warn |= 1u << TOPM_W_SCHED_DELAY;
		warn_add(m, TOPM_W_SCHED_DELAY, 1, -1, t->id, age, now);
	} else if (t->delay_at && since(t->delay_at, now) <= c->warn_hold_ns) {
		t->warn |= 1u << TOPM_W_SCHED_DELAY;
		warn_add(m, TOPM_W_SCHED_DELAY, 0, -1, t->id, t->delay_ns, t->delay_at);
	}
	if (t->state == TOPM_IDLE && topm_task_wakers(t) == 0 && age >= c->lost_waker_ns) {
		t->warn |= 1u << TOPM_W_LOST_WAKER;
		warn_add(m, TOPM_W_LOST_WAKER, 1, -1, t->id, age, now);
	}
	if (t->wakes >= c->self_wake_min && t->self_wakes * 100 > t->wakes * c->self_wake_pct) {
		t->warn |= 1u << TOPM_W_SELF_WAKE;
		warn_add(m, TOPM_W_SELF_WAKE, 1, -1, t->id, t->self_wakes * 100 / t->wakes, now);
	}
}

static int cmp_warn(const void *a, const void *b)
{
	const topm_warning *x = a, *y = b;
	if (x->live != y->live)
		return y->live - x->live;
	if (x->kind != y->kind)
		return x->kind - y->kind;
	if (x->value_ns != y->value_ns)
		return x->value_ns < y->value_ns ? 1 : -1;
	return x->task < y->task ? -1 : x->task > y->task;
}

void topm_tick(topm_model *m, uint64_t now)
{
	uint64_t dt = since(m->last_tick, now);
	m->now = now;
	expire(m, now);
	for (unsigned i = 0; i < m->nworkers; i++) {
		topm_worker *w = &m->workers[i];
		uint64_t busy = w->busy_ns + (w->current ? since(w->poll_start, now) : 0);
		if (m->last_tick && dt) {
			w->busy_pct = 100.0 * (double)since(w->last_busy_ns, busy) / (double)dt;
			if (w->busy_pct > 100.0)
				w->busy_pct = 100.0;
			w->polls_per_s = 1e9 * (double)since(w->last_polls, w->polls) / (double)dt;
		}
		w->last_busy_ns = busy;
		w->last_polls = w->polls;
	}
	m->last_tick = now;
	m->nwarns = m->warns_total = 0;
	each_task(m, warn_task, NULL);
	for (unsigned i = 0; i < m->nworkers; i++) {
		topm_worker *w = &m->workers[i];
		uint64_t age = w->current ? since(w->poll_start, now) : 0;
		if (w->current && age >= m->cfg.blocked_ns) {
			warn_add(m, TOPM_W_BLOCKED_WORKER, 1, (int)i, w->current, age, now);
			topm_task *t = topm_task_get(m, w->current);
			if (t)
				t->warn |= 1u << TOPM_W_BLOCKED_WORKER;
		}
	}
	size_t nk = m->nkern < TOPM_MAX_KERNEL ? m->nkern : TOPM_MAX_KERNEL;
	for (size_t i = 0; i < nk; i++) {
		const struct kfind *k = &m->kern[i];
		if (since(k->at_ns, now) > m->cfg.warn_hold_ns)
			continue;
		warn_add(m, TOPM_W_KERNEL, 0, k->worker, k->task, k->dur_ns, k->at_ns);
		topm_task *t = topm_task_get(m, k->task);
		if (t)
			t->warn |= 1u << TOPM_W_KERNEL;
	}
	qsort(m->warns, m->nwarns, sizeof m->warns[0], cmp_warn);
}

void topm_kernel_finding(topm_model *m, uint64_t task, int worker, uint64_t at_ns,
			 uint64_t dur_ns, const char *text)
{
	struct kfind *k = &m->kern[m->nkern++ % TOPM_MAX_KERNEL];
	k->task = task;
	k->worker = worker;
	k->at_ns = at_ns;
	k->dur_ns = dur_ns;
	snprintf(k->text, sizeof k->text, "%s", text ? text : "");
}

/* ---- queries ----------------------------------------------------------------------------------
 */

size_t topm_task_count(const topm_model *m, size_t *live, size_t *done)
{
	if (live)
		*live = m->ntasks - m->ndone;
	if (done)
		*done = m->ndone;
	return m->ntasks;
}

unsigned topm_worker_count(const topm_model *m)
{
	return m->nworkers;
}

const topm_worker *topm_worker_get(const topm_model *m, unsigned w)
{
	return w < m->nworkers ? &m->workers[w] : NULL;
}

const topm_warning *topm_warnings(const topm_model *m, size_t *n, size_t *total)
{
	*n = m->nwarns;
	if (total)
		*total = m->warns_total;
	return m->warns;
}

uint64_t topm_events_seen(const topm_model *m)
{
	return m->events;
}

uint64_t topm_now(const topm_model *m)
{
	return m->now;
}

uint64_t topm_task_total(const topm_model *m, const topm_task *t)
{
	return since(t->spawn_ns, t->state == TOPM_DONE ? t->done_ns : m->now);
}

void topm_task_times(const topm_model *m, const topm_task *t, uint64_t *busy, uint64_t *sched,
		     uint64_t *idle)
{
	uint64_t open = t->state == TOPM_DONE ? 0 : since(t->since_ns, m->now);
	*busy = t->busy_ns + (t->state == TOPM_RUNNING ? open : 0);
	*sched = t->sched_ns + (t->state == TOPM_SCHEDULED ? open : 0);
	*idle = t->idle_ns + (t->state == TOPM_IDLE ? open : 0);
}

uint64_t topm_task_poll_age(const topm_model *m, const topm_task *t)
{
	return t->state == TOPM_RUNNING ? since(t->since_ns, m->now) : 0;
}

int64_t topm_task_wakers(const topm_task *t)
{
	if (!t->counts_known)
		return -1;
	return t->clones > t->drops ? (int64_t)(t->clones - t->drops) : 0;
}

const char *topm_state_name(unsigned state)
{
	static const char *n[] = {"scheduled", "running", "idle", "done"};
	return state < 4 ? n[state] : "?";
}

const char *topm_warn_name(unsigned kind)
{
	static const char *n[] = {"long-poll", "lost-waker",	 "self-wake",
				  "sched-delay", "blocked-worker", "kernel"};
	return kind < TOPM_W__COUNT ? n[kind] : "?";
}

const char *topm_warn_short(unsigned kind)
{
	static const char *n[] = {"P", "L", "S", "D", "B", "K"};
	return kind < TOPM_W__COUNT ? n[kind] : "?";
}

void topm_warning_text(topm_model *m, const topm_warning *w, char *buf, size_t n)
{
	char v[32], ago[32];
	topm_fmt_ns(w->value_ns, v, sizeof v);
	topm_fmt_ns(since(w->at_ns, m->now), ago, sizeof ago);
	switch (w->kind) {
	case TOPM_W_LONG_POLL:
		if (w->live)
			snprintf(buf, n,
				 "in one poll for %s now, starving its worker's other tasks", v);
		else
			snprintf(buf, n,
				 "a poll took %s (%s ago): compute or a blocking call "
				 "between awaits",
				 v, ago);
		break;
	case TOPM_W_LOST_WAKER:
		snprintf(buf, n,
			 "pending for %s with no waker held and not scheduled: it will "
			 "never run again",
			 v);
		break;
	case TOPM_W_SELF_WAKE:
		snprintf(buf, n,
			 "%llu%% of its wakes are self-wakes: it yields and spins instead "
			 "of waiting",
			 (unsigned long long)w->value_ns);
		break;
	case TOPM_W_SCHED_DELAY:
		if (w->live)
			snprintf(buf, n, "woken %s ago and not polled yet: the workers are busy",
				 v);
		else
			snprintf(buf, n, "waited %s from wake to poll (%s ago)", v, ago);
		break;
	case TOPM_W_BLOCKED_WORKER:
		snprintf(buf, n, "worker %d stuck in one poll of this task for %s", w->worker, v);
		break;
	case TOPM_W_KERNEL: {
		const char *text = "";
		size_t nk = m->nkern < TOPM_MAX_KERNEL ? m->nkern : TOPM_MAX_KERNEL;
		for (size_t i = 0; i < nk; i++)
			if (m->kern[i].task == w->task && m->kern[i].at_ns == w->at_ns)
				text = m->kern[i].text;
		snprintf(buf, n, "eBPF: a %s poll (%s ago): %s", v, ago, text);
		break;
	}
	default:
		snprintf(buf, n, "?");
	}
}

size_t topm_children(const topm_model *m, uint64_t id, uint64_t *out, size_t max)
{
	size_t n = 0;
	for (uint32_t i = 0; i < m->used; i++) {
		const topm_task *t = rec(m, i);
		if (t->id && t->parent == id) {
			if (n < max)
				out[n] = t->id;
			n++;
		}
	}
	return n;
}

void topm_focus(topm_model *m, uint64_t id)
{
	if (m->focus_id == id)
		return;
	m->focus_id = id;
	m->focus_head = m->focus_count = 0;
	const topm_task *t = topm_task_get(m, id);
	for (unsigned i = 0; t && i < t->ev_count; i++)
		focus_push(m, &t->ev[(t->ev_head + i) % TOPM_TASK_EVENTS]);
}

size_t topm_focus_events(const topm_model *m, topm_ev *out, size_t max)
{
	size_t skip = m->focus_count > max ? m->focus_count - max : 0, n = 0;
	for (size_t i = skip; i < m->focus_count; i++)
		out[n++] = m->focus[(m->focus_head + i) % TOPM_FOCUS_EVENTS];
	return n;
}

/* ---- columns, sorting, filtering ----------------------------------------------------------------
 */

const topm_coldef topm_cols[TOPM_COL__COUNT] = {
	[TOPM_COL_WARN] = {"warn", "WARN", -4, 1},    [TOPM_COL_ID] = {"id", "ID", 7, 0},
	[TOPM_COL_STATE] = {"state", "STATE", -9, 0}, [TOPM_COL_NAME] = {"name", "NAME", -14, 0},
	[TOPM_COL_TOTAL] = {"total", "TOTAL", 8, 1},  [TOPM_COL_BUSY] = {"busy", "BUSY", 8, 1},
	[TOPM_COL_SCHED] = {"sched", "SCHED", 8, 1},  [TOPM_COL_IDLE] = {"idle", "IDLE", 8, 1},
	[TOPM_COL_POLLS] = {"polls", "POLLS", 8, 1},  [TOPM_COL_WAKES] = {"wakes", "WAKES", 8, 1},
	[TOPM_COL_SELF] = {"self", "SELF%", 5, 1},    [TOPM_COL_AGE] = {"age", "POLLAGE", 8, 1},
	[TOPM_COL_WORKER] = {"worker", "W", 3, 0},    [TOPM_COL_LOC] = {"loc", "LOCATION", -24, 0},
};

int topm_col_by_key(const char *key)
{
	for (int i = 0; i < TOPM_COL__COUNT; i++)
		if (!strcmp(key, topm_cols[i].key))
			return i;
	return -1;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

struct sort_ctx {
	topm_model *m;
	int col, dir; /* dir: 1 ascending, -1 descending */
};

static int warn_rank(uint32_t w)
{
	/* the lost waker first, then live hazards */
	return (w >> TOPM_W_KERNEL & 1) * 32 + (w >> TOPM_W_LOST_WAKER & 1) * 16 +
	       (w >> TOPM_W_BLOCKED_WORKER & 1) * 8 +
	       (w >> TOPM_W_LONG_POLL & 1) * 4 + (w >> TOPM_W_SCHED_DELAY & 1) * 2 +
	       (w >> TOPM_W_SELF_WAKE & 1);
}

static uint64_t num_key(topm_model *m, const topm_task *t, int col)
{
	uint64_t b, s, i;
	switch (col) {
	case TOPM_COL_WARN:
		return (uint64_t)warn_rank(t->warn);
	case TOPM_COL_ID:
		return t->id;
	case TOPM_COL_STATE:
		return t->state;
	case TOPM_COL_TOTAL:
		return topm_task_total(m, t);
	case TOPM_COL_BUSY:
	case TOPM_COL_SCHED:
	case TOPM_COL_IDLE:
		topm_task_times(m, t, &b, &s, &i);
		return col == TOPM_COL_BUSY ? b : col == TOPM_COL_SCHED ? s : i;
	case TOPM_COL_POLLS:
		return t->polls;
	case TOPM_COL_WAKES:
		return t->wakes;
	case TOPM_COL_SELF:
		return t->wakes ? t->self_wakes * 1000 / t->wakes : 0;
	case TOPM_COL_AGE:
		return topm_task_poll_age(m, t);
	case TOPM_COL_WORKER:
		return (uint64_t)(t->worker + 1);
	default:
		return 0;
	}
}

static int cmp_task(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *c = arg;
	const topm_task *x = *(topm_task *const *)a, *y = *(topm_task *const *)b;
	int r = 0;
	if (c->col == TOPM_COL_NAME) {
		r = strcmp(topm_site_get(c->m, x->site)->name, topm_site_get(c->m, y->site)->name);
	} else if (c->col == TOPM_COL_LOC) {
		const topm_site *sx = topm_site_get(c->m, x->site),
				*sy = topm_site_get(c->m, y->site);
		r = strcmp(base_name(sx->file), base_name(sy->file));
		if (!r)
			r = sx->line < sy->line ? -1 : sx->line > sy->line;
	} else {
		uint64_t kx = num_key(c->m, x, c->col), ky = num_key(c->m, y, c->col);
		r = kx < ky ? -1 : kx > ky;
	}
	if (r)
		return r * c->dir;
	return x->id < y->id ? -1 : x->id > y->id; /* ties: by id, always ascending */
}

/* Numeric columns: the key of each task computed once, then sorted (the
 * comparator of cmp_task would compute it O(n log n) times). */
struct vkey {
	uint64_t k, id;
	topm_task *t;
};

static int cmp_vkey(const void *a, const void *b, void *arg)
{
	const struct vkey *x = a, *y = b;
	int dir = *(const int *)arg;
	if (x->k != y->k)
		return (x->k < y->k ? -1 : 1) * dir;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Move the `lim` smallest keys (in cmp_vkey order) to k[0 .. lim), in no
 * particular order (quickselect, expected O(n)). */
static void select_first(struct vkey *k, size_t n, size_t lim, int *dir)
{
	size_t lo = 0, hi = n; /* the boundary lim lies in [lo, hi) */
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ n;
	while (hi - lo > 1) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		struct vkey p = k[lo + rng % (hi - lo)];
		/* three-way partition of [lo, hi) around p */
		size_t lt = lo, i = lo, gt = hi;
		while (i < gt) {
			int c = cmp_vkey(&k[i], &p, dir);
			if (c < 0) {
				struct vkey t = k[lt];
				k[lt++] = k[i];
				k[i++] = t;
			} else if (c > 0) {
				struct vkey t = k[--gt];
				k[gt] = k[i];
				k[i] = t;
			} else {
				i++;
			}
		}
		if (lim < lt)
			hi = lt;
		else if (lim >= gt)
			lo = gt;
		else
			return;
	}
}

static int sort_by_key(topm_model *m, const struct sort_ctx *c, topm_task **v, size_t n,
		       size_t limit)
{
	struct vkey *k = malloc(sizeof *k * (n ? n : 1));
	if (!k)
		return 0;
	for (size_t i = 0; i < n; i++)
		k[i] = (struct vkey){num_key(m, v[i], c->col), v[i]->id, v[i]};
	int dir = c->dir;
	size_t sorted = n;
	if (limit && limit < n / 2) {
		/* a screen of 100,000 rows: order the head only */
		select_first(k, n, limit, &dir);
		sorted = limit;
	}
	qsort_r(k, sorted, sizeof *k, cmp_vkey, &dir);
	for (size_t i = 0; i < n; i++)
		v[i] = k[i].t;
	free(k);
	return 1;
}

static int contains_ci(const char *hay, const char *needle)
{
	size_t nl = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, nl))
			return 1;
	return nl == 0;
}

static int matches(topm_model *m, const topm_task *t, const char *f)
{
	const topm_site *s = topm_site_get(m, t->site);
	char loc[SP__SEG_SITE_FILE_LEN + 16];
	if (contains_ci(s->name, f))
		return 1;
	snprintf(loc, sizeof loc, "%s:%u", s->file, s->line);
	return contains_ci(loc, f);
}

size_t topm_view(topm_model *m, const topm_view_opts *o, topm_task ***out, size_t *cap)
{
	size_t n = 0;
	int filt = o->filter && o->filter[0];
	if (*cap < m->ntasks) {
		size_t nc = m->ntasks + m->ntasks / 4 + 16;
		topm_task **p = realloc(*out, sizeof *p * nc);
		if (!p)
			return 0;
		*out = p;
		*cap = nc;
	}
	for (uint32_t i = 0; i < m->used && n < *cap; i++) {
		topm_task *t = rec(m, i);
		if (!t->id || (t->state == TOPM_DONE && !o->show_done))
			continue;
		if (filt && !matches(m, t, o->filter))
			continue;
		(*out)[n++] = t;
	}
	int col = o->sort_col >= 0 && o->sort_col < TOPM_COL__COUNT ? o->sort_col : TOPM_COL_ID;
	struct sort_ctx c = {m, col, topm_cols[col].desc ? -1 : 1};
	if (o->reverse)
		c.dir = -c.dir;
	if (col == TOPM_COL_NAME || col == TOPM_COL_LOC || !sort_by_key(m, &c, *out, n, o->limit))
		qsort_r(*out, n, sizeof **out, cmp_task, &c);
	return n;
}

/* ---- formatting
 * ---------------------------------------------------------------------------------- */

void topm_fmt_ns(uint64_t ns, char *buf, size_t n)
{
	if (ns < 1000)
		snprintf(buf, n, "%lluns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, n, "%lluus", (unsigned long long)(ns / 1000));
	else if (ns < 10000000)
		snprintf(buf, n, "%.2fms", (double)ns / 1e6);
	else if (ns < 1000000000)
		snprintf(buf, n, "%.1fms", (double)ns / 1e6);
	else if (ns < 60000000000ull)
		snprintf(buf, n, "%.2fs", (double)ns / 1e9);
	else
		snprintf(buf, n, "%llum%02llus", (unsigned long long)(ns / 60000000000ull),
			 (unsigned long long)(ns / 1000000000ull % 60));
}

void topm_cell(topm_model *m, const topm_task *t, int col, char *buf, size_t n)
{
	const topm_site *s;
	uint64_t b, sc, i;
	buf[0] = 0;
	switch (col) {
	case TOPM_COL_WARN: {
		size_t k = 0;
		for (unsigned w = 0; w < TOPM_W__COUNT && k + 1 < n; w++)
			if (t->warn & (1u << w))
				buf[k++] = topm_warn_short(w)[0];
		buf[k] = 0;
		break;
	}
	case TOPM_COL_ID:
		snprintf(buf, n, "%llu", (unsigned long long)t->id);
		break;
	case TOPM_COL_STATE:
		snprintf(buf, n, "%s",
			 t->state == TOPM_DONE && t->aborted ? "aborted"
							     : topm_state_name(t->state));
		break;
	case TOPM_COL_NAME:
		snprintf(buf, n, "%s", topm_site_get(m, t->site)->name);
		break;
	case TOPM_COL_TOTAL:
		topm_fmt_ns(topm_task_total(m, t), buf, n);
		break;
	case TOPM_COL_BUSY:
	case TOPM_COL_SCHED:
	case TOPM_COL_IDLE:
		topm_task_times(m, t, &b, &sc, &i);
		topm_fmt_ns(col == TOPM_COL_BUSY ? b : col == TOPM_COL_SCHED ? sc : i, buf, n);
		break;
	case TOPM_COL_POLLS:
		snprintf(buf, n, "%llu", (unsigned long long)t->polls);
		break;
	case TOPM_COL_WAKES:
		snprintf(buf, n, "%llu", (unsigned long long)t->wakes);
		break;
	case TOPM_COL_SELF:
		if (t->wakes)
			snprintf(buf, n, "%llu",
				 (unsigned long long)(t->self_wakes * 100 / t->wakes));
		else
			snprintf(buf, n, "-");
		break;
	case TOPM_COL_AGE:
		if (t->state == TOPM_RUNNING)
			topm_fmt_ns(topm_task_poll_age(m, t), buf, n);
		else
			snprintf(buf, n, "-");
		break;
	case TOPM_COL_WORKER:
		if (t->worker >= 0)
			snprintf(buf, n, "%d", t->worker);
		else
			snprintf(buf, n, "-");
		break;
	case TOPM_COL_LOC:
		s = topm_site_get(m, t->site);
		if (s == &m->unknown)
			snprintf(buf, n, "?");
		else
			snprintf(buf, n, "%s:%u", base_name(s->file), s->line);
		break;
	default:
		break;
	}
}
