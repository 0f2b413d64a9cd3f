/*
 * stream.c - following a live process's rings as one time-ordered stream
 * (stream.h has the contract).
 *
 * Each poll reads every ring to its head in batches, annotates each record
 * with its ring's context (thread kind, worker, task being polled) and
 * appends it to that ring's held-back queue, which is kept sorted by (time,
 * sequence): a ring's records almost always are already. Delivery merges the
 * queues' heads with a binary heap of rings keyed by (time, ring) and stops
 * at the first event newer than the watermark (now - slack): the order of
 * one buffer of all rings sorted by (time, ring, sequence), as the stream
 * was first built, without merging every ring's records into one buffer (at
 * 25M events/s that merge copied each event once more, a sixth of the
 * reader's instructions). The queues only ever hold about one slack's worth
 * of events plus one poll's reads.
 */
#include "clock.h"
#include "stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_BATCH 4096

/* Events read from a ring and not delivered yet, sorted by ev_cmp. */
struct held {
	spc_event *buf; /* the allocation */
	spc_event *ev;	/* the oldest held: buf + off */
	size_t off;	/* delivered events before ev */
	size_t n, cap;	/* cap counts from ev to the allocation's end */
};

struct ring_ctx {
	struct held q;
	uint64_t cursor;   /* next sequence number wanted */
	uint64_t lost;	   /* records missed so far */
	uint64_t cur_task; /* task whose poll is open on this ring, 0 none */
	int32_t worker;	   /* -1 unknown or not a worker */
	uint32_t kind;	   /* SP_THREAD_*, 0 unknown */
	uint32_t tid;	   /* owner when last read */
};

struct site_cache {
	int known;
	spc_site site;
};

struct spc_stream {
	sp__seg_reader r;
	struct ring_ctx *rings;
	uint32_t *heap;	 /* deliver's heap of rings, nrings entries */
	spc_event *tmp;	 /* settle's scratch, kept between polls */
	size_t captmp;
	sp__ring_event *batch;
	struct site_cache *sites;
	uint64_t delivered;
	uint64_t last_ns; /* time of the last event delivered in order */
	int table_rc;	  /* the last sp__seg_table_request */
};

static const char *const names[SP_EV__COUNT] = {
	[SP_EV_SPAWN] = "spawn",
	[SP_EV_POLL_START] = "poll_start",
	[SP_EV_POLL_END] = "poll_end",
	[SP_EV_WAKE] = "wake",
	[SP_EV_STEAL] = "steal",
	[SP_EV_PARK] = "park",
	[SP_EV_UNPARK] = "unpark",
	[SP_EV_WAKER_CLONE] = "waker_clone",
	[SP_EV_WAKER_DROP] = "waker_drop",
	[SP_EV_INJECT_PUSH] = "inject_push",
	[SP_EV_INJECT_POP] = "inject_pop",
	[SP_EV_TASK_DONE] = "task_done",
	[SP_EV_BLOCKING_START] = "blocking_start",
	[SP_EV_BLOCKING_END] = "blocking_end",
	[SP_EV_TIMER_FIRE] = "timer_fire",
	[SP_EV_IO_READY] = "io_ready",
	[SP_EV_THREAD] = "thread",
	[SP_EV_INJECT_POPS] = "inject_pops",
};

const char *spc_event_name(uint32_t type)
{
	if (type < SP_EV__COUNT && names[type])
		return names[type];
	return "unknown";
}

void spc_event_detail(uint32_t type, uint32_t a, char *buf, size_t n)
{
	static const char *const src[] = {"a task", "the reactor", "a timer", "the blocking pool",
					  "a foreign thread", "a join"};
	static const char *const q[] = {"no queue (already scheduled)", "the LIFO slot",
					"the local queue", "the injection queue"};
	static const char *const hold[] = {"user code", "the reactor", "a timer",
					   "a channel",	"a sync primitive", "a join handle",
					   "the blocking pool", "a select"};
	char fd[24] = "";
	buf[0] = 0;
	switch (type) {
	case SP_EV_POLL_START:
		snprintf(buf, n, "on worker %u", a);
		break;
	case SP_EV_POLL_END: {
		unsigned selfs = (a >> SP_POLL_SELF_SHIFT) & SP_POLL_SELF_MAX;
		char sw[40] = "";
		if (selfs == 1)
			snprintf(sw, sizeof sw, ", woke itself");
		else if (selfs > 1)
			snprintf(sw, sizeof sw, ", woke itself %u times", selfs);
		snprintf(buf, n, "%s%s%s%s", a & SP_POLL_READY ? "ready" : "pending",
			 a & SP_POLL_CANCELLED ? ", cancelled" : "",
			 a >> SP_POLL_BUDGET_SHIFT ? ", budget spent" : "", sw);
		break;
	}
	case SP_EV_WAKE: {
		unsigned s = (a & SP_WAKE_SRC_MASK) >> SP_WAKE_SRC_SHIFT;
		unsigned d = a >> SP_WAKE_DETAIL_SHIFT;
		if (s == SP_WAKE_SRC_REACTOR && d != SP_WAKE_DETAIL_NONE)
			snprintf(fd, sizeof fd, " (fd %u)", d);
		snprintf(buf, n, "from %s%s to %s%s%s", s < 6 ? src[s] : "?", fd,
			 q[(a & SP_WAKE_Q_MASK) >> SP_WAKE_Q_SHIFT], a & SP_WAKE_SELF ? ", self" : "",
			 a & SP_WAKE_BY_VALUE ? ", by value" : "");
		break;
	}
	case SP_EV_WAKER_CLONE:
	case SP_EV_WAKER_DROP: {
		unsigned k = a & 0xff, d = a >> 8;
		if (k == SP_HOLD_REACTOR && d != SP_WAKE_DETAIL_NONE)
			snprintf(fd, sizeof fd, " (fd %u)", d);
		snprintf(buf, n, "%s %s%s", type == SP_EV_WAKER_CLONE ? "held by" : "let go by",
			 k < 8 ? hold[k] : "?", fd);
		break;
	}
	case SP_EV_TASK_DONE:
		snprintf(buf, n, "%s", a ? "aborted" : "completed");
		break;
	case SP_EV_INJECT_POP:
	case SP_EV_INJECT_POPS: /* b: how many */
		snprintf(buf, n, "by worker %u", a);
		break;
	default:
		snprintf(buf, n, "a=0x%x", a);
	}
}

int spc_stream_open_reader(spc_stream **out, sp__seg_reader *r, unsigned flags)
{
	spc_stream *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->r = *r;
	unsigned n = s->r.hdr.nrings;
	s->rings = calloc(n ? n : 1, sizeof *s->rings);
	s->batch = malloc(READ_BATCH * sizeof *s->batch);
	s->heap = malloc((n ? n : 1) * sizeof *s->heap);
	s->sites = calloc(s->r.hdr.site_slots ? s->r.hdr.site_slots : 1, sizeof *s->sites);
	if (!s->rings || !s->heap || !s->batch || !s->sites) {
		free(s->rings);
		free(s->heap);
		free(s->batch);
		free(s->sites);
		free(s);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		struct ring_ctx *c = &s->rings[i];
		sp__ring *ring = sp__seg_reader_ring(&s->r, i);
		/* ordering: acquire, as any reader of head (trace_ring.h). */
		uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
		uint64_t cap = s->r.hdr.ring_capacity;
		if (flags & SPC_FROM_OLDEST)
			c->cursor = head > cap ? head - cap + 1 : 1;
		else
			c->cursor = head + 1;
		c->worker = -1;
	}
	memset(r, 0, sizeof *r); /* the stream owns the mapping now */
	*out = s;
	return 0;
}

int spc_stream_open(spc_stream **out, int pid, unsigned flags, const char **err)
{
	sp__seg_reader r;
	int rc = sp__seg_open(&r, pid);
	/* -EAGAIN: the creator is between creating the file and publishing its
	 * header (microseconds); wait for it, up to half a second. */
	for (int i = 0; rc == -EAGAIN && i < 100; i++) {
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
		rc = sp__seg_open(&r, pid);
	}
	if (rc < 0) {
		if (err)
			*err = sp__seg_strerror(&r);
		return rc;
	}
	rc = spc_stream_open_reader(out, &r, flags);
	if (rc < 0) {
		sp__seg_close(&r);
		if (err)
			*err = "out of memory";
	}
	return rc;
}

void spc_stream_close(spc_stream *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->r.hdr.nrings; i++)
		free(s->rings[i].q.buf);
	sp__seg_close(&s->r);
	free(s->rings);
	free(s->heap);
	free(s->tmp);
	free(s->batch);
	free(s->sites);
	free(s);
}

/*
 * Room for `more` events after the ones q holds. Delivery only moves q->ev
 * forward (the events newer than the watermark, ~2 ms of them, stay where
 * they are): moving them down to the buffer's start on every poll copied a
 * few MB a poll at 20M events/s, 15% of the console's CPU. They move down
 * when the space before them is at least three times their size, so each
 * event is copied a third of a time on average; otherwise the buffer grows.
 */
static int held_reserve(struct held *q, size_t more)
{
	if (q->n + more <= q->cap)
		return 0;
	size_t total = q->off + q->cap;
	if (q->off >= 3 * q->n && q->n + more <= total) {
		memmove(q->buf, q->ev, q->n * sizeof *q->ev);
		q->ev = q->buf;
		q->cap = total;
		q->off = 0;
		return 0;
	}
	size_t cap = total ? total * 2 : 4096;
	while (cap < q->off + q->n + more)
		cap *= 2;
	spc_event *h = realloc(q->buf, cap * sizeof *h);
	if (!h)
		return -1;
	q->buf = h;
	q->ev = h + q->off;
	q->cap = cap - q->off;
	return 0;
}

/*
 * Annotate a batch of ring i's records with the ring's context (thread kind,
 * worker, task being polled), updating it, and append them to the ring's
 * queue, which has room for them and, with expand, for the self-wakes their
 * POLL_ENDs count (expanded into WAKE events before each POLL_END). The
 * context lives in locals (stores into the events could alias it in
 * memory) and the clock conversion is inlined: this loop is most of what the
 * console spends per event before the model (80 instructions an event when
 * it was a call per record). Returns 1 when a record's time is below the
 * one before it in the queue (the queue needs settle), else 0.
 */
static inline __attribute__((always_inline)) int
annotate_batch(spc_stream *s, unsigned i, const sp__ring_event *batch, size_t n, int expand)
{
	struct ring_ctx *c = &s->rings[i];
	uint64_t cur = c->cur_task;
	int32_t worker = c->worker;
	uint32_t kind = c->kind, tid = c->tid;
	/* sp__seg_ticks_to_ns's formula (trace_segment.h, CLOCK) */
	const uint64_t tick0 = s->r.hdr.clock_tick0, ns0 = s->r.hdr.clock_ns0;
	const uint64_t mult = s->r.hdr.clock_mult;
	spc_event *out = c->q.ev + c->q.n;
	uint64_t prev = c->q.n ? out[-1].ticks : 0;
	int unsorted = 0;
	for (size_t k = 0; k < n; k++) {
		const sp__ring_event *e = &batch[k];
		uint32_t type = e->type;
		switch (type) {
		case SP_EV_THREAD:
			kind = (uint32_t)e->b;
			worker = e->b == SP_THREAD_WORKER ? (int32_t)e->a : -1;
			cur = 0;
			break;
		case SP_EV_POLL_START:
			cur = e->b;
			worker = (int32_t)e->a;
			kind = SP_THREAD_WORKER;
			break;
		case SP_EV_PARK:
		case SP_EV_UNPARK:
			worker = (int32_t)e->a;
			kind = SP_THREAD_WORKER;
			break;
		default:
			break;
		}
		/* within a ring, sequence numbers only grow (and a POLL_END's
		 * wakes come before it): only a time going back breaks order */
		unsorted |= e->ts < prev;
		prev = e->ts;
		spc_event ev = {
			.ns = ns0 + (uint64_t)(((unsigned __int128)(e->ts - tick0) * mult) >> 32),
			.ticks = e->ts,
			.type = type,
			.a = e->a,
			.b = e->b,
			.seq = e->seq,
			.ring = i,
			.tid = tid,
			.worker = worker,
			.thread_kind = kind,
			.task = cur,
		};
		if (type == SP_EV_POLL_END) {
			uint32_t selfs = (e->a >> SP_POLL_SELF_SHIFT) & SP_POLL_SELF_MAX;
			if (selfs && expand) {
				/* The wakes happened in the poll: deliver them
				 * first, in the ring's context of that poll. */
				spc_event w = ev;
				w.type = SP_EV_WAKE;
				w.a = SP_WAKE_SELF;
				w.expanded = 1;
				for (uint32_t j = 0; j < selfs; j++)
					*out++ = w;
			}
			cur = 0;
		}
		*out++ = ev;
	}
	c->q.n = (size_t)(out - c->q.ev);
	c->cur_task = cur;
	c->worker = worker;
	c->kind = kind;
	return unsorted;
}

static int ev_cmp(const void *pa, const void *pb)
{
	const spc_event *a = pa, *b = pb;
	if (a->ticks != b->ticks)
		return a->ticks < b->ticks ? -1 : 1;
	if (a->ring != b->ring)
		return a->ring < b->ring ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return b->expanded - a->expanded; /* expanded wakes before their POLL_END */
}

/* q's events [0, mid) are sorted and [mid, n) were just appended: sort them,
 * then merge them into the sorted part, moving only the part of it that is
 * later than their first. Rare: a ring's records are in time order unless
 * a thread stamps one with an older clock reading. */
static void settle(spc_stream *s, struct held *q, size_t mid)
{
	spc_event *h = q->ev;
	size_t end = q->n;
	for (size_t i = mid + 1; i < end; i++)
		if (ev_cmp(&h[i - 1], &h[i]) > 0) {
			qsort(h + mid, end - mid, sizeof *h, ev_cmp);
			break;
		}
	if (!mid || mid == end || ev_cmp(&h[mid - 1], &h[mid]) <= 0)
		return;
	/* The first record of the sorted part later than h[mid]. */
	size_t a = 0, b = mid;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (ev_cmp(&h[m], &h[mid]) <= 0)
			a = m + 1;
		else
			b = m;
	}
	size_t nl = mid - a;
	if (nl > s->captmp) {
		spc_event *t = realloc(s->tmp, nl * sizeof *t);
		if (!t) {
			qsort(h, end, sizeof *h, ev_cmp);
			return;
		}
		s->tmp = t;
		s->captmp = nl;
	}
	memcpy(s->tmp, h + a, nl * sizeof *h);
	size_t l = 0, r = mid, w = a;
	while (l < nl && r < end)
		h[w++] = ev_cmp(&h[r], &s->tmp[l]) < 0 ? h[r++] : s->tmp[l++];
	while (l < nl)
		h[w++] = s->tmp[l++];
}

/* Read ring i to its head into its queue. */
static void read_ring(spc_stream *s, unsigned i)
{
	struct ring_ctx *c = &s->rings[i];
	struct held *q = &c->q;
	c->tid = sp__seg_reader_ring_owner(&s->r, i);
	for (;;) {
		uint64_t lost = 0;
		size_t n =
			sp__seg_reader_ring_read(&s->r, i, &c->cursor, s->batch, READ_BATCH, &lost);
		if (lost) {
			c->lost += lost;
			c->cur_task = 0; /* the missed records may have closed it */
		}
		if (n == 0)
			break;
		if (held_reserve(q, n) < 0) {
			/* Out of memory: the cursor is past these records
			 * already; they count as lost. */
			c->lost += n;
			c->cur_task = 0;
			break;
		}
		size_t mid = q->n, selfs = 0;
		for (size_t k = 0; k < n; k++)
			if (s->batch[k].type == SP_EV_POLL_END)
				selfs += (s->batch[k].a >> SP_POLL_SELF_SHIFT) & SP_POLL_SELF_MAX;
		/* Short of memory for the self-wakes (room for the records
		 * themselves is reserved above): the records alone. */
		int unsorted = held_reserve(q, n + selfs) == 0
				       ? annotate_batch(s, i, s->batch, n, 1)
				       : annotate_batch(s, i, s->batch, n, 0);
		if (unsorted)
			settle(s, q, mid);
		if (n < READ_BATCH)
			break;
	}
}

static void read_rings(spc_stream *s)
{
	for (unsigned i = 0; i < s->r.hdr.nrings; i++)
		read_ring(s, i);
}

/* Heap order of rings by their oldest held event: ev_cmp's, as events of
 * two rings differ in time or ring. */
static inline int ring_before(const spc_stream *s, uint32_t x, uint32_t y)
{
	uint64_t tx = s->rings[x].q.ev->ticks, ty = s->rings[y].q.ev->ticks;
	return tx != ty ? tx < ty : x < y;
}

static inline void sift_down(const spc_stream *s, uint32_t *heap, size_t n, size_t i)
{
	uint32_t r = heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ring_before(s, heap[c + 1], heap[c]))
			c++;
		if (!ring_before(s, heap[c], r))
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = r;
}

static void held_taken(struct held *q, size_t k)
{
	q->ev += k;
	q->off += k;
	q->cap -= k;
	q->n -= k;
	if (q->n == 0) { /* nothing left: start from the beginning again */
		q->ev = q->buf;
		q->cap += q->off;
		q->off = 0;
	}
}

/* Deliver the held events up to the watermark in ev_cmp order: the ring
 * with the oldest head is the heap's root; its events go out while they
 * come before the older of its children's heads (a run of one poll's
 * events, usually), then it sinks. */
static size_t deliver(spc_stream *s, uint64_t watermark, spc_event_cb cb, void *arg)
{
	uint32_t *heap = s->heap;
	size_t nh = 0, n = 0;
	for (unsigned i = 0; i < s->r.hdr.nrings; i++)
		if (s->rings[i].q.n)
			heap[nh++] = i;
	for (size_t i = nh / 2; i-- > 0;)
		sift_down(s, heap, nh, i);
	uint64_t last = s->last_ns;
	while (nh) {
		uint32_t r = heap[0];
		struct held *q = &s->rings[r].q;
		/* The root's events up to `bound` in time come first: at the
		 * next ring's head time only if the root's index is lower
		 * (then that head is later than the root's own). */
		uint64_t bound = UINT64_MAX;
		if (nh > 1) {
			size_t c = nh > 2 && ring_before(s, heap[2], heap[1]) ? 2 : 1;
			uint64_t t = s->rings[heap[c]].q.ev->ticks;
			bound = r < heap[c] ? t : t - 1;
		}
		spc_event *ev = q->ev, *end = q->ev + q->n;
		int stop = 0;
		for (; ev < end && ev->ticks <= bound; ev++) {
			if (ev->ns > watermark) {
				stop = 1;
				break;
			}
			if (ev->ns < last)
				ev->late = 1;
			else
				last = ev->ns;
			cb(ev, arg);
		}
		size_t k = (size_t)(ev - q->ev);
		n += k;
		held_taken(q, k);
		if (stop)
			break;
		if (!q->n)
			heap[0] = heap[--nh];
		if (nh > 1)
			sift_down(s, heap, nh, 0);
	}
	s->last_ns = last;
	s->delivered += n;
	return n;
}

size_t spc_stream_poll(spc_stream *s, spc_event_cb cb, void *arg)
{
	uint64_t now = spc_mono_ns();
	read_rings(s);
	return deliver(s, now > SPC_SLACK_NS ? now - SPC_SLACK_NS : 0, cb, arg);
}

size_t spc_stream_flush(spc_stream *s, spc_event_cb cb, void *arg)
{
	read_rings(s);
	return deliver(s, UINT64_MAX, cb, arg);
}

uint64_t spc_stream_lost(const spc_stream *s, unsigned ring)
{
	return ring < s->r.hdr.nrings ? s->rings[ring].lost : 0;
}

uint64_t spc_stream_lost_total(const spc_stream *s)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < s->r.hdr.nrings; i++)
		t += s->rings[i].lost;
	return t;
}

uint64_t spc_stream_delivered(const spc_stream *s)
{
	return s->delivered;
}

const spc_site *spc_stream_site(spc_stream *s, uint32_t idx)
{
	if (idx >= s->r.hdr.site_slots)
		return NULL;
	struct site_cache *c = &s->sites[idx];
	if (!c->known) {
		sp__seg_site_info si;
		if (sp__seg_read_site(&s->r, idx, &si) != 0)
			return NULL;
		c->site.line = si.line;
		memcpy(c->site.name, si.name, sizeof c->site.name);
		memcpy(c->site.file, si.file, sizeof c->site.file);
		c->known = 1;
	}
	return &c->site;
}

struct task_fwd {
	void (*cb)(const sp__seg_task *t, void *arg);
	void *arg;
};

static void task_fwd(unsigned slot, const sp__seg_task *t, void *arg)
{
	(void)slot;
	struct task_fwd *f = arg;
	f->cb(t, f->arg);
}

size_t spc_stream_tasks(spc_stream *s, void (*cb)(const sp__seg_task *t, void *arg), void *arg)
{
	struct task_fwd f = {cb, arg};
	/* The runtime writes its table when asked (ABI 2.3); a process that
	 * does not answer in time (stopped, or a reader that may not write the
	 * segment's header) leaves the table as last written. */
	s->table_rc = sp__seg_table_request(&s->r, SPC_TABLE_WAIT_MS);
	return sp__seg_read_tasks(&s->r, task_fwd, &f, NULL);
}

int spc_stream_table_rc(const spc_stream *s)
{
	return s->table_rc;
}

int spc_stream_worker_queue(const spc_stream *s, int worker, uint32_t *depth, uint32_t *inject)
{
	/* The newest publication of that worker index: rings are reused by
	 * the workers of later runtimes, whose indices repeat. */
	uint64_t best = 0;
	int rc = -1;
	for (unsigned i = 0; i < s->r.hdr.nrings; i++) {
		sp__seg_wstat_info wi;
		if (sp__seg_read_wstat(&s->r, i, &wi) != 0 || (int)wi.worker != worker ||
		    wi.ts < best)
			continue;
		if (!sp__seg_reader_ring_owner(&s->r, i))
			continue; /* the ring's thread has gone */
		best = wi.ts;
		*depth = wi.depth;
		*inject = wi.inject;
		rc = 0;
	}
	return rc;
}

int spc_stream_alive(const spc_stream *s)
{
	return sp__seg_pid_alive((int)s->r.hdr.pid, s->r.hdr.start_time);
}

const sp__seg_reader *spc_stream_reader(const spc_stream *s)
{
	return &s->r;
}

uint64_t spc_stream_ticks_to_ns(const spc_stream *s, uint64_t ticks)
{
	return sp__seg_ticks_to_ns(&s->r, ticks);
}
